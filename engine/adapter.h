/*
 * adapter.h: the three seams to the outside world — sources, sinks and state
 * stores — and the registry that picks one by URI.
 * Owns: the vtables. Must never: know about a particular transport; each
 * adapter is one file under adapters/ plus one line in adapters/adapters.c.
 * DESIGN: like SQLite's VFS, each table starts with a version so it can grow.
 * Sources hand out borrowed message slices valid until the next poll; sinks
 * take keyed JSON records and batch them; stores take changed state at
 * checkpoints and load it at start.
 *
 * URIs: every adapter takes `scheme://[USER[:PASS]@]HOST:PORT/PATH?opt=v&opt=v`
 * (percent-encoding allowed in USER, PASS and option values; see
 * engine/uri.h). An option an adapter does not know is an error that lists
 * the options it has. docs/endpoints.md lists every adapter's options.
 */
#ifndef VG_ADAPTER_H
#define VG_ADAPTER_H

#include "engine/error.h"

#define VG_ADAPTER_VERSION 2   /* 2: sinks take keyed records (put); sources mark/commit */

struct vg_source;
struct vg_sink;
struct vg_store;

/** One input message: a line of a file, or an MQTT/Kafka payload. Borrowed. */
struct vg_msg {
    const char *data;
    size_t len;         /* bytes in data */
    size_t orig_len;    /* the message's real length (> len if truncated) */
    uint64_t pos;       /* line number, offset or sequence, for dead letters */
    const char *plant;  /* the plant id the transport names (an MQTT topic level), or NULL */
    size_t plant_len;
    int32_t stream;     /* where pos counts (Kafka: topic index * 65536 + partition), or -1 */
};

/** The oldest message of one stream the pipeline still holds (not yet in any state). */
struct vg_held_floor {
    int32_t stream;
    uint64_t pos;
};

/**
 * What a source tells the pipeline besides messages: partitions moving
 * between instances of a consumer group (Kafka rebalances). Both calls come
 * on the thread that polls, from inside poll.
 */
struct vg_source_events {
    void *ctx;
    /**
     * Partitions are about to be taken from this instance: the pipeline takes
     * a checkpoint (state saved, alerts delivered), calls commit for it, and
     * only then returns, so the next owner starts from saved state.
     */
    void (*revoking)(void *ctx);
    /**
     * The set of plants this instance owns changed (partitions assigned or
     * revoked); from now on the source's owns() answers for each plant. The
     * pipeline drops the plants it no longer owns and loads, from the state
     * store, the ones it gained.
     */
    void (*assigned)(void *ctx);
};

struct vg_source_ops {
    int version;
    const char *scheme;  /* "file" (paths and -), "mqtt", "kafka" */
    /** Open @p uri. @returns 0 or a VG_E* code with @p err filled. */
    int (*open)(const char *uri, struct vg_source **out, struct vg_error *err);
    /**
     * Fill up to @p cap messages, waiting at most @p timeout_ms for the first.
     * @returns the count (0 when idle), sets *eof at the end of a finite input,
     * or a negative code with @p err filled. Messages stay valid until the next poll.
     */
    int (*poll)(struct vg_source *src, struct vg_msg *msgs, int cap, int timeout_ms, bool *eof,
                struct vg_error *err);
    /**
     * Checkpoints (at-least-once delivery). The reader calls mark(k) at
     * checkpoint k: every message polled so far belongs to it, except those
     * still held back (the reorder buffer, --lateness): for each stream in
     * @p held, messages from that position on must be read again after a
     * restart, so the source marks no further than it. Once the state
     * and the alerts covering checkpoint k are stored and delivered, it calls
     * commit(k): the source acknowledges (Kafka: commits offsets of) what was
     * marked for k and every earlier mark. Both NULL when there is nothing to
     * acknowledge (files). @returns 0 or a VG_E* code with @p err filled.
     */
    int (*mark)(struct vg_source *src, uint64_t checkpoint, const struct vg_held_floor *held,
                size_t n_held, struct vg_error *err);
    int (*commit)(struct vg_source *src, uint64_t checkpoint, struct vg_error *err);
    /** A short name for dead letters ("stdin", a path, a topic). */
    const char *(*name)(struct vg_source *src);
    /** Register the pipeline's listener (before the first poll); NULL if the source has no such events. */
    void (*listen)(struct vg_source *src, const struct vg_source_events *ev);
    /**
     * Does this instance own @p plant? (Kafka: its partition, by the producers'
     * partitioner on the plant id as key, is assigned here.) NULL: every plant.
     * Must be callable from any thread while the reader polls.
     */
    bool (*owns)(struct vg_source *src, const char *plant, size_t len);
    bool live;           /* input never ends by itself (MQTT, Kafka) */
    void (*close)(struct vg_source *src);
};

struct vg_sink_ops {
    int version;
    const char *scheme;
    int (*open)(const char *uri, struct vg_sink **out, struct vg_error *err);
    /**
     * Take one record: a JSON object of @p len bytes without a newline, and its
     * key (the plant id, a region code for group alerts, or empty): Kafka's
     * message key, the {key} of an MQTT topic template. Copies what it needs.
     * May buffer and batch; when its bounded buffer is full it waits
     * (back-pressure on the caller, retrying the server with backoff); it
     * never drops a record. @returns 0, or a VG_E* code for a failure that
     * retrying cannot mend (the run stops and reports it).
     */
    int (*put)(struct vg_sink *sink, const char *key, size_t key_len, const char *rec, size_t len,
               struct vg_error *err);
    /** Deliver everything put so far and wait until the server has it (acknowledged). */
    int (*flush)(struct vg_sink *sink, struct vg_error *err);
    /** Flush (bounded wait), then release everything. */
    void (*close)(struct vg_sink *sink);
};

/** One plant's state record (engine/shard.h snapshots), borrowed. */
struct vg_state_record {
    const char *plant;
    size_t plant_len;
    const void *data;
    size_t len;
};

/** Where the pipeline stood at a checkpoint. */
struct vg_state_meta {
    int64_t start;        /* clock start (VG_TS_NONE: none yet) */
    int64_t max_ts;       /* largest event time seen */
    int64_t clock;        /* the watermark */
    uint64_t checkpoint;  /* checkpoint number, rising */
};

/** Called for each stored record by load; a non-zero return stops the load. */
typedef int (*vg_state_load_fn)(void *ctx, const char *plant, size_t plant_len, const void *data,
                                size_t len);

struct vg_store_ops {
    int version;
    const char *scheme;  /* "memory", "redis" */
    int (*open)(const char *uri, struct vg_store **out, struct vg_error *err);
    /**
     * Write @p n records and the meta in as few round trips as possible
     * (pipelined). Records replace earlier ones of the same plant, and a
     * record of length 0 deletes the stored one (the subject has no state
     * left); the meta is
     * written last, so a reader that sees a meta sees the records it covers.
     * @returns 0, or VG_EIO when the server cannot be reached (nothing is
     * assumed saved; the caller keeps the records and retries).
     */
    int (*save)(struct vg_store *store, const struct vg_state_record *recs, size_t n,
                const struct vg_state_meta *meta, struct vg_error *err);
    /** Load every stored record (any order) and the meta; meta->checkpoint 0: nothing stored. */
    int (*load)(struct vg_store *store, vg_state_load_fn fn, void *ctx, struct vg_state_meta *meta,
                struct vg_error *err);
    void (*close)(struct vg_store *store);
};

/** An open source with its ops. */
struct vg_source_handle {
    const struct vg_source_ops *ops;
    struct vg_source *src;
};

struct vg_sink_handle {
    const struct vg_sink_ops *ops;
    struct vg_sink *sink;
};

struct vg_store_handle {
    const struct vg_store_ops *ops;
    struct vg_store *store;
};

/**
 * @brief Open the adapter a URI names: "mqtt://…", "kafka://…", "redis://…",
 * "memory", or else a file path ("-" is stdin/stdout, "stderr" for sinks).
 * @returns 0, VG_EUSAGE for a scheme this build does not have, or the adapter's error.
 */
int vg_source_open(const char *uri, struct vg_source_handle *out, struct vg_error *err);
int vg_sink_open(const char *uri, struct vg_sink_handle *out, struct vg_error *err);
int vg_store_open(const char *uri, struct vg_store_handle *out, struct vg_error *err);

void vg_source_close(struct vg_source_handle *h);
void vg_sink_close(struct vg_sink_handle *h);
void vg_store_close(struct vg_store_handle *h);

#endif
