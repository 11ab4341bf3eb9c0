/*
 * shard.h: one worker's share of the world.
 * Owns: the series state of the plants routed to it — subjects (plant +
 * device), the rules that apply to each plant, and per (rule, subject) alert
 * state. Must never: be touched by any other thread, take a lock, or allocate
 * per event (tables grow geometrically when a new subject first appears).
 * DESIGN: an open-addressing table keyed by a 64-bit hash of plant+device;
 * each slot holds a 32-bit hash tag and the subject's index, so probes touch
 * no entry until the tag matches. Subjects are 48 bytes with short keys
 * inline. Each subject heads a short chain of rule states in one array; each
 * plant carries a bitmap of the rules whose `where` selects it, computed once
 * when the plant is first seen. A batch is processed in two passes: hash and
 * prefetch every slot, then evaluate while prefetching the subject of the
 * event eight places ahead, so the cache misses of a million-series table
 * overlap.
 */
#ifndef VG_SHARD_H
#define VG_SHARD_H

#include "engine/alert.h"
#include "engine/batch.h"

struct vg_shard;

struct vg_shard_stats {
    uint64_t samples;      /* samples evaluated against rules */
    uint64_t muted;        /* samples whose quality does not trigger rules */
    uint64_t unmatched;    /* samples of metrics no rule reads */
    uint64_t reports;      /* report events (no rule kind uses them yet) */
    uint64_t controls;     /* ack and maintenance messages */
    uint64_t subjects, plants, states;
    uint64_t alerts[4];    /* by enum vg_alert_status */
    size_t bytes;          /* heap held by the shard's tables */
};

/** Receives each alert as it happens. @p a is valid only during the call. */
typedef void (*vg_alert_fn)(void *ctx, const struct vg_alert *a);

/** @brief Create a shard; borrows @p rs and @p reg (they must outlive it). */
struct vg_shard *vg_shard_create(const struct vg_ruleset *rs, const struct vg_registry *reg);
void vg_shard_destroy(struct vg_shard *sh);

/** @brief Apply every event of @p b in order. @thread the shard's worker. */
void vg_shard_process(struct vg_shard *sh, const struct vg_batch *b, vg_alert_fn emit, void *ctx);

void vg_shard_stats(const struct vg_shard *sh, struct vg_shard_stats *out);

#endif
