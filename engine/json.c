/*
 * json.c: the input parser. See json.h for the contract and design.
 * Owns: jsmn's tokens, the parser's scratch, and the input dead-letter reasons.
 * Must never: allocate after create, or let a line through half-understood.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS /* O(1) commas and closers instead of scans back over every token */
#include <jsmn.h>

#include "engine/json.h"
#include "engine/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENS_MAX (8 + VG_POINTS_MAX * 16)
#define SCRATCH_MAX (VG_LINE_MAX + 64)

struct vg_json_parser {
    jsmntok_t tok[TOKENS_MAX];
    struct vg_sample out[VG_POINTS_MAX];
    char scratch[SCRATCH_MAX];   /* decoded escaped strings */
    size_t scratch_used;
    const char *topic_plant;     /* the plant the transport names for the next message, or NULL */
    size_t topic_plant_len;
};

void vg_json_parser_plant(struct vg_json_parser *jp, const char *plant, size_t n)
{
    jp->topic_plant = plant && n ? plant : NULL;
    jp->topic_plant_len = plant ? n : 0;
}

struct vg_json_parser *vg_json_parser_create(void)
{
    return calloc(1, sizeof(struct vg_json_parser));
}

void vg_json_parser_destroy(struct vg_json_parser *jp)
{
    free(jp);
}

static int reject(struct vg_reject *rej, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#include <stdarg.h>
static int reject(struct vg_reject *rej, const char *reason, const char *fmt, ...)
{
    rej->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rej->detail, sizeof rej->detail, fmt, ap);
    va_end(ap);
    return VG_EINVAL;
}

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The bytes a token really spans: jsmn gives string bounds inside the quotes. */
static inline int tok_lo(const jsmntok_t *t)
{
    return t->type == JSMN_STRING ? t->start - 1 : t->start;
}
static inline int tok_hi(const jsmntok_t *t)
{
    return t->type == JSMN_STRING ? t->end + 1 : t->end;
}

/* Only whitespace and exactly one @p sep (or none if sep == 0) in [a, b). */
static bool sep_ok(const char *s, int a, int b, char sep)
{
    bool seen = sep == 0;
    for (int i = a; i < b; i++) {
        if (is_ws(s[i]))
            continue;
        if (s[i] == sep && !seen) {
            seen = true;
            continue;
        }
        return false;
    }
    return seen;
}

static int number_value(const char *s, int a, int b, double *out, bool *is_int);

/* jsmn takes any run of characters for a primitive: require a JSON literal or number. */
static bool primitive_ok(const char *s, const jsmntok_t *t)
{
    int n = t->end - t->start;
    const char *p = s + t->start;
    if (*p == 't')
        return n == 4 && !memcmp(p, "true", 4);
    if (*p == 'f')
        return n == 5 && !memcmp(p, "false", 5);
    if (*p == 'n')
        return n == 4 && !memcmp(p, "null", 4);
    double v;
    bool is_int;
    return number_value(s, t->start, t->end, &v, &is_int) != -1;
}

/*
 * Check the structure jsmn leaves unchecked (colons, commas, key sizes) for the
 * value at tok[i]; returns the index after its subtree, or -1 if malformed.
 */
static int validate(const char *s, const jsmntok_t *tok, int ntok, int i, int depth)
{
    const jsmntok_t *t = &tok[i];
    if (depth > 32)
        return -1;
    if (t->type == JSMN_STRING) {
        return t->size == 0 ? i + 1 : -1;
    }
    if (t->type == JSMN_PRIMITIVE)
        return primitive_ok(s, t) ? i + 1 : -1;
    bool obj = t->type == JSMN_OBJECT;
    int j = i + 1, prev_hi = t->start + 1;
    for (int k = 0; k < t->size; k++) {
        if (j >= ntok)
            return -1;
        if (!sep_ok(s, prev_hi, tok_lo(&tok[j]), k == 0 ? 0 : ','))
            return -1;
        if (obj) {
            const jsmntok_t *key = &tok[j];
            if (key->type != JSMN_STRING || key->size != 1 || j + 1 >= ntok)
                return -1;
            if (!sep_ok(s, tok_hi(key), tok_lo(&tok[j + 1]), ':'))
                return -1;
            j++;
        }
        prev_hi = tok_hi(&tok[j]);
        j = validate(s, tok, ntok, j, depth + 1);
        if (j < 0)
            return -1;
    }
    if (!sep_ok(s, prev_hi, t->end - 1, 0))
        return -1;
    return j;
}

static inline bool key_is(const char *s, const jsmntok_t *k, const char *lit, int n)
{
    return k->end - k->start == n && memcmp(s + k->start, lit, (size_t)n) == 0;
}

/* Decode a JSON string token into a slice; validates escapes, control bytes, UTF-8. */
static int string_value(struct vg_json_parser *jp, const char *s, const jsmntok_t *t,
                        struct vg_str *out)
{
    const unsigned char *p = (const unsigned char *)s + t->start;
    size_t n = (size_t)(t->end - t->start);
    bool plain = true;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' || p[i] < 0x20 || p[i] >= 0x80) {
            plain = false;
            break;
        }
    }
    if (plain) {
        out->p = (const char *)p;
        out->n = (uint32_t)n;
        return 0;
    }
    if (jp->scratch_used + n * 3 + 4 > SCRATCH_MAX)
        return -1;
    char *o = jp->scratch + jp->scratch_used, *o0 = o;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (i + 1 >= n)
                return -1;
            char e = (char)p[i + 1];
            i += 2;
            switch (e) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                unsigned cp = 0;
                if (i + 4 > n)
                    return -1;
                for (int k = 0; k < 4; k++) {
                    unsigned char h = p[i + k];
                    cp = cp * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo = 0;
                    if (i + 6 > n || p[i] != '\\' || p[i + 1] != 'u')
                        return -1;
                    for (int k = 0; k < 4; k++) {
                        unsigned char h = p[i + 2 + k];
                        lo = lo * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                    }
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return -1;
                }
                if (cp == 0)
                    return -1; /* NUL inside an id is never meant */
                if (cp < 0x80) {
                    *o++ = (char)cp;
                } else if (cp < 0x800) {
                    *o++ = (char)(0xC0 | cp >> 6);
                    *o++ = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    *o++ = (char)(0xE0 | cp >> 12);
                    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                } else {
                    *o++ = (char)(0xF0 | cp >> 18);
                    *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
                    *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            default:
                return -1;
            }
            continue;
        }
        if (c < 0x80) {
            *o++ = (char)c;
            i++;
            continue;
        }
        /* UTF-8: validate one sequence (no overlongs, no surrogates, <= U+10FFFF) */
        int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (len == 0 || c > 0xF4 || i + (size_t)len > n)
            return -1;
        for (int k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return -1;
        if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0) ||
            (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] >= 0x90))
            return -1;
        memcpy(o, p + i, (size_t)len);
        o += len;
        i += (size_t)len;
    }
    out->p = o0;
    out->n = (uint32_t)(o - o0);
    jp->scratch_used += (size_t)(o - o0);
    return 0;
}

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parse a JSON number exactly. Returns 0, -1 if not a number, -2 if not finite. */
static int number_value(const char *s, int a, int b, double *out, bool *is_int)
{
    const char *p = s + a, *end = s + b;
    bool neg = p < end && *p == '-';
    p += neg;
    if (p >= end || (unsigned)(*p - '0') > 9)
        return -1;
    uint64_t mant = 0;
    int sig = 0, exp10 = 0; /* significant digits kept in mant; decimal exponent */
    if (*p == '0') {
        p++;
    } else {
        const char *q = p;
        while (p < end && (unsigned)(*p - '0') <= 9)
            p++;
        int n = (int)(p - q);
        int keep = n < 19 ? n : 19;
        for (int k = 0; k < keep; k++)
            mant = mant * 10 + (uint64_t)(q[k] - '0');
        sig = n;
        exp10 = n - keep;
    }
    *is_int = true;
    if (p < end && *p == '.') {
        *is_int = false;
        const char *q = ++p;
        while (p < end && (unsigned)(*p - '0') <= 9)
            p++;
        if (p == q)
            return -1;
        for (; q < p; q++) {
            if (mant == 0 && *q == '0') { /* leading zeros of 0.000x are not significant */
                exp10--;
                continue;
            }
            if (sig >= 19)
                break;
            mant = mant * 10 + (uint64_t)(*q - '0');
            sig++;
            exp10--;
        }
        if (q < p)
            sig += (int)(p - q); /* more digits than fit: take the slow path */
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_int = false;
        p++;
        int esign = 1, e = 0;
        if (p < end && (*p == '+' || *p == '-'))
            esign = *p++ == '-' ? -1 : 1;
        if (p >= end || (unsigned)(*p - '0') > 9)
            return -1;
        while (p < end && (unsigned)(*p - '0') <= 9) {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += esign * e;
    }
    if (p != end)
        return -1;
    double v;
    if (sig <= 15 && exp10 >= -22 && exp10 <= 22) {
        v = (double)mant;
        v = exp10 < 0 ? v / pow10_tab[-exp10] : v * pow10_tab[exp10];
        v = neg ? -v : v;
    } else {
        char tmp[400];
        size_t n = (size_t)(b - a);
        if (n >= sizeof tmp)
            return -2;
        memcpy(tmp, s + a, n);
        tmp[n] = 0;
        v = strtod(tmp, NULL);
    }
    if (!isfinite(v))
        return -2;
    *out = v;
    return 0;
}

/* Field slots filled while walking one object. */
struct fields {
    int plant, device, metric, value, ts, event, type, quality, points, alert_id, by, from, until;
    int seq, unit;
};

static void fields_reset(struct fields *f)
{
    memset(f, -1, sizeof *f);
}

/* Map a key to its slot; unknown keys are accepted and ignored (forward compatible). */
static int *field_slot(struct fields *f, const char *s, const jsmntok_t *k)
{
    switch (k->end - k->start) {
    case 2:
        if (key_is(s, k, "ts", 2)) return &f->ts;
        if (key_is(s, k, "by", 2)) return &f->by;
        break;
    case 3:
        if (key_is(s, k, "seq", 3)) return &f->seq;
        break;
    case 4:
        if (key_is(s, k, "type", 4)) return &f->type;
        if (key_is(s, k, "unit", 4)) return &f->unit;
        if (key_is(s, k, "from", 4)) return &f->from;
        break;
    case 5:
        if (key_is(s, k, "plant", 5)) return &f->plant;
        if (key_is(s, k, "value", 5)) return &f->value;
        if (key_is(s, k, "event", 5)) return &f->event;
        if (key_is(s, k, "until", 5)) return &f->until;
        break;
    case 6:
        if (key_is(s, k, "device", 6)) return &f->device;
        if (key_is(s, k, "metric", 6)) return &f->metric;
        if (key_is(s, k, "points", 6)) return &f->points;
        break;
    case 7:
        if (key_is(s, k, "quality", 7)) return &f->quality;
        break;
    case 8:
        if (key_is(s, k, "alert_id", 8)) return &f->alert_id;
        break;
    }
    return NULL;
}

/*
 * Walk the object at tok[i]: check its separators (jsmn does not), validate
 * nested values, and fill slots with value token indexes. Returns the index
 * after the object, or -1 with @p rej filled.
 */
static int walk_object(const char *s, const jsmntok_t *tok, int ntok, int i, struct fields *f,
                       struct vg_reject *rej, const char *where)
{
    const jsmntok_t *o = &tok[i];
    int j = i + 1, prev_hi = o->start + 1;
    for (int k = 0; k < o->size; k++) {
        if (j + 1 >= ntok)
            return reject(rej, "malformed", "invalid JSON"), -1;
        const jsmntok_t *key = &tok[j], *val = &tok[j + 1];
        if (key->type != JSMN_STRING || key->size != 1 ||
            !sep_ok(s, prev_hi, tok_lo(key), k == 0 ? 0 : ',') ||
            !sep_ok(s, tok_hi(key), tok_lo(val), ':'))
            return reject(rej, "malformed", "invalid JSON"), -1;
        int *slot = field_slot(f, s, key);
        if (slot) {
            if (*slot >= 0)
                return reject(rej, "malformed", "%sduplicate key \"%.*s\"", where,
                              key->end - key->start, s + key->start), -1;
            *slot = j + 1;
        }
        int next;
        if (val->type == JSMN_OBJECT || val->type == JSMN_ARRAY)
            next = validate(s, tok, ntok, j + 1, 1);
        else if (val->type == JSMN_STRING)
            next = val->size != 0 ? -1 : j + 2;
        else /* value and ts are checked when read; other fields may go unread */
            next = slot == &f->value || slot == &f->ts || primitive_ok(s, val) ? j + 2 : -1;
        if (next < 0)
            return reject(rej, "malformed", "invalid JSON"), -1;
        prev_hi = tok_hi(val);
        j = next;
    }
    if (!sep_ok(s, prev_hi, o->end - 1, 0))
        return reject(rej, "malformed", "invalid JSON"), -1;
    return j;
}

static const char *const type_names[] = {"?", "object", "array", "string", "primitive"};

static int need_string(struct vg_json_parser *jp, const char *s, const jsmntok_t *tok, int idx,
                       const char *name, bool required, const char *where, struct vg_str *out,
                       struct vg_reject *rej)
{
    if (idx < 0) {
        if (required)
            return reject(rej, "missing_field", "%s\"%s\" is required", where, name);
        out->p = "";
        out->n = 0;
        return 0;
    }
    const jsmntok_t *t = &tok[idx];
    if (t->type != JSMN_STRING)
        return reject(rej, "wrong_type", "%s\"%s\" must be a string, not %s", where, name,
                      t->type == JSMN_PRIMITIVE ? "a number or literal" : type_names[t->type]);
    if (string_value(jp, s, t, out) < 0)
        return reject(rej, "bad_value", "%s\"%s\" has a bad escape, control byte or invalid UTF-8",
                      where, name);
    if (out->n == 0 && required)
        return reject(rej, "bad_value", "%s\"%s\" must not be empty", where, name);
    if (out->n > VG_ID_MAX)
        return reject(rej, "bad_value", "%s\"%s\" is longer than %d bytes", where, name, VG_ID_MAX);
    return 0;
}

/* "plant": from the payload, or from the transport (a topic level); both must agree. */
static int need_plant(struct vg_json_parser *jp, const char *s, const jsmntok_t *tok, int idx,
                      struct vg_str *out, struct vg_reject *rej)
{
    if (!jp->topic_plant)
        return need_string(jp, s, tok, idx, "plant", true, "", out, rej);
    if (jp->topic_plant_len > VG_ID_MAX)
        return reject(rej, "bad_value", "the plant named by the topic is longer than %d bytes", VG_ID_MAX);
    if (idx < 0) {
        out->p = jp->topic_plant;
        out->n = jp->topic_plant_len;
        return 0;
    }
    if (need_string(jp, s, tok, idx, "plant", true, "", out, rej) < 0)
        return VG_EINVAL;
    if (out->n != jp->topic_plant_len || memcmp(out->p, jp->topic_plant, out->n))
        return reject(rej, "plant_mismatch", "\"plant\" is \"%.*s\" but the topic names \"%.*s\"",
                      (int)out->n, out->p, (int)(jp->topic_plant_len > 64 ? 64 : jp->topic_plant_len),
                      jp->topic_plant);
    return 0;
}

static int need_number(const char *s, const jsmntok_t *tok, int idx, const char *name,
                       const char *where, double *out, struct vg_reject *rej)
{
    if (idx < 0)
        return reject(rej, "missing_field", "%s\"%s\" is required", where, name);
    const jsmntok_t *t = &tok[idx];
    bool is_int;
    int r = t->type == JSMN_PRIMITIVE ? number_value(s, t->start, t->end, out, &is_int) : -1;
    if (r == -2)
        return reject(rej, "non_finite", "%s\"%s\" is out of the range of a double", where, name);
    if (r < 0) {
        if (t->type == JSMN_PRIMITIVE && !primitive_ok(s, t))
            return reject(rej, "malformed", "invalid JSON");
        if (t->type == JSMN_PRIMITIVE && (s[t->start] == 't' || s[t->start] == 'f' || s[t->start] == 'n'))
            return reject(rej, "wrong_type", "%s\"%s\" must be a number, not %.*s", where, name,
                          t->end - t->start > 8 ? 8 : t->end - t->start, s + t->start);
        return reject(rej, "wrong_type", "%s\"%s\" must be a number", where, name);
    }
    return 0;
}

#define TS_MAX INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

static int need_ts(const char *s, const jsmntok_t *tok, int idx, const char *name,
                   const char *where, vg_ts *out, struct vg_reject *rej)
{
    if (idx < 0)
        return reject(rej, "missing_field", "%s\"%s\" is required", where, name);
    const jsmntok_t *t = &tok[idx];
    if (t->type == JSMN_STRING) {
        if (vg_rfc3339_parse(s + t->start, (size_t)(t->end - t->start), out) < 0)
            return reject(rej, "bad_ts", "%s\"%s\" is not RFC 3339 with an offset "
                          "(e.g. 2026-11-23T08:00:00+08:00)", where, name);
    } else {
        /* epoch milliseconds: plain digits, no sign, no fraction, no exponent */
        const char *p = s + t->start, *end = s + t->end;
        int64_t v = 0;
        bool ok = t->type == JSMN_PRIMITIVE && p < end && end - p <= 15 && (*p != '0' || end - p == 1);
        for (; ok && p < end; p++) {
            unsigned d = (unsigned)(*p - '0');
            ok = d < 10;
            v = v * 10 + d;
        }
        if (!ok && t->type == JSMN_PRIMITIVE && !primitive_ok(s, t))
            return reject(rej, "malformed", "invalid JSON");
        if (!ok)
            return reject(rej, "bad_ts", "%s\"%s\" must be integer epoch milliseconds or an "
                          "RFC 3339 string", where, name);
        *out = v;
    }
    if (*out < 0 || *out > TS_MAX)
        return reject(rej, "bad_ts", "%s\"%s\" is outside 1970..9999", where, name);
    return 0;
}

static int parse_quality(const char *s, const jsmntok_t *tok, int idx, const char *where,
                         uint8_t *out, struct vg_reject *rej)
{
    if (idx < 0) {
        *out = VG_Q_GOOD;
        return 0;
    }
    const jsmntok_t *t = &tok[idx];
    static const struct { const char *name; uint8_t q; } names[] = {
        {"good", VG_Q_GOOD}, {"bad", VG_Q_BAD}, {"uncertain", VG_Q_UNCERTAIN},
        {"N", VG_Q_GOOD}, {"S", VG_Q_MANUAL}, {"M", VG_Q_MAINTENANCE}, {"C", VG_Q_CALIBRATION},
        {"D", VG_Q_FAULT}, {"B", VG_Q_COMMS}, {"F", VG_Q_STOPPED}, {"T", VG_Q_OVERRANGE}};
    if (t->type == JSMN_STRING) {
        for (size_t i = 0; i < VG_ARRAY_LEN(names); i++)
            if (key_is(s, t, names[i].name, (int)strlen(names[i].name))) {
                *out = names[i].q;
                return 0;
            }
    }
    return reject(rej, "bad_value", "%s\"quality\" must be good, bad, uncertain or an HJ 212 flag "
                  "(N S M C D B F T)", where);
}

static int check_optional(const char *s, const jsmntok_t *tok, const struct fields *f,
                          const char *where, struct vg_reject *rej)
{
    if (f->unit >= 0 && tok[f->unit].type != JSMN_STRING)
        return reject(rej, "wrong_type", "%s\"unit\" must be a string", where);
    if (f->seq >= 0) {
        double v;
        bool is_int;
        if (tok[f->seq].type != JSMN_PRIMITIVE ||
            number_value(s, tok[f->seq].start, tok[f->seq].end, &v, &is_int) < 0 || !is_int)
            return reject(rej, "wrong_type", "%s\"seq\" must be an integer", where);
    }
    return 0;
}

int vg_json_parse(struct vg_json_parser *jp, const char *s, size_t len,
                  const struct vg_sample **out, unsigned *nout, struct vg_reject *rej)
{
    *nout = 0;
    jp->scratch_used = 0;
    if (len > VG_LINE_MAX)
        return reject(rej, "oversized", "line is %zu bytes; the limit is %d", len, VG_LINE_MAX);
    jsmn_parser p;
    jsmn_init(&p);
    int ntok = jsmn_parse(&p, s, len, jp->tok, TOKENS_MAX);
    if (ntok == JSMN_ERROR_NOMEM)
        return reject(rej, "too_many_points", "more than %d fields in one message", TOKENS_MAX);
    if (ntok == JSMN_ERROR_PART) {
        /* strict jsmn wants a separator after a primitive, so a bare 42 or true ends "early" */
        jsmntok_t t = {.type = JSMN_PRIMITIVE, .start = 0, .end = (int)len};
        while (t.start < t.end && is_ws(s[t.start]))
            t.start++;
        while (t.end > t.start && is_ws(s[t.end - 1]))
            t.end--;
        if (t.start < t.end && primitive_ok(s, &t))
            return reject(rej, "not_object", "a message must be a JSON object");
    }
    if (ntok < 0)
        return reject(rej, "malformed", ntok == JSMN_ERROR_PART ? "incomplete JSON (truncated?)"
                                                               : "invalid JSON");
    if (ntok == 0)
        return reject(rej, "malformed", "empty message");
    const jsmntok_t *tok = jp->tok;
    if (tok[0].type != JSMN_OBJECT)
        return reject(rej, "not_object", "a message must be a JSON object");
    /* a NUL byte stops jsmn early, so the tail check below rejects it */
    struct fields f;
    fields_reset(&f);
    int end = walk_object(s, tok, ntok, 0, &f, rej, "");
    if (end < 0)
        return VG_EINVAL;
    if (end != ntok || !sep_ok(s, tok[0].end, (int)len, 0))
        return reject(rej, "malformed", "invalid JSON");
    if (check_optional(s, tok, &f, "", rej) < 0)
        return VG_EINVAL;
    struct vg_sample *m = &jp->out[0];
    memset(m, 0, sizeof *m);

    if (f.type >= 0) {
        if (f.value >= 0 && tok[f.value].type == JSMN_PRIMITIVE && !primitive_ok(s, &tok[f.value]))
            return reject(rej, "malformed", "invalid JSON"); /* unread here, so unchecked so far */
        struct vg_str type;
        if (need_string(jp, s, tok, f.type, "type", true, "", &type, rej) < 0)
            return VG_EINVAL;
        if (vg_str_eq(type, "ack", 3)) {
            m->kind = VG_MSG_ACK;
            if (need_string(jp, s, tok, f.alert_id, "alert_id", true, "", &m->alert_id, rej) < 0 ||
                need_string(jp, s, tok, f.by, "by", false, "", &m->by, rej) < 0 ||
                need_ts(s, tok, f.ts, "ts", "", &m->ts, rej) < 0)
                return VG_EINVAL;
        } else if (vg_str_eq(type, "maintenance", 11)) {
            m->kind = VG_MSG_MAINTENANCE;
            if (need_plant(jp, s, tok, f.plant, &m->plant, rej) < 0 ||
                need_string(jp, s, tok, f.device, "device", false, "", &m->device, rej) < 0 ||
                need_ts(s, tok, f.from, "from", "", &m->from, rej) < 0 ||
                need_ts(s, tok, f.until, "until", "", &m->until, rej) < 0)
                return VG_EINVAL;
            if (m->until < m->from)
                return reject(rej, "bad_value", "\"until\" is before \"from\"");
            m->ts = m->from;
            if (f.ts >= 0 && need_ts(s, tok, f.ts, "ts", "", &m->ts, rej) < 0)
                return VG_EINVAL;
        } else {
            return reject(rej, "unknown_type", "\"type\" must be ack or maintenance, not \"%.*s\"",
                          type.n > 32 ? 32 : (int)type.n, type.p);
        }
        *out = jp->out;
        *nout = 1;
        return VG_OK;
    }

    if (need_plant(jp, s, tok, f.plant, &m->plant, rej) < 0 ||
        need_ts(s, tok, f.ts, "ts", "", &m->ts, rej) < 0)
        return VG_EINVAL;

    if (f.points >= 0) {
        const jsmntok_t *arr = &tok[f.points];
        if (arr->type != JSMN_ARRAY)
            return reject(rej, "wrong_type", "\"points\" must be an array of objects");
        if (arr->size > VG_POINTS_MAX)
            return reject(rej, "too_many_points", "%d points; the limit is %d", arr->size,
                          VG_POINTS_MAX);
        if (arr->size == 0) /* it would yield nothing: never drop a line silently */
            return reject(rej, "bad_value", "\"points\" is empty; a batch carries at least one");
        if (f.metric >= 0 || f.value >= 0)
            return reject(rej, "malformed", "a batch carries \"metric\" and \"value\" inside \"points\"");
        struct vg_str plant = m->plant;
        vg_ts ts = m->ts;
        uint8_t quality = VG_Q_GOOD; /* the batch's quality is the default for its points */
        if (parse_quality(s, tok, f.quality, "", &quality, rej) < 0)
            return VG_EINVAL;
        int j = f.points + 1;
        for (int k = 0; k < arr->size; k++) {
            char where[32];
            snprintf(where, sizeof where, "points[%d].", k);
            if (tok[j].type != JSMN_OBJECT)
                return reject(rej, "wrong_type", "%s must be an object", where);
            struct fields pf;
            fields_reset(&pf);
            int next = walk_object(s, tok, ntok, j, &pf, rej, where);
            if (next < 0 || check_optional(s, tok, &pf, where, rej) < 0)
                return VG_EINVAL;
            struct vg_sample *q = &jp->out[k];
            memset(q, 0, sizeof *q);
            q->kind = VG_MSG_SAMPLE;
            q->plant = plant;
            q->ts = ts;
            q->quality = quality;
            if (pf.plant >= 0 || pf.type >= 0 || pf.points >= 0)
                return reject(rej, "malformed", "%s may not carry plant, type or points", where);
            if (need_string(jp, s, tok, pf.device, "device", true, where, &q->device, rej) < 0 ||
                (pf.quality >= 0 && parse_quality(s, tok, pf.quality, where, &q->quality, rej) < 0) ||
                (pf.ts >= 0 && need_ts(s, tok, pf.ts, "ts", where, &q->ts, rej) < 0))
                return VG_EINVAL;
            if (pf.event >= 0) {
                q->kind = VG_MSG_EVENT;
                if (need_string(jp, s, tok, pf.event, "event", true, where, &q->name, rej) < 0)
                    return VG_EINVAL;
            } else if (need_string(jp, s, tok, pf.metric, "metric", true, where, &q->name, rej) < 0 ||
                       need_number(s, tok, pf.value, "value", where, &q->value, rej) < 0) {
                return VG_EINVAL;
            }
            j = next;
        }
        *out = jp->out;
        *nout = (unsigned)arr->size;
        return VG_OK;
    }

    if (need_string(jp, s, tok, f.device, "device", true, "", &m->device, rej) < 0 ||
        parse_quality(s, tok, f.quality, "", &m->quality, rej) < 0)
        return VG_EINVAL;
    if (f.event >= 0) {
        m->kind = VG_MSG_EVENT;
        if (need_string(jp, s, tok, f.event, "event", true, "", &m->name, rej) < 0)
            return VG_EINVAL;
        if (f.value >= 0 && need_number(s, tok, f.value, "value", "", &m->value, rej) < 0)
            return VG_EINVAL;
    } else {
        m->kind = VG_MSG_SAMPLE;
        if (need_string(jp, s, tok, f.metric, "metric", true, "", &m->name, rej) < 0 ||
            need_number(s, tok, f.value, "value", "", &m->value, rej) < 0)
            return VG_EINVAL;
    }
    *out = jp->out;
    *nout = 1;
    return VG_OK;
}

int vg_json_escape(char *buf, size_t cap, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (o + 12 > cap)
            return -1;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            buf[o++] = (char)c;
            i++;
            continue;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
            i++;
            continue;
        }
        if (c < 0x20) {
            const char *e = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
            if (e) {
                memcpy(buf + o, e, 2);
                o += 2;
            } else {
                memcpy(buf + o, "\\u00", 4);
                buf[o + 4] = hex[c >> 4];
                buf[o + 5] = hex[c & 15];
                o += 6;
            }
            i++;
            continue;
        }
        /* copy a valid UTF-8 sequence; escape a stray byte as \u00XX */
        int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        bool ok = len > 0 && c <= 0xF4 && i + (size_t)len <= n;
        for (int k = 1; ok && k < len; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0) ||
                   (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] >= 0x90)))
            ok = false;
        if (ok) {
            memcpy(buf + o, p + i, (size_t)len);
            o += (size_t)len;
            i += (size_t)len;
        } else {
            memcpy(buf + o, "\\u00", 4);
            buf[o + 4] = hex[c >> 4];
            buf[o + 5] = hex[c & 15];
            o += 6;
            i++;
        }
    }
    return (int)o;
}
