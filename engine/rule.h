/*
 * rule.h: compiled rules and the rule set, indexed by metric.
 * Owns: struct vg_rule (one compiled rule) and struct vg_ruleset (all rules,
 * the metric name table, and the metric -> rules index).
 * Must never: change after load; workers share a rule set read-only. A reload
 * builds a new set and swaps it at a barrier.
 */
#ifndef VG_RULE_H
#define VG_RULE_H

#include "engine/expr.h"
#include "engine/error.h"
#include "engine/registry.h"

#define VG_GRADES_MAX 4
#define VG_METRIC_NONE UINT32_MAX

enum vg_rule_kind { VG_KIND_ALARM = 0, VG_KIND_WARNING = 1 };

/** One grade: the level it raises, its condition, and how long it must hold. */
struct vg_grade {
    uint8_t level;       /* enum vg_level */
    vg_ts for_ms;        /* threshold: the grade's own `for`, else the rule's */
    vg_ts after_ms;      /* absence: silence that raises this grade */
    struct vg_expr when; /* threshold only */
};

enum vg_rule_type {
    VG_RULE_THRESHOLD = 0,  /* grades with `when` conditions over samples */
    VG_RULE_ABSENCE = 1,    /* `absent.grades[].after`: nothing matching for a while */
    VG_RULE_GROUP = 2,      /* `group:` counts plants of a region with a live alert of a rule */
};

enum vg_group_by {
    VG_GROUP_REGION = 0,    /* the plant's region code as the registry gives it */
    VG_GROUP_COUNTY = 1,    /* its first 6 digits: the GB/T 2260 county (区县) */
};

/** Plant selector; every non-empty list must match (each list: any of). */
struct vg_where {
    char **industry;     /* NULL-terminated or NULL */
    char **region;       /* codes; "3205*" is a prefix */
    char **plant;
    char **kind;         /* declared point kinds (absence rules: which declared points) */
};

/** What a VG_OP_SLOT reads: a metric's latest value, a set point, a window, a count of alerts. */
enum vg_slot_kind {
    VG_SLOT_METRIC = 1,   /* latest value of another metric of the device (compound rules) */
    VG_SLOT_LIMIT = 2,    /* limit.NAME: the point's own set point from the registry */
    VG_SLOT_WINDOW = 3,   /* avg/min/max/sum/count/last/delta/rate(metric or condition, width) */
    VG_SLOT_ALERTS = 4,   /* alerts(RULE, width): firings of RULE on this subject in the window */
};

struct vg_slot {
    uint8_t kind;         /* enum vg_slot_kind */
    uint8_t func;         /* WINDOW: enum vg_wfunc */
    bool has_pred;        /* WINDOW count(condition, width) */
    uint32_t metric;      /* METRIC, WINDOW: the metric read */
    vg_ts width;          /* WINDOW, ALERTS */
    struct vg_expr pred;  /* WINDOW with has_pred: the condition counted per sample */
    char *name;           /* LIMIT: the set point's name; ALERTS: the target rule id */
    uint32_t target;      /* ALERTS: target rule index */
    uint32_t ext_off;     /* LIMIT, WINDOW: offset of its state in the rule state's extension */
    char *src;            /* as written, for `because` */
};

#define VG_SLOTS_MAX 8

/** A notify entry: who gets an SMS request for the rule's alerts, and when (engine/notify.h). */
struct vg_notify {
    char **to;           /* roles */
    uint8_t min_level;   /* 0 (absent) = every level */
    vg_ts throttle_ms;   /* 0 = no throttle */
    vg_ts unacked_for_ms;  /* 0 = immediate; else a chain step due this long after firing */
    char *template_text; /* NULL: the built-in default template */
    char template_id[65];  /* carrier-approved template code, or "" */
    bool digest, on_resolve;
};

struct vg_rule {
    char *id, *title;
    uint8_t kind;            /* enum vg_rule_kind */
    uint8_t type;            /* enum vg_rule_type */
    bool any_metric;         /* absence over any telemetry of the device (`metric: "*"`) */
    bool on_event;           /* absence watches an `event:`, not a metric */
    uint32_t index;          /* position in the set */
    struct vg_where where;
    uint32_t *metrics;       /* metric (or event) ids this rule reads; metrics[0] is `value` */
    uint32_t n_metrics;
    vg_ts for_ms, clear_for_ms, stale_ms;
    struct vg_grade grades[VG_GRADES_MAX];  /* ascending level */
    uint32_t n_grades;
    struct vg_expr clear;    /* explicit clear condition, if has_clear */
    bool has_clear;
    struct vg_slot slots[VG_SLOTS_MAX];  /* what the expressions read besides `value` */
    uint32_t n_slots;
    bool compound;           /* reads several metrics: evaluated when any of them updates */
    bool has_value;          /* `value` means metrics[0] */
    uint8_t rank;            /* evaluation order within a metric: rules counting alerts() of
                                others come after them */
    uint32_t ext_size;       /* bytes of per-(rule, subject) extension: limits, windows */
    uint32_t n_fired;        /* windows counting this rule's firings, for alerts() of others */
    vg_ts fired_width[VG_SLOTS_MAX];
    uint32_t fired_off[VG_SLOTS_MAX];
    /* group rules */
    char *group_rule;        /* the member rule's id */
    uint32_t group_member;   /* its index */
    uint8_t group_min_level; /* members count at or above this level */
    uint8_t group_by;        /* enum vg_group_by */
    struct vg_notify *notify;
    uint32_t n_notify;
    char version[17];        /* short hash of the compiled definition */
    char *file;              /* where it was defined */
    int line;
};

struct vg_ruleset {
    struct vg_rule *rules;
    uint32_t n_rules;
    char **metric_names;     /* metric id -> name */
    uint32_t n_metrics;
    uint32_t *metric_index;  /* open addressing: id + 1, 0 = empty */
    uint32_t metric_mask;
    uint32_t *by_metric_start;  /* n_metrics + 1 offsets into by_metric */
    uint32_t *by_metric;        /* rule indexes */
    uint32_t *any_rules;        /* absence rules over any telemetry (`metric: "*"`) */
    uint32_t n_any;
    uint32_t n_absence;         /* absence rules of any kind */
    bool *keep_latest;          /* per metric: a compound rule reads its latest value */
    uint32_t n_group;           /* group rules */
};

/** @returns the rule with this id, or NULL. */
const struct vg_rule *vg_ruleset_find(const struct vg_ruleset *rs, const char *id);

/**
 * @brief For `vigil check --registry`: every declared point a rule applies to
 * that lacks a limit the rule reads (the rule will not apply to it). Each gap
 * is added to @p notes as "rule 'r' reads limit.high; point P/D has none".
 */
void vg_ruleset_limit_gaps(const struct vg_ruleset *rs, const struct vg_registry *reg,
                           struct vg_diags *notes);

/**
 * @brief Load and compile rules from files and directories. A directory loads
 * its *.yaml and *.yml files in name order, skipping *.test.yaml and
 * registry*.yaml. Every problem is reported to @p diags as file:line:col.
 * @param reg  may be NULL; used to report rules whose `where` selects nothing.
 * @returns 0 and *out, or VG_EINVAL (nothing is returned on any error).
 */
int vg_ruleset_load(struct vg_ruleset **out, const char *const *paths, size_t n_paths,
                    const struct vg_registry *reg, struct vg_diags *diags);
void vg_ruleset_destroy(struct vg_ruleset *rs);

/** @returns the id of a metric name, or VG_METRIC_NONE. @thread any. */
uint32_t vg_ruleset_metric(const struct vg_ruleset *rs, const char *name, size_t n);

/** @returns whether @p rule applies to @p plant (NULL: an unknown plant). */
bool vg_rule_applies(const struct vg_rule *rule, const struct vg_plant *plant);

/**
 * @returns whether an absence rule watches declared point @p pt of @p plant
 * from the start of the clock: the rule selects the plant; its `where.kind`
 * (if any) lists the point's kind; and, if the point declares its metrics or
 * events, it declares the rule's one (`metric: "*"` watches every point).
 */
bool vg_rule_watches_point(const struct vg_rule *rule, const struct vg_ruleset *rs,
                           const struct vg_plant *plant, const struct vg_point *pt);

/** The rules reading metric @p id: rules[start[id] .. start[id+1]). */
static inline const uint32_t *vg_ruleset_rules_for(const struct vg_ruleset *rs, uint32_t id,
                                                   uint32_t *n)
{
    *n = rs->by_metric_start[id + 1] - rs->by_metric_start[id];
    return rs->by_metric + rs->by_metric_start[id];
}

#endif
