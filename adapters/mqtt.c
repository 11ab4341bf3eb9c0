/*
 * mqtt.c: MQTT as a source and a sink, over Eclipse Paho's asynchronous C
 * client with TLS (paho-mqtt3as):
 *   --input  mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/FILTER[,FILTER...]?opts
 *   --alerts mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/TOPIC_TEMPLATE?opts
 * (docs/endpoints.md lists the options; the tables below are the truth).
 * Owns: one Paho client per source or sink, the bounded queue between Paho's
 * network thread and the reader, and the sink's copies of unacknowledged
 * records. Must never: drop a message or a record (a full queue or a full
 * in-flight window waits: back-pressure); print or log a password; call
 * into Paho while holding one of our own locks (Paho runs our callbacks
 * under its global lock, so that order would deadlock); block Paho's network
 * thread when another vigil MQTT client in this process needs it.
 *
 * DESIGN
 * Paho facts this file is built on (Paho C 1.3.12, read from its source):
 *  - Every client in a process shares ONE receive thread and ONE send thread,
 *    and callbacks run on the receive thread under Paho's global mutex. A
 *    callback that waits stops every Paho client in the process, including
 *    our own sink's PUBACKs and its reconnects.
 *  - For QoS 1 Paho sends the PUBACK before calling messageArrived: the
 *    broker regards a message as delivered once it reached this process. The
 *    source therefore has nothing to acknowledge later (mark/commit are NULL);
 *    what sits in its queue when the process dies is lost. Durable input
 *    across a vigil crash is Kafka's job; clean=false only keeps what the
 *    broker holds while vigil is away.
 *  - With a clean session (v5: session expiry 0), losing the connection
 *    fails every in-flight publish (onFailure, "operation incomplete") and
 *    Paho forgets it; publishes not yet written stay queued in Paho.
 *
 * Source: messageArrived copies the payload (at most VG_LINE_MAX bytes,
 * orig_len telling the real size) and the plant's topic level into the fill
 * half of a double buffer; poll swaps halves when the drain half is used up
 * and hands out slices of it, so slices stay valid until the next poll and,
 * once both halves have grown, nothing is allocated per message. Wake-ups:
 * poll waits only while the queue is empty (queued == 0, under c.lock), so
 * messageArrived signals the reader only for the message that makes it
 * non-empty; the reader then takes everything queued, and messages that
 * arrive while it works are found by its next poll without a signal. The queue
 * is bounded by count (queue=) and bytes (queue_bytes=); when it is full the
 * callback waits on a condition variable, which stops Paho reading the
 * socket: TCP back-pressure to the broker, never a drop. Two escapes keep
 * that wait from doing harm, and each admits the one message over the bound
 * (counted, and logged once): a vigil MQTT sink in this process is waiting
 * for Paho (g_sink_busy: otherwise input and alerts would wait on each other
 * for ever), or the wait reached half the keepalive (Paho sent the PUBACK
 * just before the callback, so waiting at most keepalive/2 per message keeps
 * the broker from dropping the connection, and with it, in a clean session,
 * everything it holds for us).
 *
 * Sink: a fixed table of max_inflight slots, each owning reusable copies of
 * one record's topic and payload. put takes a free slot (waiting when none
 * is free: back-pressure), publishes it and returns; the publish's success
 * callback frees the slot; its failure callback (connection lost) marks it
 * for resending, which happens on reconnect (the connected callback), or
 * from put/flush while they wait. Publishing while disconnected fails at
 * once, so the slot waits for the reconnect in the same way. The sink uses
 * a clean session, so Paho never resends on its own and every record is
 * sent again exactly by us: at least once, duplicates possible only for
 * records in flight when a connection broke. flush waits until no slot is
 * used, i.e. every record was acknowledged (QoS 1 PUBACK; QoS 0: written).
 * A v5 PUBACK refusal (not authorized, bad topic…) cannot be mended by
 * retrying: put/flush return it and the run stops.
 */
#include "engine/adapter.h"
#include "engine/json.h"
#include "engine/uri.h"

#include <MQTTAsync.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HOSTS 16
#define MAX_FILTERS 64
#define DEF_QUEUE 65536
#define DEF_QUEUE_BYTES (64L << 20)
#define DEF_INFLIGHT 1000
#define MAX_INFLIGHT 65000           /* Paho fails at 65,535 message ids */
#define DEF_KEEPALIVE_MS 60000
#define DEF_CONNECT_MS 5000
#define DEF_RETRY_MIN_MS 1000
#define DEF_RETRY_MAX_MS 30000
#define DEF_SESSION_EXPIRY_MS (24L * 3600 * 1000)
#define CLOSE_FLUSH_MS 5000          /* close: wait this long for acknowledgements */
#define DISCONNECT_MS 1000
#define TICK_MS 100                  /* put/flush re-check period while waiting */

#define SOURCE_OPTS "qos, client_id, clean, plant_level, version, keepalive, connect_timeout, " \
                    "retry_min, retry_max, session_expiry, queue, queue_bytes, tls, ca, cert, key, insecure"
#define SINK_OPTS "qos, retain, client_id, max_inflight, version, keepalive, connect_timeout, " \
                  "retry_min, retry_max, tls, ca, cert, key, insecure"

/* ---- process-wide: a sink that needs Paho's shared thread --------------- */

static atomic_int g_sink_busy;      /* sink calls inside or waiting for Paho */
static atomic_int g_src_blocked;    /* source callbacks waiting for room */
static atomic_int g_source_seq, g_sink_seq;   /* number default client ids */
static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vg_source *g_sources; /* open sources, to wake them (g_reg_lock) */

static void wake_sources(void);

/* A sink thread is about to call Paho or wait for it: no source may keep Paho's thread. */
static void sink_enter(void)
{
    atomic_fetch_add(&g_sink_busy, 1);
    if (atomic_load(&g_src_blocked) > 0)
        wake_sources();
}

static void sink_leave(void)
{
    atomic_fetch_sub(&g_sink_busy, 1);
}

/* ---- time ---------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec abs_ms(int64_t at_ms)
{
    struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L};
    return ts;
}

static void cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* Wait on @p c until @p until_ms (monotonic); < 0 waits without end. */
static int cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t until_ms)
{
    if (until_ms < 0)
        return pthread_cond_wait(c, m);
    struct timespec ts = abs_ms(until_ms);
    return pthread_cond_timedwait(c, m, &ts);
}

/* ---- the parts a source and a sink share ---------------------------------- */

struct conf {
    char scheme[16];                /* "mqtt" or "mqtts", as written */
    char *uris[MAX_HOSTS];          /* "tcp://h:p" or "ssl://h:p" for Paho */
    int n_uris;
    char host[256];                 /* the first broker, for messages */
    int port;
    char where[300];                /* "host:port" (", …" when several) */
    char name[600];                 /* scheme://hosts/path, never the password */
    char *user, *password;          /* password wiped after connect */
    char client_id[256];
    int version;                    /* MQTTVERSION_5 or MQTTVERSION_3_1_1 */
    int qos;
    bool clean, tls, insecure;
    char *ca, *cert, *key;
    vg_ts keepalive_ms, connect_ms, retry_min_ms, retry_max_ms, session_expiry_ms;
};

enum { C_CONNECTING, C_UP, C_READY, C_FAILED };
#define SUBSCRIBE_REFUSED (-1000)        /* fail_code: the first subscription, not the connect, failed */

/* One Paho client and what its callbacks report. First member of the source and the sink. */
struct conn {
    MQTTAsync cli;
    struct conf cf;
    const char *role;               /* "input" or "alerts" in log lines */
    pthread_mutex_t lock;
    pthread_cond_t cond;            /* state changes, acks, room (sink) */
    int state;                      /* C_* (lock) */
    bool connected;                 /* now (lock) */
    bool ever_up;                   /* the first connection was made (lock) */
    bool disc_done;                 /* disconnect completed (lock) */
    int fail_code, fail_reason;     /* the first connect's failure (lock) */
    char fail_msg[320];
    char tls_err[256];              /* last OpenSSL error text (lock) */
    MQTTProperties props;           /* v5 connect properties */
    MQTTAsync_SSLOptions ssl;
};

static void conf_fini(struct conf *cf)
{
    for (int i = 0; i < cf->n_uris; i++)
        free(cf->uris[i]);
    if (cf->password) {
        volatile char *p = cf->password;
        while (*p)
            *p++ = 0;
    }
    free(cf->user);
    free(cf->password);
    free(cf->ca);
    free(cf->cert);
    free(cf->key);
    memset(cf, 0, sizeof *cf);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Milliseconds to Paho's whole seconds, rounding up, at least @p lo. */
static int secs(vg_ts ms, int lo)
{
    long s = (long)((ms + 999) / 1000);
    return s < lo ? lo : s > 0x7fffffffL ? 0x7fffffff : (int)s;
}

static int file_readable(const char *what, const char *opt, const char *path, struct vg_error *err)
{
    if (access(path, R_OK) == 0)
        return VG_OK;
    return vg_error_set(err, VG_EUSAGE, "bad %s URI: option %s=%s: cannot read it: %s", what, opt, path,
                        strerror(errno));
}

/* Split u->hosts ("h1:p1,[::1]:p2") into Paho server URIs. */
static int parse_hosts(struct vg_uri *u, struct conf *cf, struct vg_error *err)
{
    const char *p = u->hosts;
    int defport = cf->tls ? 8883 : 1883;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (cf->n_uris == MAX_HOSTS)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: more than %d brokers", u->what, MAX_HOSTS);
        char host[256];
        const char *port = NULL;
        size_t hn;
        bool v6 = false;
        if (n && *p == '[') {
            const char *rb = memchr(p, ']', n);
            if (!rb)
                return vg_error_set(err, VG_EUSAGE, "bad %s URI: unclosed '[' in '%s'", u->what, u->hosts);
            hn = (size_t)(rb - p - 1);
            memcpy(host, p + 1, hn < sizeof host ? hn : sizeof host - 1);
            v6 = true;
            port = rb + 1 < p + n && rb[1] == ':' ? rb + 2 : NULL;
        } else {
            const char *colon = memchr(p, ':', n);
            hn = colon ? (size_t)(colon - p) : n;
            memcpy(host, p, hn < sizeof host ? hn : sizeof host - 1);
            port = colon ? colon + 1 : NULL;
        }
        if (hn == 0 || hn >= sizeof host)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: a broker in '%s' has no host (or a host over "
                                "255 bytes)", u->what, u->hosts);
        host[hn] = 0;
        long pv = defport;
        if (port) {
            char *e;
            pv = strtol(port, &e, 10);
            if (e != p + n || pv < 1 || pv > 65535)
                return vg_error_set(err, VG_EUSAGE, "bad %s URI: bad port in broker '%.*s'", u->what, (int)n, p);
        }
        char buf[300];
        snprintf(buf, sizeof buf, "%s://%s%s%s:%ld", cf->tls ? "ssl" : "tcp", v6 ? "[" : "", host,
                 v6 ? "]" : "", pv);
        if (!(cf->uris[cf->n_uris++] = strdup(buf)))
            return vg_error_set(err, VG_ENOMEM, "out of memory");
        if (cf->n_uris == 1) {
            snprintf(cf->host, sizeof cf->host, "%s", host);
            cf->port = (int)pv;
        }
        p += n + (p[n] == ',');
    }
    if (cf->n_uris == 0)
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: no broker host", u->what);
    bool v6 = strchr(cf->host, ':') != NULL;
    snprintf(cf->where, sizeof cf->where, "%s%s%s:%d%s", v6 ? "[" : "", cf->host, v6 ? "]" : "", cf->port,
             cf->n_uris > 1 ? " (and the other brokers listed)" : "");
    return VG_OK;
}

/* The options both directions have; @p sink picks the defaults that differ. */
static int parse_common(struct vg_uri *u, struct conf *cf, bool sink, struct vg_error *err)
{
    int rc;
    long qos = 1, version = 5;
    const char *v;
    snprintf(cf->scheme, sizeof cf->scheme, "%s", u->scheme);
    cf->tls = !strcmp(u->scheme, "mqtts");
    cf->keepalive_ms = DEF_KEEPALIVE_MS;
    cf->connect_ms = DEF_CONNECT_MS;
    cf->retry_min_ms = DEF_RETRY_MIN_MS;
    cf->retry_max_ms = DEF_RETRY_MAX_MS;
    cf->session_expiry_ms = DEF_SESSION_EXPIRY_MS;
    cf->clean = true;
    if ((rc = vg_uri_long(u, "qos", 0, 1, &qos, err)) < 0)
        return rc;
    cf->qos = (int)qos;
    if ((v = vg_uri_opt(u, "version"))) {
        if (!strcmp(v, "5") || !strcmp(v, "5.0"))
            version = 5;
        else if (!strcmp(v, "3.1.1") || !strcmp(v, "311") || !strcmp(v, "4"))
            version = 4;
        else
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: option version=%s must be 5 or 3.1.1", u->what, v);
    }
    cf->version = version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    if ((rc = vg_uri_duration(u, "keepalive", 0, 65535000, &cf->keepalive_ms, err)) < 0 ||
        (rc = vg_uri_duration(u, "connect_timeout", 100, 3600000, &cf->connect_ms, err)) < 0 ||
        (rc = vg_uri_duration(u, "retry_min", 1, 3600000, &cf->retry_min_ms, err)) < 0 ||
        (rc = vg_uri_duration(u, "retry_max", 1, 86400000, &cf->retry_max_ms, err)) < 0 ||
        (rc = vg_uri_bool(u, "tls", &cf->tls, err)) < 0 || (rc = vg_uri_bool(u, "insecure", &cf->insecure, err)) < 0)
        return rc;
    if (cf->retry_max_ms < cf->retry_min_ms)
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: retry_max must not be less than retry_min", u->what);
    const char *ca = vg_uri_opt(u, "ca"), *cert = vg_uri_opt(u, "cert"), *key = vg_uri_opt(u, "key");
    if ((ca || cert || key || cf->insecure) && !cf->tls)
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: ca, cert, key and insecure are TLS options: use "
                            "mqtts:// or add tls=true", u->what);
    if ((cert && !key) || (key && !cert))
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: a client certificate needs both cert=FILE and key=FILE",
                            u->what);
    if ((ca && (rc = file_readable(u->what, "ca", ca, err)) < 0) ||
        (cert && (rc = file_readable(u->what, "cert", cert, err)) < 0) ||
        (key && (rc = file_readable(u->what, "key", key, err)) < 0))
        return rc;
    cf->ca = dup_or_null(ca);
    cf->cert = dup_or_null(cert);
    cf->key = dup_or_null(key);
    cf->user = dup_or_null(u->user);
    cf->password = dup_or_null(u->password);
    if ((ca && !cf->ca) || (cert && !cf->cert) || (key && !cf->key) || (u->user && !cf->user) ||
        (u->password && !cf->password))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    if ((v = vg_uri_opt(u, "client_id"))) {
        if (!*v || strlen(v) >= sizeof cf->client_id)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: client_id must be 1 to %zu bytes", u->what,
                                sizeof cf->client_id - 1);
        snprintf(cf->client_id, sizeof cf->client_id, "%s", v);
    } else {
        char h[128] = "host";
        gethostname(h, sizeof h - 1);
        h[sizeof h - 1] = 0;
        int n = atomic_fetch_add(sink ? &g_sink_seq : &g_source_seq, 1);
        /* the first source is vigil-HOST-PID as documented; every other client differs */
        if (!sink && n == 0)
            snprintf(cf->client_id, sizeof cf->client_id, "vigil-%s-%ld", h, (long)getpid());
        else
            snprintf(cf->client_id, sizeof cf->client_id, "vigil-%s-%ld-%s%d", h, (long)getpid(),
                     sink ? "out" : "in", n);
    }
    if ((rc = parse_hosts(u, cf, err)) < 0)
        return rc;
    snprintf(cf->name, sizeof cf->name, "%s://%s/%s", u->scheme, u->hosts, u->path);
    return VG_OK;
}

/* ---- connecting --------------------------------------------------------- */

static int ssl_error(const char *str, size_t len, void *ctx)
{
    struct conn *c = ctx;
    pthread_mutex_lock(&c->lock);
    snprintf(c->tls_err, sizeof c->tls_err, "%.*s", (int)(len > 200 ? 200 : len), str);
    size_t n = strlen(c->tls_err);
    while (n && (c->tls_err[n - 1] == '\n' || c->tls_err[n - 1] == '\r'))
        c->tls_err[--n] = 0;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static void connect_failed(struct conn *c, int code, int reason, const char *msg)
{
    pthread_mutex_lock(&c->lock);
    if (c->state == C_CONNECTING) {
        c->state = C_FAILED;
        c->fail_code = code;
        c->fail_reason = reason;
        snprintf(c->fail_msg, sizeof c->fail_msg, "%s", msg ? msg : "");
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *d)
{
    connect_failed(ctx, d ? d->code : MQTTASYNC_FAILURE, 0, d ? d->message : NULL);
}

static void on_connect_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    connect_failed(ctx, d ? d->code : MQTTASYNC_FAILURE, d ? (int)d->reasonCode : 0, d ? d->message : NULL);
}

static void on_disconnected(void *ctx, MQTTAsync_successData *d)
{
    struct conn *c = ctx;
    (void)d;
    pthread_mutex_lock(&c->lock);
    c->disc_done = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData *d)
{
    (void)d;
    on_disconnected(ctx, NULL);
}

static void on_disconnected5(void *ctx, MQTTAsync_successData5 *d)
{
    (void)d;
    on_disconnected(ctx, NULL);
}

static void on_disconnect_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    (void)d;
    on_disconnected(ctx, NULL);
}

/* A TCP connect to the first broker, to name why Paho could not reach it. */
static void probe(const struct conf *cf, vg_ts timeout_ms, char *why, size_t cap)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cf->port);
    int grc = getaddrinfo(cf->host, port, &hints, &res);
    if (grc != 0) {
        snprintf(why, cap, "cannot resolve host '%s': %s", cf->host, gai_strerror(grc));
        return;
    }
    int e = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            close(fd);
            e = 0;
            break;
        }
        e = errno;
        if (e == EINPROGRESS) {
            struct pollfd pfd = {fd, POLLOUT, 0};
            int pr = poll(&pfd, 1, (int)timeout_ms);
            socklen_t sl = sizeof e;
            if (pr == 0)
                e = ETIMEDOUT;
            else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
                e = errno;
        }
        close(fd);
        if (e == 0)
            break;
    }
    freeaddrinfo(res);
    if (e == 0)
        why[0] = 0;   /* TCP works: the trouble is TLS or MQTT */
    else if (e == ECONNREFUSED)
        snprintf(why, cap, "connection refused");
    else
        snprintf(why, cap, "%s", strerror(e));
}

static void lower_first(char *s)
{
    if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
        s[0] = (char)(s[0] - 'A' + 'a');
}

/* The first connect failed: say why in words a user can act on. */
static int connect_error(struct conn *c, const char *what, bool timed_out, struct vg_error *err)
{
    const struct conf *cf = &c->cf;
    char why[300], tls_err[256];
    pthread_mutex_lock(&c->lock);
    int code = c->fail_code, reason = c->fail_reason;
    snprintf(tls_err, sizeof tls_err, "%s", c->tls_err);
    pthread_mutex_unlock(&c->lock);
    if (!timed_out && cf->version == MQTTVERSION_5 && reason < 0x80 && code >= 0x80 && code <= 0xff)
        reason = code;
    if (!timed_out && cf->version == MQTTVERSION_5 && reason >= 0x80) {
        snprintf(why, sizeof why, "%s", MQTTReasonCode_toString((enum MQTTReasonCodes)reason));
        lower_first(why);
        return vg_error_set(err, VG_EIO, "%s: MQTT broker %s refused the connection: %s (reason 0x%02x)%s", what,
                            cf->where, why, reason,
                            reason == 0x86 || reason == 0x87 ? "; check the user name and password in the URI" : "");
    }
    if (!timed_out && code > 0 && code <= 5) {
        static const char *const connack[] = {"", "unacceptable protocol version (try version=3.1.1)",
                                              "client identifier rejected (set client_id=)",
                                              "server unavailable",
                                              "bad user name or password", "not authorized"};
        return vg_error_set(err, VG_EIO, "%s: MQTT broker %s refused the connection: %s%s", what, cf->where,
                            connack[code], code >= 4 ? "; check the user name and password in the URI" : "");
    }
    probe(cf, cf->connect_ms < 2000 ? cf->connect_ms : 2000, why, sizeof why);
    if (!strncmp(why, "cannot resolve", 14))
        return vg_error_set(err, VG_EIO, "%s: cannot reach MQTT broker %s: %s", what, cf->where, why);
    if (why[0])
        return vg_error_set(err, VG_EIO, "%s: cannot reach MQTT broker %s: %s (is mosquitto running? start "
                            "one with: mosquitto -p %d)", what, cf->where, why, cf->port);
    if (cf->tls)
        return vg_error_set(err, VG_EIO, "%s: MQTT broker %s accepts TCP connections but the TLS handshake "
                            "failed%s%s (is it a TLS listener? check ca=, cert=, key=; insecure=true skips "
                            "verifying the server)", what, cf->where, tls_err[0] ? ": " : "", tls_err);
    if (timed_out)
        return vg_error_set(err, VG_EIO, "%s: MQTT broker %s accepts TCP connections but did not complete an "
                            "MQTT connect within %lld ms (is it an MQTT listener? connect_timeout=DUR waits "
                            "longer)", what, cf->where, (long long)cf->connect_ms);
    return vg_error_set(err, VG_EIO, "%s: the MQTT connect to %s failed: %s (Paho code %d)%s", what, cf->where,
                        c->fail_msg[0] ? c->fail_msg : MQTTAsync_strerror(code), code,
                        cf->version == MQTTVERSION_5 ? "; an MQTT 3.1.1 broker needs version=3.1.1" : "");
}

/*
 * Create the client and start the first connect (Paho keeps reconnecting
 * with backoff after that). Callbacks must be set by the caller's @p setup.
 * @thread the opener.
 */
static int conn_start(struct conn *c, MQTTAsync_messageArrived *ma, MQTTAsync_connectionLost *cl,
                      MQTTAsync_connected *co, int max_inflight, int max_buffered, struct vg_error *err)
{
    struct conf *cf = &c->cf;
    MQTTAsync_createOptions crt = MQTTAsync_createOptions_initializer;
    crt.MQTTVersion = cf->version;
    crt.sendWhileDisconnected = 0;   /* we keep records ourselves while disconnected */
    crt.maxBufferedMessages = max_buffered;
    int rc = MQTTAsync_createWithOptions(&c->cli, cf->uris[0], cf->client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                         NULL, &crt);
    if (rc != MQTTASYNC_SUCCESS) {
        c->cli = NULL;
        return vg_error_set(err, VG_EUSAGE, "cannot create an MQTT client for %s: %s", cf->name,
                            MQTTAsync_strerror(rc));
    }
    if ((rc = MQTTAsync_setCallbacks(c->cli, c, cl, ma, NULL)) != MQTTASYNC_SUCCESS ||
        (rc = MQTTAsync_setConnected(c->cli, c, co)) != MQTTASYNC_SUCCESS)
        return vg_error_set(err, VG_EIO, "cannot set up the MQTT client for %s: %s", cf->name,
                            MQTTAsync_strerror(rc));
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
    if (cf->version == MQTTVERSION_5) {
        o = o5;
        o.cleanstart = cf->clean;
        o.onSuccess5 = NULL;
        o.onFailure5 = on_connect_fail5;
        if (!cf->clean) {
            MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
            p.value.integer4 = (unsigned)(cf->session_expiry_ms / 1000);
            MQTTProperties_add(&c->props, &p);
            o.connectProperties = &c->props;
        }
    } else {
        o.cleansession = cf->clean;
        o.onFailure = on_connect_fail;
    }
    o.MQTTVersion = cf->version;
    o.context = c;
    o.keepAliveInterval = cf->keepalive_ms ? secs(cf->keepalive_ms, 1) : 0;
    o.maxInflight = max_inflight;
    o.connectTimeout = secs(cf->connect_ms, 1);
    o.automaticReconnect = 1;
    o.minRetryInterval = secs(cf->retry_min_ms, 1);
    o.maxRetryInterval = secs(cf->retry_max_ms, 1);
    o.username = cf->user;
    o.password = cf->password;
    if (cf->n_uris > 1) {
        o.serverURIcount = cf->n_uris;
        o.serverURIs = cf->uris;
    }
    if (cf->tls) {
        MQTTAsync_SSLOptions s = MQTTAsync_SSLOptions_initializer;
        c->ssl = s;
        c->ssl.trustStore = cf->ca;
        c->ssl.keyStore = cf->cert;
        c->ssl.privateKey = cf->key;
        c->ssl.enableServerCertAuth = !cf->insecure;
        c->ssl.verify = !cf->insecure;
        c->ssl.ssl_error_cb = ssl_error;
        c->ssl.ssl_error_context = c;
        o.ssl = &c->ssl;
    }
    rc = MQTTAsync_connect(c->cli, &o);
    /* Paho copied the credentials for its reconnects: ours are no longer needed */
    if (cf->password) {
        volatile char *p = cf->password;
        while (*p)
            *p++ = 0;
    }
    if (rc != MQTTASYNC_SUCCESS)
        return vg_error_set(err, VG_EUSAGE, "cannot connect to MQTT broker %s: %s", cf->where,
                            MQTTAsync_strerror(rc));
    return VG_OK;
}

/* Wait for state @p want (or a failure) until the connect timeout; @returns 0 or an error. */
static int conn_wait(struct conn *c, int want, const char *what, struct vg_error *err)
{
    int64_t until = mono_ms() + c->cf.connect_ms + 500;
    pthread_mutex_lock(&c->lock);
    while (c->state != want && c->state != C_FAILED && mono_ms() < until)
        cond_wait_until(&c->cond, &c->lock, until);
    int st = c->state;
    pthread_mutex_unlock(&c->lock);
    if (st == want)
        return VG_OK;
    if (st == C_FAILED && c->fail_code == SUBSCRIBE_REFUSED)   /* fail_msg says why */
        return vg_error_set(err, VG_EIO, "%s: %s", what, c->fail_msg);
    return connect_error(c, what, st != C_FAILED, err);
}

/* Disconnect with a short timeout, then destroy the client. @thread the closer. */
static void conn_stop(struct conn *c)
{
    if (c->cli) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
        if (c->cf.version == MQTTVERSION_5) {
            d = d5;
            d.onSuccess5 = on_disconnected5;
            d.onFailure5 = on_disconnect_fail5;
        } else {
            d.onSuccess = on_disconnected;
            d.onFailure = on_disconnect_fail;
        }
        d.timeout = DISCONNECT_MS;
        d.context = c;
        if (MQTTAsync_disconnect(c->cli, &d) == MQTTASYNC_SUCCESS) {
            int64_t until = mono_ms() + DISCONNECT_MS + 1000;
            pthread_mutex_lock(&c->lock);
            while (!c->disc_done && mono_ms() < until)
                cond_wait_until(&c->cond, &c->lock, until);
            pthread_mutex_unlock(&c->lock);
        }
        MQTTAsync_destroy(&c->cli);
    }
    MQTTProperties_free(&c->props);
    conf_fini(&c->cf);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
}

static void conn_init(struct conn *c, const char *role)
{
    MQTTProperties empty = MQTTProperties_initializer;
    c->props = empty;
    c->role = role;
    c->state = C_CONNECTING;
    pthread_mutex_init(&c->lock, NULL);
    cond_init(&c->cond);
}

/* ======================================================================== */
/* Source                                                                   */
/* ======================================================================== */

struct qent {
    size_t off, len, orig_len;      /* payload at bytes[off, off+len) */
    size_t plant_off, plant_len;    /* plant_len 0: none */
    uint64_t pos;
};

/* One half of the double buffer. */
struct qbuf {
    struct qent *e;
    size_t n, cap;
    char *bytes;
    size_t used, bcap;
};

struct vg_source {
    struct conn c;                  /* first: callbacks get a struct conn * */
    char **filters;
    int *qoss;
    int n_filters;
    int plant_level;
    size_t cap_msgs, cap_bytes;
    int64_t max_wait_ms;            /* one callback's wait for room; -1: no limit */
    /* under c.lock */
    struct qbuf buf[2];
    int fill;                       /* buf[fill] takes new messages; buf[!fill] is drained */
    size_t head;                    /* next entry of the drain half */
    size_t queued, queued_bytes;    /* not yet handed to the reader, both halves */
    uint64_t seq;
    bool reader_waiting;
    int producers_waiting;
    bool closing, over_logged;
    uint64_t over;                  /* messages admitted over the bound */
    int err_code;                   /* a failure poll reports (subscription refused) */
    char err_msg[400];
    pthread_cond_t room, data;
    struct vg_source *reg_next;     /* g_sources (g_reg_lock) */
};

static void wake_sources(void)
{
    pthread_mutex_lock(&g_reg_lock);
    for (struct vg_source *s = g_sources; s; s = s->reg_next) {
        pthread_mutex_lock(&s->c.lock);
        if (s->producers_waiting)
            pthread_cond_broadcast(&s->room);
        pthread_mutex_unlock(&s->c.lock);
    }
    pthread_mutex_unlock(&g_reg_lock);
}

static bool full(const struct vg_source *s, size_t need)
{
    return s->queued >= s->cap_msgs || (s->queued > 0 && s->queued_bytes + need > s->cap_bytes);
}

static int qbuf_reserve(struct qbuf *b, size_t bytes)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        struct qent *e = realloc(b->e, cap * sizeof *e);
        if (!e)
            return VG_ENOMEM;
        b->e = e;
        b->cap = cap;
    }
    if (b->used + bytes > b->bcap) {
        size_t cap = b->bcap ? b->bcap : 1u << 16;
        while (cap < b->used + bytes)
            cap *= 2;
        char *p = realloc(b->bytes, cap);
        if (!p)
            return VG_ENOMEM;
        b->bytes = p;
        b->bcap = cap;
    }
    return VG_OK;
}

/* The @p level-th (1-based) level of @p topic, or none. */
static void topic_level(const char *topic, size_t len, int level, const char **out, size_t *out_len)
{
    const char *p = topic, *end = topic + len;
    for (int i = 1; i < level; i++) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        if (!slash) {
            *out = NULL;
            *out_len = 0;
            return;
        }
        p = slash + 1;
    }
    const char *slash = memchr(p, '/', (size_t)(end - p));
    *out = p;
    *out_len = slash ? (size_t)(slash - p) : (size_t)(end - p);
    if (*out_len == 0)
        *out = NULL;
}

/*
 * Paho delivers one message. Copy it into the fill half, waiting for room
 * when the queue is full (see DESIGN for the two escapes).
 * @thread Paho's receive thread, under Paho's global lock. @locks c.lock
 */
static int source_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct vg_source *s = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
    size_t keep = plen > VG_LINE_MAX ? VG_LINE_MAX : plen;
    const char *plant = NULL;
    size_t plant_len = 0;
    if (s->plant_level > 0)
        topic_level(topic, tlen, s->plant_level, &plant, &plant_len);
    size_t need = keep + plant_len;

    pthread_mutex_lock(&s->c.lock);
    if (full(s, need) && !s->closing) {
        int64_t until = s->max_wait_ms < 0 ? -1 : mono_ms() + s->max_wait_ms;
        while (full(s, need) && !s->closing) {
            if (atomic_load(&g_sink_busy) > 0)
                break;
            s->producers_waiting++;
            atomic_fetch_add(&g_src_blocked, 1);
            int rc = 0;
            if (atomic_load(&g_sink_busy) == 0)
                rc = cond_wait_until(&s->room, &s->c.lock, until);
            atomic_fetch_sub(&g_src_blocked, 1);
            s->producers_waiting--;
            if (rc == ETIMEDOUT)
                break;
        }
        if (full(s, need) && !s->closing) {
            s->over++;
            if (!s->over_logged) {
                s->over_logged = true;
                fprintf(stderr, "vigil: mqtt %s %s: the input queue is full (queue=%zu, queue_bytes=%zu) and "
                        "the reader is not keeping up; taking messages over the bound rather than %s\n",
                        s->c.role, s->c.cf.name, s->cap_msgs, s->cap_bytes,
                        atomic_load(&g_sink_busy) > 0 ? "stalling the MQTT sink, which shares Paho's thread"
                                                      : "letting the broker drop the connection");
            }
        }
    }
    struct qbuf *b = &s->buf[s->fill];
    if (qbuf_reserve(b, need) < 0) {
        /* out of memory: Paho keeps the message and offers it again */
        pthread_mutex_unlock(&s->c.lock);
        return 0;
    }
    struct qent *e = &b->e[b->n++];
    e->off = b->used;
    e->len = keep;
    e->orig_len = plen;
    if (keep)
        memcpy(b->bytes + b->used, m->payload, keep);
    b->used += keep;
    e->plant_off = b->used;
    e->plant_len = plant_len;
    if (plant_len)
        memcpy(b->bytes + b->used, plant, plant_len);
    b->used += plant_len;
    e->pos = ++s->seq;
    /* the reader waits only while queued == 0: only the first message can find it asleep */
    if (s->queued++ == 0 && s->reader_waiting)
        pthread_cond_signal(&s->data);
    s->queued_bytes += need;
    pthread_mutex_unlock(&s->c.lock);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void subscribe_failed(struct vg_source *s, const char *fmt, int code)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, code);
    pthread_mutex_lock(&s->c.lock);
    if (s->c.state != C_READY && s->c.state != C_FAILED) {
        /* the first subscription: open reports it */
        s->c.state = C_FAILED;
        s->c.fail_code = SUBSCRIBE_REFUSED;
        snprintf(s->c.fail_msg, sizeof s->c.fail_msg, "%s", msg);
        pthread_cond_broadcast(&s->c.cond);
    } else if (!s->err_code) {
        s->err_code = VG_EIO;
        snprintf(s->err_msg, sizeof s->err_msg, "%s", msg);
        pthread_cond_broadcast(&s->data);
    }
    pthread_mutex_unlock(&s->c.lock);
    fprintf(stderr, "vigil: mqtt %s %s: %s\n", s->c.role, s->c.cf.name, msg);
}

static const char SUB_REFUSED[] = "the broker refused the subscription (code 0x%02x): check the topic "
                                  "filters and the broker's ACL (shared subscriptions need MQTT 5 or a broker "
                                  "that has them)";

static void subscribed(struct vg_source *s)
{
    pthread_mutex_lock(&s->c.lock);
    if (s->c.state != C_FAILED)
        s->c.state = C_READY;
    pthread_cond_broadcast(&s->c.cond);
    pthread_mutex_unlock(&s->c.lock);
}

static void on_sub_ok(void *ctx, MQTTAsync_successData *d)
{
    struct vg_source *s = ctx;
    for (int i = 0; i < s->n_filters; i++) {
        int q = s->n_filters == 1 ? d->alt.qos : d->alt.qosList[i];
        if (q >= 0x80) {
            subscribe_failed(s, SUB_REFUSED, q);
            return;
        }
    }
    subscribed(s);
}

static void on_sub_ok5(void *ctx, MQTTAsync_successData5 *d)
{
    struct vg_source *s = ctx;
    int n = d->alt.sub.reasonCodeCount;
    for (int i = 0; i < n; i++) {
        int q = n == 1 ? (int)d->reasonCode : (int)d->alt.sub.reasonCodes[i];
        if (q >= 0x80) {
            subscribe_failed(s, SUB_REFUSED, q);
            return;
        }
    }
    subscribed(s);
}

static void on_sub_fail(void *ctx, MQTTAsync_failureData *d)
{
    subscribe_failed(ctx, SUB_REFUSED, d ? d->code : 0x80);
}

static void on_sub_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    subscribe_failed(ctx, SUB_REFUSED, d ? (int)d->reasonCode : 0x80);
}

/* Connected (first time or again): subscribe. @thread Paho's receive thread. */
static void source_connected(void *ctx, char *cause)
{
    struct vg_source *s = ctx;
    (void)cause;
    pthread_mutex_lock(&s->c.lock);
    bool again = s->c.ever_up;
    s->c.ever_up = s->c.connected = true;
    if (s->c.state == C_CONNECTING)
        s->c.state = C_UP;
    pthread_mutex_unlock(&s->c.lock);
    if (again)
        fprintf(stderr, "vigil: mqtt %s %s: reconnected to the broker; subscribing again\n", s->c.role,
                s->c.cf.name);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.context = s;
    if (s->c.cf.version == MQTTVERSION_5) {
        ro.onSuccess5 = on_sub_ok5;
        ro.onFailure5 = on_sub_fail5;
    } else {
        ro.onSuccess = on_sub_ok;
        ro.onFailure = on_sub_fail;
    }
    int rc = MQTTAsync_subscribeMany(s->c.cli, s->n_filters, s->filters, s->qoss, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        subscribe_failed(s, "cannot subscribe (Paho code %d)", rc);
}

static void source_lost(void *ctx, char *cause)
{
    struct vg_source *s = ctx;
    pthread_mutex_lock(&s->c.lock);
    s->c.connected = false;
    pthread_mutex_unlock(&s->c.lock);
    fprintf(stderr, "vigil: mqtt %s %s: lost the connection to the broker%s%s; reconnecting (every %llds at "
            "first, backing off to %llds)%s\n", s->c.role, s->c.cf.name, cause && *cause ? ": " : "",
            cause ? cause : "", (long long)secs(s->c.cf.retry_min_ms, 1),
            (long long)secs(s->c.cf.retry_max_ms, 1),
            s->c.cf.clean ? "; with clean=true the broker keeps nothing for us meanwhile" : "");
}

/* A filter is a topic filter, optionally behind $share/GROUP/. @returns its level count, or -1. */
static int check_filter(const char *f, const char **why, bool *multi)
{
    if (!strncmp(f, "$share/", 7)) {
        const char *g = f + 7, *slash = strchr(g, '/');
        if (!slash || slash == g || strcspn(g, "+#") < (size_t)(slash - g)) {
            *why = "a shared subscription is $share/GROUP/FILTER with a GROUP without + or #";
            return -1;
        }
        f = slash + 1;
    }
    if (!*f) {
        *why = "the topic filter is empty";
        return -1;
    }
    int levels = 1;
    *multi = false;
    for (const char *p = f; *p; p++) {
        if (*p == '/') {
            levels++;
            continue;
        }
        bool starts = p == f || p[-1] == '/', ends = !p[1] || p[1] == '/';
        if ((*p == '+' || *p == '#') && !(starts && ends)) {
            *why = "+ and # must each fill a whole topic level";
            return -1;
        }
        if (*p == '#') {
            if (p[1]) {
                *why = "# may only be the last topic level";
                return -1;
            }
            *multi = true;
        }
    }
    return levels;
}

static int parse_filters(struct vg_uri *u, struct vg_source *s, struct vg_error *err)
{
    const char *p = u->path;
    if (!*p)
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: no topic filter: expected %s://HOST[:PORT]/FILTER"
                            "[,FILTER...], e.g. mqtt://127.0.0.1:1883/plants/+/telemetry", u->what, u->scheme);
    int n = 1;
    for (const char *t = p; *t; t++)
        n += *t == ',';
    if (n > MAX_FILTERS)
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: more than %d topic filters", u->what, MAX_FILTERS);
    s->filters = calloc((size_t)n, sizeof *s->filters);
    s->qoss = calloc((size_t)n, sizeof *s->qoss);
    if (!s->filters || !s->qoss)
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    while (s->n_filters < n) {
        size_t len = strcspn(p, ",");
        char *f = strndup(p, len);
        if (!f)
            return vg_error_set(err, VG_ENOMEM, "out of memory");
        s->filters[s->n_filters] = f;
        s->qoss[s->n_filters++] = s->c.cf.qos;
        const char *why = NULL;
        bool multi = false;
        int levels = check_filter(f, &why, &multi);
        if (levels < 0)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: topic filter '%s': %s", u->what, f, why);
        if (s->plant_level > levels && !multi)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: plant_level=%d but topic filter '%s' has only %d "
                                "level%s", u->what, s->plant_level, f, levels, levels == 1 ? "" : "s");
        p += len + (p[len] == ',');
    }
    return VG_OK;
}

static void source_free(struct vg_source *s)
{
    for (int i = 0; i < s->n_filters; i++)
        free(s->filters[i]);
    free(s->filters);
    free(s->qoss);
    for (int i = 0; i < 2; i++) {
        free(s->buf[i].e);
        free(s->buf[i].bytes);
    }
    pthread_cond_destroy(&s->room);
    pthread_cond_destroy(&s->data);
    free(s);
}

static void source_unregister(struct vg_source *s)
{
    pthread_mutex_lock(&g_reg_lock);
    for (struct vg_source **pp = &g_sources; *pp; pp = &(*pp)->reg_next)
        if (*pp == s) {
            *pp = s->reg_next;
            break;
        }
    pthread_mutex_unlock(&g_reg_lock);
}

static void source_close(struct vg_source *s)
{
    if (!s)
        return;
    /* release a callback waiting for room before Paho's lock is needed */
    pthread_mutex_lock(&s->c.lock);
    s->closing = true;
    pthread_cond_broadcast(&s->room);
    pthread_cond_broadcast(&s->data);
    pthread_mutex_unlock(&s->c.lock);
    conn_stop(&s->c);
    source_unregister(s);
    source_free(s);
}

static int source_open(const char *uri, struct vg_source **out, struct vg_error *err)
{
    struct vg_uri u;
    int rc = vg_uri_parse(uri, "--input", &u, err);
    if (rc < 0)
        return rc;
    struct vg_source *s = calloc(1, sizeof *s);
    if (!s) {
        vg_uri_fini(&u);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    conn_init(&s->c, "input");
    cond_init(&s->room);
    cond_init(&s->data);
    long queue = DEF_QUEUE, queue_bytes = DEF_QUEUE_BYTES, plant_level = 0;
    bool clean = true;
    bool has_cid = false;
    if ((rc = parse_common(&u, &s->c.cf, false, err)) < 0 ||
        (rc = vg_uri_long(&u, "plant_level", 0, 1000, &plant_level, err)) < 0 ||
        (rc = vg_uri_long(&u, "queue", 1, 100000000, &queue, err)) < 0 ||
        (rc = vg_uri_long(&u, "queue_bytes", VG_LINE_MAX, 1L << 40, &queue_bytes, err)) < 0 ||
        (rc = vg_uri_bool(&u, "clean", &clean, err)) < 0 ||
        (rc = vg_uri_duration(&u, "session_expiry", 1000, 4294967295000LL, &s->c.cf.session_expiry_ms, err)) < 0)
        goto fail;
    has_cid = vg_uri_opt(&u, "client_id") != NULL;
    s->c.cf.clean = clean;
    s->plant_level = (int)plant_level;
    s->cap_msgs = (size_t)queue;
    s->cap_bytes = (size_t)queue_bytes;
    s->max_wait_ms = s->c.cf.keepalive_ms > 0 ? s->c.cf.keepalive_ms / 2 : -1;
    if ((rc = parse_filters(&u, s, err)) < 0 || (rc = vg_uri_finish(&u, SOURCE_OPTS, err)) < 0)
        goto fail;
    if (!clean && !has_cid) {
        rc = vg_error_set(err, VG_EUSAGE, "bad --input URI: clean=false keeps a session on the broker under the "
                          "client id, so it needs a fixed one: add client_id=NAME");
        goto fail;
    }
    vg_uri_fini(&u);
    pthread_mutex_lock(&g_reg_lock);
    s->reg_next = g_sources;
    g_sources = s;
    pthread_mutex_unlock(&g_reg_lock);
    if ((rc = conn_start(&s->c, source_arrived, source_lost, source_connected, 65535, 100, err)) < 0 ||
        (rc = conn_wait(&s->c, C_READY, s->c.cf.name, err)) < 0) {
        source_close(s);
        return rc;
    }
    *out = s;
    return VG_OK;
fail:
    vg_uri_fini(&u);
    conn_stop(&s->c);
    source_free(s);
    return rc;
}

static int source_poll(struct vg_source *s, struct vg_msg *msgs, int cap, int timeout_ms, bool *eof,
                       struct vg_error *err)
{
    *eof = false;
    pthread_mutex_lock(&s->c.lock);
    struct qbuf *d = &s->buf[!s->fill];
    if (s->head == d->n) {
        struct qbuf *f = &s->buf[s->fill];
        /* the drain half is used up, so queued == 0 exactly when the fill half is empty:
         * the condition source_arrived signals on. Every wake-up (a signal, a timeout, a
         * spurious one) tests it again under the lock, so no arrival goes unseen. */
        if (s->queued == 0 && timeout_ms != 0 && !s->err_code) {
            int64_t until = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
            s->reader_waiting = true;
            while (s->queued == 0 && !s->err_code && !s->closing && (until < 0 || mono_ms() < until))
                cond_wait_until(&s->data, &s->c.lock, until);
            s->reader_waiting = false;
        }
        if (s->err_code) {
            int rc = vg_error_set(err, s->err_code, "%s: %s", s->c.cf.name, s->err_msg);
            pthread_mutex_unlock(&s->c.lock);
            return rc;
        }
        if (f->n == 0) {
            pthread_mutex_unlock(&s->c.lock);
            return 0;
        }
        /* the drained half (whose slices the last poll handed out) takes new messages */
        d->n = d->used = 0;
        s->head = 0;
        s->fill = !s->fill;
        d = f;
    }
    int n = 0;
    size_t bytes = 0;
    for (; n < cap && s->head < d->n; n++) {
        const struct qent *e = &d->e[s->head++];
        msgs[n].data = d->bytes + e->off;
        msgs[n].len = e->len;
        msgs[n].orig_len = e->orig_len;
        msgs[n].pos = e->pos;
        msgs[n].plant = e->plant_len ? d->bytes + e->plant_off : NULL;
        msgs[n].plant_len = e->plant_len;
        msgs[n].stream = -1;
        bytes += e->len + e->plant_len;
    }
    s->queued -= (size_t)n;
    s->queued_bytes -= bytes;
    if (s->producers_waiting)
        pthread_cond_broadcast(&s->room);
    pthread_mutex_unlock(&s->c.lock);
    return n;
}

static const char *source_name(struct vg_source *s)
{
    return s->c.cf.name;
}

/* ======================================================================== */
/* Sink                                                                     */
/* ======================================================================== */

enum { SLOT_FREE, SLOT_SENDING, SLOT_SENT, SLOT_RETRY };

struct slot {
    struct vg_sink *k;
    char *topic, *data;
    size_t tcap, dcap, len;
    int state;                      /* SLOT_* (c.lock) */
    int next_free;
    uint64_t seq;                   /* put order, for resending in order */
    uint64_t gen;                   /* bumped on each use (c.lock) */
};

struct vg_sink {
    struct conn c;                  /* first: callbacks get a struct conn * */
    char *tmpl;                     /* topic template, "{key}" replaced per record */
    bool retain;
    int n_slots;
    struct slot *slots;
    int *scratch;                   /* resend order (owned by whoever holds resending) */
    /* under c.lock */
    int free_head, used, n_retry;
    bool resending;
    uint64_t seq;
    int fatal;                      /* a failure retrying cannot mend */
    char fatal_msg[420];
    int64_t last_try_ms;
};

static void sink_fatal_locked(struct vg_sink *k, int code, const char *msg)
{
    if (!k->fatal) {
        k->fatal = code;
        snprintf(k->fatal_msg, sizeof k->fatal_msg, "%s", msg);
    }
}

static void slot_release_locked(struct vg_sink *k, struct slot *sl)
{
    sl->state = SLOT_FREE;
    sl->next_free = k->free_head;
    k->free_head = (int)(sl - k->slots);
    k->used--;
    pthread_cond_broadcast(&k->c.cond);
}

static void pub_ok(struct slot *sl)
{
    struct vg_sink *k = sl->k;
    pthread_mutex_lock(&k->c.lock);
    if (sl->state == SLOT_SENDING || sl->state == SLOT_SENT)
        slot_release_locked(k, sl);
    pthread_mutex_unlock(&k->c.lock);
}

static void pub_retry(struct slot *sl)
{
    struct vg_sink *k = sl->k;
    pthread_mutex_lock(&k->c.lock);
    if (sl->state == SLOT_SENDING || sl->state == SLOT_SENT) {
        sl->state = SLOT_RETRY;
        k->n_retry++;
        pthread_cond_broadcast(&k->c.cond);
    }
    pthread_mutex_unlock(&k->c.lock);
}

static void on_pub_ok(void *ctx, MQTTAsync_successData *d)
{
    (void)d;
    pub_ok(ctx);
}

static void on_pub_ok5(void *ctx, MQTTAsync_successData5 *d)
{
    (void)d;
    pub_ok(ctx);
}

static void on_pub_fail(void *ctx, MQTTAsync_failureData *d)
{
    (void)d;
    pub_retry(ctx);   /* MQTT 3.1.1 has no refusal: the connection broke */
}

static void on_pub_fail5(void *ctx, MQTTAsync_failureData5 *d)
{
    struct slot *sl = ctx;
    int rc = d ? (int)d->reasonCode : 0;
    /* 0x91 packet id in use, 0x97 quota exceeded: worth another try; other refusals are final */
    if (rc >= 0x80 && rc != 0x91 && rc != 0x97) {
        struct vg_sink *k = sl->k;
        char why[120];
        snprintf(why, sizeof why, "%s", MQTTReasonCode_toString((enum MQTTReasonCodes)rc));
        lower_first(why);
        pthread_mutex_lock(&k->c.lock);
        if (sl->state == SLOT_SENDING || sl->state == SLOT_SENT) {
            char msg[400];
            snprintf(msg, sizeof msg, "the broker refused a record on topic '%.150s': %s (reason 0x%02x)",
                     sl->topic, why, rc);
            sink_fatal_locked(k, VG_EIO, msg);
            slot_release_locked(k, sl);
        }
        pthread_mutex_unlock(&k->c.lock);
        return;
    }
    pub_retry(sl);
}

/*
 * Hand slot @p i (state SENDING, generation @p gen) to Paho. Never under c.lock.
 * @returns the Paho code.
 */
static int send_slot(struct vg_sink *k, int i, uint64_t gen)
{
    struct slot *sl = &k->slots[i];
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = sl->data;
    msg.payloadlen = (int)sl->len;
    msg.qos = k->c.cf.qos;
    msg.retained = k->retain;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.context = sl;
    if (k->c.cf.version == MQTTVERSION_5) {
        ro.onSuccess5 = on_pub_ok5;
        ro.onFailure5 = on_pub_fail5;
    } else {
        ro.onSuccess = on_pub_ok;
        ro.onFailure = on_pub_fail;
    }
    int rc = MQTTAsync_sendMessage(k->c.cli, sl->topic, &msg, &ro);
    pthread_mutex_lock(&k->c.lock);
    if (sl->gen == gen && sl->state == SLOT_SENDING) {
        if (rc == MQTTASYNC_SUCCESS) {
            sl->state = SLOT_SENT;
        } else if (rc == MQTTASYNC_BAD_UTF8_STRING || rc == MQTTASYNC_BAD_QOS || rc == MQTTASYNC_BAD_STRUCTURE ||
                   rc == MQTTASYNC_NULL_PARAMETER) {
            char msg[320];
            snprintf(msg, sizeof msg, "cannot publish on topic '%.150s' (Paho code %d): is the topic valid "
                     "UTF-8?", sl->topic, rc);
            sink_fatal_locked(k, VG_EINVAL, msg);
            slot_release_locked(k, sl);
        } else {
            sl->state = SLOT_RETRY;   /* disconnected, or Paho's buffers are full: later */
            k->n_retry++;
        }
    }
    pthread_mutex_unlock(&k->c.lock);
    return rc;
}

static int seq_cmp(const void *a, const void *b, void *ctx)
{
    const struct vg_sink *k = ctx;
    uint64_t x = k->slots[*(const int *)a].seq, y = k->slots[*(const int *)b].seq;
    return x < y ? -1 : x > y;
}

/*
 * Send again every record waiting for it, oldest first. One thread at a time
 * (the others return at once). Never under c.lock.
 * @thread the caller of put/flush, or Paho's receive thread (connected).
 */
static void resend(struct vg_sink *k)
{
    pthread_mutex_lock(&k->c.lock);
    if (k->resending || k->n_retry == 0) {
        pthread_mutex_unlock(&k->c.lock);
        return;
    }
    k->resending = true;
    k->last_try_ms = mono_ms();
    int n = 0;
    for (int i = 0; i < k->n_slots; i++)
        if (k->slots[i].state == SLOT_RETRY) {
            k->slots[i].state = SLOT_SENDING;
            k->scratch[n++] = i;
        }
    k->n_retry -= n;
    pthread_mutex_unlock(&k->c.lock);
    qsort_r(k->scratch, (size_t)n, sizeof *k->scratch, seq_cmp, k);
    bool down = false;
    for (int j = 0; j < n; j++) {
        int i = k->scratch[j];
        pthread_mutex_lock(&k->c.lock);
        uint64_t gen = k->slots[i].gen;
        if (down) {
            k->slots[i].state = SLOT_RETRY;
            k->n_retry++;
        }
        pthread_mutex_unlock(&k->c.lock);
        if (!down && send_slot(k, i, gen) == MQTTASYNC_DISCONNECTED)
            down = true;   /* the rest wait for the reconnect */
    }
    pthread_mutex_lock(&k->c.lock);
    k->resending = false;
    pthread_mutex_unlock(&k->c.lock);
}

static void sink_connected(void *ctx, char *cause)
{
    struct vg_sink *k = ctx;
    (void)cause;
    pthread_mutex_lock(&k->c.lock);
    bool again = k->c.ever_up;
    int waiting = k->n_retry;
    k->c.ever_up = k->c.connected = true;
    if (k->c.state == C_CONNECTING)
        k->c.state = C_READY;
    pthread_cond_broadcast(&k->c.cond);
    pthread_mutex_unlock(&k->c.lock);
    if (again)
        fprintf(stderr, "vigil: mqtt %s %s: reconnected to the broker; sending again %d record%s it had not "
                "acknowledged\n", k->c.role, k->c.cf.name, waiting, waiting == 1 ? "" : "s");
    resend(k);
}

static void sink_lost(void *ctx, char *cause)
{
    struct vg_sink *k = ctx;
    pthread_mutex_lock(&k->c.lock);
    k->c.connected = false;
    pthread_mutex_unlock(&k->c.lock);
    fprintf(stderr, "vigil: mqtt %s %s: lost the connection to the broker%s%s; records wait (up to "
            "max_inflight=%d, then put waits) and are sent again on reconnect\n", k->c.role, k->c.cf.name,
            cause && *cause ? ": " : "", cause ? cause : "", k->n_slots);
}

/* A sink subscribes to nothing; Paho insists on the callback. */
static int sink_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    (void)ctx;
    (void)topic_len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void sink_free(struct vg_sink *k)
{
    if (k->slots)
        for (int i = 0; i < k->n_slots; i++) {
            free(k->slots[i].topic);
            free(k->slots[i].data);
        }
    free(k->slots);
    free(k->scratch);
    free(k->tmpl);
    free(k);
}

/* Wait until every record is acknowledged, or @p until_ms (< 0: no limit). @locks c.lock held on entry and exit */
static void drain_locked(struct vg_sink *k, int64_t until_ms)
{
    while (k->used > 0 && !k->fatal && (until_ms < 0 || mono_ms() < until_ms)) {
        if (k->n_retry > 0 && !k->resending && (k->c.connected || mono_ms() - k->last_try_ms >= 1000)) {
            pthread_mutex_unlock(&k->c.lock);
            resend(k);
            pthread_mutex_lock(&k->c.lock);
            continue;
        }
        int64_t t = mono_ms() + TICK_MS;
        cond_wait_until(&k->c.cond, &k->c.lock, until_ms >= 0 && until_ms < t ? until_ms : t);
    }
}

static int sink_flush(struct vg_sink *k, struct vg_error *err)
{
    sink_enter();
    pthread_mutex_lock(&k->c.lock);
    drain_locked(k, -1);
    int rc = k->fatal ? vg_error_set(err, k->fatal, "%s: %s", k->c.cf.name, k->fatal_msg) : VG_OK;
    pthread_mutex_unlock(&k->c.lock);
    sink_leave();
    return rc;
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return VG_OK;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *q = realloc(*p, c);
    if (!q)
        return VG_ENOMEM;
    *p = q;
    *cap = c;
    return VG_OK;
}

/* The template with each {key} replaced; + # / and NUL in the key become _ (they would change the topic's shape). */
static int build_topic(struct vg_sink *k, struct slot *sl, const char *key, size_t key_len)
{
    size_t n = 0, tl = strlen(k->tmpl), keys = 0;
    for (const char *p = k->tmpl; (p = strstr(p, "{key}")); p += 5)
        keys++;
    if (grow(&sl->topic, &sl->tcap, tl + keys * key_len + 1) < 0)
        return VG_ENOMEM;
    for (const char *p = k->tmpl; *p;) {
        if (!strncmp(p, "{key}", 5)) {
            for (size_t i = 0; i < key_len; i++) {
                char ch = key[i];
                sl->topic[n++] = ch == '+' || ch == '#' || ch == '/' || ch == 0 ? '_' : ch;
            }
            p += 5;
        } else {
            sl->topic[n++] = *p++;
        }
    }
    sl->topic[n] = 0;
    return VG_OK;
}

static int sink_put(struct vg_sink *k, const char *key, size_t key_len, const char *rec, size_t len,
                    struct vg_error *err)
{
    if (len > 256u << 20)
        return vg_error_set(err, VG_EINVAL, "%s: a record of %zu bytes is over MQTT's 256 MiB", k->c.cf.name, len);
    sink_enter();
    pthread_mutex_lock(&k->c.lock);
    while (k->free_head < 0 && !k->fatal) {
        /* every slot holds an unacknowledged record: back-pressure */
        if (k->n_retry > 0 && !k->resending && (k->c.connected || mono_ms() - k->last_try_ms >= 1000)) {
            pthread_mutex_unlock(&k->c.lock);
            resend(k);
            pthread_mutex_lock(&k->c.lock);
            continue;
        }
        cond_wait_until(&k->c.cond, &k->c.lock, mono_ms() + TICK_MS);
    }
    if (k->fatal) {
        int rc = vg_error_set(err, k->fatal, "%s: %s", k->c.cf.name, k->fatal_msg);
        pthread_mutex_unlock(&k->c.lock);
        sink_leave();
        return rc;
    }
    int i = k->free_head;
    struct slot *sl = &k->slots[i];
    k->free_head = sl->next_free;
    k->used++;
    sl->state = SLOT_SENDING;
    sl->seq = ++k->seq;
    uint64_t gen = ++sl->gen;
    bool retry_first = k->n_retry > 0 && k->c.connected;
    pthread_mutex_unlock(&k->c.lock);

    /* the slot is ours until it is handed to Paho */
    if (build_topic(k, sl, key, key_len) < 0 || grow(&sl->data, &sl->dcap, len ? len : 1) < 0) {
        pthread_mutex_lock(&k->c.lock);
        slot_release_locked(k, sl);
        pthread_mutex_unlock(&k->c.lock);
        sink_leave();
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    if (len)
        memcpy(sl->data, rec, len);
    sl->len = len;
    if (retry_first)
        resend(k);   /* older records first, as far as we can */
    send_slot(k, i, gen);
    pthread_mutex_lock(&k->c.lock);
    int rc = k->fatal ? vg_error_set(err, k->fatal, "%s: %s", k->c.cf.name, k->fatal_msg) : VG_OK;
    pthread_mutex_unlock(&k->c.lock);
    sink_leave();
    return rc;
}

static void sink_close(struct vg_sink *k)
{
    if (!k)
        return;
    sink_enter();
    pthread_mutex_lock(&k->c.lock);
    drain_locked(k, mono_ms() + CLOSE_FLUSH_MS);
    int left = k->used;
    pthread_mutex_unlock(&k->c.lock);
    if (left)
        fprintf(stderr, "vigil: mqtt %s %s: closing with %d record%s the broker has not acknowledged "
                "(waited %d ms)\n", k->c.role, k->c.cf.name, left, left == 1 ? "" : "s", CLOSE_FLUSH_MS);
    conn_stop(&k->c);
    sink_leave();
    sink_free(k);
}

static int sink_open(const char *uri, struct vg_sink **out, struct vg_error *err)
{
    struct vg_uri u;
    int rc = vg_uri_parse(uri, "output", &u, err);
    if (rc < 0)
        return rc;
    struct vg_sink *k = calloc(1, sizeof *k);
    if (!k) {
        vg_uri_fini(&u);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    conn_init(&k->c, "output");
    long inflight = DEF_INFLIGHT;
    if ((rc = parse_common(&u, &k->c.cf, true, err)) < 0 ||
        (rc = vg_uri_long(&u, "max_inflight", 1, MAX_INFLIGHT, &inflight, err)) < 0 ||
        (rc = vg_uri_bool(&u, "retain", &k->retain, err)) < 0 || (rc = vg_uri_finish(&u, SINK_OPTS, err)) < 0)
        goto fail;
    if (!*u.path) {
        rc = vg_error_set(err, VG_EUSAGE, "bad output URI: no topic: expected %s://HOST[:PORT]/TOPIC, e.g. "
                          "mqtt://127.0.0.1:1883/alerts/{key} ({key} becomes the plant id)", u.scheme);
        goto fail;
    }
    if (strpbrk(u.path, "+#")) {
        rc = vg_error_set(err, VG_EUSAGE, "bad output URI: topic '%s' has a wildcard (+ or #); records are "
                          "published to one topic, or to one per key with {key}", u.path);
        goto fail;
    }
    k->tmpl = strdup(u.path);
    k->n_slots = (int)inflight;
    k->slots = calloc((size_t)inflight, sizeof *k->slots);
    k->scratch = calloc((size_t)inflight, sizeof *k->scratch);
    if (!k->tmpl || !k->slots || !k->scratch) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < k->n_slots; i++) {
        k->slots[i].k = k;
        k->slots[i].next_free = i + 1 < k->n_slots ? i + 1 : -1;
    }
    k->free_head = 0;
    vg_uri_fini(&u);
    sink_enter();   /* connecting needs Paho's thread too */
    if ((rc = conn_start(&k->c, sink_arrived, sink_lost, sink_connected, k->n_slots, k->n_slots + 64, err)) < 0 ||
        (rc = conn_wait(&k->c, C_READY, k->c.cf.name, err)) < 0) {
        conn_stop(&k->c);
        sink_leave();
        sink_free(k);
        return rc;
    }
    sink_leave();
    *out = k;
    return VG_OK;
fail:
    vg_uri_fini(&u);
    conn_stop(&k->c);
    sink_free(k);
    return rc;
}

/* ---- registration ------------------------------------------------------- */

const struct vg_source_ops vg_mqtt_source = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "mqtt",
    .open = source_open,
    .poll = source_poll,
    .mark = NULL,     /* Paho acknowledged each message on receipt (see DESIGN) */
    .commit = NULL,
    .name = source_name,
    .listen = NULL,
    .owns = NULL,
    .live = true,
    .close = source_close,
};

const struct vg_source_ops vg_mqtts_source = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "mqtts",
    .open = source_open,
    .poll = source_poll,
    .name = source_name,
    .live = true,
    .close = source_close,
};

const struct vg_sink_ops vg_mqtt_sink = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "mqtt",
    .open = sink_open,
    .put = sink_put,
    .flush = sink_flush,
    .close = sink_close,
};

const struct vg_sink_ops vg_mqtts_sink = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "mqtts",
    .open = sink_open,
    .put = sink_put,
    .flush = sink_flush,
    .close = sink_close,
};
