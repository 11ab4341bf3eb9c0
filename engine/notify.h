/*
 * notify.h: SMS requests from alert state changes (rules' `notify` entries).
 * Owns: the notifier — recipients resolved through the registry, templates,
 * throttles, unacknowledged-escalation chains, acks, per-number daily caps
 * and daily digests — and its checkpoint record.
 * Must never: read the wall clock (everything runs on the event time its
 * caller hands in, so a replay gives the same requests byte for byte), run
 * in a worker, or drop a request silently: a request over a cap is folded
 * into a digest, a throttled one is counted.
 * DESIGN: one notifier lives in the output thread, which calls it with every
 * alert state change (worker and group alerts) in non-decreasing `at` order,
 * with every ack, and with the clock. Deadlines (chain entries, digests) sit
 * in a heap and a daily timer; they go out when the clock passes them, in
 * time order, before any alert at or after them. State is kept in small
 * open-addressing tables with slots reused, so steady state does not
 * allocate; every table is bounded (throttle entries expire with their
 * window, remembered acks after 24 h, daily counts with their day, live
 * alerts with their resolution). docs/semantics.md "SMS requests" is the
 * exact contract.
 */
#ifndef VG_NOTIFY_H
#define VG_NOTIFY_H

#include "engine/alert.h"
#include "engine/error.h"
#include "engine/registry.h"
#include "engine/rule.h"

/** Local time of every day boundary, digest and {time}: Asia/Shanghai, UTC+8, no DST. */
#define VG_NOTIFY_TZ_OFFSET_MS (8 * 3600 * 1000LL)
#define VG_NOTIFY_DIGEST_MINUTE_DEFAULT (8 * 60)
/** A rule has at most this many notify entries (rule.c enforces it). */
#define VG_NOTIFY_ENTRIES_MAX 32
/** A template has at most this many placeholders (carriers allow 20 variables). */
#define VG_NOTIFY_PARAMS_MAX 20
/** A digest request lists at most this many alert ids (its `count` has them all). */
#define VG_NOTIFY_DIGEST_IDS_MAX 50
/** How long an ack for an alert the notifier does not know is remembered (event time). */
#define VG_NOTIFY_ACK_MEMORY_MS (24 * 3600 * 1000LL)
/** Every notifier record's name begins with this (then p:, r:, n: or a:). */
#define VG_NOTIFY_PREFIX "~n"

struct vg_notify_options {
    int daily_cap;      /* immediate requests per number per local day; 0 = no cap */
    int digest_minute;  /* local minute of day (0..1439) the daily digest goes out */
};

/** Counters since create (not part of the checkpoint record). */
struct vg_notify_stats {
    uint64_t requests;          /* immediate requests emitted (escalations and resolves included) */
    uint64_t throttled;         /* requests suppressed by a throttle */
    uint64_t capped_to_digest;  /* immediate requests over the daily cap, folded into a digest */
    uint64_t digests;           /* digest requests emitted */
    uint64_t acks;              /* acks applied to an alert: on arrival, or when it appeared later */
    uint64_t acks_unknown;      /* acks whose alert was not known on arrival (remembered for 24 h) */
    uint64_t escalations;       /* requests from unacked_for entries */
    uint64_t no_recipient;      /* a role that resolved to no phone number (per entry, role, event) */
};

struct vg_notifier;

/**
 * Receives one SMS request: @p json is one object of @p len bytes (schemas/
 * sms_request.schema.json) without a newline; @p key is the subject: the plant
 * id, or the region code of a group alert (a digest: its first alert's). Both
 * are borrowed until the callback returns.
 */
typedef void (*vg_sms_fn)(void *ctx, const char *key, size_t key_len, const char *json, size_t len);

/**
 * @brief Create a notifier. Borrows @p rs and @p reg (they must outlive it;
 * @p reg may be NULL: no contacts, so no requests); @p o may be NULL (no cap,
 * digest at 08:00).
 * @returns NULL when out of memory or when an option is out of range
 * (daily_cap < 0, digest_minute outside 0..1439).
 * @thread output
 */
struct vg_notifier *vg_notifier_create(const struct vg_ruleset *rs, const struct vg_registry *reg,
                                       const struct vg_notify_options *o);
void vg_notifier_destroy(struct vg_notifier *n);

/**
 * @brief One alert state change (firing, escalated, resolved). Advances the
 * clock to @p a->at first (emitting what falls due at or before it), then
 * emits the requests the change causes. Borrows @p a for the call only.
 * @thread output
 */
void vg_notifier_alert(struct vg_notifier *n, const struct vg_alert *a, vg_sms_fn emit, void *ctx);

/**
 * @brief An ack control message. An ack at @p ts cancels the alert's chain
 * entries whose deadline is after @p ts; deliver it before advancing the clock
 * past @p ts, or deadlines in between have already gone out. @p by is kept for
 * nothing yet (the contract carries it). Acks of ids not known are remembered
 * for 24 h of event time after @p ts and applied when the alert appears.
 * @returns 1 if it matched a live alert the notifier tracks (rules with notify
 * entries), 0 if it was remembered (or could never match: not a vigil id).
 * @thread output
 */
int vg_notifier_ack(struct vg_notifier *n, const char *alert_id, size_t len, const char *by,
                    size_t by_len, vg_ts ts);

/**
 * @brief Move the clock to @p now (never back): emit the chain requests and
 * digests due at or before it, in time order. @thread output
 */
void vg_notifier_advance(struct vg_notifier *n, vg_ts now, vg_sms_fn emit, void *ctx);

/** @brief Copy the counters. */
void vg_notifier_stats(const struct vg_notifier *n, struct vg_notify_stats *out);

/**
 * Ownership (several instances in a Kafka consumer group): state is kept by
 * name, and a name belongs to the instance that owns its subject: a plant's
 * alerts and throttles go with the plant, a region's group alerts with the
 * plant that anchors the region (a plant it counted), a phone number's daily
 * count and digest with the plants whose contacts reach it (a number reached
 * from plants of two instances is counted in each), acks of alerts not seen
 * yet stay with whoever read them. @p owns NULL (the default): everything is
 * this instance's. @thread output (or before it starts)
 */
void vg_notifier_set_owner(struct vg_notifier *n, vg_owns_fn owns, void *ctx);

/**
 * @brief Apply the owner's current answer (after a rebalance): forget the
 * state of names another instance owns now (their next owner loads their
 * records) and note what is held here, so that vg_notifier_import_record
 * leaves it alone. @thread output
 */
void vg_notifier_claim(struct vg_notifier *n);

/** @brief Is alert @p a's subject this instance's? (an alert still to judge after a rebalance) */
bool vg_notifier_owns(struct vg_notifier *n, const struct vg_alert *a);

/**
 * Alerts handed to the notifier's caller but not yet to the notifier (they
 * wait for every worker's progress) are saved in the records too; on import
 * they come back through this callback. @p a and its strings are borrowed.
 */
typedef void (*vg_notify_requeue_fn)(void *ctx, const struct vg_alert *a);

/**
 * @brief Hand @p fn a record for every name whose state changed since the
 * last call, and an empty one (delete it) for every name whose state is all
 * gone. Names: "~np:PLANT", "~nr:REGION", "~nn:NUMBER", "~na:". Each record
 * is versioned binary: the clock, then the name's live alerts (acks, chain
 * progress, numbers told), throttles, daily counts, digest queue, remembered
 * acks and the @p queued alerts of its subject. @returns 0, VG_ENOMEM or
 * fn's error. @thread output
 */
int vg_notifier_export_changed(struct vg_notifier *n, const struct vg_alert *const *queued, uint32_t n_queued,
                               vg_snapshot_fn fn, void *ctx);

/**
 * @brief Load one record made by vg_notifier_export_changed, if its name is
 * this instance's and nothing of it is held here (what is held is newer).
 * Names (rules, metrics) are matched by name, so a record survives a rule
 * reload: alerts of rules that no longer exist or no longer notify are
 * dropped, and a rule whose notify entries changed keeps its alerts but does
 * not re-judge chain deadlines already past. Before any alert, the clock
 * resumes from the latest record's. Chain deadlines after the record's clock
 * are pending again; earlier ones went out before it was written.
 * @returns 0, or VG_EINVAL with @p err filled for a damaged or foreign record
 * (refused whole: nothing of it applied). @thread output, or before it starts
 */
int vg_notifier_import_record(struct vg_notifier *n, const char *name, size_t name_len, const void *data,
                              size_t len, vg_notify_requeue_fn requeue, void *ctx, struct vg_error *err);

/**
 * @brief Check a notify template: every '{' must open one of the placeholders
 * {plant_name} {plant} {device} {metric} {value} {level} {level_cn} {title}
 * {region_name} {time}, closed by '}'; at most VG_NOTIFY_PARAMS_MAX of them;
 * not empty. @returns 0, or VG_EINVAL with the byte offset of the offending
 * placeholder in @p bad_offset and a sentence in @p why (@p cap bytes).
 * @thread any
 */
int vg_notify_template_check(const char *tpl, size_t *bad_offset, char *why, size_t cap);

/** The built-in templates (a notify entry without `template`; resolve messages). */
extern const char vg_notify_default_template[];
extern const char vg_notify_resolve_template[];

#endif
