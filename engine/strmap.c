/*
 * strmap.c: byte-string keys to 32-bit values. See strmap.h.
 * Owns: its key copies. Must never: hand out a value pointer across a get
 * that creates (a growth moves them).
 */
#include "engine/strmap.h"
#include "engine/hash.h"

#include <stdlib.h>
#include <string.h>

static int grow(struct vg_strmap *m)
{
    uint32_t cap = m->cap ? m->cap * 2 : 64;
    char **keys = calloc(cap, sizeof *keys);
    uint32_t *lens = calloc(cap, sizeof *lens), *vals = calloc(cap, sizeof *vals);
    if (!keys || !lens || !vals) {
        free(keys);
        free(lens);
        free(vals);
        return VG_ENOMEM;
    }
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        uint32_t k = (uint32_t)vg_hash64(m->keys[i], m->lens[i], 7) & (cap - 1);
        while (keys[k])
            k = (k + 1) & (cap - 1);
        keys[k] = m->keys[i];
        lens[k] = m->lens[i];
        vals[k] = m->vals[i];
    }
    free(m->keys);
    free(m->lens);
    free(m->vals);
    m->keys = keys;
    m->lens = lens;
    m->vals = vals;
    m->cap = cap;
    return VG_OK;
}

uint32_t *vg_strmap_get(struct vg_strmap *m, const char *key, size_t len, bool create)
{
    if (create && (m->n + 1) * 2 > m->cap && grow(m) < 0)
        return NULL;
    if (!m->cap)
        return NULL;
    uint32_t k = (uint32_t)vg_hash64(key, len, 7) & (m->cap - 1);
    for (;; k = (k + 1) & (m->cap - 1)) {
        if (!m->keys[k]) {
            if (!create || !(m->keys[k] = malloc(len + 1)))
                return NULL;
            memcpy(m->keys[k], key, len);
            m->keys[k][len] = 0;
            m->lens[k] = (uint32_t)len;
            m->vals[k] = 0;
            m->n++;
            return &m->vals[k];
        }
        if (m->lens[k] == len && !memcmp(m->keys[k], key, len))
            return &m->vals[k];
    }
}

void vg_strmap_fini(struct vg_strmap *m)
{
    for (uint32_t i = 0; i < m->cap; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
