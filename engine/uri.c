/*
 * uri.c: parsing endpoint URIs for the adapters (see uri.h for the grammar).
 * Owns: the parsed pieces and their memory. Must never: print or keep a
 * password anywhere but u->password, which is wiped when freed; messages
 * that quote the whole URI show its userinfo as "***@", and no message
 * quotes a password or an option's value when its escape is bad.
 */
#include "engine/uri.h"
#include "engine/clock.h"

#include <stdlib.h>
#include <string.h>

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

char *vg_uri_decode(const char *p, size_t n, bool *bad)
{
    char *out = malloc(n + 1);
    size_t k = 0;
    *bad = false;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%') {
            out[k++] = p[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)p[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)p[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            *bad = true;
            free(out);
            return NULL;
        }
        out[k++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[k] = 0;
    return out;
}

static int nomem(struct vg_uri *u, struct vg_error *err)
{
    vg_uri_fini(u);
    return vg_error_set(err, VG_ENOMEM, "out of memory");
}

static int bad(struct vg_uri *u, struct vg_error *err, const char *fmt, const char *p, size_t n)
{
    char part[128];
    snprintf(part, sizeof part, "%.*s", (int)(n > 100 ? 100 : n), p);
    int rc = vg_error_set(err, VG_EUSAGE, fmt, u->what, part);
    vg_uri_fini(u);
    return rc;
}

/*
 * The whole URI for a message, with any userinfo replaced by "***@" so that a
 * password never reaches a message. @p at is where the userinfo ends (its
 * '@'), or NULL: then everything up to the last '@' is hidden, if any.
 */
static const char *shown(const char *uri, const char *at, char *buf, size_t cap)
{
    if (!at)
        at = strrchr(uri, '@');
    if (!at)
        return uri;
    const char *sep = strstr(uri, "://");
    size_t keep = sep && sep < at ? (size_t)(sep + 3 - uri) : 0;
    snprintf(buf, cap, "%.*s***@%s", (int)keep, uri, at + 1);
    return buf;
}

static bool parse_port(const char *p, size_t n, int *out)
{
    long v = 0;
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *out = (int)v;
    return true;
}

/*
 * Would the first host of the host list starting at @p p parse: a name (or a
 * bracketed address) that is not empty, and a valid port if one is written?
 * Only to choose between two readings of an '@' (vg_uri_parse).
 */
static bool first_host_ok(const char *p)
{
    size_t n = strcspn(p, ",/?");
    const char *e = p + n, *port;
    int ignored;
    if (*p == '[') {
        const char *rb = memchr(p, ']', n);
        if (!rb || rb == p + 1 || (rb + 1 < e && rb[1] != ':'))
            return false;
        port = rb + 1 < e ? rb + 2 : NULL;
    } else {
        const char *colon = memchr(p, ':', n);
        if ((colon ? colon : e) == p)
            return false;
        port = colon ? colon + 1 : NULL;
    }
    return !port || parse_port(port, (size_t)(e - port), &ignored);
}

static int parse_query(struct vg_uri *u, const char *q, struct vg_error *err)
{
    size_t cnt = 1;
    for (const char *t = q; *t; t++)
        cnt += *t == '&';
    u->opts = calloc(cnt, sizeof *u->opts);
    if (!u->opts)
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        size_t kn = eq ? (size_t)(eq - q) : n;
        if (n == 0) {
            q++;
            continue;
        }
        if (!eq || kn == 0)
            return bad(u, err, "bad %s URI: option '%s' must be KEY=VALUE", q, n);
        bool b1, b2;
        struct vg_uri_opt *o = &u->opts[u->n_opts];
        o->key = vg_uri_decode(q, kn, &b1);
        o->value = vg_uri_decode(eq + 1, n - kn - 1, &b2);
        u->n_opts++;
        if (!o->key || !o->value)
            return b1 || b2 ? bad(u, err, "bad %s URI: a %% escape in option '%s' is not %%XX", q, kn)
                            : vg_error_set(err, VG_ENOMEM, "out of memory");
        q += n;
        if (*q == '&')
            q++;
    }
    return VG_OK;
}

int vg_uri_parse(const char *uri, const char *what, struct vg_uri *u, struct vg_error *err)
{
    char show[160];
    memset(u, 0, sizeof *u);
    u->what = what ? what : "endpoint";
    const char *sep = strstr(uri, "://");
    if (!sep || sep == uri || (size_t)(sep - uri) >= sizeof u->scheme) {
        const char *s = shown(uri, NULL, show, sizeof show);
        return bad(u, err, "bad %s URI: '%s' has no scheme:// in front", s, strlen(s));
    }
    memcpy(u->scheme, uri, (size_t)(sep - uri));
    const char *p = sep + 3;

    /*
     * Where the userinfo ends. First reading: an '@' after the first '/' or
     * '?' belongs to the path or an option (MQTT topics, client ids), so the
     * userinfo ends at the last '@' before them. If that reading leaves no
     * valid first host (":pa/ss@h", ":p@/x@h", ":pa?ss@h"), the password
     * holds the '/', '@' or '?': the userinfo ends at the last '@' of all.
     */
    const char *stop = p + strcspn(p, "/?");
    const char *at = NULL;
    for (const char *t = p; t < stop; t++)
        if (*t == '@')
            at = t;
    const char *last = strrchr(p, '@');
    if (last && last != at && !first_host_ok(at ? at + 1 : p))
        at = last;
    const char *q = strchr(at ? at + 1 : p, '?');
    const char *end = q ? q : p + strlen(p);
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        bool b = false;
        if (uend > p && !(u->user = vg_uri_decode(p, (size_t)(uend - p), &b)))
            return b ? bad(u, err, "bad %s URI: a %% escape in the user name '%s' is not %%XX", p,
                           (size_t)(uend - p))
                     : nomem(u, err);
        if (colon && !(u->password = vg_uri_decode(colon + 1, (size_t)(at - colon - 1), &b)))
            return b ? bad(u, err, "bad %s URI: a %% escape in the password is not %%XX%s", "", 0)
                     : nomem(u, err);
        p = at + 1;
    }

    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *hend = slash ? slash : end;
    const char *whole = shown(uri, at, show, sizeof show);
    if (hend == p)
        return bad(u, err, "bad %s URI: no host in '%s'", whole, strlen(whole));
    u->hosts = strndup(p, (size_t)(hend - p));
    /* the first host */
    const char *fe = memchr(p, ',', (size_t)(hend - p));
    if (!fe)
        fe = hend;
    const char *h = p, *he, *port = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(fe - p));
        if (!rb)
            return bad(u, err, "bad %s URI: unclosed '[' in host '%s'", p, (size_t)(fe - p));
        h = p + 1;
        he = rb;
        if (rb + 1 < fe && rb[1] != ':')
            return bad(u, err, "bad %s URI: junk after ']' in host '%s'", p, (size_t)(fe - p));
        port = rb + 1 < fe ? rb + 2 : NULL;
    } else {
        const char *colon = memchr(p, ':', (size_t)(fe - p));
        he = colon ? colon : fe;
        port = colon ? colon + 1 : NULL;
    }
    if (he == h)
        return bad(u, err, "bad %s URI: no host in '%s'", whole, strlen(whole));
    u->host = strndup(h, (size_t)(he - h));
    if (port && !parse_port(port, (size_t)(fe - port), &u->port))
        return bad(u, err, "bad %s URI: the port must be 1-65535, not '%s'", port, (size_t)(fe - port));
    bool b = false;
    u->path = slash ? vg_uri_decode(slash + 1, (size_t)(end - slash - 1), &b) : strdup("");
    if (!u->hosts || !u->host || !u->path)
        return b ? bad(u, err, "bad %s URI: a %% escape in the path '%s' is not %%XX", slash + 1,
                       (size_t)(end - slash - 1))
                 : nomem(u, err);
    if (q) {
        int rc = parse_query(u, q + 1, err);
        if (rc < 0) {
            vg_uri_fini(u);
            return rc;
        }
    }
    return VG_OK;
}

const char *vg_uri_opt(struct vg_uri *u, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < u->n_opts; i++)
        if (!strcmp(u->opts[i].key, key)) {
            u->opts[i].used = true;
            v = u->opts[i].value;
        }
    return v;
}

size_t vg_uri_opts(struct vg_uri *u, const char *key, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < u->n_opts; i++)
        if (!strcmp(u->opts[i].key, key)) {
            u->opts[i].used = true;
            if (n < cap)
                out[n++] = u->opts[i].value;
        }
    return n;
}

int vg_uri_long(struct vg_uri *u, const char *key, long lo, long hi, long *out, struct vg_error *err)
{
    const char *v = vg_uri_opt(u, key);
    if (!v)
        return VG_OK;
    char *e;
    long x = strtol(v, &e, 10);
    if (!*v || *e || x < lo || x > hi)
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: option %s=%s must be a whole number from %ld "
                            "to %ld", u->what, key, v, lo, hi);
    *out = x;
    return VG_OK;
}

int vg_uri_duration(struct vg_uri *u, const char *key, vg_ts lo, vg_ts hi, vg_ts *out,
                    struct vg_error *err)
{
    const char *v = vg_uri_opt(u, key);
    if (!v)
        return VG_OK;
    vg_ts ms;
    const char *why = NULL;
    if (vg_duration_parse(v, strlen(v), &ms, &why) < 0 || ms < lo || ms > hi) {
        char from[32], to[32];
        vg_duration_format(lo, from, sizeof from);
        vg_duration_format(hi, to, sizeof to);
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: option %s=%s must be a duration from %s to %s, "
                            "e.g. 500ms or 2s", u->what, key, v, from, to);
    }
    *out = ms;
    return VG_OK;
}

int vg_uri_bool(struct vg_uri *u, const char *key, bool *out, struct vg_error *err)
{
    const char *v = vg_uri_opt(u, key);
    if (!v)
        return VG_OK;
    static const char *const yes[] = {"1", "true", "yes", "on", NULL};
    static const char *const no[] = {"0", "false", "no", "off", NULL};
    for (int i = 0; yes[i]; i++) {
        if (!strcmp(v, yes[i])) {
            *out = true;
            return VG_OK;
        }
        if (!strcmp(v, no[i])) {
            *out = false;
            return VG_OK;
        }
    }
    return vg_error_set(err, VG_EUSAGE, "bad %s URI: option %s=%s must be true or false", u->what,
                        key, v);
}

int vg_uri_finish(const struct vg_uri *u, const char *known, struct vg_error *err)
{
    for (size_t i = 0; i < u->n_opts; i++)
        if (!u->opts[i].used)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: unknown option '%s' for %s:// (it has: %s)",
                                u->what, u->opts[i].key, u->scheme, known && *known ? known : "none");
    return VG_OK;
}

void vg_uri_fini(struct vg_uri *u)
{
    if (u->password) {
        volatile char *p = u->password;
        while (*p)
            *p++ = 0;
    }
    free(u->user);
    free(u->password);
    free(u->hosts);
    free(u->host);
    free(u->path);
    for (size_t i = 0; i < u->n_opts; i++) {
        free(u->opts[i].key);
        free(u->opts[i].value);
    }
    free(u->opts);
    const char *what = u->what;
    memset(u, 0, sizeof *u);
    u->what = what;
}
