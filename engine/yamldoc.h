/*
 * yamldoc.h: a loaded YAML document with positions, for the rule, registry
 * and (later) config loaders.
 * Owns: one libyaml document and the helpers that report file:line:col.
 * Must never: stop at the first error; loaders collect every diagnostic.
 */
#ifndef VG_YAMLDOC_H
#define VG_YAMLDOC_H

#include <yaml.h>
#include "engine/error.h"

struct vg_yaml {
    yaml_document_t doc;
    const char *file;     /* borrowed, for messages */
    struct vg_diags *diags;
    bool loaded;
};

/** @brief Load the first document of @p file. Errors go to @p diags. @returns 0 or VG_EINVAL. */
int vg_yaml_load(struct vg_yaml *y, const char *file, struct vg_diags *diags);
void vg_yaml_fini(struct vg_yaml *y);

yaml_node_t *vg_yaml_root(struct vg_yaml *y);
yaml_node_t *vg_yaml_node(struct vg_yaml *y, int id);

/** Add "file:line:col: msg" at @p node (its first character). Returns VG_EINVAL. */
int vg_yaml_error(struct vg_yaml *y, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Same, @p offset characters into a one-line scalar (quotes accounted for). */
int vg_yaml_error_at(struct vg_yaml *y, const yaml_node_t *node, int offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline bool vg_yaml_is_scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE; }
static inline bool vg_yaml_is_map(const yaml_node_t *n) { return n && n->type == YAML_MAPPING_NODE; }
static inline bool vg_yaml_is_seq(const yaml_node_t *n) { return n && n->type == YAML_SEQUENCE_NODE; }
static inline const char *vg_yaml_str(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }
static inline size_t vg_yaml_len(const yaml_node_t *n) { return n->data.scalar.length; }

/**
 * Check a mapping's keys: each must be a scalar in @p allowed (NULL-terminated)
 * and appear once. Reports every offender. @returns 0 if all are fine.
 */
int vg_yaml_check_keys(struct vg_yaml *y, yaml_node_t *map, const char *what,
                       const char *const *allowed);
/** The value for @p key in @p map, or NULL. */
yaml_node_t *vg_yaml_get(struct vg_yaml *y, yaml_node_t *map, const char *key);

/** A scalar string value (error if the node is not a scalar). */
int vg_yaml_string(struct vg_yaml *y, yaml_node_t *n, const char *what, const char **out);
/** A scalar number (error if not a finite number). */
int vg_yaml_number(struct vg_yaml *y, yaml_node_t *n, const char *what, double *out);
/** A duration scalar ("30s", "1h30m"). */
int vg_yaml_duration(struct vg_yaml *y, yaml_node_t *n, const char *what, vg_ts *out);
/** A boolean scalar (true/false). */
int vg_yaml_bool(struct vg_yaml *y, yaml_node_t *n, const char *what, bool *out);
/**
 * A string or a list of strings, copied into a NULL-terminated malloc'd array of
 * malloc'd strings (caller frees with vg_strv_free). @returns count or VG_EINVAL.
 */
int vg_yaml_strings(struct vg_yaml *y, yaml_node_t *n, const char *what, char ***out);
void vg_strv_free(char **v);

#endif
