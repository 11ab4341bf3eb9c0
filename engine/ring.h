/*
 * ring.h: bounded single-producer/single-consumer rings of pointers, and the
 * doorbell a consumer sleeps on.
 * Owns: the only cross-thread hand-off on the hot path. Must never: lock, or
 * be used by more than one producer or more than one consumer.
 * DESIGN: head and tail live on their own cache lines; push publishes with a
 * release store, pop reads with acquire. A consumer that finds every ring it
 * serves empty sleeps on its doorbell (an eventcount over a Linux futex):
 * producers bump the bell's sequence after a push and issue a wake only when
 * the consumer said it is sleeping, so a busy pipeline makes no system calls
 * and wake-ups are coalesced.
 */
#ifndef VG_RING_H
#define VG_RING_H

#include <stdatomic.h>
#include "engine/vigil.h"

struct vg_bell {
    _Alignas(64) _Atomic uint32_t seq;
    _Atomic uint32_t sleeping;
};

struct vg_ring {
    _Alignas(64) _Atomic uint32_t head;   /* consumer position */
    _Alignas(64) _Atomic uint32_t tail;   /* producer position */
    _Alignas(64) uint32_t mask;
    void **slots;
    struct vg_bell *bell;                 /* the consumer's doorbell (borrowed) */
};

/** @brief @p cap is rounded up to a power of two. @returns 0 or VG_ENOMEM. */
int vg_ring_init(struct vg_ring *r, uint32_t cap, struct vg_bell *bell);
void vg_ring_fini(struct vg_ring *r);

/** @brief Push and ring the consumer's bell. @returns false if full. @thread producer. */
bool vg_ring_push(struct vg_ring *r, void *p);

/** @returns the oldest pointer, or NULL if empty. @thread consumer. */
static inline void *vg_ring_pop(struct vg_ring *r)
{
    uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&r->tail, memory_order_acquire))
        return NULL;
    void *p = r->slots[h & r->mask];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return p;
}

static inline bool vg_ring_empty(struct vg_ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_relaxed) ==
           atomic_load_explicit(&r->tail, memory_order_acquire);
}

/** @brief Read the bell before checking rings; pass the value to vg_bell_wait. */
static inline uint32_t vg_bell_read(struct vg_bell *b)
{
    return atomic_load_explicit(&b->seq, memory_order_seq_cst);
}

/** @brief Sleep until the bell rings after @p seen, or @p timeout_ms passes. */
void vg_bell_wait(struct vg_bell *b, uint32_t seen, int timeout_ms);
/** @brief Ring: wake the consumer if it sleeps. */
void vg_bell_ring(struct vg_bell *b);

#endif
