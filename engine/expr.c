/*
 * expr.c: expression compiler and evaluator. See expr.h for the grammar.
 * Owns: bytecode emission and the stack machine. Must never: allocate in eval.
 */
#include "engine/expr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>

struct compiler {
    const char *s;
    size_t n, pos;
    const struct vg_expr_names *names;
    struct vg_insn code[VG_EXPR_CODE_MAX];
    uint32_t ncode;
    int depth, max_depth;
    int nest;       /* open '(', '-' and 'not': bounds the recursion */
    struct vg_expr_error *err;
    bool failed;
};

enum vtype { T_NUM, T_COND };

/* Deepest nesting of '(', unary '-' and 'not' (the parser recurses on each). */
#define NEST_MAX 64

static int fail(struct compiler *c, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct compiler *c, size_t at, const char *fmt, ...)
{
    if (!c->failed) {
        c->failed = true;
        c->err->offset = (int)at;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err->msg, sizeof c->err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Bytes of the character at @p p (a whole UTF-8 sequence), for messages. */
static int char_len(const char *p, size_t left)
{
    unsigned char c = (unsigned char)*p;
    int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return (size_t)n <= left ? n : (int)left;
}

static void skip_ws(struct compiler *c)
{
    while (c->pos < c->n && (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n' ||
                             c->s[c->pos] == '\r'))
        c->pos++;
}

static bool is_name_start(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool is_name_char(char ch)
{
    return is_name_start(ch) || (ch >= '0' && ch <= '9');
}

/* The keyword at pos, if any, followed by a non-name char. */
static bool keyword(struct compiler *c, const char *kw)
{
    size_t k = strlen(kw);
    if (c->pos + k <= c->n && memcmp(c->s + c->pos, kw, k) == 0 &&
        (c->pos + k == c->n || !is_name_char(c->s[c->pos + k]))) {
        c->pos += k;
        return true;
    }
    return false;
}

static bool punct(struct compiler *c, const char *p)
{
    size_t k = strlen(p);
    if (c->pos + k <= c->n && memcmp(c->s + c->pos, p, k) == 0) {
        c->pos += k;
        return true;
    }
    return false;
}

static int emit(struct compiler *c, uint32_t op, uint32_t arg, double k, int stack_delta)
{
    if (c->ncode >= VG_EXPR_CODE_MAX)
        return fail(c, c->pos, "expression too long (at most %d operations)", VG_EXPR_CODE_MAX);
    c->code[c->ncode++] = (struct vg_insn){op, arg, k};
    c->depth += stack_delta;
    if (c->depth > c->max_depth)
        c->max_depth = c->depth;
    if (c->max_depth > VG_EXPR_STACK)
        return fail(c, c->pos, "expression nested too deeply");
    return 0;
}

static int parse_or(struct compiler *c, enum vtype *t);
static int parse_call(struct compiler *c, const char *name, size_t len, size_t at, enum vtype *t);

/* Enter one level of nesting; fails once the parser would recurse too deep. */
static int nest_enter(struct compiler *c, size_t at)
{
    if (++c->nest > NEST_MAX)
        return fail(c, at, "expression nested too deeply (at most %d levels)", NEST_MAX);
    return 0;
}

static int want(struct compiler *c, enum vtype got, enum vtype need, size_t at, const char *what)
{
    if (got == need)
        return 0;
    if (need == T_NUM)
        return fail(c, at, "%s needs a number, but this is a condition", what);
    return fail(c, at, "%s needs a condition (e.g. value > 25), but this is a number", what);
}

static int parse_primary(struct compiler *c, enum vtype *t)
{
    skip_ws(c);
    size_t at = c->pos;
    if (c->pos >= c->n)
        return fail(c, at, "expected a number, a name or '(' but the expression ended");
    char ch = c->s[c->pos];
    if (ch == '(') {
        c->pos++;
        if (nest_enter(c, at) < 0 || parse_or(c, t) < 0)
            return -1;
        skip_ws(c);
        if (!punct(c, ")"))
            return fail(c, c->pos, "missing ')' to close the '(' opened %zu character%s earlier", c->pos - at, c->pos - at == 1 ? "" : "s");
        c->nest--;
        return 0;
    }
    if ((ch >= '0' && ch <= '9') || ch == '.') {
        char buf[64];
        size_t k = 0;
        while (c->pos < c->n && k < sizeof buf - 1 &&
               ((c->s[c->pos] >= '0' && c->s[c->pos] <= '9') || c->s[c->pos] == '.' ||
                c->s[c->pos] == 'e' || c->s[c->pos] == 'E' ||
                ((c->s[c->pos] == '-' || c->s[c->pos] == '+') && k > 0 &&
                 (buf[k - 1] == 'e' || buf[k - 1] == 'E'))))
            buf[k++] = c->s[c->pos++];
        buf[k] = 0;
        char *end;
        double v = strtod(buf, &end);
        if (*end || !isfinite(v) || buf[0] == '.')
            return fail(c, at, "bad number '%s'", buf);
        if (c->pos < c->n && is_name_start(c->s[c->pos]))
            return fail(c, c->pos, "unexpected '%c' after the number (durations only go in window "
                        "functions)", c->s[c->pos]);
        *t = T_NUM;
        return emit(c, VG_OP_CONST, 0, v, 1);
    }
    if (is_name_start(ch)) {
        size_t start = c->pos;
        while (c->pos < c->n && (is_name_char(c->s[c->pos]) ||
                                 (c->s[c->pos] == '.' && c->pos + 1 < c->n &&
                                  is_name_start(c->s[c->pos + 1]))))
            c->pos++;
        size_t len = c->pos - start;
        const char *name = c->s + start;
        static const char *const reserved[] = {"and", "or", "not"};
        for (size_t i = 0; i < VG_ARRAY_LEN(reserved); i++)
            if (len == strlen(reserved[i]) && memcmp(name, reserved[i], len) == 0)
                return fail(c, at, "expected a value before '%s'", reserved[i]);
        skip_ws(c);
        if (c->pos < c->n && c->s[c->pos] == '(') {
            if (!c->names || !c->names->call)
                return fail(c, at, "unknown function '%.*s'", (int)len, name);
            return parse_call(c, name, len, at, t);
        }
        struct vg_insn insn = {VG_OP_VALUE, 0, 0};
        char msg[160] = "";
        if (c->names && c->names->ident) {
            if (c->names->ident(c->names->ctx, name, len, &insn, msg, sizeof msg) < 0)
                return fail(c, at, "%s", msg);
        } else if (!(len == 5 && memcmp(name, "value", 5) == 0)) {
            return fail(c, at, "unknown name '%.*s' (use value, the rule's metric)", (int)len, name);
        }
        *t = T_NUM;
        return emit(c, insn.op, insn.arg, 0, 1);
    }
    if (ch == '=' )
        return fail(c, at, "unexpected '=' (compare with ==)");
    return fail(c, at, "unexpected '%.*s'", char_len(c->s + at, c->n - at), c->s + at);
}

/*
 * NAME '(' arg {',' arg} ')': split the arguments at top-level commas (they
 * are interpreted by the resolver: metric names, durations, conditions).
 */
static int parse_call(struct compiler *c, const char *name, size_t len, size_t at, enum vtype *t)
{
    struct vg_expr_call call = {name, len, 0, {0}, {0}, {0}};
    size_t open = c->pos++;
    int depth = 0;
    size_t arg_start = c->pos;
    for (;; c->pos++) {
        if (c->pos >= c->n)
            return fail(c, open, "missing ')' to close the call of '%.*s'", (int)len, name);
        char ch = c->s[c->pos];
        if (ch == '(') {
            depth++;
            continue;
        }
        if ((ch == ',' || ch == ')') && depth == 0) {
            size_t a = arg_start, b = c->pos;
            while (a < b && (c->s[a] == ' ' || c->s[a] == '\t'))
                a++;
            while (b > a && (c->s[b - 1] == ' ' || c->s[b - 1] == '\t'))
                b--;
            if (a == b && !(ch == ')' && call.nargs == 0))
                return fail(c, a, "missing argument in the call of '%.*s'", (int)len, name);
            if (a < b) {
                if (call.nargs == VG_EXPR_ARGS_MAX)
                    return fail(c, a, "too many arguments for '%.*s'", (int)len, name);
                call.arg[call.nargs] = c->s + a;
                call.arg_n[call.nargs] = b - a;
                call.arg_off[call.nargs] = (int)a;
                call.nargs++;
            }
            arg_start = c->pos + 1;
            if (ch == ')') {
                c->pos++;
                break;
            }
            continue;
        }
        if (ch == ')')
            depth--;
    }
    struct vg_insn insn = {VG_OP_SLOT, 0, 0};
    char msg[200] = "";
    int err_off = (int)at;
    if (c->names->call(c->names->ctx, &call, &insn, msg, sizeof msg, &err_off) < 0)
        return fail(c, (size_t)err_off, "%s", msg);
    *t = T_NUM;
    return emit(c, insn.op, insn.arg, 0, 1);
}

static int parse_unary(struct compiler *c, enum vtype *t)
{
    skip_ws(c);
    size_t at = c->pos;
    if (punct(c, "-")) {
        if (nest_enter(c, at) < 0 || parse_unary(c, t) < 0 || want(c, *t, T_NUM, at, "'-'") < 0)
            return -1;
        c->nest--;
        /* fold a negated constant */
        if (c->ncode && c->code[c->ncode - 1].op == VG_OP_CONST) {
            c->code[c->ncode - 1].k = -c->code[c->ncode - 1].k;
            return 0;
        }
        return emit(c, VG_OP_NEG, 0, 0, 0);
    }
    return parse_primary(c, t);
}

static int parse_product(struct compiler *c, enum vtype *t)
{
    skip_ws(c);
    size_t at = c->pos;
    if (parse_unary(c, t) < 0)
        return -1;
    for (;;) {
        skip_ws(c);
        uint32_t op;
        if (punct(c, "*"))
            op = VG_OP_MUL;
        else if (punct(c, "/"))
            op = VG_OP_DIV;
        else
            return 0;
        const char *what = op == VG_OP_MUL ? "'*'" : "'/'";
        enum vtype r;
        if (want(c, *t, T_NUM, at, what) < 0)
            return -1;
        skip_ws(c);
        size_t rat = c->pos; /* the right operand, for its type error */
        if (parse_unary(c, &r) < 0 || want(c, r, T_NUM, rat, what) < 0 || emit(c, op, 0, 0, -1) < 0)
            return -1;
    }
}

static int parse_sum(struct compiler *c, enum vtype *t)
{
    skip_ws(c);
    size_t at = c->pos;
    if (parse_product(c, t) < 0)
        return -1;
    for (;;) {
        skip_ws(c);
        uint32_t op;
        if (punct(c, "+"))
            op = VG_OP_ADD;
        else if (punct(c, "-"))
            op = VG_OP_SUB;
        else
            return 0;
        const char *what = op == VG_OP_ADD ? "'+'" : "'-'";
        enum vtype r;
        if (want(c, *t, T_NUM, at, what) < 0)
            return -1;
        skip_ws(c);
        size_t rat = c->pos; /* the right operand, for its type error */
        if (parse_product(c, &r) < 0 || want(c, r, T_NUM, rat, what) < 0 || emit(c, op, 0, 0, -1) < 0)
            return -1;
    }
}

static int cmp_op(struct compiler *c, uint32_t *op)
{
    static const struct { const char *p; uint32_t op; } ops[] = {
        {"<=", VG_OP_LE}, {">=", VG_OP_GE}, {"==", VG_OP_EQ}, {"!=", VG_OP_NE},
        {"<", VG_OP_LT}, {">", VG_OP_GT}};
    for (size_t i = 0; i < VG_ARRAY_LEN(ops); i++)
        if (punct(c, ops[i].p)) {
            *op = ops[i].op;
            return 1;
        }
    return 0;
}

static int parse_cmp(struct compiler *c, enum vtype *t)
{
    skip_ws(c);
    size_t at = c->pos;
    if (parse_sum(c, t) < 0)
        return -1;
    skip_ws(c);
    uint32_t op;
    if (c->pos < c->n && c->s[c->pos] == '=' && (c->pos + 1 >= c->n || c->s[c->pos + 1] != '='))
        return fail(c, c->pos, "unexpected '=' (compare with ==)");
    if (!cmp_op(c, &op))
        return 0;
    enum vtype r;
    if (want(c, *t, T_NUM, at, "a comparison") < 0)
        return -1;
    skip_ws(c);
    size_t rat = c->pos; /* the right operand, for its type error */
    if (parse_sum(c, &r) < 0 || want(c, r, T_NUM, rat, "a comparison") < 0 ||
        emit(c, op, 0, 0, -1) < 0)
        return -1;
    skip_ws(c);
    size_t opat = c->pos;
    if (cmp_op(c, &op))
        return fail(c, opat, "comparisons do not chain; write a < x and x < b");
    *t = T_COND;
    return 0;
}

static int parse_not(struct compiler *c, enum vtype *t)
{
    skip_ws(c);
    size_t at = c->pos;
    if (keyword(c, "not")) {
        if (nest_enter(c, at) < 0 || parse_not(c, t) < 0 || want(c, *t, T_COND, at, "'not'") < 0)
            return -1;
        c->nest--;
        return emit(c, VG_OP_NOT, 0, 0, 0);
    }
    return parse_cmp(c, t);
}

static int parse_and(struct compiler *c, enum vtype *t)
{
    skip_ws(c);
    size_t at = c->pos;
    if (parse_not(c, t) < 0)
        return -1;
    for (;;) {
        skip_ws(c);
        if (!keyword(c, "and"))
            return 0;
        enum vtype r;
        if (want(c, *t, T_COND, at, "'and'") < 0)
            return -1;
        skip_ws(c);
        size_t rat = c->pos; /* the right operand, for its type error */
        if (parse_not(c, &r) < 0 || want(c, r, T_COND, rat, "'and'") < 0 ||
            emit(c, VG_OP_AND, 0, 0, -1) < 0)
            return -1;
    }
}

static int parse_or(struct compiler *c, enum vtype *t)
{
    skip_ws(c);
    size_t at = c->pos;
    if (parse_and(c, t) < 0)
        return -1;
    for (;;) {
        skip_ws(c);
        if (!keyword(c, "or"))
            return 0;
        enum vtype r;
        if (want(c, *t, T_COND, at, "'or'") < 0)
            return -1;
        skip_ws(c);
        size_t rat = c->pos; /* the right operand, for its type error */
        if (parse_and(c, &r) < 0 || want(c, r, T_COND, rat, "'or'") < 0 ||
            emit(c, VG_OP_OR, 0, 0, -1) < 0)
            return -1;
    }
}

int vg_expr_compile(const char *src, size_t n, const struct vg_expr_names *names, bool want_cond,
                    struct vg_expr *out, struct vg_expr_error *err)
{
    struct compiler *c = calloc(1, sizeof *c);
    if (!c) {
        err->offset = 0;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return VG_ENOMEM;
    }
    c->s = src;
    c->n = n;
    c->names = names;
    c->err = err;
    enum vtype t = T_NUM;
    int rc = VG_EINVAL;
    skip_ws(c);
    if (c->pos == c->n) {
        fail(c, 0, "empty expression");
        goto done;
    }
    if (parse_or(c, &t) < 0)
        goto done;
    skip_ws(c);
    if (c->pos != c->n) {
        fail(c, c->pos, "unexpected '%.*s' (an operator or the end was expected)",
             char_len(c->s + c->pos, c->n - c->pos), c->s + c->pos);
        goto done;
    }
    if (want_cond && t != T_COND) {
        fail(c, 0, "a condition is needed here (e.g. value > 25), not a number");
        goto done;
    }
    out->code = malloc(c->ncode * sizeof *out->code);
    out->src = malloc(n + 1);
    if (!out->code || !out->src) {
        free(out->code);
        free(out->src);
        rc = VG_ENOMEM;
        goto done;
    }
    memcpy(out->code, c->code, c->ncode * sizeof *out->code);
    memcpy(out->src, src, n);
    out->src[n] = 0;
    out->n = c->ncode;
    out->is_cond = t == T_COND;
    rc = VG_OK;
done:
    free(c);
    return rc;
}

void vg_expr_fini(struct vg_expr *e)
{
    free(e->code);
    free(e->src);
    memset(e, 0, sizeof *e);
}

double vg_expr_eval(const struct vg_expr *e, const struct vg_eval_env *env)
{
    double st[VG_EXPR_STACK];
    int sp = 0;
    const struct vg_insn *ip = e->code, *end = e->code + e->n;
    for (; ip < end; ip++) {
        switch ((enum vg_op)ip->op) {
        case VG_OP_CONST: st[sp++] = ip->k; break;
        case VG_OP_VALUE: st[sp++] = env->value; break;
        case VG_OP_SLOT: st[sp++] = env->slots[ip->arg]; break;
        case VG_OP_ADD: sp--; st[sp - 1] += st[sp]; break;
        case VG_OP_SUB: sp--; st[sp - 1] -= st[sp]; break;
        case VG_OP_MUL: sp--; st[sp - 1] *= st[sp]; break;
        case VG_OP_DIV: sp--; st[sp - 1] /= st[sp]; break;
        case VG_OP_NEG: st[sp - 1] = -st[sp - 1]; break;
        case VG_OP_LT: sp--; st[sp - 1] = st[sp - 1] < st[sp]; break;
        case VG_OP_LE: sp--; st[sp - 1] = st[sp - 1] <= st[sp]; break;
        case VG_OP_GT: sp--; st[sp - 1] = st[sp - 1] > st[sp]; break;
        case VG_OP_GE: sp--; st[sp - 1] = st[sp - 1] >= st[sp]; break;
        case VG_OP_EQ: sp--; st[sp - 1] = st[sp - 1] == st[sp]; break;
        case VG_OP_NE:
            sp--;
            st[sp - 1] = st[sp - 1] == st[sp - 1] && st[sp] == st[sp] && st[sp - 1] != st[sp];
            break;
        case VG_OP_AND: sp--; st[sp - 1] = vg_truthy(st[sp - 1]) && vg_truthy(st[sp]); break;
        case VG_OP_OR: sp--; st[sp - 1] = vg_truthy(st[sp - 1]) || vg_truthy(st[sp]); break;
        case VG_OP_NOT: st[sp - 1] = !vg_truthy(st[sp - 1]); break;
        }
    }
    return sp ? st[sp - 1] : NAN;
}
