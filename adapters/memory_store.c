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

static void memory_close(struct vg_store *s)
{
    free(s);
}

const struct vg_store_ops vg_memory_store = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "memory",
    .open = memory_open,
    .close = memory_close,
};
