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
};

/** Plant selector; every non-empty list must match (each list: any of). */
struct vg_where {
    char **industry;     /* NULL-terminated or NULL */
    char **region;       /* codes; "3205*" is a prefix */
    char **plant;
    char **kind;         /* declared point kinds (absence rules: which declared points) */
};

/** A notify entry (issue 5 sends them; this release validates and keeps them). */
struct vg_notify {
    char **to;           /* roles */
    uint8_t min_level;
    vg_ts throttle_ms, unacked_for_ms;
    char *template_text;
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
};

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
