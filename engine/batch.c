/*
 * batch.c: filling event batches. See batch.h.
 * Owns: the copy of a normalised message into a batch. Must never: allocate.
 */
#include "engine/batch.h"

#include <string.h>

void vg_batch_append(struct vg_batch *b, const struct vg_sample *s, uint32_t metric)
{
    struct vg_wevent *e = &b->ev[b->n++];
    e->ts = s->ts;
    e->value = s->value;
    e->from = s->from;
    e->until = s->until;
    e->kind = s->kind;
    e->quality = s->quality;
    e->metric = metric;
    e->off = b->used;
    e->plant_len = (uint8_t)s->plant.n;
    e->dev_len = (uint8_t)s->device.n;
    e->name_len = (uint8_t)s->name.n;
    e->aux_len = (uint8_t)s->alert_id.n;
    char *p = b->bytes + b->used;
    memcpy(p, s->plant.p, s->plant.n);
    p += s->plant.n;
    memcpy(p, s->device.p, s->device.n);
    p += s->device.n;
    memcpy(p, s->name.p, s->name.n);
    p += s->name.n;
    memcpy(p, s->alert_id.p, s->alert_id.n);
    b->used += (uint32_t)vg_batch_need(s);
}
