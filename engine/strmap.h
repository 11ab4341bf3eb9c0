/*
 * strmap.h: a map from byte strings to 32-bit values, for the places that
 * keep state by name off the hot path (the group stage, the checkpoint
 * buffer).
 * Owns: copies of its keys (NUL-terminated, so they read as C strings too).
 * Must never: be used per event; shard tables are specialised for that.
 * DESIGN: open addressing, linear probing, doubled when half full. Iterate
 * with `for (i < cap) if (keys[i])`; vals[i] belongs to keys[i].
 */
#ifndef VG_STRMAP_H
#define VG_STRMAP_H

#include "engine/vigil.h"

struct vg_strmap {
    char **keys;
    uint32_t *lens;
    uint32_t *vals;
    uint32_t cap, n;
};

/**
 * @brief The value of @p key (@p len bytes). With @p create, a missing key is
 * added with value 0. @returns NULL if absent (or out of memory when creating).
 */
uint32_t *vg_strmap_get(struct vg_strmap *m, const char *key, size_t len, bool create);

/** @brief Free the keys and tables; the map is empty and reusable afterwards. */
void vg_strmap_fini(struct vg_strmap *m);

#endif
