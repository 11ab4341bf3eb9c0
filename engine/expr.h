/*
 * expr.h: rule expressions, compiled once to flat bytecode and evaluated
 * without allocation.
 * Owns: the expression grammar, its bytecode and its evaluator.
 * Must never: allocate or parse during vg_expr_eval().
 * DESIGN: recursive descent emits postfix instructions for a small stack
 * machine over doubles. Booleans are 1 and 0; a missing value is NaN, and any
 * comparison with NaN is false (so `x != 3` is false when x is missing too).
 * Types are checked at compile time: arithmetic and comparisons take numbers,
 * `and or not` take conditions, and a rule condition must be a condition.
 *
 * Grammar (lowest precedence first):
 *   expr    := or
 *   or      := and ('or' and)*
 *   and     := not ('and' not)*
 *   not     := 'not' not | cmp
 *   cmp     := sum (('<'|'<='|'>'|'>='|'=='|'!=') sum)?
 *   sum     := product (('+'|'-') product)*
 *   product := unary (('*'|'/') unary)*
 *   unary   := '-' unary | primary
 *   primary := NUMBER | NAME | NAME '.' NAME | NAME '(' args ')' | '(' expr ')'
 */
#ifndef VG_EXPR_H
#define VG_EXPR_H

#include "engine/vigil.h"

enum vg_op {
    VG_OP_CONST,   /* push k */
    VG_OP_VALUE,   /* push the sample's value */
    VG_OP_SLOT,    /* push env->slots[arg] (metrics, limits, window results) */
    VG_OP_ADD, VG_OP_SUB, VG_OP_MUL, VG_OP_DIV, VG_OP_NEG,
    VG_OP_LT, VG_OP_LE, VG_OP_GT, VG_OP_GE, VG_OP_EQ, VG_OP_NE,
    VG_OP_AND, VG_OP_OR, VG_OP_NOT,
};

struct vg_insn {
    uint32_t op;   /* enum vg_op */
    uint32_t arg;  /* slot index for VG_OP_SLOT */
    double k;      /* constant for VG_OP_CONST */
};

#define VG_EXPR_STACK 32  /* deepest stack an expression may need */
#define VG_EXPR_CODE_MAX 256

/** A compiled expression. Owns code and src (free with vg_expr_fini). */
struct vg_expr {
    struct vg_insn *code;
    uint32_t n;
    char *src;      /* the source text, for messages and `because` */
    bool is_cond;   /* result is a condition (true/false) */
};

/** Where a compile error is: byte offset into the source, and why. */
struct vg_expr_error {
    int offset;
    char msg[200];
};

#define VG_EXPR_ARGS_MAX 4

/** A function call as written: its name and the source text of each argument. */
struct vg_expr_call {
    const char *name;
    size_t n;
    int nargs;
    const char *arg[VG_EXPR_ARGS_MAX];   /* trimmed argument text */
    size_t arg_n[VG_EXPR_ARGS_MAX];
    int arg_off[VG_EXPR_ARGS_MAX];       /* byte offset of each argument in the expression */
};

/**
 * How names resolve. @p ident is called for every NAME (dotted names arrive
 * whole, "limit.high"); it returns 0 and fills *insn (VG_OP_VALUE or
 * VG_OP_SLOT with arg), or -1 with a message in msg. @p call is called for
 * NAME(args): it returns 0 and fills *insn (a number-valued VG_OP_SLOT), or
 * -1 with a message and *err_off, the byte offset the message is about. With
 * no resolver, only `value` is known and there are no functions.
 */
struct vg_expr_names {
    int (*ident)(void *ctx, const char *name, size_t n, struct vg_insn *insn, char *msg, size_t cap);
    int (*call)(void *ctx, const struct vg_expr_call *call, struct vg_insn *insn, char *msg,
                size_t cap, int *err_off);
    void *ctx;
};

/**
 * @brief Compile @p src. @p want_cond: the result must be a condition.
 * @returns 0, or VG_EINVAL with @p err filled. On failure @p out is untouched.
 */
int vg_expr_compile(const char *src, size_t n, const struct vg_expr_names *names, bool want_cond,
                    struct vg_expr *out, struct vg_expr_error *err);

void vg_expr_fini(struct vg_expr *e);

/** Values an expression reads besides the sample's value. Borrowed. */
struct vg_eval_env {
    double value;
    const double *slots;
};

/** @brief Evaluate. @thread any. Never allocates. */
double vg_expr_eval(const struct vg_expr *e, const struct vg_eval_env *env);

/** @brief A condition's truth: non-zero and not NaN. */
static inline bool vg_truthy(double v)
{
    return v == v && v != 0;
}

#endif
