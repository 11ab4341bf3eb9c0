/*
 * config.c: loads the config file (format in config.h) into struct vg_config.
 * Owns: the config's strings; environment expansion; resolving relative
 * paths against the file's directory; folding endpoint credentials and
 * options into one canonical, percent-encoded URI. Must never: open an
 * endpoint or judge an adapter option (the adapter does, when cli.c opens
 * it); print or keep a password anywhere but inside the URI it belongs to,
 * and wipe every buffer that held one before freeing it.
 * DESIGN: a table of keys drives the loader, as the flag tables drive cli.c:
 * each entry says what kind of value the key takes, and one function per
 * kind reads it. Every scalar goes through expand() first, so ${VAR} works
 * anywhere. Errors are collected, not stopped at: a user fixes them all in
 * one round.
 */
#include "engine/config.h"
#include "engine/clock.h"
#include "engine/pipeline.h"
#include "engine/uri.h"
#include "engine/yamldoc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_PATHS, K_PATH, K_ENDPOINT, K_THREADS, K_DURATION, K_POSITIVE_DURATION, K_TS, K_BOOL, K_NOTIFY };

static const struct key {
    const char *name;
    enum kind kind;
} keys[VG_CONF_KEYS] = {
    [VG_CONF_RULES] = {"rules", K_PATHS},
    [VG_CONF_REGISTRY] = {"registry", K_PATH},
    [VG_CONF_INPUT] = {"input", K_ENDPOINT},
    [VG_CONF_ALERTS] = {"alerts", K_ENDPOINT},
    [VG_CONF_SMS] = {"sms", K_ENDPOINT},
    [VG_CONF_DEAD_LETTER] = {"dead_letter", K_ENDPOINT},
    [VG_CONF_STATE] = {"state", K_ENDPOINT},
    [VG_CONF_THREADS] = {"threads", K_THREADS},
    [VG_CONF_LATENESS] = {"lateness", K_DURATION},
    [VG_CONF_CHECKPOINT_INTERVAL] = {"checkpoint_interval", K_POSITIVE_DURATION},
    [VG_CONF_START] = {"start", K_TS},
    [VG_CONF_UNTIL] = {"until", K_TS},
    [VG_CONF_SUMMARY] = {"summary", K_BOOL},
    [VG_CONF_NOTIFY] = {"notify", K_NOTIFY},
};

static const char *const top_keys[] = {"version", "rules", "registry", "input", "alerts", "sms",
                                       "dead_letter", "state", "threads", "lateness",
                                       "checkpoint_interval", "start", "until", "summary", "notify",
                                       NULL};
static const char *const endpoint_keys[] = {"uri", "username", "password", "options", NULL};
static const char *const notify_keys[] = {"daily_cap_per_number", "digest_at", NULL};

#define DAILY_CAP_MAX 1000000

const char *vg_config_key_name(enum vg_config_key key)
{
    return key < VG_CONF_KEYS ? keys[key].name : "?";
}

void vg_config_init(struct vg_config *c)
{
    memset(c, 0, sizeof *c);
    c->checkpoint_ms = 1000;
    c->start = VG_TS_NONE;
    c->until = VG_TS_NONE;
    c->sms_digest_minute = VG_CONFIG_DIGEST_DEFAULT;
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = 0;
    free(s);
}

void vg_config_fini(struct vg_config *c)
{
    free(c->file);
    vg_strv_free(c->rules);
    free(c->registry);
    wipe_free(c->input);
    wipe_free(c->alerts);
    wipe_free(c->sms);
    wipe_free(c->dead_letter);
    wipe_free(c->state);
    vg_config_init(c);
}

/* ---- a growable string that is wiped when freed (it may hold a secret) ---- */

struct buf {
    char *p;
    size_t n, cap;
    bool oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = malloc(cap);
        if (!p) {
            b->oom = true;
            return;
        }
        if (b->p) {
            memcpy(p, b->p, b->n);
            memset(b->p, 0, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Percent-encode everything but RFC 3986's unreserved characters. */
static void buf_encoded(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                    *p == '-' || *p == '.' || *p == '_' || *p == '~';
        char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        if (keep)
            buf_add(b, (const char *)p, 1);
        else
            buf_add(b, esc, 3);
    }
}

/* Hand the string over (NULL on no memory); the buffer is empty after. */
static char *buf_take(struct buf *b)
{
    char *p = b->oom ? NULL : b->p;
    if (b->oom && b->p) {
        memset(b->p, 0, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof *b);
    return p;
}

static void buf_wipe(struct buf *b)
{
    if (b->p) {
        memset(b->p, 0, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof *b);
}

/* ---- the loader ---- */

struct ctx {
    struct vg_yaml y;
    struct vg_config *c;
    char *dir;      /* the config file's directory, or NULL: the current one */
    int rc;         /* VG_EINVAL once any error was reported */
    bool oom;
};

static int fail(struct ctx *x, int rc)
{
    if (rc == VG_ENOMEM)
        x->oom = true;
    else if (rc < 0)
        x->rc = VG_EINVAL;
    return rc;
}

static bool name_char(char ch, bool first)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' || (!first && ch >= '0' && ch <= '9');
}

/*
 * The scalar @p n with ${NAME} and ${NAME:-default} replaced from the
 * environment and "$${" made "${". @p what names the key for messages.
 * @returns 0 and a new string in *out (wipe_free it), or an error reported.
 */
static int text(struct ctx *x, yaml_node_t *n, const char *what, char **out)
{
    *out = NULL;
    if (!vg_yaml_is_scalar(n))
        return fail(x, vg_yaml_error(&x->y, n, "%s must be a single value, not a %s", what,
                                     vg_yaml_is_map(n) ? "mapping" : "list"));
    const char *s = vg_yaml_str(n);
    size_t len = vg_yaml_len(n);
    struct buf b = {0};
    int rc = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] == '$' && i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
            buf_add(&b, "${", 2);
            i += 3;
            continue;
        }
        if (s[i] != '$' || i + 1 >= len || s[i + 1] != '{') {
            buf_add(&b, s + i, 1);
            i++;
            continue;
        }
        const char *close = memchr(s + i + 2, '}', len - i - 2);
        if (!close) {
            rc = vg_yaml_error_at(&x->y, n, (int)i, "%s: '${' without a closing '}' (write ${NAME} for "
                                  "an environment variable, $${ for a literal ${)", what);
            break;
        }
        const char *name = s + i + 2;
        size_t inner = (size_t)(close - name), nlen = 0;
        while (nlen < inner && name_char(name[nlen], nlen == 0))
            nlen++;
        bool has_default = inner >= nlen + 2 && name[nlen] == ':' && name[nlen + 1] == '-';
        char var[128];
        if (nlen == 0 || nlen >= sizeof var || (nlen < inner && !has_default)) {
            rc = vg_yaml_error_at(&x->y, n, (int)i, "%s: bad variable '%.*s': write ${NAME} or "
                                  "${NAME:-default}, NAME made of letters, digits and _", what,
                                  (int)(inner + 3 > 80 ? 80 : inner + 3), s + i);
        } else {
            memcpy(var, name, nlen);
            var[nlen] = 0;
            const char *val = getenv(var);
            if (has_default && (!val || !*val))
                buf_add(&b, name + nlen + 2, inner - nlen - 2);
            else if (val)
                buf_str(&b, val);
            else
                rc = vg_yaml_error_at(&x->y, n, (int)i, "%s: environment variable %s is not set "
                                      "(give it a value, or write ${%s:-default})", what, var, var);
        }
        i = (size_t)(close - s) + 1;
    }
    if (rc < 0) {
        buf_wipe(&b);
        return fail(x, rc);
    }
    buf_add(&b, "", 0);
    if (!(*out = buf_take(&b)))
        return fail(x, VG_ENOMEM);
    return 0;
}

/* Names that are not paths: the standard streams and the memory store. */
static bool special(const char *s)
{
    return !strcmp(s, "-") || !strcmp(s, "stdin") || !strcmp(s, "stdout") || !strcmp(s, "stderr") ||
           !strcmp(s, "memory");
}

/* "scheme://..." (a scheme of letters, digits, + - . and no '/' before "://"). */
static bool is_uri(const char *s)
{
    const char *sep = strstr(s, "://");
    if (!sep || sep == s)
        return false;
    for (const char *p = s; p < sep; p++)
        if (!name_char(*p, p == s) && *p != '+' && *p != '-' && *p != '.')
            return false;
    return true;
}

/* @p path made relative to the config's directory (a new string; NULL on no memory). */
static char *resolve(struct ctx *x, const char *path)
{
    if (path[0] == '/' || !x->dir)
        return strdup(path);
    struct buf b = {0};
    buf_str(&b, x->dir);
    if (strcmp(x->dir, "/"))
        buf_str(&b, "/");
    buf_str(&b, path);
    return buf_take(&b);
}

static void set_pos(struct ctx *x, enum vg_config_key k, const yaml_node_t *n)
{
    x->c->pos[k].line = (int)n->start_mark.line + 1;
    x->c->pos[k].col = (int)n->start_mark.column + 1;
}

static int read_path(struct ctx *x, yaml_node_t *n, const char *what, char **out)
{
    char *s;
    int rc = text(x, n, what, &s);
    if (rc < 0)
        return rc;
    if (!*s) {
        free(s);
        return fail(x, vg_yaml_error(&x->y, n, "%s must not be empty", what));
    }
    *out = resolve(x, s);
    free(s);
    return *out ? 0 : fail(x, VG_ENOMEM);
}

static int read_paths(struct ctx *x, yaml_node_t *n, const char *what)
{
    size_t cnt = vg_yaml_is_seq(n) ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start) : 1;
    if (!vg_yaml_is_seq(n) && !vg_yaml_is_scalar(n))
        return fail(x, vg_yaml_error(&x->y, n, "%s must be a path or a list of paths", what));
    if (cnt == 0)
        return fail(x, vg_yaml_error(&x->y, n, "%s must name at least one file or directory", what));
    char **v = calloc(cnt + 1, sizeof *v);
    if (!v)
        return fail(x, VG_ENOMEM);
    int rc = 0;
    for (size_t i = 0, k = 0; i < cnt; i++) {
        yaml_node_t *e = vg_yaml_is_seq(n) ? vg_yaml_node(&x->y, n->data.sequence.items.start[i]) : n;
        if (read_path(x, e, what, &v[k]) < 0)
            rc = VG_EINVAL;
        else
            k++;
    }
    if (rc < 0) {
        vg_strv_free(v);
        return rc;
    }
    x->c->rules = v;
    x->c->n_rules = cnt;
    return 0;
}

/*
 * An endpoint given as a mapping: @p uri with @p user, @p pass and the
 * options folded in. @p opts is the options mapping (may be NULL).
 */
static char *canonical(struct ctx *x, const char *what, yaml_node_t *uri_node, const char *uri,
                       const char *user, const char *pass, yaml_node_t *opts)
{
    const char *sep = strstr(uri, "://");
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?");
    struct buf b = {0};
    if (user || pass) {
        if (memchr(auth, '@', alen)) {
            fail(x, vg_yaml_error(&x->y, uri_node, "%s.uri already has credentials (USER:PASSWORD@); "
                                  "give them in username and password instead, not both", what));
            return NULL;
        }
        buf_add(&b, uri, (size_t)(auth - uri));
        if (user)
            buf_encoded(&b, user);
        if (pass) {
            buf_str(&b, ":");
            buf_encoded(&b, pass);
        }
        buf_str(&b, "@");
        buf_str(&b, auth);
    } else {
        buf_str(&b, uri);
    }
    if (opts) {
        int rc = 0;
        const char *q = strchr(uri, '?');
        bool first = !q;
        bool joined = q && (b.n == 0 || b.p[b.n - 1] == '?' || b.p[b.n - 1] == '&');
        for (yaml_node_pair_t *p = opts->data.mapping.pairs.start; p < opts->data.mapping.pairs.top; p++) {
            yaml_node_t *k = vg_yaml_node(&x->y, p->key), *v = vg_yaml_node(&x->y, p->value);
            char ow[96];
            if (!vg_yaml_is_scalar(k) || !vg_yaml_len(k)) {
                rc = vg_yaml_error(&x->y, k, "%s.options: an option name must be a plain name", what);
                continue;
            }
            snprintf(ow, sizeof ow, "%s.options.%s", what, vg_yaml_str(k));
            for (yaml_node_pair_t *p2 = opts->data.mapping.pairs.start; p2 < p; p2++) {
                yaml_node_t *k2 = vg_yaml_node(&x->y, p2->key);
                if (vg_yaml_is_scalar(k2) && !strcmp(vg_yaml_str(k2), vg_yaml_str(k)))
                    rc = vg_yaml_error(&x->y, k, "duplicate option '%s' in %s.options (first at line %d); "
                                       "for several values give a list", vg_yaml_str(k), what,
                                       (int)k2->start_mark.line + 1);
            }
            /* one value, or a list: the option repeated (e.g. several topics) */
            size_t cnt = vg_yaml_is_seq(v) ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start) : 1;
            if (vg_yaml_is_seq(v) && cnt == 0)
                rc = vg_yaml_error(&x->y, v, "%s: an empty list gives the option no value", ow);
            for (size_t i = 0; i < cnt; i++) {
                yaml_node_t *e = vg_yaml_is_seq(v) ? vg_yaml_node(&x->y, v->data.sequence.items.start[i]) : v;
                char *val;
                if (vg_yaml_is_scalar(e) && vg_yaml_len(e) == 0 && e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                    rc = vg_yaml_error(&x->y, e, "%s has no value (write \"\" for an empty one)", ow);
                    continue;
                }
                if (text(x, e, ow, &val) < 0) {
                    rc = VG_EINVAL;
                    continue;
                }
                if (!joined)
                    buf_str(&b, first ? "?" : "&");
                joined = false;
                first = false;
                buf_encoded(&b, vg_yaml_str(k));
                buf_str(&b, "=");
                buf_encoded(&b, val);
                wipe_free(val);
            }
        }
        if (rc < 0) {
            fail(x, rc);
            buf_wipe(&b);
            return NULL;
        }
    }
    char *out = buf_take(&b);
    if (!out)
        fail(x, VG_ENOMEM);
    return out;
}

/*
 * The URI grammar of engine/uri.h, checked here so that `vigil check --config`
 * catches a bad port or a stray '%' without opening anything. The parse sees
 * USER/PASSWORD in place of the real credentials, so no message can quote them.
 */
static int check_grammar(struct ctx *x, yaml_node_t *n, const char *what, const char *uri)
{
    const char *auth = strstr(uri, "://") + 3;
    size_t alen = strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    struct buf b = {0};
    if (at) {
        buf_add(&b, uri, (size_t)(auth - uri));
        if (at > auth && *auth != ':')
            buf_str(&b, "USER");
        if (memchr(auth, ':', (size_t)(at - auth)))
            buf_str(&b, ":PASSWORD");
        buf_str(&b, at);
    } else {
        buf_str(&b, uri);
    }
    char *safe = buf_take(&b);
    if (!safe)
        return fail(x, VG_ENOMEM);
    struct vg_uri u;
    struct vg_error err = {0};
    int rc = vg_uri_parse(safe, what, &u, &err);
    free(safe);
    if (rc < 0)
        return fail(x, rc == VG_ENOMEM ? VG_ENOMEM : vg_yaml_error(&x->y, n, "%s", err.msg));
    vg_uri_fini(&u);
    return 0;
}

static int read_endpoint(struct ctx *x, yaml_node_t *n, const char *what, char **out)
{
    *out = NULL;
    if (vg_yaml_is_scalar(n)) {
        char *s;
        if (text(x, n, what, &s) < 0)
            return VG_EINVAL;
        if (!*s) {
            free(s);
            return fail(x, vg_yaml_error(&x->y, n, "%s must not be empty", what));
        }
        if (special(s) || (is_uri(s) && strncmp(s, "file://", 7))) {
            if (!special(s) && check_grammar(x, n, what, s) < 0) {
                wipe_free(s);
                return VG_EINVAL;
            }
            *out = s;
            return 0;
        }
        /* a path, or file://PATH: relative to the config's directory */
        bool file_uri = !strncmp(s, "file://", 7);
        char *r = resolve(x, s + (file_uri ? 7 : 0));
        wipe_free(s);
        if (!r)
            return fail(x, VG_ENOMEM);
        *out = r;
        return 0;
    }
    if (!vg_yaml_is_map(n))
        return fail(x, vg_yaml_error(&x->y, n, "%s must be a URI or a path, or a mapping with uri, "
                                     "username, password and options", what));
    int rc = vg_yaml_check_keys(&x->y, n, what, endpoint_keys) < 0 ? fail(x, VG_EINVAL) : 0;
    yaml_node_t *un = vg_yaml_get(&x->y, n, "uri"), *v;
    char *uri = NULL, *user = NULL, *pass = NULL;
    char w[64];
    yaml_node_t *opts = vg_yaml_get(&x->y, n, "options");
    if (!un) {
        rc = fail(x, vg_yaml_error(&x->y, n, "%s needs 'uri', e.g. uri: kafka://k1:9092/vigil.alerts", what));
    } else {
        snprintf(w, sizeof w, "%s.uri", what);
        if (text(x, un, w, &uri) < 0)
            rc = VG_EINVAL;
        else if (!*uri)
            rc = fail(x, vg_yaml_error(&x->y, un, "%s must not be empty", w));
    }
    if ((v = vg_yaml_get(&x->y, n, "username"))) {
        snprintf(w, sizeof w, "%s.username", what);
        if (text(x, v, w, &user) < 0)
            rc = VG_EINVAL;
    }
    if ((v = vg_yaml_get(&x->y, n, "password"))) {
        snprintf(w, sizeof w, "%s.password", what);
        if (text(x, v, w, &pass) < 0)
            rc = VG_EINVAL;
    }
    if (opts && !vg_yaml_is_map(opts))
        rc = fail(x, vg_yaml_error(&x->y, opts, "%s.options must be a mapping of option names to "
                                   "values, e.g. { qos: 1, client_id: vigil-1 }", what));
    /* an empty username or password (say ${REDIS_PASSWORD:-}) is left out */
    if (user && !*user) {
        wipe_free(user);
        user = NULL;
    }
    if (pass && !*pass) {
        wipe_free(pass);
        pass = NULL;
    }
    if (rc == 0) {
        if (!is_uri(uri) || !strncmp(uri, "file://", 7)) {
            yaml_node_t *extra = user ? vg_yaml_get(&x->y, n, "username")
                               : pass ? vg_yaml_get(&x->y, n, "password") : opts;
            if (user || pass || (opts && opts->data.mapping.pairs.top > opts->data.mapping.pairs.start))
                rc = fail(x, vg_yaml_error(&x->y, extra ? extra : n, "%s: username, password and "
                                           "options apply to scheme:// endpoints; '%s' is a file",
                                           what, uri));
            else if (special(uri))
                *out = strdup(uri);
            else
                *out = resolve(x, uri + (strncmp(uri, "file://", 7) ? 0 : 7));
            if (rc == 0 && !*out)
                rc = fail(x, VG_ENOMEM);
        } else if (!(*out = canonical(x, what, un, uri, user, pass, opts))) {
            rc = VG_EINVAL;
        } else if (check_grammar(x, n, what, *out) < 0) {
            wipe_free(*out);
            *out = NULL;
            rc = VG_EINVAL;
        }
    }
    wipe_free(uri);
    wipe_free(user);
    wipe_free(pass);
    return rc;
}

static int read_threads(struct ctx *x, yaml_node_t *n, const char *what)
{
    char *s;
    if (text(x, n, what, &s) < 0)
        return VG_EINVAL;
    char *end;
    errno = 0;
    long t = strtol(s, &end, 10);
    int rc = 0;
    if (!*s || *end || errno || t < 1 || t > VG_THREADS_MAX)
        rc = fail(x, vg_yaml_error(&x->y, n, "%s must be a whole number from 1 to %d, not '%s' (leave "
                                   "it out for the number of cores)", what, VG_THREADS_MAX, s));
    else
        x->c->threads = (int)t;
    free(s);
    return rc;
}

static int read_duration(struct ctx *x, yaml_node_t *n, const char *what, bool positive, vg_ts *out)
{
    char *s;
    if (text(x, n, what, &s) < 0)
        return VG_EINVAL;
    const char *why = NULL;
    int rc = 0;
    if (vg_duration_parse(s, strlen(s), out, &why) < 0)
        rc = fail(x, vg_yaml_error(&x->y, n, "bad duration '%s' for %s: %s", s, what, why));
    else if (positive && *out <= 0)
        rc = fail(x, vg_yaml_error(&x->y, n, "%s must be longer than 0s, e.g. 1s", what));
    free(s);
    return rc;
}

static int read_ts(struct ctx *x, yaml_node_t *n, const char *what, vg_ts *out)
{
    char *s;
    if (text(x, n, what, &s) < 0)
        return VG_EINVAL;
    int rc = 0;
    if (vg_ts_parse(s, out) < 0)
        rc = fail(x, vg_yaml_error(&x->y, n, "%s must be epoch milliseconds or RFC 3339 with an offset "
                                   "(e.g. \"2026-11-23T08:00:00+08:00\"), not '%s'", what, s));
    free(s);
    return rc;
}

static int read_bool(struct ctx *x, yaml_node_t *n, const char *what, bool *out)
{
    char *s;
    if (text(x, n, what, &s) < 0)
        return VG_EINVAL;
    int rc = 0;
    if (!strcmp(s, "true") || !strcmp(s, "yes"))
        *out = true;
    else if (!strcmp(s, "false") || !strcmp(s, "no"))
        *out = false;
    else
        rc = fail(x, vg_yaml_error(&x->y, n, "%s must be true or false, not '%s'", what, s));
    free(s);
    return rc;
}

static int read_notify(struct ctx *x, yaml_node_t *n, const char *what)
{
    if (!vg_yaml_is_map(n))
        return fail(x, vg_yaml_error(&x->y, n, "%s must be a mapping, e.g. { daily_cap_per_number: 20, "
                                     "digest_at: \"08:30\" }", what));
    int rc = vg_yaml_check_keys(&x->y, n, what, notify_keys) < 0 ? fail(x, VG_EINVAL) : 0;
    yaml_node_t *v;
    char *s;
    if ((v = vg_yaml_get(&x->y, n, "daily_cap_per_number"))) {
        if (text(x, v, "notify.daily_cap_per_number", &s) < 0) {
            rc = VG_EINVAL;
        } else {
            char *end;
            errno = 0;
            long cap = strtol(s, &end, 10);
            if (!*s || *end || errno || cap < 0 || cap > DAILY_CAP_MAX)
                rc = fail(x, vg_yaml_error(&x->y, v, "notify.daily_cap_per_number must be a whole number "
                                           "from 0 (no cap) to %d, not '%s'", DAILY_CAP_MAX, s));
            else
                x->c->sms_daily_cap = (int)cap;
            free(s);
        }
    }
    if ((v = vg_yaml_get(&x->y, n, "digest_at"))) {
        if (text(x, v, "notify.digest_at", &s) < 0) {
            rc = VG_EINVAL;
        } else {
            int h = -1, m = -1;
            bool ok = strlen(s) == 5 && s[2] == ':';
            for (int i = 0; ok && i < 5; i++)
                ok = i == 2 || (s[i] >= '0' && s[i] <= '9');
            if (ok) {
                h = (s[0] - '0') * 10 + (s[1] - '0');
                m = (s[3] - '0') * 10 + (s[4] - '0');
            }
            if (!ok || h > 23 || m > 59)
                rc = fail(x, vg_yaml_error(&x->y, v, "notify.digest_at must be a local time HH:MM "
                                           "(Asia/Shanghai, 00:00 to 23:59), e.g. \"08:30\", not '%s'", s));
            else
                x->c->sms_digest_minute = h * 60 + m;
            free(s);
        }
    }
    return rc;
}

/* Passwords may be written in the file itself: zero them in the parsed document. */
static void wipe_passwords(struct vg_yaml *y)
{
    for (yaml_node_t *n = y->doc.nodes.start; n < y->doc.nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = vg_yaml_node(y, p->key), *v = vg_yaml_node(y, p->value);
            if (vg_yaml_is_scalar(k) && vg_yaml_is_scalar(v) && !strcmp(vg_yaml_str(k), "password")) {
                volatile unsigned char *s = v->data.scalar.value;
                for (size_t i = 0; i < v->data.scalar.length; i++)
                    s[i] = 0;
            }
        }
    }
}

static int read_key(struct ctx *x, enum vg_config_key k, yaml_node_t *n)
{
    const char *what = keys[k].name;
    struct vg_config *c = x->c;
    switch (keys[k].kind) {
    case K_PATHS:
        return read_paths(x, n, what);
    case K_PATH:
        return read_path(x, n, what, &c->registry);
    case K_ENDPOINT: {
        char **slot = k == VG_CONF_INPUT ? &c->input : k == VG_CONF_ALERTS ? &c->alerts
                    : k == VG_CONF_SMS ? &c->sms : k == VG_CONF_DEAD_LETTER ? &c->dead_letter : &c->state;
        if (read_endpoint(x, n, what, slot) < 0)
            return VG_EINVAL;
        /* `input: -` is a YAML list item; stdin says the same without quotes */
        if (k == VG_CONF_INPUT && *slot && !strcmp(*slot, "stdin"))
            strcpy(*slot, "-");
        return 0;
    }
    case K_THREADS:
        return read_threads(x, n, what);
    case K_DURATION:
        return read_duration(x, n, what, false, &c->lateness_ms);
    case K_POSITIVE_DURATION:
        return read_duration(x, n, what, true, &c->checkpoint_ms);
    case K_TS:
        return read_ts(x, n, what, k == VG_CONF_START ? &c->start : &c->until);
    case K_BOOL:
        return read_bool(x, n, what, &c->summary);
    case K_NOTIFY:
        return read_notify(x, n, what);
    }
    return 0;
}

/*
 * The YAML trap of `password: ${X}` inside { }: the braces of ${X} end the
 * flow mapping and libyaml says only "did not find expected ',' or '}'".
 * When the line of a syntax error holds "${" after a '{', the message says so.
 */
static void flow_hint(const char *file, struct vg_diag *syntax)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f) && ++n < syntax->line)
        ;
    fclose(f);
    const char *var = n == syntax->line ? strstr(line, "${") : NULL;
    const char *brace = var ? memchr(line, '{', (size_t)(var - line)) : NULL;
    static const char hint[] = " (inside { } write a ${NAME} value in quotes, e.g. password: \"${NAME}\": "
                               "its braces end the mapping)";
    char *msg = brace ? malloc(strlen(syntax->msg) + sizeof hint) : NULL;
    if (!msg)
        return;
    strcpy(msg, syntax->msg);
    strcat(msg, hint);
    free(syntax->msg);
    syntax->msg = msg;
}

int vg_config_load(struct vg_config *c, const char *file, struct vg_diags *diags)
{
    vg_config_init(c);
    FILE *f = fopen(file, "rb");
    if (!f) {
        int e = errno;
        vg_diags_add(diags, file, 0, 0, "cannot open the config file: %s", strerror(e));
        return e == ENOENT ? VG_ENOENT : VG_EIO;
    }
    fclose(f);
    struct ctx x = {.c = c};
    if (!(c->file = strdup(file)))
        return VG_ENOMEM;
    const char *slash = strrchr(file, '/');
    if (slash && !(x.dir = slash == file ? strdup("/") : strndup(file, (size_t)(slash - file)))) {
        vg_config_fini(c);
        return VG_ENOMEM;
    }
    size_t before = diags->n;
    if (vg_yaml_load(&x.y, file, diags) < 0) {
        x.rc = VG_EINVAL;
        if (diags->n > before)
            flow_hint(file, &diags->v[diags->n - 1]);
        goto done;
    }
    yaml_node_t *root = vg_yaml_root(&x.y), *v;
    if (!vg_yaml_is_map(root)) {
        fail(&x, vg_yaml_error(&x.y, root, "a config file is a mapping that starts with 'version: 1'"));
        goto done;
    }
    if (vg_yaml_check_keys(&x.y, root, "config", top_keys) < 0)
        fail(&x, VG_EINVAL);
    if (!(v = vg_yaml_get(&x.y, root, "version")))
        fail(&x, vg_yaml_error(&x.y, root, "config needs 'version: 1'"));
    else if (!vg_yaml_is_scalar(v) || strcmp(vg_yaml_str(v), "1"))
        fail(&x, vg_yaml_error(&x.y, v, "config version must be 1 (the only version there is)"));
    for (int k = 0; k < VG_CONF_KEYS; k++) {
        if (!(v = vg_yaml_get(&x.y, root, keys[k].name)))
            continue;
        set_pos(&x, (enum vg_config_key)k, v);
        read_key(&x, (enum vg_config_key)k, v);
    }
done:
    if (x.y.loaded)
        wipe_passwords(&x.y);
    vg_yaml_fini(&x.y);
    free(x.dir);
    if (x.oom || x.rc < 0) {
        vg_config_fini(c);
        return x.oom ? VG_ENOMEM : VG_EINVAL;
    }
    return VG_OK;
}

const char *vg_config_endpoint_show(const char *uri, char *buf, size_t cap)
{
    if (!is_uri(uri)) {
        snprintf(buf, cap, "%s", uri);
        return buf;
    }
    const char *auth = strstr(uri, "://") + 3;
    size_t alen = strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    bool user = at && at > auth && *auth != ':';
    bool pass = at && memchr(auth, ':', (size_t)(at - auth));
    const char *host = at ? at + 1 : auth;
    size_t hlen = strcspn(host, "?");
    const char *q = host[hlen] == '?' ? host + hlen + 1 : NULL;
    int n_opts = 0;
    for (const char *p = q; p && *p;) {
        size_t len = strcspn(p, "&");
        n_opts += len > 0;
        p += len + (p[len] == '&');
    }
    char extra[96] = "";
    size_t o = 0;
    if (user)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "user");
    if (pass)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "%spassword", o ? ", " : "");
    if (n_opts)
        o += (size_t)snprintf(extra + o, sizeof extra - o, "%s%d option%s", o ? ", " : "", n_opts,
                              n_opts == 1 ? "" : "s");
    snprintf(buf, cap, "%.*s%.*s%s%s%s", (int)(auth - uri), uri, (int)hlen, host, o ? " (" : "", extra,
             o ? ")" : "");
    return buf;
}
