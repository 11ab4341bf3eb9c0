/*
 * yamldoc.c: libyaml documents with file:line:col diagnostics.
 * Owns: the yaml_document_t. Must never: print; diagnostics go to the list.
 */
#include "engine/yamldoc.h"
#include "engine/clock.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int vg_yaml_load(struct vg_yaml *y, const char *file, struct vg_diags *diags)
{
    memset(y, 0, sizeof *y);
    y->file = file;
    y->diags = diags;
    FILE *f = fopen(file, "rb");
    if (!f)
        return vg_diags_add(diags, file, 0, 0, "cannot open: %s", strerror(errno));
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rc = VG_OK;
    if (!yaml_parser_load(&p, &y->doc)) {
        rc = vg_diags_add(diags, file, (int)p.problem_mark.line + 1, (int)p.problem_mark.column + 1,
                          "YAML: %s%s%s", p.problem ? p.problem : "syntax error",
                          p.context ? " " : "", p.context ? p.context : "");
    } else {
        y->loaded = true;
        if (!yaml_document_get_root_node(&y->doc))
            rc = vg_diags_add(diags, file, 1, 1, "empty file");
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

void vg_yaml_fini(struct vg_yaml *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = false;
}

yaml_node_t *vg_yaml_root(struct vg_yaml *y)
{
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

yaml_node_t *vg_yaml_node(struct vg_yaml *y, int id)
{
    return yaml_document_get_node(&y->doc, id);
}

static int verror(struct vg_yaml *y, const yaml_node_t *node, int offset, const char *fmt, va_list ap)
{
    char buf[900];
    vsnprintf(buf, sizeof buf, fmt, ap);
    int line = node ? (int)node->start_mark.line + 1 : 0;
    int col = node ? (int)node->start_mark.column + 1 : 0;
    if (node && offset > 0 && node->type == YAML_SCALAR_NODE) {
        bool quoted = node->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                      node->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        /* count characters, not bytes (libyaml columns count characters) */
        const unsigned char *s = node->data.scalar.value;
        int chars = 0, total = 0;
        for (size_t i = 0; i < node->data.scalar.length; i++) {
            bool lead = (s[i] & 0xC0) != 0x80;
            total += lead;
            chars += lead && (int)i < offset;
        }
        /* The offset maps to a column only where the value is the source text
         * verbatim: one line, no folding, no escapes (its source width is the
         * value's, plus the quotes). Otherwise stay at the scalar's start. */
        int width = (int)(node->end_mark.column - node->start_mark.column);
        bool verbatim = node->start_mark.line == node->end_mark.line &&
                        (quoted || node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) &&
                        width == total + (quoted ? 2 : 0);
        if (verbatim)
            col += chars + (quoted ? 1 : 0);
    }
    return vg_diags_add(y->diags, y->file, line, col, "%s", buf);
}

int vg_yaml_error(struct vg_yaml *y, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(y, node, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int vg_yaml_error_at(struct vg_yaml *y, const yaml_node_t *node, int offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = verror(y, node, offset, fmt, ap);
    va_end(ap);
    return rc;
}

int vg_yaml_check_keys(struct vg_yaml *y, yaml_node_t *map, const char *what,
                       const char *const *allowed)
{
    int rc = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = vg_yaml_node(y, p->key);
        if (!vg_yaml_is_scalar(k)) {
            rc = vg_yaml_error(y, k, "%s keys must be plain names", what);
            continue;
        }
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, vg_yaml_str(k)) == 0;
        if (!ok) {
            char list[400];
            size_t o = 0;
            for (const char *const *a = allowed; *a && o < sizeof list; a++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", a == allowed ? "" : ", ", *a);
            rc = vg_yaml_error(y, k, "unknown key '%s' in %s (expected one of: %s)", vg_yaml_str(k),
                               what, list);
            continue;
        }
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *k2 = vg_yaml_node(y, q->key);
            if (vg_yaml_is_scalar(k2) && strcmp(vg_yaml_str(k2), vg_yaml_str(k)) == 0) {
                rc = vg_yaml_error(y, k, "duplicate key '%s' in %s (first at line %d)",
                                   vg_yaml_str(k), what, (int)k2->start_mark.line + 1);
                break;
            }
        }
    }
    return rc ? VG_EINVAL : 0;
}

yaml_node_t *vg_yaml_get(struct vg_yaml *y, yaml_node_t *map, const char *key)
{
    if (!vg_yaml_is_map(map))
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = vg_yaml_node(y, p->key);
        if (vg_yaml_is_scalar(k) && strcmp(vg_yaml_str(k), key) == 0)
            return vg_yaml_node(y, p->value);
    }
    return NULL;
}

int vg_yaml_string(struct vg_yaml *y, yaml_node_t *n, const char *what, const char **out)
{
    if (!vg_yaml_is_scalar(n))
        return vg_yaml_error(y, n, "%s must be a string", what);
    *out = vg_yaml_str(n);
    return 0;
}

int vg_yaml_number(struct vg_yaml *y, yaml_node_t *n, const char *what, double *out)
{
    if (!vg_yaml_is_scalar(n))
        return vg_yaml_error(y, n, "%s must be a number", what);
    const char *s = vg_yaml_str(n);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v))
        return vg_yaml_error(y, n, "%s must be a number, not '%s'", what, s);
    *out = v;
    return 0;
}

int vg_yaml_duration(struct vg_yaml *y, yaml_node_t *n, const char *what, vg_ts *out)
{
    if (!vg_yaml_is_scalar(n))
        return vg_yaml_error(y, n, "%s must be a duration such as 30s", what);
    const char *why = NULL;
    if (vg_duration_parse(vg_yaml_str(n), vg_yaml_len(n), out, &why) < 0)
        return vg_yaml_error(y, n, "bad duration '%s' for %s: %s", vg_yaml_str(n), what, why);
    return 0;
}

int vg_yaml_bool(struct vg_yaml *y, yaml_node_t *n, const char *what, bool *out)
{
    if (vg_yaml_is_scalar(n)) {
        const char *s = vg_yaml_str(n);
        if (!strcmp(s, "true") || !strcmp(s, "yes")) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, "false") || !strcmp(s, "no")) {
            *out = false;
            return 0;
        }
    }
    return vg_yaml_error(y, n, "%s must be true or false", what);
}

int vg_yaml_strings(struct vg_yaml *y, yaml_node_t *n, const char *what, char ***out)
{
    size_t cnt = vg_yaml_is_seq(n) ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 1;
    if (!vg_yaml_is_seq(n) && !vg_yaml_is_scalar(n))
        return vg_yaml_error(y, n, "%s must be a string or a list of strings", what);
    char **v = calloc(cnt + 1, sizeof *v);
    if (!v)
        return VG_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *e = vg_yaml_is_seq(n) ? vg_yaml_node(y, n->data.sequence.items.start[i]) : n;
        if (!vg_yaml_is_scalar(e)) {
            vg_strv_free(v);
            return vg_yaml_error(y, e, "%s must be a string or a list of strings", what);
        }
        v[i] = strdup(vg_yaml_str(e));
    }
    *out = v;
    return (int)cnt;
}

void vg_strv_free(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}
