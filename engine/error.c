/*
 * error.c: struct vg_error and the diagnostic list behind `vigil check`.
 * Owns: formatting of messages. Must never: print unless asked (vg_diags_print).
 */
#include "engine/error.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int vg_error_set(struct vg_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void vg_diags_init(struct vg_diags *d)
{
    memset(d, 0, sizeof *d);
}

void vg_diags_fini(struct vg_diags *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    memset(d, 0, sizeof *d);
}

int vg_diags_add(struct vg_diags *d, const char *file, int line, int col, const char *fmt, ...)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct vg_diag *v = realloc(d->v, cap * sizeof *v);
        if (!v)
            return VG_EINVAL;
        d->v = v;
        d->cap = cap;
    }
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    struct vg_diag *g = &d->v[d->n++];
    g->file = strdup(file ? file : "-");
    g->line = line;
    g->col = col;
    g->msg = strdup(buf);
    g->seq = d->n - 1;
    return VG_EINVAL;
}

static int diag_cmp(const void *a, const void *b)
{
    const struct vg_diag *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

void vg_diags_print(struct vg_diags *d, FILE *out)
{
    if (d->n > 1)
        qsort(d->v, d->n, sizeof *d->v, diag_cmp);
    for (size_t i = 0; i < d->n; i++)
        fprintf(out, "%s:%d:%d: %s\n", d->v[i].file, d->v[i].line, d->v[i].col, d->v[i].msg);
}

static const char *const level_names[VG_LEVEL_COUNT] = {"none", "blue", "yellow", "orange", "red"};

const char *vg_level_name(int level)
{
    return (level >= 0 && level < VG_LEVEL_COUNT) ? level_names[level] : "none";
}

int vg_level_parse(const char *s, size_t n)
{
    for (int i = 1; i < VG_LEVEL_COUNT; i++)
        if (strlen(level_names[i]) == n && memcmp(level_names[i], s, n) == 0)
            return i;
    return VG_LEVEL_NONE;
}
