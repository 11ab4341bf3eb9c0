/*
 * servers.h: real servers for the integration suites (STYLE 2.16): a
 * redis-server of the test's own, on a free 127.0.0.1 port, in the test's
 * temporary directory.
 * Owns: the child processes it starts and their directories and logs.
 * Must never: touch a server it did not start, or port 6379; leave a child
 * running (stop it; a child also gets SIGTERM if the test process dies).
 */
#ifndef VG_TEST_SERVERS_H
#define VG_TEST_SERVERS_H

#include <sys/types.h>

struct vgt_server {
    char host[32];       /* "127.0.0.1" */
    int port;            /* 0 before the first start: pick a free one */
    pid_t pid;           /* 0 when not running */
    char dir[512];       /* its working directory, under vgt_dir() */
    char log[600];       /* its stdout and stderr */
    char error[2048];    /* why the last start failed */
};

/** @brief A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read back, close). */
int vgt_free_port(void);

/**
 * @brief Start redis-server (no persistence) and wait until it answers PING
 * (up to about 5 s). A zeroed @p s gets a free port and a new directory; a
 * stopped one is started again on its own port and directory.
 * @returns 0, or -1 with s->error saying why (redis-server not installed,
 * exited at start: the tail of its log, or no answer).
 */
int vgt_redis_start(struct vgt_server *s);

/** @brief SIGTERM, wait up to 5 s, then SIGKILL. Does nothing if not running. */
void vgt_redis_stop(struct vgt_server *s);

/** @brief Stop, then start on the same port and directory (an outage and a return). */
int vgt_redis_restart(struct vgt_server *s);


/* ---- mosquitto (tests/test_mqtt.c) ---------------------------------------- */

/**
 * @brief Start mosquitto -c DIR/mosquitto.conf on a free 127.0.0.1 port (never
 * 1883) and wait until it accepts a TCP connection (up to about 5 s). The
 * config: `listener PORT 127.0.0.1`, `allow_anonymous true`,
 * `max_queued_messages 0`, `max_inflight_messages 0` (so a slow subscriber
 * loses nothing), `persistence false`, then @p extra verbatim (may be NULL;
 * a later `persistence true` line wins). The config is written when the
 * directory is new; a stopped server starts again with the same config,
 * port and directory. A start that dies on a port we picked is retried on a
 * fresh port (three times).
 * @returns 0, or -1 with s->error saying why (not installed: apt-get install
 * mosquitto; exited at start: its log's tail; no answer).
 */
int vgt_mosquitto_start_with(struct vgt_server *s, const char *extra);
int vgt_mosquitto_start(struct vgt_server *s);
/** @brief SIGTERM, wait up to 5 s, then SIGKILL. Does nothing if not running. */
void vgt_mosquitto_stop(struct vgt_server *s);
/** @brief Stop, then start on the same port, directory and config (an outage and a return). */
int vgt_mosquitto_restart(struct vgt_server *s);

#endif
