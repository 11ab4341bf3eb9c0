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
#include "engine/hash.h"
#include "engine/error.h"

struct vg_shard;

struct vg_shard_stats {
    uint64_t samples;      /* samples evaluated against rules */
    uint64_t timers;       /* absence deadlines handled */
    uint64_t muted_alerts; /* alert changes held back by maintenance or quality M/C */
    uint64_t maintenance;  /* maintenance windows received */
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

/** @brief The shard (of @p n) that owns @p plant. The same function routes and starts. */
static inline uint32_t vg_shard_route(const char *plant, size_t len, uint32_t n)
{
    return n <= 1 ? 0 : (uint32_t)((vg_hash64(plant, len, 0) >> 32) % n);
}

/**
 * @brief Start the clock at @p start: every declared point of the plants this
 * shard owns (shard @p id of @p n) that an absence rule watches is counted
 * from @p start. Idempotent: later calls do nothing.
 */
void vg_shard_start(struct vg_shard *sh, vg_ts start, uint32_t id, uint32_t n);

/**
 * @brief Apply every event of @p b in order, then advance the clock to the
 * batch's watermark (absence deadlines at or before it fire).
 * @thread the shard's worker.
 */
void vg_shard_process(struct vg_shard *sh, const struct vg_batch *b, vg_alert_fn emit, void *ctx);

/** @brief Advance the clock to @p now: fire every absence deadline at or before it. */
void vg_shard_advance(struct vg_shard *sh, vg_ts now, vg_alert_fn emit, void *ctx);

void vg_shard_stats(const struct vg_shard *sh, struct vg_shard_stats *out);

/*
 * Snapshots: the state of one plant as a versioned binary record, so a state
 * store can keep one value per plant (a hash tag per plant for Redis Cluster).
 * A record holds the plant's mute windows and, per device, the latest values
 * compound rules read and every rule state with its extension (set points,
 * windows, firing counters). Rules are named by id and rule_version: on
 * import, the state of a rule that no longer exists or whose definition
 * changed is dropped (the rule starts afresh). Records are tagged with the
 * byte order and sizes of the machine that wrote them and refused elsewhere.
 */
#define VG_SNAPSHOT_VERSION 2   /* 2: rule table, idle states left out, live buckets only */


/** @brief Hand every plant's record to @p fn (in no particular order). @returns 0 or fn's error. */
int vg_shard_export(const struct vg_shard *sh, vg_snapshot_fn fn, void *ctx);

/**
 * @brief Mark plants as events change them, so vg_shard_export_dirty sees
 * them (off by default: the hot path then touches one cache line less).
 * Timers, maintenance messages and new plants always mark their plant.
 */
void vg_shard_track_changes(struct vg_shard *sh, bool on);

/** @brief Like vg_shard_export, for the plants changed since the last call only. */
int vg_shard_export_dirty(struct vg_shard *sh, vg_snapshot_fn fn, void *ctx);

/**
 * @brief Restore one plant from a record made by vg_shard_export (replacing
 * what the shard holds for the same subjects and rules).
 * @returns 0, or VG_EINVAL with @p err filled for a record it cannot read.
 */
int vg_shard_import(struct vg_shard *sh, const void *data, size_t len, struct vg_error *err);

/*
 * Ownership (consumer groups: several instances split the plants). A shard
 * given an owner predicate seeds only the declared points of plants it owns,
 * and on vg_shard_claim() applies a new answer: plants it lost keep their
 * memory but their timers stop (another instance judges them); plants it
 * regains are reset and wait for their stored record (vg_shard_wants). Events
 * are not filtered: the transport sends this instance only its own plants.
 */
void vg_shard_set_owner(struct vg_shard *sh, vg_owns_fn owns, void *ctx);
/** @brief Apply the owner predicate's current answer to every plant, then seed owned declared points. */
void vg_shard_claim(struct vg_shard *sh);
/** @returns true if a stored record of @p plant should be imported: unseen, regained or disowned here. */
bool vg_shard_wants(struct vg_shard *sh, const char *plant, size_t n);

/** @brief The clock the shard has reached (VG_TS_NONE before any), for a checkpoint header. */
vg_ts vg_shard_clock(const struct vg_shard *sh);

#endif
