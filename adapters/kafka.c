/*
 * kafka.c: Kafka as a source (a consumer-group member) and as a sink (a
 * keyed producer), on librdkafka.
 *   --input  kafka://[USER:PASS@]HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]?group=NAME&...
 *   --alerts kafka://[USER:PASS@]HOST:PORT[,HOST:PORT]/TOPIC?acks=all&...
 * (every option is in docs/endpoints.md, "kafka://").
 * Owns: one rd_kafka_t per source or sink, the held messages of the last
 * poll, the positions polled per partition, the marks of checkpoints not yet
 * committed, the set of partitions assigned here (for owns), and the
 * producer's delivery counts.
 * Must never: commit an offset that was not marked and then committed by the
 * pipeline (offsets follow the state that covers them: at-least-once); let
 * librdkafka auto-commit or auto-store offsets; drop a record the sink took
 * (message.timeout.ms=0: librdkafka retries with backoff for ever, put waits
 * when its queue is full); report a flush before every record is
 * acknowledged; put a password in a name or a message; call the pipeline's
 * listener from anywhere but inside poll.
 *
 * DESIGN
 * Source. poll takes what the consumer queue holds in one
 * rd_kafka_consume_batch_queue call without waiting; only when that is empty
 * it waits (at most timeout_ms) for one message and then takes the rest that
 * arrived, so a trickle is not held back while a backlog moves in batches.
 * queued.min.messages is raised to 1,000,000 so that a backlog is not read in
 * one-second steps (see DEFAULT_QUEUED_MIN_MSGS).
 * The rd_kafka_message_t's stay held until the next poll (messages point into
 * them: no copy). Each message advances its partition's position (next
 * offset); a message of a partition no longer assigned here is dropped (its
 * new owner reads it from the committed offset). mark(k) copies every
 * position; commit(k) commits the newest mark <= k with rd_kafka_commit
 * (synchronous, explicit list), skipping partitions already committed at
 * that offset, and forgets marks <= k. Marks are cumulative, so a commit the
 * group refused for the moment (a rebalance in progress, the coordinator
 * moving) is not an error: the next commit carries the same offsets, and a
 * restart before it re-reads them (at-least-once); a warning is printed.
 * Rebalances come through the rebalance callback, which librdkafka calls
 * inside rd_kafka_consume_batch_queue, so the listener runs on the polling
 * thread, inside poll, as adapter.h promises. Revoke: the listener's revoking
 * (the pipeline checkpoints and commits), then unassign, forget positions and
 * marks of the revoked partitions, then assigned. Assign: refresh partition
 * counts (metadata), assign, mark partitions owned, then assigned. Eager
 * (range, roundrobin: the default) and cooperative-sticky (incremental
 * assign/unassign) both work. A lost assignment (session timed out) skips
 * revoking: the partitions may already be someone else's, and a checkpoint
 * would overwrite their state. On close the listener is not called.
 * The protocol (eager or cooperative) comes from rd_kafka_rebalance_protocol,
 * which answers NULL once the group handle has terminated, e.g. when
 * rd_kafka_consumer_close serves a revoke queued before that (seen with two
 * instances of a group stopping at once): then the last answer holds (at
 * first the configured assignors', which all have one protocol), and an
 * assign or unassign refused while closing is no failure.
 * owns(plant) applies the producers' partitioner (librdkafka's
 * rd_kafka_msg_partitioner_murmur2 / _consistent, which never touch their
 * topic argument) to the plant id for each subscribed topic's partition
 * count, under a mutex, since the pipeline asks from its own threads.
 * A broker that does not answer: open asks for each topic's metadata and
 * gives up after connect_timeout with a message naming the bootstrap list.
 *
 * Sink. put produces a copy of the record with the key (the plant id; an
 * empty key produces no key, so librdkafka spreads those records) to the
 * topic, partitioned by the same partitioner names as the source's owns.
 * With acks=all the producer is idempotent (no duplicates or reordering from
 * its retries). QUEUE_FULL: serve delivery reports (rd_kafka_poll) and retry:
 * back-pressure. A delivery report with an error is permanent (retries are
 * endless), so the first one is kept and every later put and flush returns
 * it: the records it names are lost and the run must stop. flush loops on
 * rd_kafka_flush until the out queue is empty, saying on stderr every 30 s
 * that it still waits; close flushes for at most 10 s.
 *
 * Logging: librdkafka's warnings and errors go to stderr with a "vigil:
 * kafka" prefix; the last error line is kept for the connect message.
 */
#include "engine/adapter.h"
#include "engine/uri.h"

#include <librdkafka/rdkafka.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BATCH 1000
#define DEFAULT_CONNECT_MS 10000
#define DEFAULT_FETCH_WAIT_MS 5
/*
 * queued.min.messages: librdkafka stops fetching once the consumer queue holds
 * this many messages and, before 2.2 (fetch.queue.backoff.ms), looks again only
 * when its broker thread next wakes, up to 1 s later, however fast the queue
 * drains (librdkafka issue #2879). A reader slower than the fetcher, i.e. any
 * catch-up on a backlog, then gets about 2.5 x this many messages a second:
 * librdkafka's 100,000 gave 0.25 M msgs/s against a bare consumer's 2-2.5 M
 * (bench/bench_ingest); 1,000,000 gives 1.7-2 M. The price: up to about 400
 * bytes per queued message (~350 MB) while a backlog is read.
 * rdkafka.queued.min.messages=N overrides it.
 */
#define DEFAULT_QUEUED_MIN_MSGS "1000000"
#define DEFAULT_LINGER_MS 5
#define CLOSE_FLUSH_MS 10000
#define FLUSH_NOTE_MS 30000
#define WARN_EVERY_MS 10000
#define MAX_TOPICS 64

#define COMMON_OPTS "client_id, connect_timeout, tls, ca, sasl_mechanism, rdkafka.PROPERTY"
#define SOURCE_OPTS "group, offset_reset, batch, fetch_wait, partitioner, " COMMON_OPTS
#define SINK_OPTS "acks, linger, compression, partitioner, " COMMON_OPTS

typedef int32_t (*partitioner_fn)(const rd_kafka_topic_t *rkt, const void *key, size_t keylen,
                                  int32_t partition_cnt, void *rkt_opaque, void *msg_opaque);

/* ---- shared by source and sink --------------------------------------------- */

/* What both sides keep: the client, names for messages, the last error logged. */
struct kconn {
    rd_kafka_t *rk;
    char *hosts;                 /* bootstrap list as written */
    char name[512];              /* kafka://HOSTS/TOPICS, never the password */
    vg_ts connect_ms;            /* how long open waits for a broker */
    pthread_mutex_t log_lock;    /* librdkafka logs from its own threads */
    char last_error[256];        /* the last error-level log line */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct kconn *c = rd_kafka_opaque(rk);
    (void)fac;
    if (level > LOG_WARNING)
        return;
    if (c) {
        if (level <= LOG_ERR) {
            pthread_mutex_lock(&c->log_lock);
            snprintf(c->last_error, sizeof c->last_error, "%s", buf);
            pthread_mutex_unlock(&c->log_lock);
        }
        fprintf(stderr, "vigil: %s: %s\n", c->name, buf);
    } else {
        fprintf(stderr, "vigil: kafka: %s\n", buf);
    }
}

static void last_error(struct kconn *c, char *out, size_t cap)
{
    pthread_mutex_lock(&c->log_lock);
    snprintf(out, cap, "%s", c->last_error);
    pthread_mutex_unlock(&c->log_lock);
}

/* Property names whose values are secrets: never echoed in a message. */
static bool secret_prop(const char *name)
{
    return strstr(name, "password") || strstr(name, "secret") || strstr(name, "sasl.oauthbearer.config");
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, const struct vg_uri *u,
                    struct vg_error *err)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return VG_OK;
    if (secret_prop(name))
        return vg_error_set(err, VG_EUSAGE, "bad %s URI: librdkafka refused %s: %s", u->what, name, why);
    return vg_error_set(err, VG_EUSAGE, "bad %s URI: librdkafka refused %s=%s: %s", u->what, name, value,
                        why);
}

/* Kafka's legal topic names: 1-249 of [a-zA-Z0-9._-]. */
static bool topic_ok(const char *t, size_t n)
{
    if (n == 0 || n > 249)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = t[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int parse_partitioner(struct vg_uri *u, const char **name, partitioner_fn *fn, struct vg_error *err)
{
    const char *v = vg_uri_opt(u, "partitioner");
    if (!v || !strcmp(v, "murmur2_random")) {
        *name = "murmur2_random";
        *fn = rd_kafka_msg_partitioner_murmur2;
        return VG_OK;
    }
    if (!strcmp(v, "consistent_random")) {
        *name = "consistent_random";
        *fn = rd_kafka_msg_partitioner_consistent;
        return VG_OK;
    }
    return vg_error_set(err, VG_EUSAGE, "bad %s URI: partitioner=%s must be murmur2_random (the Java "
                        "client's, the default) or consistent_random (librdkafka's default)", u->what, v);
}

/*
 * Options both sides have: client_id, connect_timeout, tls, ca,
 * sasl_mechanism with the URI's user and password.
 */
static int common_conf(rd_kafka_conf_t *conf, struct vg_uri *u, struct kconn *c, struct vg_error *err)
{
    int rc;
    if ((rc = conf_set(conf, "bootstrap.servers", u->hosts, u, err)) < 0)
        return rc;
    const char *v = vg_uri_opt(u, "client_id");
    if ((rc = conf_set(conf, "client.id", v ? v : "vigil", u, err)) < 0)
        return rc;
    c->connect_ms = DEFAULT_CONNECT_MS;
    if ((rc = vg_uri_duration(u, "connect_timeout", 1, 600000, &c->connect_ms, err)) < 0)
        return rc;

    bool tls = false;
    const char *tls_v = vg_uri_opt(u, "tls");
    if ((rc = vg_uri_bool(u, "tls", &tls, err)) < 0)
        return rc;
    const char *ca = vg_uri_opt(u, "ca");
    if (ca) {
        if (tls_v && !tls)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: ca=%s needs TLS, but tls=%s", u->what, ca, tls_v);
        if (access(ca, R_OK) != 0)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: cannot read the CA file ca=%s: %s", u->what, ca,
                                strerror(errno));
        tls = true;
        if ((rc = conf_set(conf, "ssl.ca.location", ca, u, err)) < 0)
            return rc;
    }

    const char *mech = vg_uri_opt(u, "sasl_mechanism");
    bool sasl = mech || u->user;
    if (mech) {
        static const char *const mechs[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"};
        const char *found = NULL;
        for (size_t i = 0; i < VG_ARRAY_LEN(mechs); i++)
            if (!strcasecmp(mech, mechs[i]))
                found = mechs[i];
        if (!found)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: sasl_mechanism=%s must be PLAIN, SCRAM-SHA-256 "
                                "or SCRAM-SHA-512", u->what, mech);
        mech = found;
    }
    if (sasl) {
        if (!u->user || !u->password)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: SASL needs a user and a password: "
                                "kafka://USER:PASSWORD@HOST:PORT/...", u->what);
        if ((rc = conf_set(conf, "sasl.mechanisms", mech ? mech : "PLAIN", u, err)) < 0 ||
            (rc = conf_set(conf, "sasl.username", u->user, u, err)) < 0 ||
            (rc = conf_set(conf, "sasl.password", u->password, u, err)) < 0)
            return rc;
    }
    const char *proto = tls ? (sasl ? "sasl_ssl" : "ssl") : (sasl ? "sasl_plaintext" : "plaintext");
    return conf_set(conf, "security.protocol", proto, u, err);
}

/* rdkafka.PROPERTY=VALUE: any librdkafka property but the ones this adapter owns. */
static int passthrough(rd_kafka_conf_t *conf, struct vg_uri *u, const char *const *reserved,
                       struct vg_error *err)
{
    for (size_t i = 0; i < u->n_opts; i++) {
        struct vg_uri_opt *o = &u->opts[i];
        if (strncmp(o->key, "rdkafka.", 8))
            continue;
        o->used = true;
        const char *prop = o->key + 8;
        if (!*prop)
            return vg_error_set(err, VG_EUSAGE, "bad %s URI: 'rdkafka.' must be followed by a librdkafka "
                                "property, e.g. rdkafka.session.timeout.ms=10000", u->what);
        for (const char *const *r = reserved; *r; r++)
            if (!strcmp(prop, *r))
                return vg_error_set(err, VG_EUSAGE, "bad %s URI: rdkafka.%s cannot be set: vigil sets it "
                                    "itself (offsets and deliveries follow its checkpoints; see "
                                    "docs/endpoints.md)", u->what, prop);
        int rc = conf_set(conf, prop, o->value, u, err);
        if (rc < 0)
            return rc;
    }
    return VG_OK;
}

/*
 * Ask for @p topic's metadata within what is left until @p deadline.
 * @returns its partition count (0 when the cluster does not know it yet), or
 * a VG_E* code with a message naming the bootstrap list.
 */
static int topic_partitions(struct kconn *c, const char *topic, int64_t deadline, const char *what,
                            struct vg_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, topic, NULL);
    if (!rkt)
        return vg_error_set(err, VG_EUSAGE, "kafka topic '%s': %s", topic,
                            rd_kafka_err2str(rd_kafka_last_error()));
    const struct rd_kafka_metadata *md = NULL;
    int64_t left = deadline - now_ms();
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->rk, 0, rkt, &md, left > 0 ? (int)left : 1);
    int rc;
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
        rd_kafka_resp_err_t te = md->topics[0].err;
        if (te == RD_KAFKA_RESP_ERR_NO_ERROR || te == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
            rc = md->topics[0].partition_cnt;
        else if (te == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            rc = vg_error_set(err, VG_ENOENT, "%s: topic '%s' does not exist on %s: check its name (list "
                              "the topics with `kcat -b %s -L`) or create it", what, topic, c->hosts,
                              c->hosts);
        else if (te == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
            rc = vg_error_set(err, VG_EIO, "%s: not authorized for topic '%s' on %s: check the ACLs of the "
                              "user in the URI", what, topic, c->hosts);
        else
            rc = vg_error_set(err, VG_EIO, "%s: topic '%s' on %s: %s", what, topic, c->hosts,
                              rd_kafka_err2str(te));
    } else if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = vg_error_set(err, VG_EIO, "%s: %s sent no metadata for topic '%s'", what, c->hosts, topic);
    } else {
        char last[256];
        last_error(c, last, sizeof last);
        rc = vg_error_set(err, VG_EIO, "%s: no Kafka broker answered at %s within connect_timeout=%lldms "
                          "(%s): check that the brokers run, that HOST:PORT is their advertised listener and "
                          "reachable from here (try `kcat -b %s -L`), and the TLS/SASL options%s%s", what,
                          c->hosts, (long long)c->connect_ms, rd_kafka_err2str(e), c->hosts,
                          *last ? "; last error: " : "", last);
    }
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* ---- source --------------------------------------------------------------- */

struct kpart {
    int64_t next;        /* offset after the last message handed out; -1: none yet */
    int64_t committed;   /* the last offset committed here; -1: none */
    bool owned;          /* assigned here (writes under lock; owns() reads under lock) */
};

struct ktopic {
    char *name;
    int32_t partition_cnt;   /* from metadata, for owns (under lock) */
    int32_t cap;
    struct kpart *parts;     /* [cap], indexed by partition */
};

struct kpos {
    int32_t topic, partition;
    int64_t offset;
};

struct kmark {
    uint64_t checkpoint;
    struct kpos *pos;
    size_t n;
};

struct vg_source {
    struct kconn c;
    rd_kafka_queue_t *q;             /* the consumer queue (everything is forwarded there) */
    struct ktopic *topics;
    int n_topics;
    partitioner_fn partition;
    int batch;
    rd_kafka_message_t **held;       /* [batch]: the last poll's messages, destroyed at the next */
    int n_held;
    struct kmark *marks;
    size_t n_marks, cap_marks;
    pthread_mutex_t lock;            /* topics[].partition_cnt, parts[].owned and the parts arrays */
    struct vg_source_events ev;
    bool has_ev, closing;
    bool coop;                       /* the last rebalance protocol seen is COOPERATIVE */
    int fail_code;                   /* a fatal error seen in a callback: poll returns it */
    char fail_msg[512];
    int64_t last_warn;
    char group[256];
};

static int find_topic(const struct vg_source *s, const char *name)
{
    for (int i = 0; i < s->n_topics; i++)
        if (!strcmp(s->topics[i].name, name))
            return i;
    return -1;
}

/* The slot of (topic, partition), growing the array under the lock. NULL: no memory. */
static struct kpart *part_slot(struct vg_source *s, int t, int32_t p)
{
    struct ktopic *kt = &s->topics[t];
    if (p < 0)
        return NULL;
    if (p >= kt->cap) {
        int32_t cap = kt->cap ? kt->cap : 8;
        while (cap <= p)
            cap *= 2;
        pthread_mutex_lock(&s->lock);
        struct kpart *np = realloc(kt->parts, (size_t)cap * sizeof *np);
        if (np) {
            for (int32_t i = kt->cap; i < cap; i++)
                np[i] = (struct kpart){-1, -1, false};
            kt->parts = np;
            kt->cap = cap;
        }
        pthread_mutex_unlock(&s->lock);
        if (!np)
            return NULL;
    }
    return &kt->parts[p];
}

/* Keep the first fatal error for poll to return: "NAME: " + the message. */
static void fail(struct vg_source *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct vg_source *s, int code, const char *fmt, ...)
{
    if (s->fail_code)
        return;
    s->fail_code = code;
    int n = snprintf(s->fail_msg, sizeof s->fail_msg, "%s: ", s->c.name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->fail_msg + n, sizeof s->fail_msg - (size_t)n, fmt, ap);
    va_end(ap);
}

static void warn(struct vg_source *s, const char *what, const char *detail)
{
    int64_t t = now_ms();
    if (s->last_warn && t - s->last_warn < WARN_EVERY_MS)
        return;
    s->last_warn = t;
    fprintf(stderr, "vigil: %s: %s%s%s\n", s->c.name, what, detail ? ": " : "", detail ? detail : "");
}

/* Forget the marks' entries for (t, p): that partition is no longer ours. */
static void marks_drop_partition(struct vg_source *s, int t, int32_t p)
{
    for (size_t i = 0; i < s->n_marks; i++) {
        struct kmark *m = &s->marks[i];
        size_t k = 0;
        for (size_t j = 0; j < m->n; j++)
            if (!(m->pos[j].topic == t && m->pos[j].partition == p))
                m->pos[k++] = m->pos[j];
        m->n = k;
    }
}

/* Refresh every topic's partition count (for owns); keeps the old one on failure. */
static void refresh_counts(struct vg_source *s)
{
    int64_t deadline = now_ms() + (s->c.connect_ms < 5000 ? s->c.connect_ms : 5000);
    for (int t = 0; t < s->n_topics; t++) {
        struct vg_error e = {0};
        int n = topic_partitions(&s->c, s->topics[t].name, deadline, "kafka rebalance", &e);
        if (n < 0) {
            warn(s, "cannot refresh the partition count; owns() uses the last one", e.msg);
            continue;
        }
        pthread_mutex_lock(&s->lock);
        s->topics[t].partition_cnt = n;
        pthread_mutex_unlock(&s->lock);
    }
}

/* Mark the listed partitions owned (or not) and reset their positions. */
static void set_owned(struct vg_source *s, const rd_kafka_topic_partition_list_t *parts, bool owned)
{
    for (int i = 0; i < parts->cnt; i++) {
        int t = find_topic(s, parts->elems[i].topic);
        if (t < 0)
            continue;
        struct kpart *kp = part_slot(s, t, parts->elems[i].partition);
        if (!kp) {
            fail(s, VG_ENOMEM, "out of memory");
            continue;
        }
        pthread_mutex_lock(&s->lock);
        kp->owned = owned;
        pthread_mutex_unlock(&s->lock);
        kp->next = -1;
        kp->committed = -1;
        if (!owned)
            marks_drop_partition(s, t, parts->elems[i].partition);
    }
}

static void unown_all(struct vg_source *s)
{
    for (int t = 0; t < s->n_topics; t++)
        for (int32_t p = 0; p < s->topics[t].cap; p++) {
            pthread_mutex_lock(&s->lock);
            s->topics[t].parts[p].owned = false;
            pthread_mutex_unlock(&s->lock);
            s->topics[t].parts[p].next = -1;
            s->topics[t].parts[p].committed = -1;
        }
    for (size_t i = 0; i < s->n_marks; i++)
        s->marks[i].n = 0;
}

/*
 * Cooperative (incremental assign/unassign) or eager? rd_kafka_rebalance_protocol
 * is NULL once the group handle has terminated (a revoke served by
 * rd_kafka_consumer_close after that): then the last answer.
 */
static bool cooperative(struct vg_source *s, rd_kafka_t *rk)
{
    const char *proto = rd_kafka_rebalance_protocol(rk);
    if (proto && strcmp(proto, "NONE"))
        s->coop = !strcmp(proto, "COOPERATIVE");
    return s->coop;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts,
                         void *opaque)
{
    struct vg_source *s = opaque;
    bool coop = cooperative(s, rk);
    bool tell = s->has_ev && !s->closing;
    rd_kafka_error_t *xe = NULL;
    rd_kafka_resp_err_t ae = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (!s->closing)
            refresh_counts(s);
        if (coop)
            xe = rd_kafka_incremental_assign(rk, parts);
        else
            ae = rd_kafka_assign(rk, parts);
        set_owned(s, parts, true);
    } else {
        /* revoked, or an error: give up what we hold */
        if (e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS && tell && !rd_kafka_assignment_lost(rk))
            s->ev.revoking(s->ev.ctx);
        if (coop && e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
            xe = rd_kafka_incremental_unassign(rk, parts);
            set_owned(s, parts, false);
        } else {
            ae = rd_kafka_assign(rk, NULL);
            unown_all(s);
        }
        if (e != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            warn(s, "consumer group error", rd_kafka_err2str(e));
    }
    /* closing: the group may be gone already, and nothing polls again */
    if (xe) {
        if (!s->closing)
            fail(s, VG_EIO, "cannot take the partitions the group gave: %s", rd_kafka_error_string(xe));
        rd_kafka_error_destroy(xe);
    } else if (ae && !s->closing) {
        fail(s, VG_EIO, "cannot take the partitions the group gave: %s", rd_kafka_err2str(ae));
    }
    if (tell)
        s->ev.assigned(s->ev.ctx);
}

static void release_held(struct vg_source *s)
{
    for (int i = 0; i < s->n_held; i++)
        rd_kafka_message_destroy(s->held[i]);
    s->n_held = 0;
}

/* Errors the consumer cannot recover from by waiting: fatal, or a setup the user must fix. */
static bool permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID:
        return true;
    default:
        return false;
    }
}

static void consumer_error(struct vg_source *s, const rd_kafka_message_t *m)
{
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    char detail[512];
    snprintf(detail, sizeof detail, "%s", rd_kafka_message_errstr(m));
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[400];
        rd_kafka_fatal_error(s->c.rk, why, sizeof why);
        fail(s, VG_EIO, "the Kafka consumer failed for good: %s", why);
    } else if (permanent(m->err)) {
        fail(s, VG_EIO, "%s (check the user, password and ACLs for group '%s')", detail, s->group);
    } else {
        warn(s, "retrying", detail);
    }
}

static int src_poll(struct vg_source *s, struct vg_msg *msgs, int cap, int timeout_ms, bool *eof,
                    struct vg_error *err)
{
    *eof = false;
    release_held(s);
    if (s->fail_code)
        return vg_error_set(err, s->fail_code, "%s", s->fail_msg);
    int want = cap < s->batch ? cap : s->batch;
    if (want <= 0)
        return 0;
    ssize_t r = rd_kafka_consume_batch_queue(s->q, 0, s->held, (size_t)want);
    if (r == 0 && timeout_ms != 0) {
        r = rd_kafka_consume_batch_queue(s->q, timeout_ms, s->held, 1);
        if (r == 1 && want > 1) {
            ssize_t more = rd_kafka_consume_batch_queue(s->q, 0, s->held + 1, (size_t)want - 1);
            if (more > 0)
                r += more;
        }
    }
    if (r < 0)
        return vg_error_set(err, VG_EIO, "%s: consuming failed: %s", s->c.name,
                            rd_kafka_err2str(rd_kafka_last_error()));

    /* keep the messages, drop error events and messages of partitions gone elsewhere */
    const rd_kafka_topic_t *last_rkt = NULL;
    int last_t = -1, n = 0;
    for (ssize_t i = 0; i < r; i++) {
        rd_kafka_message_t *m = s->held[i];
        if (VG_UNLIKELY(m->err)) {
            consumer_error(s, m);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->rkt != last_rkt) {
            last_rkt = m->rkt;
            last_t = find_topic(s, rd_kafka_topic_name(m->rkt));
        }
        struct kpart *kp = last_t >= 0 && m->partition >= 0 && m->partition < s->topics[last_t].cap
                               ? &s->topics[last_t].parts[m->partition]
                               : NULL;
        if (VG_UNLIKELY(!kp || !kp->owned)) {
            rd_kafka_message_destroy(m);
            continue;
        }
        kp->next = m->offset + 1;
        msgs[n].data = m->payload ? (const char *)m->payload : "";
        msgs[n].len = m->len;
        msgs[n].orig_len = m->len;
        msgs[n].pos = (uint64_t)m->offset;
        msgs[n].plant = NULL;
        msgs[n].plant_len = 0;
        msgs[n].stream = last_t * 65536 + m->partition;
        s->held[n++] = m;
    }
    s->n_held = n;
    if (s->fail_code) {
        release_held(s);
        return vg_error_set(err, s->fail_code, "%s", s->fail_msg);
    }
    return n;
}

static int src_mark(struct vg_source *s, uint64_t checkpoint, const struct vg_held_floor *held,
                    size_t n_held, struct vg_error *err)
{
    size_t n = 0;
    for (int t = 0; t < s->n_topics; t++)
        for (int32_t p = 0; p < s->topics[t].cap; p++)
            n += s->topics[t].parts[p].owned && s->topics[t].parts[p].next >= 0;
    if (s->n_marks == s->cap_marks) {
        size_t cap = s->cap_marks ? s->cap_marks * 2 : 8;
        struct kmark *nm = realloc(s->marks, cap * sizeof *nm);
        if (!nm)
            return vg_error_set(err, VG_ENOMEM, "out of memory");
        s->marks = nm;
        s->cap_marks = cap;
    }
    struct kmark m = {checkpoint, n ? malloc(n * sizeof(struct kpos)) : NULL, 0};
    if (n && !m.pos)
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (int t = 0; t < s->n_topics; t++)
        for (int32_t p = 0; p < s->topics[t].cap; p++) {
            const struct kpart *kp = &s->topics[t].parts[p];
            if (kp->owned && kp->next >= 0) {
                int64_t next = kp->next;
                /* a message the pipeline still holds is not in the state: read it again */
                for (size_t h = 0; h < n_held; h++)
                    if (held[h].stream == t * 65536 + p && (int64_t)held[h].pos < next)
                        next = (int64_t)held[h].pos;
                m.pos[m.n++] = (struct kpos){t, p, next};
            }
        }
    s->marks[s->n_marks++] = m;
    return VG_OK;
}

/* Commit errors the group heals by itself: the offsets go with the next commit. */
static bool commit_soft(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return true;
    default:
        return false;
    }
}

static int src_commit(struct vg_source *s, uint64_t checkpoint, struct vg_error *err)
{
    /* the newest mark at or before the checkpoint */
    size_t upto = 0;
    struct kmark *m = NULL;
    for (size_t i = 0; i < s->n_marks; i++)
        if (s->marks[i].checkpoint <= checkpoint) {
            m = &s->marks[i];
            upto = i + 1;
        }
    if (!m)
        return VG_OK;   /* nothing marked for it */

    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)(m->n ? m->n : 1));
    for (size_t j = 0; j < m->n; j++) {
        const struct kpos *kp = &m->pos[j];
        const struct kpart *slot = &s->topics[kp->topic].parts[kp->partition];
        if (!slot->owned || kp->offset <= slot->committed)
            continue;
        rd_kafka_topic_partition_list_add(list, s->topics[kp->topic].name, kp->partition)->offset = kp->offset;
    }
    int rc = VG_OK;
    if (list->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(s->c.rk, list, 0);
        for (int i = 0; !e && i < list->cnt; i++)
            e = list->elems[i].err;
        if (!e) {
            for (int i = 0; i < list->cnt; i++) {
                int t = find_topic(s, list->elems[i].topic);
                s->topics[t].parts[list->elems[i].partition].committed = list->elems[i].offset;
            }
        } else if (commit_soft(e)) {
            char note[128];
            snprintf(note, sizeof note, "%s; they go with the next checkpoint's commit", rd_kafka_err2str(e));
            warn(s, "the group did not take this checkpoint's offsets", note);
        } else {
            rc = vg_error_set(err, VG_EIO, "%s: committing offsets of checkpoint %" PRIu64 " to group '%s' "
                              "failed: %s", s->c.name, checkpoint, s->group, rd_kafka_err2str(e));
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (rc == VG_OK) {
        for (size_t i = 0; i < upto; i++)
            free(s->marks[i].pos);
        memmove(s->marks, s->marks + upto, (s->n_marks - upto) * sizeof *s->marks);
        s->n_marks -= upto;
    }
    return rc;
}

static const char *src_name(struct vg_source *s)
{
    return s->c.name;
}

static void src_listen(struct vg_source *s, const struct vg_source_events *ev)
{
    if (ev) {
        s->ev = *ev;
        s->has_ev = true;
    } else {
        s->has_ev = false;
    }
}

static bool src_owns(struct vg_source *s, const char *plant, size_t len)
{
    bool own = false;
    pthread_mutex_lock(&s->lock);
    for (int t = 0; !own && t < s->n_topics; t++) {
        const struct ktopic *kt = &s->topics[t];
        if (kt->partition_cnt <= 0)
            continue;
        int32_t p = s->partition(NULL, plant, len, kt->partition_cnt, NULL, NULL);
        own = p >= 0 && p < kt->cap && kt->parts[p].owned;
    }
    pthread_mutex_unlock(&s->lock);
    return own;
}

static void src_free(struct vg_source *s)
{
    for (int t = 0; t < s->n_topics; t++) {
        free(s->topics[t].name);
        free(s->topics[t].parts);
    }
    free(s->topics);
    for (size_t i = 0; i < s->n_marks; i++)
        free(s->marks[i].pos);
    free(s->marks);
    free(s->held);
    free(s->c.hosts);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->c.log_lock);
    free(s);
}

static void src_close(struct vg_source *s)
{
    if (!s)
        return;
    release_held(s);
    /* the pipeline that registered the listener may be gone: rebalances from here on are not told */
    s->closing = true;
    s->has_ev = false;
    if (s->c.rk) {
        rd_kafka_consumer_close(s->c.rk);
        if (s->q)
            rd_kafka_queue_destroy(s->q);
        rd_kafka_destroy(s->c.rk);
    }
    src_free(s);
}

static int src_open(const char *uri, struct vg_source **out, struct vg_error *err)
{
    static const char *const reserved[] = {"bootstrap.servers", "metadata.broker.list", "group.id",
                                           "enable.auto.commit", "auto.commit.enable",
                                           "enable.auto.offset.store", NULL};
    struct vg_uri u;
    int rc = vg_uri_parse(uri, "--input", &u, err);
    if (rc < 0)
        return rc;
    rd_kafka_conf_t *conf = NULL;
    struct vg_source *s = calloc(1, sizeof *s);
    if (!s) {
        vg_uri_fini(&u);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->c.log_lock, NULL);
    s->batch = DEFAULT_BATCH;
    if (!(s->c.hosts = strdup(u.hosts))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(s->c.name, sizeof s->c.name, "kafka://%s/%s", u.hosts, u.path);

    /* topics */
    if (!*u.path) {
        rc = vg_error_set(err, VG_EUSAGE, "bad --input URI: name the topic: "
                          "kafka://HOST:PORT/TOPIC[,TOPIC]?group=NAME");
        goto fail;
    }
    for (const char *p = u.path; *p;) {
        size_t n = strcspn(p, ",");
        if (!topic_ok(p, n)) {
            rc = vg_error_set(err, VG_EUSAGE, "bad --input URI: '%.*s' is not a Kafka topic name (1-249 of "
                              "a-z A-Z 0-9 . _ -)", (int)(n > 100 ? 100 : n), p);
            goto fail;
        }
        for (int t = 0; t < s->n_topics; t++)
            if (strlen(s->topics[t].name) == n && !memcmp(s->topics[t].name, p, n)) {
                rc = vg_error_set(err, VG_EUSAGE, "bad --input URI: topic '%.*s' is named twice", (int)n, p);
                goto fail;
            }
        if (s->n_topics == MAX_TOPICS) {
            rc = vg_error_set(err, VG_EUSAGE, "bad --input URI: at most %d topics", MAX_TOPICS);
            goto fail;
        }
        struct ktopic *nt = realloc(s->topics, (size_t)(s->n_topics + 1) * sizeof *nt);
        if (!nt || !(nt[s->n_topics].name = strndup(p, n))) {
            if (nt)
                s->topics = nt;
            rc = vg_error_set(err, VG_ENOMEM, "out of memory");
            goto fail;
        }
        s->topics = nt;
        s->topics[s->n_topics] = (struct ktopic){s->topics[s->n_topics].name, 0, 0, NULL};
        s->n_topics++;
        p += n;
        if (*p == ',')
            p++;
    }

    /* options */
    const char *group = vg_uri_opt(&u, "group");
    if (!group || !*group) {
        rc = vg_error_set(err, VG_EUSAGE, "bad --input URI: a Kafka source needs its consumer group: "
                          "kafka://%s/%s?group=NAME (instances with the same group share the partitions)",
                          u.hosts, u.path);
        goto fail;
    }
    snprintf(s->group, sizeof s->group, "%s", group);
    conf = rd_kafka_conf_new();
    if ((rc = common_conf(conf, &u, &s->c, err)) < 0)
        goto fail;
    const char *partitioner_name = NULL;
    if ((rc = parse_partitioner(&u, &partitioner_name, &s->partition, err)) < 0)
        goto fail;
    const char *reset = vg_uri_opt(&u, "offset_reset");
    if (reset && strcmp(reset, "earliest") && strcmp(reset, "latest")) {
        rc = vg_error_set(err, VG_EUSAGE, "bad --input URI: offset_reset=%s must be earliest or latest",
                          reset);
        goto fail;
    }
    long batch = DEFAULT_BATCH;
    if ((rc = vg_uri_long(&u, "batch", 1, 1000000, &batch, err)) < 0)
        goto fail;
    s->batch = (int)batch;
    vg_ts fetch_wait = DEFAULT_FETCH_WAIT_MS;
    if ((rc = vg_uri_duration(&u, "fetch_wait", 0, 60000, &fetch_wait, err)) < 0)
        goto fail;
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)fetch_wait);
    if ((rc = conf_set(conf, "group.id", group, &u, err)) < 0 ||
        (rc = conf_set(conf, "enable.auto.commit", "false", &u, err)) < 0 ||
        (rc = conf_set(conf, "enable.auto.offset.store", "false", &u, err)) < 0 ||
        (rc = conf_set(conf, "auto.offset.reset", reset ? reset : "earliest", &u, err)) < 0 ||
        (rc = conf_set(conf, "fetch.wait.max.ms", num, &u, err)) < 0 ||
        (rc = conf_set(conf, "queued.min.messages", DEFAULT_QUEUED_MIN_MSGS, &u, err)) < 0 ||
        (rc = passthrough(conf, &u, reserved, err)) < 0 ||   /* after the defaults: rdkafka.* wins */
        (rc = vg_uri_finish(&u, SOURCE_OPTS, err)) < 0)
        goto fail;
    /* until the group says (rebalance_cb): cooperative-sticky is the one cooperative assignor */
    char strategy[256];
    size_t strategy_len = sizeof strategy;
    if (rd_kafka_conf_get(conf, "partition.assignment.strategy", strategy, &strategy_len) == RD_KAFKA_CONF_OK)
        s->coop = strstr(strategy, "cooperative") != NULL;
    if (!(s->held = calloc((size_t)s->batch, sizeof *s->held))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }

    rd_kafka_conf_set_opaque(conf, s);   /* struct kconn is s's first member */
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    char why[512];
    if (!(s->c.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why))) {
        rc = vg_error_set(err, VG_EUSAGE, "%s: cannot set up the Kafka consumer: %s", s->c.name, why);
        goto fail;
    }
    conf = NULL;   /* rd_kafka_new took it */
    rd_kafka_poll_set_consumer(s->c.rk);
    s->q = rd_kafka_queue_get_consumer(s->c.rk);

    /* is anyone there, and do the topics exist? */
    int64_t deadline = now_ms() + s->c.connect_ms;
    for (int t = 0; t < s->n_topics; t++) {
        int n = topic_partitions(&s->c, s->topics[t].name, deadline, "--input", err);
        if (n < 0) {
            rc = n;
            goto fail;
        }
        s->topics[t].partition_cnt = n;
    }

    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(s->n_topics);
    for (int t = 0; t < s->n_topics; t++)
        rd_kafka_topic_partition_list_add(sub, s->topics[t].name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(s->c.rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (se) {
        rc = vg_error_set(err, VG_EIO, "%s: cannot subscribe: %s", s->c.name, rd_kafka_err2str(se));
        goto fail;
    }
    vg_uri_fini(&u);
    *out = s;
    return VG_OK;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    vg_uri_fini(&u);
    if (s->c.rk) {
        s->closing = true;
        if (s->q)
            rd_kafka_queue_destroy(s->q);
        rd_kafka_destroy_flags(s->c.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    src_free(s);
    return rc;
}

/* ---- sink ------------------------------------------------------------------ */

struct vg_sink {
    struct kconn c;
    rd_kafka_topic_t *rkt;
    uint64_t acked, failed;          /* delivery reports come on the caller's thread */
    char fail_msg[400];              /* the first refused record's reason */
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct vg_sink *k = opaque;
    (void)rk;
    if (!m->err) {
        k->acked++;
        return;
    }
    if (k->failed++ == 0) {
        const char *hint = m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
                                   m->err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED
                               ? " (check the ACLs of the user in the URI)"
                           : m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                               ? " (raise the topic's max.message.bytes)"
                               : "";
        snprintf(k->fail_msg, sizeof k->fail_msg, "%s%s", rd_kafka_err2str(m->err), hint);
    }
}

static int sink_failed(struct vg_sink *k, struct vg_error *err)
{
    char fatal[300];
    if (rd_kafka_fatal_error(k->c.rk, fatal, sizeof fatal))
        return vg_error_set(err, VG_EIO, "%s: the Kafka producer failed for good: %s", k->c.name, fatal);
    return vg_error_set(err, VG_EIO, "%s: the broker refused %" PRIu64 " record(s), which are lost: %s",
                        k->c.name, k->failed, k->fail_msg);
}

static bool sink_broken(struct vg_sink *k)
{
    return k->failed > 0 || rd_kafka_fatal_error(k->c.rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
}

static int sink_put(struct vg_sink *k, const char *key, size_t key_len, const char *rec, size_t len,
                    struct vg_error *err)
{
    if (VG_UNLIKELY(k->failed))
        return sink_failed(k, err);
    while (rd_kafka_produce(k->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)rec, len,
                            key_len ? key : NULL, key_len, NULL) != 0) {
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (e == RD_KAFKA_RESP_ERR__FATAL)
                return sink_failed(k, err);
            return vg_error_set(err, VG_EIO, "%s: cannot produce a record of %zu bytes: %s%s", k->c.name, len,
                                rd_kafka_err2str(e), e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
                                ? " (raise it with rdkafka.message.max.bytes=N, and the topic's "
                                  "max.message.bytes)" : "");
        }
        /* the queue is full: wait for the broker to take some (back-pressure) */
        rd_kafka_poll(k->c.rk, 100);
        if (sink_broken(k))
            return sink_failed(k, err);
    }
    /* serve delivery reports (cheap when there are none): a refusal shows at the next put */
    rd_kafka_poll(k->c.rk, 0);
    return VG_OK;
}

static int sink_flush(struct vg_sink *k, struct vg_error *err)
{
    int64_t start = now_ms(), noted = start;
    for (;;) {
        rd_kafka_flush(k->c.rk, 1000);
        if (sink_broken(k))
            return sink_failed(k, err);
        int left = rd_kafka_outq_len(k->c.rk);
        if (left == 0)
            return VG_OK;
        int64_t t = now_ms();
        if (t - noted >= FLUSH_NOTE_MS) {
            noted = t;
            char last[256];
            last_error(&k->c, last, sizeof last);
            fprintf(stderr, "vigil: %s: still waiting after %lld s for %d record(s) to be acknowledged%s%s\n",
                    k->c.name, (long long)(t - start) / 1000, left, *last ? "; last error: " : "", last);
        }
    }
}

static void sink_free(struct vg_sink *k)
{
    free(k->c.hosts);
    pthread_mutex_destroy(&k->c.log_lock);
    free(k);
}

static void sink_close(struct vg_sink *k)
{
    if (!k)
        return;
    rd_kafka_flush(k->c.rk, CLOSE_FLUSH_MS);
    int left = rd_kafka_outq_len(k->c.rk);
    if (left > 0)
        fprintf(stderr, "vigil: %s: closing with %d record(s) not acknowledged by the brokers\n", k->c.name,
                left);
    rd_kafka_topic_destroy(k->rkt);
    rd_kafka_destroy(k->c.rk);
    sink_free(k);
}

static int sink_open(const char *uri, struct vg_sink **out, struct vg_error *err)
{
    static const char *const reserved[] = {"bootstrap.servers", "metadata.broker.list", "message.timeout.ms",
                                           "delivery.timeout.ms", NULL};
    struct vg_uri u;
    int rc = vg_uri_parse(uri, "output", &u, err);
    if (rc < 0)
        return rc;
    rd_kafka_conf_t *conf = NULL;
    struct vg_sink *k = calloc(1, sizeof *k);
    if (!k) {
        vg_uri_fini(&u);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&k->c.log_lock, NULL);
    if (!(k->c.hosts = strdup(u.hosts))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(k->c.name, sizeof k->c.name, "kafka://%s/%s", u.hosts, u.path);
    if (!topic_ok(u.path, strlen(u.path))) {
        rc = vg_error_set(err, VG_EUSAGE, "bad output URI: '%s' is not a Kafka topic name (one topic, 1-249 "
                          "of a-z A-Z 0-9 . _ -): kafka://HOST:PORT/TOPIC", u.path);
        goto fail;
    }

    conf = rd_kafka_conf_new();
    if ((rc = common_conf(conf, &u, &k->c, err)) < 0)
        goto fail;
    const char *partitioner_name = NULL;
    partitioner_fn unused = NULL;
    if ((rc = parse_partitioner(&u, &partitioner_name, &unused, err)) < 0)
        goto fail;
    const char *acks = vg_uri_opt(&u, "acks");
    if (acks && strcmp(acks, "all") && strcmp(acks, "1") && strcmp(acks, "0")) {
        rc = vg_error_set(err, VG_EUSAGE, "bad output URI: acks=%s must be all (the default), 1 or 0", acks);
        goto fail;
    }
    if (!acks)
        acks = "all";
    vg_ts linger = DEFAULT_LINGER_MS;
    if ((rc = vg_uri_duration(&u, "linger", 0, 900000, &linger, err)) < 0)
        goto fail;
    const char *comp = vg_uri_opt(&u, "compression");
    static const char *const comps[] = {"none", "lz4", "zstd", "snappy", "gzip", NULL};
    bool comp_ok = !comp;
    for (int i = 0; comp && comps[i]; i++)
        comp_ok |= !strcmp(comp, comps[i]);
    if (!comp_ok) {
        rc = vg_error_set(err, VG_EUSAGE, "bad output URI: compression=%s must be none, lz4, zstd, snappy or "
                          "gzip", comp);
        goto fail;
    }
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)linger);
    if ((rc = conf_set(conf, "message.timeout.ms", "0", &u, err)) < 0 ||
        (rc = conf_set(conf, "acks", acks, &u, err)) < 0 ||
        (rc = conf_set(conf, "enable.idempotence", strcmp(acks, "all") ? "false" : "true", &u, err)) < 0 ||
        (rc = conf_set(conf, "linger.ms", num, &u, err)) < 0 ||
        (rc = conf_set(conf, "compression.codec", comp ? comp : "none", &u, err)) < 0 ||
        (rc = conf_set(conf, "partitioner", partitioner_name, &u, err)) < 0 ||
        (rc = passthrough(conf, &u, reserved, err)) < 0 ||
        (rc = vg_uri_finish(&u, SINK_OPTS, err)) < 0)
        goto fail;

    rd_kafka_conf_set_opaque(conf, k);   /* struct kconn is k's first member */
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    char why[512];
    if (!(k->c.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why))) {
        rc = vg_error_set(err, VG_EUSAGE, "%s: cannot set up the Kafka producer: %s", k->c.name, why);
        goto fail;
    }
    conf = NULL;
    if (!(k->rkt = rd_kafka_topic_new(k->c.rk, u.path, NULL))) {
        rc = vg_error_set(err, VG_EUSAGE, "%s: %s", k->c.name, rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    int n = topic_partitions(&k->c, u.path, now_ms() + k->c.connect_ms, "output", err);
    if (n < 0) {
        rc = n;
        goto fail;
    }
    vg_uri_fini(&u);
    *out = k;
    return VG_OK;

fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    vg_uri_fini(&u);
    if (k->rkt)
        rd_kafka_topic_destroy(k->rkt);
    if (k->c.rk)
        rd_kafka_destroy(k->c.rk);
    sink_free(k);
    return rc;
}

const struct vg_source_ops vg_kafka_source = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "kafka",
    .open = src_open,
    .poll = src_poll,
    .mark = src_mark,
    .commit = src_commit,
    .name = src_name,
    .listen = src_listen,
    .owns = src_owns,
    .live = true,
    .close = src_close,
};

const struct vg_sink_ops vg_kafka_sink = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "kafka",
    .open = sink_open,
    .put = sink_put,
    .flush = sink_flush,
    .close = sink_close,
};
