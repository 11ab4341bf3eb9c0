/*
 * memory_store.c: the embedded default state store — state lives only in the
 * workers' own tables and ends with the process.
 * Owns: nothing. Must never: pretend to persist anything.
 */
#include "engine/adapter.h"

#include <stdlib.h>
#include <string.h>

struct vg_store {
    int unused;
};

static int memory_open(const char *uri, struct vg_store **out, struct vg_error *err)
{
    (void)uri;
    *out = calloc(1, sizeof **out);
    return *out ? VG_OK : vg_error_set(err, VG_ENOMEM, "out of memory");
}

static int memory_save(struct vg_store *s, const struct vg_state_record *recs, size_t n,
                       const struct vg_state_meta *meta, struct vg_error *err)
{
    (void)s, (void)recs, (void)n, (void)meta, (void)err;
    return VG_OK; /* the workers' own tables are the state */
}

static int memory_load(struct vg_store *s, vg_state_load_fn fn, void *ctx, struct vg_state_meta *meta,
                       struct vg_error *err)
{
    (void)s, (void)fn, (void)ctx, (void)err;
    memset(meta, 0, sizeof *meta);
    return VG_OK; /* a new process starts empty */
}

static void memory_close(struct vg_store *s)
{
    free(s);
}

const struct vg_store_ops vg_memory_store = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "memory",
    .open = memory_open,
    .save = memory_save,
    .load = memory_load,
    .close = memory_close,
};
