/*
 * error.h: errors as values.
 * Owns: struct vg_error (one error, caller-owned) and struct vg_diags (a list of
 * positioned diagnostics for `vigil check`). Must never: print or exit; callers
 * decide where messages go.
 */
#ifndef VG_ERROR_H
#define VG_ERROR_H

#include <stdio.h>
#include "engine/vigil.h"

/** One error, filled by a failing API call. Caller-owned, no heap. */
struct vg_error {
    int code;        /* VG_E* */
    char msg[512];   /* a sentence a user can act on */
};

/** Fill @p err (may be NULL) and return @p code. */
int vg_error_set(struct vg_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** A diagnostic at a position in a file (line and col are 1-based; 0 = unknown). */
struct vg_diag {
    char *file;
    int line, col;
    char *msg;
    size_t seq;      /* insertion order, keeps sorting stable */
};

/** A growable list of diagnostics. Owns its entries' strings. */
struct vg_diags {
    struct vg_diag *v;
    size_t n, cap;
};

void vg_diags_init(struct vg_diags *d);
void vg_diags_fini(struct vg_diags *d);
/** Append "file:line:col: msg". Returns VG_EINVAL (so callers can `return vg_diags_add(...)`). */
int vg_diags_add(struct vg_diags *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/** Sort by file, line, col (stable) and print one per line to @p out. */
void vg_diags_print(struct vg_diags *d, FILE *out);

#endif
