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
    const struct vg_str *parts[4] = {&s->plant, &s->device, &s->name, &s->alert_id};
    for (int i = 0; i < 4; i++) {
        if (parts[i]->n) /* an absent string may have a NULL pointer */
            memcpy(p, parts[i]->p, parts[i]->n);
        p += parts[i]->n;
    }
    b->used += (uint32_t)vg_batch_need(s);
}
