/*
 * redis_conn.h: one hiredis connection as the Redis adapters use it
 * (adapters/redis_store.c, adapters/redis_stream.c).
 * Owns: the server's address and credentials taken from a parsed URI,
 * connecting with a timeout, the AUTH / SELECT / PING handshake, the
 * messages for a server that is missing, lost or refusing, and the SIGPIPE
 * guard around hiredis's writes. Must never: parse URIs itself (that is
 * engine/uri.c), retry or sleep (the adapters choose their own policy), put
 * a password in a message, or let a dead peer's SIGPIPE end the process.
 * @thread one caller at a time per connection.
 */
#ifndef VG_REDIS_CONN_H
#define VG_REDIS_CONN_H

#include "engine/error.h"
#include "engine/uri.h"

#include <hiredis/hiredis.h>

#include <signal.h>

#define VG_REDIS_DEFAULT_PORT 6379
#define VG_REDIS_DEFAULT_TIMEOUT_MS 2000

struct vg_redis_conn {
    redisContext *c;        /* NULL while disconnected */
    char host[256];         /* without brackets */
    int port;
    long db;                /* SELECTed after connecting when not 0; the adapter sets it */
    char *user, *password;  /* NULL when not given; the password is wiped by fini */
    vg_ts timeout_ms;       /* connect and every socket read or write */
    char where[300];        /* "host:port" or "[v6]:port", for messages */
    char why[160];          /* the last failure in a few words: an I/O reason or Redis's error reply */
    bool refused;           /* the last failed connect was an error reply, not I/O */
    bool not_ready;         /* ... and that reply says "later" (vg__redis_not_ready) */
};

/**
 * @brief Take host, port (default 6379), user, password and the `timeout`
 * option (a duration from 1ms to 10m, default 2s) from @p u. Refuses a host
 * list (no cluster client here) and a user name without a password, with
 * messages that say "bad <u->what> URI: ...". Does not connect.
 * @returns 0, VG_EUSAGE or VG_ENOMEM with @p err filled; on failure @p rc is
 * finalised already.
 */
int vg__redis_conn_init(struct vg_redis_conn *rc, struct vg_uri *u, struct vg_error *err);

/** @brief Disconnect and free, wiping the password. Safe on a zeroed conn. */
void vg__redis_conn_fini(struct vg_redis_conn *rc);

/**
 * @brief Connect (dropping any old connection), set the socket timeouts and
 * keep-alive, then AUTH (when a password was given), SELECT (when db is not
 * 0) and PING.
 * @p instead completes the message for an unreachable server: "cannot reach
 * Redis at H:P (why): start it with 'redis-server --port P', or <instead>".
 * @returns 0, or VG_EIO with @p err filled and the connection dropped; then
 * rc->refused tells an error reply (a wrong password, a bad db number, or
 * with rc->not_ready a server still loading or busy) from I/O.
 */
int vg__redis_connect(struct vg_redis_conn *rc, const char *instead, struct vg_error *err);

/** @brief Drop the connection (the next vg__redis_connect makes a new one). */
void vg__redis_drop(struct vg_redis_conn *rc);

/** @brief The context's I/O error as a short phrase ("no answer in time", "Connection refused"). */
const char *vg__redis_io_reason(const redisContext *c);

/**
 * @brief An I/O error on the connection while @p doing: fill @p err with
 * "lost Redis at H:P while <doing> (<reason>)", drop the connection.
 * @returns VG_EIO.
 */
int vg__redis_io_fail(struct vg_redis_conn *rc, const char *doing, struct vg_error *err);

/**
 * @brief Is this error reply a "not now" that passes by itself: LOADING
 * (restarting with data), BUSY (a long script), MASTERDOWN, TRYAGAIN?
 * Every other error reply (WRONGTYPE, NOAUTH, OOM, ...) needs a person.
 */
bool vg__redis_not_ready(const char *reply_str);

/**
 * SIGPIPE: hiredis writes with write(2), and a peer that went away raises
 * SIGPIPE, which would end the process. Block it on this thread around the
 * I/O and swallow one we caused, whatever the process's disposition is.
 */
struct vg_redis_sigpipe {
    sigset_t old;
    bool was_pending;
};

void vg__redis_sigpipe_block(struct vg_redis_sigpipe *g);
void vg__redis_sigpipe_unblock(struct vg_redis_sigpipe *g);

#endif
