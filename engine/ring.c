/*
 * ring.c: SPSC rings and futex doorbells. See ring.h.
 * Owns: the futex calls. Must never: block a producer.
 */
#include "engine/ring.h"

#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int vg_ring_init(struct vg_ring *r, uint32_t cap, struct vg_bell *bell)
{
    uint32_t n = 2;
    while (n < cap)
        n *= 2;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->mask = n - 1;
    r->bell = bell;
    r->slots = calloc(n, sizeof *r->slots);
    return r->slots ? VG_OK : VG_ENOMEM;
}

void vg_ring_fini(struct vg_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

bool vg_ring_push(struct vg_ring *r, void *p)
{
    uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&r->head, memory_order_acquire) > r->mask)
        return false;
    r->slots[t & r->mask] = p;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    if (r->bell)
        vg_bell_ring(r->bell);
    return true;
}

void vg_bell_ring(struct vg_bell *b)
{
    atomic_fetch_add_explicit(&b->seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&b->sleeping, memory_order_seq_cst))
        syscall(SYS_futex, &b->seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void vg_bell_wait(struct vg_bell *b, uint32_t seen, int timeout_ms)
{
    atomic_store_explicit(&b->sleeping, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&b->seq, memory_order_seq_cst) == seen) {
        struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
        syscall(SYS_futex, &b->seq, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
    }
    atomic_store_explicit(&b->sleeping, 0, memory_order_seq_cst);
}
