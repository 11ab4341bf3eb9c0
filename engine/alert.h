/*
 * alert.h: the alert lifecycle of one (rule, subject) and the alert record.
 * Owns: struct vg_rstate (per rule and subject: pending grades, live alert,
 * clear timer), the state machine that advances it on a sample, deterministic
 * alert ids, and the JSON form of an alert.
 * Must never: allocate, or let a live alert's level fall.
 * DESIGN (the exact semantics of DESIGN.md):
 *  - each grade starts pending at the first sample where its condition holds
 *    and fires at the first later sample at or after start + for, provided it
 *    held at every sample between; a sample where it fails resets it; for: 0s
 *    fires on the first holding sample;
 *  - the level is the highest grade that has fired; a higher grade firing while
 *    the alert lives emits `escalated`; the level never falls;
 *  - started_at is when the breach began: the earliest pending start among the
 *    grades holding when the alert first fires (for nested grades, the lowest);
 *  - resolution mirrors `for`: the clear condition (explicit `clear`, else "the
 *    lowest grade no longer holds") starts a timer at its first holding sample
 *    and resolves at the first sample at or after start + clear_for; any sample
 *    where it does not hold (the alert's condition holds again, or a value in
 *    the hysteresis band) resets it. clear_for defaults to 0s.
 *  - after `resolved` every timer restarts from the next sample: a later breach
 *    is a new alert with a new id.
 */
#ifndef VG_ALERT_H
#define VG_ALERT_H

#include "engine/rule.h"

enum vg_alert_status { VG_ALERT_FIRING = 1, VG_ALERT_ESCALATED = 2, VG_ALERT_RESOLVED = 3 };

/**
 * Per (rule, subject) state. 64 bytes.
 * Threshold rules use pending[] and clear_since. Absence rules keep the last
 * matching message's time in pending[0] (the start of the clock for a declared
 * point that never reported: VG_RS_SEEN is then clear).
 */
struct vg_rstate {
    vg_ts pending[VG_GRADES_MAX];  /* start of the current holding streak, or VG_TS_NONE */
    vg_ts started_at;              /* live alert's start, or VG_TS_NONE */
    vg_ts clear_since;             /* clear timer, or VG_TS_NONE */
    uint32_t next;                 /* next state of the same subject (index + 1; 0 = end) */
    uint32_t subject;              /* owning subject (shard index) */
    uint16_t rule;                 /* rule index */
    uint8_t level;                 /* live alert's level; 0 = no live alert */
    uint8_t flags;                 /* VG_RS_* */
    uint32_t ext;                  /* offset of the rule's extension (limits, windows) + 1; 0 = none */
};

enum {
    VG_RS_SEEN = 1,       /* absence: a matching message has arrived */
    VG_RS_ARMED = 2,      /* absence: the shard's timer heap holds an entry for it */
    VG_RS_NA = 4,         /* the rule reads a limit this point does not declare: never applies */
    VG_RS_MUTED = 8,      /* live, but it began while the subject was muted: not yet told */
};

void vg_rstate_init(struct vg_rstate *st, uint16_t rule);

/** What a sample did to the state: at most one transition per sample. */
struct vg_transition {
    uint8_t status;      /* 0 = nothing; else enum vg_alert_status */
    uint8_t level;
    uint8_t grade;       /* index of the deciding grade (or of the lowest, for resolve) */
    vg_ts started_at;
    vg_ts since;         /* when the deciding condition began to hold */
};

/**
 * @brief Advance @p st by one sample at time @p ts with environment @p env.
 * @returns true and fills @p out if the alert changed state. Never allocates.
 * @thread the worker owning the subject.
 */
bool vg_rstate_step(struct vg_rstate *st, const struct vg_rule *rule, vg_ts ts,
                    const struct vg_eval_env *env, struct vg_transition *out);

/**
 * Absence rules (DESIGN.md "Exact semantics"): deadline = last matching
 * message + after. A grade fires when the clock reaches its deadline (at and,
 * for the first grade, started_at are the deadline itself, not when the clock
 * noticed); later grades escalate at their own deadlines; the next matching
 * message resolves the alert at its own time. A message arriving exactly at a
 * deadline comes too late: the silence already lasted `after`.
 */

/** Fire or escalate every grade whose deadline is at or before @p now. @returns transitions written. */
int vg_absence_due(struct vg_rstate *st, const struct vg_rule *rule, vg_ts now,
                   struct vg_transition out[VG_GRADES_MAX]);
/** A matching message at @p ts: catch up deadlines up to @p ts, resolve, restart. @returns transitions. */
int vg_absence_seen(struct vg_rstate *st, const struct vg_rule *rule, vg_ts ts,
                    struct vg_transition out[VG_GRADES_MAX + 1]);
/** The next deadline, or VG_TS_NONE when every grade has fired. */
vg_ts vg_absence_next(const struct vg_rstate *st, const struct vg_rule *rule);

enum {
    VG_ALERT_F_NOVALUE = 1,     /* absence: no sample value */
    VG_ALERT_F_NEVER_SEEN = 2,  /* absence: the point never reported; counted from the clock start */
    VG_ALERT_F_GROUP = 4,       /* group rule: the subject is a region */
    VG_ALERT_F_RESUMED = 8,     /* fired while the subject was muted; told when the mute ended */
};

/** An alert state change, as a worker hands it to the output stage. */
struct vg_alert {
    uint32_t rule;           /* rule index */
    uint8_t status, level, grade, plant_len, dev_len, flags;
    uint8_t n_slots;         /* slot values below, as the rule's slots[] */
    uint32_t metric;         /* the metric whose sample caused the change (VG_METRIC_NONE: none) */
    double value;
    double rule_value;       /* what `value` meant (the rule metric's latest) when another
                                metric's sample decided; NaN otherwise */
    double slot[VG_SLOTS_MAX];  /* what the expressions read: metrics, limits, windows, counts */
    vg_ts started_at, at, since;  /* since: threshold: condition began; absence: last seen */
    const char *region;      /* borrowed from the registry (or the group stage), or NULL */
    const char *group_plants;   /* group alerts: JSON array of the plants counted (borrowed) */
    vg_ts muted_from, muted_until;  /* RESUMED: the mute that held it back (until NONE: quality) */
    char plant[64];
    char device[64];
};

/** @brief The deterministic id: hash of rule id, plant, device and started_at (16 hex). */
void vg_alert_id(const char *rule, const char *plant, size_t plant_len, const char *device,
                 size_t dev_len, vg_ts started_at, char out[17]);

/** @brief Write @p a as one JSON line (with '\n'). @returns length, or -1 if @p cap is short. */
int vg_alert_format(const struct vg_alert *a, const struct vg_ruleset *rs, char *buf, size_t cap);

const char *vg_alert_status_name(int status);

#endif
