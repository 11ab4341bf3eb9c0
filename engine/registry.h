/*
 * registry.h: the plants and regions a deployment watches.
 * Owns: plants (id, name, region, industries, contacts, declared points with
 * their own set points) and regions (code, name, contacts), and lookup by id.
 * Must never: change after load; workers read it from many threads without locks.
 */
#ifndef VG_REGISTRY_H
#define VG_REGISTRY_H

#include "engine/error.h"

struct vg_contacts {
    char **roles;     /* role names */
    char ***phones;   /* per role: NULL-terminated list of E.164 numbers */
    uint32_t n;
};

struct vg_limit {
    char *name;       /* "high", "high_high", … */
    double value;
};

struct vg_point {
    char *id;         /* device id, e.g. "DC-01" */
    char *kind;       /* optional, e.g. "dust_point" */
    char **metrics;   /* optional declared metrics (NULL-terminated) */
    struct vg_limit *limits;
    uint32_t n_limits;
};

struct vg_region {
    char *code;       /* GB/T 2260 county code, optionally a 9-digit township */
    char *name;
    struct vg_contacts contacts;
};

struct vg_plant {
    char *id;
    char *name;
    char *region;     /* code; region_ref is set when the region is declared */
    const struct vg_region *region_ref;
    char **industries;  /* NULL-terminated */
    struct vg_contacts contacts;
    struct vg_point *points;
    uint32_t n_points;
};

struct vg_registry {
    struct vg_region *regions;
    uint32_t n_regions;
    struct vg_plant *plants;
    uint32_t n_plants;
    uint32_t *index;    /* open addressing: plant index + 1, 0 = empty */
    uint32_t index_mask;
};

/** @brief Load a registry file; every problem goes to @p diags. @returns 0 or VG_EINVAL. */
int vg_registry_load(struct vg_registry **out, const char *file, struct vg_diags *diags);
/** @brief An empty registry (no file given). */
struct vg_registry *vg_registry_empty(void);
void vg_registry_destroy(struct vg_registry *reg);

/** @returns the plant with this id, or NULL. @thread any. */
const struct vg_plant *vg_registry_plant(const struct vg_registry *reg, const char *id, size_t n);
/** @returns the declared point of @p plant with this device id, or NULL. */
const struct vg_point *vg_plant_point(const struct vg_plant *plant, const char *id, size_t n);
/** @returns true if @p plant lists @p industry. */
bool vg_plant_has_industry(const struct vg_plant *plant, const char *industry);

#endif
