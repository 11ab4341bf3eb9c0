/*
 * redis_conn.c: the hiredis connection shared by the Redis state store and
 * the Redis Stream sink (see redis_conn.h).
 * Owns: connecting, the handshake, the messages about the server, SIGPIPE.
 * Must never: retry, sleep or print (callers decide), or show a password.
 * DESIGN: blocking hiredis with SO_RCVTIMEO/SO_SNDTIMEO set to the timeout,
 * so no socket operation waits longer than it; a timed-out read leaves the
 * protocol out of step, so every I/O error drops the connection and the next
 * call connects afresh.
 */
#include "adapters/redis_conn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- SIGPIPE ------------------------------------------------------------------ */

void vg__redis_sigpipe_block(struct vg_redis_sigpipe *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void vg__redis_sigpipe_unblock(struct vg_redis_sigpipe *g)
{
    if (!g->was_pending) {
        sigset_t set, pending;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE) == 1) {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- address and credentials ---------------------------------------------------- */

static char *dup_or_null(const char *s, bool *nomem)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    *nomem |= !d;
    return d;
}

int vg__redis_conn_init(struct vg_redis_conn *rc, struct vg_uri *u, struct vg_error *err)
{
    memset(rc, 0, sizeof *rc);
    rc->timeout_ms = VG_REDIS_DEFAULT_TIMEOUT_MS;
    int ret = VG_OK;
    if (u->user && !u->password) {
        ret = vg_error_set(err, VG_EUSAGE, "bad %s URI: write the password after a colon, "
                           "redis://:PASSWORD@HOST:PORT (or USER:PASSWORD@)", u->what);
        goto fail;
    }
    if (strchr(u->hosts, ',')) {
        ret = vg_error_set(err, VG_EUSAGE, "bad %s URI: one Redis server only, not the list '%.100s' "
                           "(this build has no Redis Cluster client)", u->what, u->hosts);
        goto fail;
    }
    if (strlen(u->host) >= sizeof rc->host) {
        ret = vg_error_set(err, VG_EUSAGE, "bad %s URI: host too long '%.100s'", u->what, u->host);
        goto fail;
    }
    snprintf(rc->host, sizeof rc->host, "%s", u->host);
    rc->port = u->port ? u->port : VG_REDIS_DEFAULT_PORT;
    snprintf(rc->where, sizeof rc->where, u->hosts[0] == '[' ? "[%s]:%d" : "%s:%d", rc->host, rc->port);
    if ((ret = vg_uri_duration(u, "timeout", 1, 600000, &rc->timeout_ms, err)) < 0)
        goto fail;
    bool nomem = false;
    rc->user = dup_or_null(u->user, &nomem);
    rc->password = dup_or_null(u->password, &nomem);
    if (nomem) {
        ret = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    return VG_OK;
fail:
    vg__redis_conn_fini(rc);
    return ret;
}

void vg__redis_conn_fini(struct vg_redis_conn *rc)
{
    vg__redis_drop(rc);
    if (rc->password)
        explicit_bzero(rc->password, strlen(rc->password));
    free(rc->password);
    free(rc->user);
    rc->password = rc->user = NULL;
}

/* ---- the connection ------------------------------------------------------------- */

void vg__redis_drop(struct vg_redis_conn *rc)
{
    if (rc->c)
        redisFree(rc->c);
    rc->c = NULL;
}

const char *vg__redis_io_reason(const redisContext *c)
{
    if (!c)
        return "out of memory";
    if (c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable"))
        return "no answer in time";
    return c->errstr[0] ? c->errstr : "connection lost";
}

int vg__redis_io_fail(struct vg_redis_conn *rc, const char *doing, struct vg_error *err)
{
    snprintf(rc->why, sizeof rc->why, "%s", vg__redis_io_reason(rc->c));
    vg_error_set(err, VG_EIO, "lost Redis at %s while %s (%s)", rc->where, doing, rc->why);
    vg__redis_drop(rc);
    return VG_EIO;
}

bool vg__redis_not_ready(const char *s)
{
    static const char *const words[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"};
    for (size_t i = 0; i < VG_ARRAY_LEN(words); i++) {
        size_t n = strlen(words[i]);
        if (!strncmp(s, words[i], n) && (s[n] == ' ' || s[n] == 0))
            return true;
    }
    return false;
}

/* Run one command of the handshake; an error reply fills @p err and drops the connection. */
static int handshake(struct vg_redis_conn *rc, int argc, const char **argv, const char *doing,
                     struct vg_error *err)
{
    redisReply *r = redisCommandArgv(rc->c, argc, argv, NULL);
    if (!r)
        return vg__redis_io_fail(rc, doing, err);
    int ret = VG_OK;
    if (r->type == REDIS_REPLY_ERROR) {
        rc->refused = true;
        rc->not_ready = vg__redis_not_ready(r->str);
        snprintf(rc->why, sizeof rc->why, "%s", r->str);
        ret = vg_error_set(err, VG_EIO, "Redis at %s refused %s: %.200s", rc->where, doing, r->str);
    }
    freeReplyObject(r);
    if (ret < 0)
        vg__redis_drop(rc);
    return ret;
}

int vg__redis_connect(struct vg_redis_conn *rc, const char *instead, struct vg_error *err)
{
    vg__redis_drop(rc);
    rc->refused = rc->not_ready = false;
    rc->why[0] = 0;
    struct timeval tv = {(time_t)(rc->timeout_ms / 1000), (suseconds_t)(rc->timeout_ms % 1000) * 1000};
    rc->c = redisConnectWithTimeout(rc->host, rc->port, tv);
    if (!rc->c || rc->c->err) {
        snprintf(rc->why, sizeof rc->why, "%s", vg__redis_io_reason(rc->c));
        vg_error_set(err, VG_EIO, "cannot reach Redis at %s (%s): start it with 'redis-server --port %d', "
                     "or %s", rc->where, vg__redis_io_reason(rc->c), rc->port, instead);
        vg__redis_drop(rc);
        return VG_EIO;
    }
    if (redisSetTimeout(rc->c, tv) != REDIS_OK)
        return vg__redis_io_fail(rc, "setting its timeout", err);
    redisEnableKeepAlive(rc->c);
    int ret = VG_OK;
    if (rc->password) {
        const char *argv[3] = {"AUTH", rc->user ? rc->user : rc->password, rc->password};
        ret = handshake(rc, rc->user ? 3 : 2, argv, "the password (AUTH)", err);
    }
    char db[24];
    snprintf(db, sizeof db, "%ld", rc->db);
    const char *select[2] = {"SELECT", db};
    if (ret == VG_OK && rc->db)
        ret = handshake(rc, 2, select, "the database number (SELECT)", err);
    const char *ping[1] = {"PING"};
    if (ret == VG_OK)
        ret = handshake(rc, 1, ping, "PING", err);
    return ret;
}
