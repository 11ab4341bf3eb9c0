/*
 * pipeline.h: reader -> shard workers -> output, and the run's statistics.
 * Owns: the threads, the rings between them, the batch pools, and the order
 * of shutdown. Must never: let two threads touch one shard, or drop a message
 * (a full stage makes its producer wait: back-pressure, not loss).
 * DESIGN: the calling thread is the reader: it polls the source, parses each
 * message, writes dead letters, and routes samples by a hash of the plant id
 * into per-worker batches. Each of N workers owns one shard. Workers hand
 * alert records in batches to one output thread, which formats and writes
 * them: per subject, alerts leave in the order they happened. Every hand-off
 * is an SPSC ring; spent batches go back to their producer on a return ring.
 *
 * Event time: the reader keeps the clock — the largest event time seen less
 * the allowed lateness (never going back) — and stamps it on every batch it
 * sends; a worker applies the batch's events, then advances its timers to
 * that watermark. A sample or report older than the clock is dead-lettered
 * as `late`. At the end of input the clock moves to --until if that is later.
 * Live sources (MQTT, Kafka) also move the clock with the wall clock when idle;
 * files and stdin are replays and never do.
 *
 * State (a store other than memory): before any input, every stored plant
 * record is imported into the shard that owns the plant, and the clock is
 * restored from the stored meta. Every checkpoint_ms of wall time, and at the
 * end, the reader sends a barrier through every worker; after the events
 * before it, each worker exports the plants it changed since the last one and
 * hands them to a store thread, which writes them all, then the meta, in
 * pipelined round trips. The hot path never waits on the store: if it fails,
 * processing goes on, the latest record of each plant waits (one per plant,
 * so the buffer is bounded by the state itself, and nothing is dropped), a
 * line on stderr says state is not being saved, and the next checkpoint tries
 * again. The group stage hands over its own record once every worker has
 * passed the barrier. Not yet in the records: messages waiting in the
 * reorder buffer (lateness > 0).
 */
#ifndef VG_PIPELINE_H
#define VG_PIPELINE_H

#include "engine/adapter.h"
#include "engine/rule.h"
#include "engine/notify.h"
#include "engine/shard.h"

#define VG_THREADS_MAX 64

struct vg_pipeline_config {
    const struct vg_ruleset *rs;      /* borrowed */
    const struct vg_registry *reg;    /* borrowed */
    struct vg_source_handle *input;   /* borrowed */
    struct vg_sink_handle *alerts;    /* borrowed */
    struct vg_sink_handle *dead;      /* borrowed */
    struct vg_sink_handle *sms;       /* borrowed; NULL: no SMS requests are made */
    int sms_daily_cap;                /* SMS per phone number per local day (0: no cap) */
    int sms_digest_minute;            /* local (Asia/Shanghai) minute of day of the daily digest */
    int threads;                      /* workers, 1..VG_THREADS_MAX */
    bool summary;                     /* keep per-rule and per-plant counts */
    vg_ts lateness;                   /* allowed lateness of event time (ms) */
    vg_ts start;                      /* clock start, or VG_TS_NONE: the first event's time */
    vg_ts until;                      /* advance the clock to this at the end, or VG_TS_NONE */
    struct vg_store_handle *store;    /* borrowed; NULL or memory: no checkpoints */
    vg_ts checkpoint_ms;              /* wall time between checkpoints (default 1000) */
};

#define VG_REASONS_MAX 16

struct vg_rule_summary {
    uint64_t by_status[4];
    uint64_t by_level[VG_LEVEL_COUNT];  /* firing + escalated, by the level reached */
};

struct vg_pipeline_stats {
    uint64_t messages;                 /* lines or payloads read */
    uint64_t samples;                  /* normalised messages routed */
    uint64_t dead;                     /* dead letters written */
    const char *reason[VG_REASONS_MAX];
    uint64_t reason_count[VG_REASONS_MAX];
    struct vg_shard_stats shards;      /* summed over workers */
    uint64_t alerts[4];                /* by status */
    double seconds;
    vg_ts start, clock;                /* the event-time clock's start and end */
    uint64_t restored;                 /* plant records loaded from the store at start */
    uint64_t checkpoints;              /* checkpoints saved */
    uint64_t records_saved;            /* plant records written (one SET each) */
    uint64_t bytes_saved;              /* bytes of those records */
    uint64_t unsaved;                  /* plant records the store did not take by the end */
    uint64_t replayed;                 /* messages read again that the restored state already had */
    uint64_t sms;                      /* SMS requests written */
    struct vg_notify_stats notify;     /* the notifier's counters (zero without --sms) */
    struct vg_rule_summary *rules;     /* n_rules entries when summary */
    struct {
        uint32_t rule;
        char plant[65];
        uint64_t count;
    } *top;                            /* busiest (rule, plant) pairs by firing count */
    uint32_t n_top;
};

/**
 * @brief Run until the input ends. Fills @p stats (free with vg_pipeline_stats_fini).
 * @returns 0, or a VG_E* code with @p err filled (an output that failed).
 */
int vg_pipeline_run(const struct vg_pipeline_config *cfg, struct vg_pipeline_stats *stats,
                    struct vg_error *err);
void vg_pipeline_stats_fini(struct vg_pipeline_stats *stats);

/**
 * @brief Ask a running pipeline to finish as if its input had ended (a last
 * checkpoint, alerts delivered, input committed). Async-signal-safe: main.c
 * calls it on SIGINT and SIGTERM.
 */
void vg_pipeline_request_stop(void);

/** @brief Print the counts line (always) and, if kept, the per-rule table. */
void vg_pipeline_print(const struct vg_pipeline_stats *stats, const struct vg_ruleset *rs, FILE *out);

#endif
