/*
 * registry.c: loads the registry YAML and indexes plants by id.
 * Owns: every registry allocation (freed by vg_registry_destroy).
 * Must never: be written after load.
 */
#include "engine/registry.h"
#include "engine/yamldoc.h"
#include "engine/hash.h"

#include <stdlib.h>
#include <string.h>

static void contacts_free(struct vg_contacts *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        free(c->roles[i]);
        vg_strv_free(c->phones[i]);
    }
    free(c->roles);
    free(c->phones);
}

void vg_registry_destroy(struct vg_registry *reg)
{
    if (!reg)
        return;
    for (uint32_t i = 0; i < reg->n_regions; i++) {
        free(reg->regions[i].code);
        free(reg->regions[i].name);
        contacts_free(&reg->regions[i].contacts);
    }
    for (uint32_t i = 0; i < reg->n_plants; i++) {
        struct vg_plant *p = &reg->plants[i];
        free(p->id);
        free(p->name);
        free(p->region);
        vg_strv_free(p->industries);
        contacts_free(&p->contacts);
        for (uint32_t j = 0; j < p->n_points; j++) {
            free(p->points[j].id);
            free(p->points[j].kind);
            vg_strv_free(p->points[j].metrics);
            for (uint32_t k = 0; k < p->points[j].n_limits; k++)
                free(p->points[j].limits[k].name);
            free(p->points[j].limits);
        }
        free(p->points);
    }
    free(reg->regions);
    free(reg->plants);
    free(reg->index);
    free(reg);
}

struct vg_registry *vg_registry_empty(void)
{
    return calloc(1, sizeof(struct vg_registry));
}

static size_t seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static int load_contacts(struct vg_yaml *y, yaml_node_t *n, struct vg_contacts *c)
{
    if (!n)
        return 0;
    if (!vg_yaml_is_map(n))
        return vg_yaml_error(y, n, "contacts must map a role to phone numbers, e.g. "
                             "{ safety_officer: [\"+8613900000001\"] }");
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    c->roles = calloc(cnt, sizeof *c->roles);
    c->phones = calloc(cnt, sizeof *c->phones);
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
        yaml_node_t *k = vg_yaml_node(y, p->key), *v = vg_yaml_node(y, p->value);
        if (!vg_yaml_is_scalar(k)) {
            rc = vg_yaml_error(y, k, "a contact role must be a name");
            continue;
        }
        char **phones = NULL;
        if (vg_yaml_strings(y, v, "phone numbers", &phones) < 0) {
            rc = VG_EINVAL;
            continue;
        }
        for (size_t j = 0; phones[j]; j++) {
            const char *s = phones[j];
            bool ok = s[0] == '+' && strlen(s) >= 8 && strlen(s) <= 16;
            for (const char *q = s + 1; ok && *q; q++)
                ok = *q >= '0' && *q <= '9';
            /* point at the number itself, not at the list holding it */
            yaml_node_t *at = vg_yaml_is_seq(v) ? vg_yaml_node(y, v->data.sequence.items.start[j]) : v;
            if (!ok)
                rc = vg_yaml_error(y, at, "phone number '%s' must be E.164, e.g. +8613900000001", s);
        }
        c->roles[c->n] = strdup(vg_yaml_str(k));
        c->phones[c->n] = phones;
        c->n++;
    }
    return rc;
}

static const char *const region_keys[] = {"code", "name", "contacts", NULL};
static const char *const plant_keys[] = {"id", "name", "region", "industries", "contacts", "points", NULL};
static const char *const point_keys[] = {"id", "kind", "metric", "metrics", "limits", NULL};

static int need(struct vg_yaml *y, yaml_node_t *map, const char *key, const char *what,
                yaml_node_t **out)
{
    *out = vg_yaml_get(y, map, key);
    if (!*out)
        return vg_yaml_error(y, map, "%s needs '%s'", what, key);
    return 0;
}

static int load_point(struct vg_yaml *y, yaml_node_t *n, struct vg_point *pt)
{
    int rc = 0;
    if (!vg_yaml_is_map(n))
        return vg_yaml_error(y, n, "a point must be a mapping, e.g. { id: DC-01, limits: { high: 70 } }");
    if (vg_yaml_check_keys(y, n, "point", point_keys) < 0)
        rc = VG_EINVAL;
    yaml_node_t *v;
    const char *s;
    if (need(y, n, "id", "a point", &v) == 0 && vg_yaml_string(y, v, "point id", &s) == 0)
        pt->id = strdup(s);
    else
        rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, n, "kind")) && vg_yaml_string(y, v, "point kind", &s) == 0)
        pt->kind = strdup(s);
    if ((v = vg_yaml_get(y, n, "metric")) || (v = vg_yaml_get(y, n, "metrics")))
        if (vg_yaml_strings(y, v, "point metrics", &pt->metrics) < 0)
            rc = VG_EINVAL;
    if ((v = vg_yaml_get(y, n, "limits"))) {
        if (!vg_yaml_is_map(v))
            return vg_yaml_error(y, v, "limits must map names to numbers, e.g. { high: 70, high_high: 90 }");
        size_t cnt = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
        pt->limits = calloc(cnt, sizeof *pt->limits);
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
            yaml_node_t *k = vg_yaml_node(y, p->key);
            double d;
            if (!vg_yaml_is_scalar(k) || vg_yaml_number(y, vg_yaml_node(y, p->value), "a limit", &d) < 0) {
                rc = VG_EINVAL;
                continue;
            }
            pt->limits[pt->n_limits].name = strdup(vg_yaml_str(k));
            pt->limits[pt->n_limits].value = d;
            pt->n_limits++;
        }
    }
    return rc;
}

static int index_plants(struct vg_registry *reg, struct vg_yaml *y, yaml_node_t **plant_nodes)
{
    uint32_t cap = 16;
    while (cap < reg->n_plants * 2)
        cap *= 2;
    reg->index = calloc(cap, sizeof *reg->index);
    reg->index_mask = cap - 1;
    int rc = 0;
    for (uint32_t i = 0; i < reg->n_plants; i++) {
        const char *id = reg->plants[i].id;
        if (!id)
            continue;
        size_t n = strlen(id);
        uint32_t h = (uint32_t)vg_hash64(id, n, 0) & reg->index_mask;
        for (;; h = (h + 1) & reg->index_mask) {
            uint32_t e = reg->index[h];
            if (e == 0) {
                reg->index[h] = i + 1;
                break;
            }
            if (strcmp(reg->plants[e - 1].id, id) == 0) {
                rc = vg_yaml_error(y, plant_nodes[i], "duplicate plant id '%s'", id);
                break;
            }
        }
    }
    return rc;
}

int vg_registry_load(struct vg_registry **out, const char *file, struct vg_diags *diags)
{
    struct vg_yaml y;
    *out = NULL;
    if (vg_yaml_load(&y, file, diags) < 0) {
        vg_yaml_fini(&y);
        return VG_EINVAL;
    }
    struct vg_registry *reg = calloc(1, sizeof *reg);
    yaml_node_t **plant_nodes = NULL;
    int rc = 0;
    yaml_node_t *root = vg_yaml_root(&y), *v;
    static const char *const top_keys[] = {"version", "regions", "plants", NULL};
    if (!vg_yaml_is_map(root)) {
        rc = vg_yaml_error(&y, root, "a registry is a mapping with version, regions and plants");
        goto done;
    }
    if (vg_yaml_check_keys(&y, root, "registry", top_keys) < 0)
        rc = VG_EINVAL;
    if (!(v = vg_yaml_get(&y, root, "version")) || !vg_yaml_is_scalar(v) || strcmp(vg_yaml_str(v), "1"))
        rc = vg_yaml_error(&y, v ? v : root, "registry needs 'version: 1'");
    if ((v = vg_yaml_get(&y, root, "regions"))) {
        if (!vg_yaml_is_seq(v)) {
            rc = vg_yaml_error(&y, v, "regions must be a list");
        } else {
            reg->regions = calloc(seq_len(v) + 1, sizeof *reg->regions);
            for (size_t i = 0; i < seq_len(v); i++) {
                yaml_node_t *r = vg_yaml_node(&y, v->data.sequence.items.start[i]), *f;
                struct vg_region *rg = &reg->regions[reg->n_regions];
                const char *s;
                if (!vg_yaml_is_map(r)) {
                    rc = vg_yaml_error(&y, r, "a region must be a mapping with code and name");
                    continue;
                }
                if (vg_yaml_check_keys(&y, r, "region", region_keys) < 0)
                    rc = VG_EINVAL;
                if (need(&y, r, "code", "a region", &f) < 0 || vg_yaml_string(&y, f, "region code", &s) < 0) {
                    rc = VG_EINVAL;
                    continue;
                }
                rg->code = strdup(s);
                if ((f = vg_yaml_get(&y, r, "name")) && vg_yaml_string(&y, f, "region name", &s) == 0)
                    rg->name = strdup(s);
                if (load_contacts(&y, vg_yaml_get(&y, r, "contacts"), &rg->contacts) < 0)
                    rc = VG_EINVAL;
                for (uint32_t j = 0; j < reg->n_regions; j++)
                    if (!strcmp(reg->regions[j].code, rg->code))
                        rc = vg_yaml_error(&y, r, "duplicate region code '%s'", rg->code);
                reg->n_regions++;
            }
        }
    }
    if ((v = vg_yaml_get(&y, root, "plants"))) {
        if (!vg_yaml_is_seq(v)) {
            rc = vg_yaml_error(&y, v, "plants must be a list");
            goto done;
        }
        size_t np = seq_len(v);
        reg->plants = calloc(np + 1, sizeof *reg->plants);
        plant_nodes = calloc(np + 1, sizeof *plant_nodes);
        for (size_t i = 0; i < np; i++) {
            yaml_node_t *pn = vg_yaml_node(&y, v->data.sequence.items.start[i]), *f;
            struct vg_plant *p = &reg->plants[reg->n_plants];
            const char *s;
            if (!vg_yaml_is_map(pn)) {
                rc = vg_yaml_error(&y, pn, "a plant must be a mapping with id, name and region");
                continue;
            }
            plant_nodes[reg->n_plants] = pn;
            reg->n_plants++;
            if (vg_yaml_check_keys(&y, pn, "plant", plant_keys) < 0)
                rc = VG_EINVAL;
            if (need(&y, pn, "id", "a plant", &f) < 0 || vg_yaml_string(&y, f, "plant id", &s) < 0) {
                rc = VG_EINVAL;
                continue;
            }
            p->id = strdup(s);
            if (strlen(s) == 0 || strlen(s) > 64)
                rc = vg_yaml_error(&y, f, "plant id must be 1 to 64 characters");
            if ((f = vg_yaml_get(&y, pn, "name")) && vg_yaml_string(&y, f, "plant name", &s) == 0)
                p->name = strdup(s);
            if ((f = vg_yaml_get(&y, pn, "region")) && vg_yaml_string(&y, f, "plant region", &s) == 0) {
                p->region = strdup(s);
                for (uint32_t j = 0; j < reg->n_regions; j++)
                    if (!strcmp(reg->regions[j].code, s))
                        p->region_ref = &reg->regions[j];
            }
            if ((f = vg_yaml_get(&y, pn, "industries")) &&
                vg_yaml_strings(&y, f, "industries", &p->industries) < 0)
                rc = VG_EINVAL;
            if (load_contacts(&y, vg_yaml_get(&y, pn, "contacts"), &p->contacts) < 0)
                rc = VG_EINVAL;
            if ((f = vg_yaml_get(&y, pn, "points"))) {
                if (!vg_yaml_is_seq(f)) {
                    rc = vg_yaml_error(&y, f, "points must be a list");
                    continue;
                }
                p->points = calloc(seq_len(f) + 1, sizeof *p->points);
                for (size_t j = 0; j < seq_len(f); j++) {
                    yaml_node_t *ptn = vg_yaml_node(&y, f->data.sequence.items.start[j]);
                    if (load_point(&y, ptn, &p->points[p->n_points]) < 0)
                        rc = VG_EINVAL;
                    for (uint32_t k = 0; k < p->n_points; k++)
                        if (p->points[k].id && p->points[p->n_points].id &&
                            !strcmp(p->points[k].id, p->points[p->n_points].id))
                            rc = vg_yaml_error(&y, ptn, "duplicate point id '%s' in plant %s",
                                               p->points[k].id, p->id);
                    p->n_points++;
                }
            }
        }
    }
    if (index_plants(reg, &y, plant_nodes) < 0)
        rc = VG_EINVAL;
done:
    free(plant_nodes);
    vg_yaml_fini(&y);
    if (rc < 0) {
        vg_registry_destroy(reg);
        return VG_EINVAL;
    }
    *out = reg;
    return VG_OK;
}

const struct vg_plant *vg_registry_plant(const struct vg_registry *reg, const char *id, size_t n)
{
    if (!reg->index)
        return NULL;
    uint32_t h = (uint32_t)vg_hash64(id, n, 0) & reg->index_mask;
    for (;; h = (h + 1) & reg->index_mask) {
        uint32_t e = reg->index[h];
        if (e == 0)
            return NULL;
        const struct vg_plant *p = &reg->plants[e - 1];
        if (strlen(p->id) == n && memcmp(p->id, id, n) == 0)
            return p;
    }
}

const struct vg_point *vg_plant_point(const struct vg_plant *plant, const char *id, size_t n)
{
    for (uint32_t i = 0; i < plant->n_points; i++)
        if (plant->points[i].id && strlen(plant->points[i].id) == n && !memcmp(plant->points[i].id, id, n))
            return &plant->points[i];
    return NULL;
}

bool vg_plant_has_industry(const struct vg_plant *plant, const char *industry)
{
    for (char **p = plant->industries; p && *p; p++)
        if (!strcmp(*p, industry))
            return true;
    return false;
}
