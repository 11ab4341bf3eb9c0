/*
 * test_expr.c: the rule-expression compiler and evaluator (engine/expr.h).
 * Owns: precedence, unary minus, comparisons, and/or/not, NaN semantics, the
 * type rules (a condition must be a condition), compile errors with their
 * exact byte offsets, name resolution through struct vg_expr_names, and the
 * guarantee that evaluation reads nothing but its struct vg_eval_env.
 * Must never: depend on rule.c or the registry (names come from a local
 * resolver), read the clock, or leave compiled code unfreed on a passing run.
 * DESIGN: every check is a row of a table run by tcase_add_loop_test; expected
 * values are worked out by hand from the grammar in expr.h, not copied from
 * the engine's output.
 */
#include "vgtest.h"

#include "engine/expr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEN(s) (sizeof(s) - 1)

/* Equal, or both NaN. */
static bool same(double a, double b)
{
    return a == b || (a != a && b != b);
}

static void compile_ok(const char *src, size_t n, const struct vg_expr_names *names, bool want_cond,
                       struct vg_expr *e)
{
    struct vg_expr_error err = {-1, ""};
    int rc = vg_expr_compile(src, n, names, want_cond, e, &err);
    ck_assert_msg(rc == VG_OK, "'%.*s' failed at %d: %s", (int)n, src, err.offset, err.msg);
}

/* ---- evaluation without a resolver: only `value` is known --------------- */

struct eval_case {
    const char *src;
    bool want_cond;  /* compile as a rule condition */
    double value;    /* env.value */
    double expect;
    bool is_cond;
};

static const struct eval_case eval_cases[] = {
    /* arithmetic: * and / bind tighter than + and -, all left-associative */
    {"1 + 2 * 3", false, 0, 7, false},
    {"(1 + 2) * 3", false, 0, 9, false},
    {"2 * 3 + 4 * 5", false, 0, 26, false},
    {"10 - 4 - 3", false, 0, 3, false},
    {"24 / 4 / 2", false, 0, 3, false},
    {"24 / (4 / 2)", false, 0, 12, false},
    {"10 - 2 * 3 + 1", false, 0, 5, false},
    {"value / 4", false, 10, 2.5, false},
    {"value", false, 42, 42, false},
    {"1e3 + 0.5", false, 0, 1000.5, false},
    {"2.5e-1 * 8", false, 0, 2, false},
    {"value*2-1", false, 3, 5, false},
    /* unary minus: binds tighter than * and folds or negates at run time */
    {"-value", false, 5, -5, false},
    {"-value * 2", false, 5, -10, false},
    {"- -value", false, 5, 5, false},
    {"2 - -3", false, 0, 5, false},
    {"-2 * -3", false, 0, 6, false},
    {"-3 + 1", false, 0, -2, false},
    {"value > -1", true, -0.5, 1, true},
    {"-(1 - 4)", false, 0, 3, false},
    {"-(value - 4)", false, 1, 3, false},
    {"3 - -value", false, 2, 5, false},
    /* comparisons: arithmetic binds tighter; boundaries exact */
    {"value > 25", true, 26, 1, true},
    {"value > 25", true, 25, 0, true},
    {"value >= 25", true, 25, 1, true},
    {"value >= 25", true, 24.999, 0, true},
    {"value < 25", true, 24.9, 1, true},
    {"value < 25", true, 25, 0, true},
    {"value <= 25", true, 25, 1, true},
    {"value <= 25", true, 25.1, 0, true},
    {"value == 3", true, 3, 1, true},
    {"value == 3", true, 3.5, 0, true},
    {"value != 3", true, 3, 0, true},
    {"value != 3", true, 4, 1, true},
    {"value + 1 > 2 * 2", true, 3.5, 1, true},
    {"value + 1 > 2 * 2", true, 3, 0, true},
    {"-value < -4", true, 5, 1, true},
    {"25 < value", true, 26, 1, true},
    {"value>25", true, 26, 1, true},
    /* and / or / not: not > and > or, comparisons bind tighter than all three */
    {"value > 1 and value < 3", true, 2, 1, true},
    {"value > 1 and value < 3", true, 3, 0, true},
    {"value < 1 or value > 3", true, 2, 0, true},
    {"value < 1 or value > 3", true, 4, 1, true},
    {"value > 0 or value > 10 and value < 5", true, 20, 1, true},   /* and first */
    {"(value > 0 or value > 10) and value < 5", true, 20, 0, true}, /* parens win */
    {"value < 5 and value > 10 or value > 0", true, 20, 1, true},
    {"not value > 3", true, 5, 0, true},  /* not (value > 3) */
    {"not value > 3", true, 2, 1, true},
    {"not value > 3 and value > 0", true, -1, 0, true}, /* (not ...) and ... */
    {"not value > 3 and value > 0", true, 2, 1, true},
    {"not (value > 3 and value > 0)", true, -1, 1, true},
    {"not not value > 3", true, 5, 1, true},
    {"not(value > 3)", true, 5, 0, true},
    {"value > 1 and not value > 3 or value == 10", true, 10, 1, true},
    {"value > 1 and not value > 3 or value == 10", true, 4, 0, true},
    {"((value > 1))", true, 2, 1, true},
    /* a condition compiled where a number is allowed is still a condition */
    {"value > 1", false, 2, 1, true},
    /* NaN (a missing value): every comparison is false, != included */
    {"value > 1", true, NAN, 0, true},
    {"value < 1", true, NAN, 0, true},
    {"value >= 1", true, NAN, 0, true},
    {"value <= 1", true, NAN, 0, true},
    {"value == 1", true, NAN, 0, true},
    {"value != 1", true, NAN, 0, true},
    {"1 != value", true, NAN, 0, true},
    {"1 < value", true, NAN, 0, true},
    {"value == value", true, NAN, 0, true},
    {"value != value", true, NAN, 0, true},
    {"value + 1 > 0", true, NAN, 0, true},
    {"-value < 0", true, NAN, 0, true},
    {"value > 1 or value <= 1", true, NAN, 0, true},
    {"not value > 1", true, NAN, 1, true}, /* not of a false comparison */
    {"value + 1", false, NAN, NAN, false},
    {"-value", false, NAN, NAN, false},
};

START_TEST(evaluates)
{
    const struct eval_case *c = &eval_cases[_i];
    struct vg_expr e;
    compile_ok(c->src, strlen(c->src), NULL, c->want_cond, &e);
    struct vg_eval_env env = {c->value, NULL};
    double got = vg_expr_eval(&e, &env);
    ck_assert_msg(same(got, c->expect), "'%s' with value=%g: got %g, want %g", c->src, c->value,
                  got, c->expect);
    ck_assert_msg(e.is_cond == c->is_cond, "'%s': is_cond %d", c->src, e.is_cond);
    ck_assert_str_eq(e.src, c->src);
    ck_assert_uint_gt(e.n, 0);
    vg_expr_fini(&e);
}
END_TEST

/* ---- compile errors: exact byte offset and a key phrase of the message --- */

struct error_case {
    const char *src;
    bool want_cond;
    int offset;
    const char *phrase;
};

static const struct error_case error_cases[] = {
    {"", true, 0, "empty expression"},
    {"   ", true, 0, "empty expression"},
    {"value >", true, 7, "the expression ended"},
    {"value > 1 and", true, 13, "the expression ended"},
    {"value = 3", true, 6, "compare with =="},
    {"value > 1 > 2", true, 10, "do not chain"},
    {"1 < value <= 2", true, 10, "do not chain"},
    {"foo > 1", true, 0, "unknown name 'foo'"},
    {"value > 1 and bar < 2", true, 14, "unknown name 'bar'"},
    {"(value > 1", true, 10, "missing ')'"},
    {"((value > 1)", true, 12, "missing ')'"},
    {"value + (value > 1)", true, 8, "'+' needs a number"},
    {"value+(value>1)", true, 6, "'+' needs a number"},
    {"(value > 1) + value", true, 0, "'+' needs a number"},
    {"value * (1 > 2) > 0", true, 8, "'*' needs a number"},
    {"value - (1 > 2) > 0", true, 8, "'-' needs a number"},
    {"value / (1 > 2) > 0", true, 8, "'/' needs a number"},
    {"value > (value > 1)", true, 8, "a comparison needs a number"},
    {"(value > 1) > 3", true, 0, "a comparison needs a number"},
    {"avg(x, 10m) > 1", true, 0, "unknown function 'avg'"},
    {"value > max (value, 1)", true, 8, "unknown function 'max'"},
    {"1 and 2", true, 0, "'and' needs a condition"},
    {"value > 1 and 2", true, 14, "'and' needs a condition"},
    {"value > 1 and value", true, 14, "'and' needs a condition"},
    {"value > 1 or  3", true, 14, "'or' needs a condition"},
    {"( value > 1 and 3)", true, 16, "'and' needs a condition"},
    {"( 1 and value > 1)", true, 2, "'and' needs a condition"},
    {"not 3", true, 0, "'not' needs a condition"},
    {"value > 1 and not 2", true, 14, "'not' needs a condition"},
    {"- (value > 1)", true, 0, "'-' needs a number"},
    {"value > 1 )", true, 10, "unexpected ')'"},
    {"value > 1 x", true, 10, "unexpected 'x'"},
    {"value > 1 value", true, 10, "an operator or the end was expected"},
    {"value ! 3", true, 6, "unexpected '!'"},
    {"value > 1;", true, 9, "unexpected ';'"},
    {"value", true, 0, "a condition is needed"},
    {"value * 2", true, 0, "a condition is needed"},
    {"(value)", true, 0, "a condition is needed"},
    {"value > .5", true, 8, "bad number '.5'"},
    {"value > 1e999", true, 8, "bad number"},
    {"value > 1.2.3", true, 8, "bad number"},
    {"value > 5m", true, 9, "durations only go in window functions"},
    {"and > 1", true, 0, "expected a value before 'and'"},
    {"value > or", true, 8, "expected a value before 'or'"},
    {"value > 1 and > 2", true, 14, "unexpected '>'"},
};

START_TEST(rejects)
{
    const struct error_case *c = &error_cases[_i];
    struct vg_expr e, before;
    memset(&e, 0xA5, sizeof e);
    before = e;
    struct vg_expr_error err = {-1, ""};
    int rc = vg_expr_compile(c->src, strlen(c->src), NULL, c->want_cond, &e, &err);
    ck_assert_msg(rc == VG_EINVAL, "'%s' compiled (rc %d)", c->src, rc);
    ck_assert_msg(err.offset == c->offset, "'%s': offset %d, want %d (%s)", c->src, err.offset,
                  c->offset, err.msg);
    ck_assert_msg(strstr(err.msg, c->phrase) != NULL, "'%s': message '%s' lacks '%s'", c->src,
                  err.msg, c->phrase);
    /* on failure the output is untouched */
    ck_assert_msg(memcmp(&e, &before, sizeof e) == 0, "'%s': out was written", c->src);
}
END_TEST

/* The source is a slice: bytes after n are never read. */
START_TEST(compiles_only_n_bytes)
{
    static const char src[] = "value > 1 garbage";
    struct vg_expr e;
    compile_ok(src, LEN("value > 1"), NULL, true, &e);
    ck_assert_str_eq(e.src, "value > 1");
    struct vg_eval_env env = {2, NULL};
    ck_assert_double_eq(vg_expr_eval(&e, &env), 1);
    vg_expr_fini(&e);
    ck_assert_ptr_null(e.code);
    ck_assert_ptr_null(e.src);
    ck_assert_uint_eq(e.n, 0);
}
END_TEST

/* ---- limits: nesting (recursion) and stack/code size (the evaluator's array) */

static char *repeat3(const char *a, int k, const char *mid, const char *b, size_t *len)
{
    size_t la = strlen(a), lm = strlen(mid), lb = strlen(b);
    char *s = malloc(la * (size_t)k + lm + lb * (size_t)k + 1), *p = s;
    for (int i = 0; i < k; i++, p += la)
        memcpy(p, a, la);
    memcpy(p, mid, lm);
    p += lm;
    for (int i = 0; i < k; i++, p += lb)
        memcpy(p, b, lb);
    *p = 0;
    *len = (size_t)(p - s);
    return s;
}

/* open × k, middle, close × k; with value = 0.5 every middle is true. */
struct shape {
    const char *open, *middle, *close;
    int k;
};

/* At most 64 levels of '(', unary '-' and 'not': the parser recurses on each. */
static const struct shape nest_ok[] = {
    {"(", "value < 1", ")", 64},
    {"-", "value < 1", "", 64}, /* an even number of minus signs: value itself */
    {"not ", "value < 1", "", 64},
};

START_TEST(nests_to_the_limit)
{
    const struct shape *c = &nest_ok[_i];
    size_t n;
    char *src = repeat3(c->open, c->k, c->middle, c->close, &n);
    struct vg_expr e;
    compile_ok(src, n, NULL, true, &e);
    free(src);
    struct vg_eval_env env = {0.5, NULL};
    ck_assert_double_eq(vg_expr_eval(&e, &env), 1);
    vg_expr_fini(&e);
}
END_TEST

static const struct shape nest_over[] = {
    {"(", "value < 1", ")", 65},
    {"(", "value < 1", ")", 200000}, /* an error, not a stack overflow */
    {"-", "value < 1", "", 65},
    {"-", "value < 1", "", 200000},
    {"not ", "value < 1", "", 65},
    {"not ", "value < 1", "", 200000},
};

START_TEST(rejects_deeper_nesting)
{
    const struct shape *c = &nest_over[_i];
    size_t n;
    char *src = repeat3(c->open, c->k, c->middle, c->close, &n);
    struct vg_expr e;
    struct vg_expr_error err = {-1, ""};
    int rc = vg_expr_compile(src, n, NULL, true, &e, &err);
    free(src);
    ck_assert_int_eq(rc, VG_EINVAL);
    /* the error points at the 65th opener */
    ck_assert_int_eq(err.offset, 64 * (int)strlen(c->open));
    ck_assert_ptr_nonnull(strstr(err.msg, "nested too deeply"));
}
END_TEST

/*
 * 1+(1+(…1)) keeps k+1 values on the evaluator's fixed stack (VG_EXPR_STACK,
 * 32); value + value + … is 2k+1 instructions (VG_EXPR_CODE_MAX, 256). Both
 * add up to k+1 with value = 1.
 */
static const struct shape size_ok[] = {
    {"1 + (", "1", ")", 31},
    {"value + ", "value", "", 127},
};

START_TEST(sizes_to_the_limit)
{
    const struct shape *c = &size_ok[_i];
    size_t n;
    char *src = repeat3(c->open, c->k, c->middle, c->close, &n);
    struct vg_expr e;
    compile_ok(src, n, NULL, false, &e);
    free(src);
    struct vg_eval_env env = {1, NULL};
    ck_assert_double_eq(vg_expr_eval(&e, &env), c->k + 1);
    vg_expr_fini(&e);
}
END_TEST

struct size_over_case {
    struct shape shape;
    const char *phrase;
};

static const struct size_over_case size_over[] = {
    {{"1 + (", "1", ")", 32}, "nested too deeply"},
    {{"value + ", "value", "", 128}, "expression too long"},
};

START_TEST(rejects_larger_sizes)
{
    const struct shape *c = &size_over[_i].shape;
    size_t n;
    char *src = repeat3(c->open, c->k, c->middle, c->close, &n);
    struct vg_expr e;
    struct vg_expr_error err = {-1, ""};
    int rc = vg_expr_compile(src, n, NULL, false, &e, &err);
    free(src);
    ck_assert_int_eq(rc, VG_EINVAL);
    ck_assert_msg(strstr(err.msg, size_over[_i].phrase) != NULL, "%s", err.msg);
}
END_TEST

/* ---- names through a resolver, slots through the env ---------------------- */

/* a, b: metrics; limit.high: a set point; value: the sample. Anything else fails. */
static int resolve(void *ctx, const char *name, size_t n, struct vg_insn *insn, char *msg,
                   size_t cap)
{
    static const struct { const char *name; uint32_t op, arg; } names[] = {
        {"value", VG_OP_VALUE, 0}, {"a", VG_OP_SLOT, 0}, {"b", VG_OP_SLOT, 1},
        {"limit.high", VG_OP_SLOT, 2}};
    int *calls = ctx;
    (*calls)++;
    size_t i = 0;
    while (i < VG_ARRAY_LEN(names) &&
           !(strlen(names[i].name) == n && memcmp(names[i].name, name, n) == 0))
        i++;
    bool found = i < VG_ARRAY_LEN(names);
    insn->op = found ? names[i].op : VG_OP_CONST;
    insn->arg = found ? names[i].arg : 0;
    snprintf(msg, cap, "no metric or limit named '%.*s'", (int)n, name);
    return found ? 0 : -1;
}

struct name_case {
    const char *src;
    bool want_cond;
    double value, slots[3];
    double expect;
    int calls; /* resolver calls: one per name */
};

static const struct name_case name_cases[] = {
    {"a + b > limit.high", true, 0, {1, 2, 2.5}, 1, 3},
    {"a + b > limit.high", true, 0, {1, 1, 2.5}, 0, 3},
    {"a * b - value", false, 4, {3, 5, 0}, 11, 3},
    {"value > limit.high and a < b", true, 71, {1, 2, 70}, 1, 4},
    {"value > limit.high and a < b", true, 71, {2, 1, 70}, 0, 4},
    {"limit.high", false, 0, {0, 0, 90}, 90, 1},
    {"a != b", true, 0, {NAN, 1, 0}, 0, 2},
    {"not a > limit.high", true, 0, {NAN, 0, 1}, 1, 2},
};

START_TEST(resolves_names)
{
    const struct name_case *c = &name_cases[_i];
    int calls = 0;
    struct vg_expr_names names = {resolve, NULL, &calls};
    struct vg_expr e;
    compile_ok(c->src, strlen(c->src), &names, c->want_cond, &e);
    ck_assert_int_eq(calls, c->calls);
    struct vg_eval_env env = {c->value, c->slots};
    double got = vg_expr_eval(&e, &env);
    ck_assert_msg(same(got, c->expect), "'%s': got %g, want %g", c->src, got, c->expect);
    vg_expr_fini(&e);
}
END_TEST

struct name_error_case {
    const char *src;
    int offset;
    const char *phrase;
};

static const struct name_error_case name_error_cases[] = {
    {"nh3 > 1", 0, "no metric or limit named 'nh3'"},
    {"a > 1 and zz > 2", 10, "no metric or limit named 'zz'"},
    {"value > limit.low", 8, "no metric or limit named 'limit.low'"},
    {"a > limit .high", 4, "no metric or limit named 'limit'"},
};

START_TEST(reports_resolver_errors)
{
    const struct name_error_case *c = &name_error_cases[_i];
    int calls = 0;
    struct vg_expr_names names = {resolve, NULL, &calls};
    struct vg_expr e;
    struct vg_expr_error err = {-1, ""};
    ck_assert_int_eq(vg_expr_compile(c->src, strlen(c->src), &names, true, &e, &err), VG_EINVAL);
    ck_assert_int_eq(err.offset, c->offset);
    ck_assert_str_eq(err.msg, c->phrase);
}
END_TEST

/*
 * Evaluation depends on the env alone: the same code gives the same result for
 * the same env, whatever was evaluated in between, and reads the slots
 * through the borrowed pointer at each call. Compiling is deterministic and
 * evaluating never changes the code.
 */
struct env_case {
    double value, slots[3];
    double expect; /* of "a - b * 2 > value and value != limit.high" */
};

static const struct env_case env_cases[] = {
    {1, {10, 2, 0}, 1}, /* 6 > 1 and 1 != 0 */
    {6, {10, 2, 0}, 0}, /* 6 > 6 fails */
    {1, {10, 2, 1}, 0}, /* value == limit.high */
    {1, {NAN, 2, 0}, 0},
    {NAN, {10, 2, 0}, 0},
};

START_TEST(depends_only_on_env)
{
    static const char src[] = "a - b * 2 > value and value != limit.high";
    int calls = 0;
    struct vg_expr_names names = {resolve, NULL, &calls};
    struct vg_expr e1, e2;
    compile_ok(src, LEN(src), &names, true, &e1);
    compile_ok(src, LEN(src), &names, true, &e2);
    ck_assert_uint_eq(e1.n, e2.n);
    ck_assert_int_eq(memcmp(e1.code, e2.code, e1.n * sizeof *e1.code), 0);

    const struct env_case *c = &env_cases[_i];
    const struct env_case *other = &env_cases[(_i + 1) % VG_ARRAY_LEN(env_cases)];
    struct vg_eval_env env = {c->value, c->slots}, env_other = {other->value, other->slots};
    double first = vg_expr_eval(&e1, &env);
    double between = vg_expr_eval(&e1, &env_other);
    double again = vg_expr_eval(&e1, &env);
    ck_assert_double_eq(first, c->expect);
    ck_assert_double_eq(between, other->expect);
    ck_assert_double_eq(again, c->expect);
    ck_assert_double_eq(vg_expr_eval(&e2, &env), c->expect);
    /* evaluation left the code as compiled */
    ck_assert_int_eq(memcmp(e1.code, e2.code, e1.n * sizeof *e1.code), 0);

    /* slots are borrowed: a change is seen by the next evaluation */
    double slots[3] = {c->slots[0], c->slots[1], c->slots[2]};
    struct vg_eval_env live = {1, slots};
    slots[0] = 100;
    slots[1] = 0;
    slots[2] = 0;
    ck_assert_double_eq(vg_expr_eval(&e1, &live), 1); /* 100 > 1 and 1 != 0 */
    slots[2] = 1;
    ck_assert_double_eq(vg_expr_eval(&e1, &live), 0); /* value == limit.high */
    vg_expr_fini(&e1);
    vg_expr_fini(&e2);
}
END_TEST

struct truthy_case {
    double v;
    bool truthy;
};

static const struct truthy_case truthy_cases[] = {
    {0, false}, {-0.0, false}, {NAN, false}, {1, true}, {-1, true}, {0.5, true}, {INFINITY, true},
};

START_TEST(truthiness)
{
    ck_assert_int_eq(vg_truthy(truthy_cases[_i].v), truthy_cases[_i].truthy);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("expr");
    TCase *tc = tcase_create("expr");
    tcase_add_loop_test(tc, evaluates, 0, VG_ARRAY_LEN(eval_cases));
    tcase_add_loop_test(tc, rejects, 0, VG_ARRAY_LEN(error_cases));
    tcase_add_test(tc, compiles_only_n_bytes);
    tcase_add_loop_test(tc, nests_to_the_limit, 0, VG_ARRAY_LEN(nest_ok));
    tcase_add_loop_test(tc, rejects_deeper_nesting, 0, VG_ARRAY_LEN(nest_over));
    tcase_add_loop_test(tc, sizes_to_the_limit, 0, VG_ARRAY_LEN(size_ok));
    tcase_add_loop_test(tc, rejects_larger_sizes, 0, VG_ARRAY_LEN(size_over));
    tcase_add_loop_test(tc, resolves_names, 0, VG_ARRAY_LEN(name_cases));
    tcase_add_loop_test(tc, reports_resolver_errors, 0, VG_ARRAY_LEN(name_error_cases));
    tcase_add_loop_test(tc, depends_only_on_env, 0, VG_ARRAY_LEN(env_cases));
    tcase_add_loop_test(tc, truthiness, 0, VG_ARRAY_LEN(truthy_cases));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return vgt_run(suite());
}
