/*
 * hash.h: the one 64-bit string hash used for routing, tables and ids.
 * Owns: nothing. Must never: change its output; alert ids and shard routing
 * depend on it being stable across versions and machines.
 * DESIGN: 8 bytes at a time, multiply-xorshift mixing (a variant of the
 * well-known "mum" construction), explicit little-endian loads so the value is
 * the same on every platform.
 */
#ifndef VG_HASH_H
#define VG_HASH_H

#include <stdint.h>
#include <stddef.h>

static inline uint64_t vg__load64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint64_t vg__mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/** Hash @p n bytes with @p seed. Stable across platforms and versions. */
static inline uint64_t vg_hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    const uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL, k2 = 0x8ebc6af09c88c6e3ULL;
    uint64_t h = seed ^ k0 ^ (uint64_t)n * k1;
    while (n >= 8) {
        h = vg__mix(h ^ vg__load64(p), k1) + k2;
        p += 8;
        n -= 8;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t |= (uint64_t)p[i] << (8 * i);
    h = vg__mix(h ^ t ^ k2, k1 ^ n);
    return vg__mix(h, k0) ^ h;
}

#endif
