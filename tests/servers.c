/*
 * servers.c: start and stop the real servers the integration suites talk to.
 * Owns: the redis-server and mosquitto child processes of one test process.
 * Must never: use port 6379 or any port it did not pick, or wait without a
 * bound. DESIGN: a free port comes from binding port 0; between closing it
 * and redis-server binding it another process could take it, so a server
 * that exits at start on a port we picked ourselves is retried on a fresh
 * port (three times). Readiness is a PING over hiredis, not a sleep.
 */
#include "servers.h"
#include "vgtest.h"

#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_WAIT_MS 5000
#define STOP_WAIT_MS 5000

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int vgt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port == 6379 ? vgt_free_port() : port;
}

/* redis-server somewhere on PATH? */
static int have_program(const char *name)
{
    const char *path = getenv("PATH");
    char buf[1024];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, n ? path : ".", name);
        if (access(buf, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

static int ping(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

/* The last lines of the server's log, for a failure message. */
static void log_tail(const struct vgt_server *s, char *out, size_t cap)
{
    size_t n;
    char *text = vgt_read(s->log, &n);
    const char *from = text ? text : "(no log)";
    if (text && n > 400)
        from = text + n - 400;
    snprintf(out, cap, "%s", from);
    free(text);
}

/* One attempt: fork, exec, wait for PING. 0 ok, 1 exited at start, -1 other. */
static int start_once(struct vgt_server *s)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(s->error, sizeof s->error, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
        if (getppid() != parent)
            _exit(127);
        int log = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
            _exit(127);
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", s->dir,
               "--save", "", "--appendonly", "no", "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int waited = 0; waited < START_WAIT_MS; waited += 20) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char tail[512];
            s->pid = 0;
            log_tail(s, tail, sizeof tail);
            snprintf(s->error, sizeof s->error, "redis-server --port %d exited at start (status %d); "
                     "its log %s ends:\n%s", s->port, WIFEXITED(st) ? WEXITSTATUS(st) : -1, s->log, tail);
            return 1;
        }
        if (ping(s->port))
            return 0;
        sleep_ms(20);
    }
    snprintf(s->error, sizeof s->error, "redis-server --port %d did not answer PING within %d ms "
             "(log: %s)", s->port, START_WAIT_MS, s->log);
    vgt_redis_stop(s);
    return -1;
}

int vgt_redis_start(struct vgt_server *s)
{
    s->error[0] = 0;
    if (s->pid)
        return 0;
    if (!have_program("redis-server")) {
        snprintf(s->error, sizeof s->error, "redis-server is not installed (not on PATH): the Redis tests "
                 "start their own on a free port; install it with 'apt-get install redis-server' "
                 "(deploy/install-deps.sh test does)");
        return -1;
    }
    snprintf(s->host, sizeof s->host, "127.0.0.1");
    int picked = s->port == 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (picked && (s->port = vgt_free_port()) <= 0) {
            snprintf(s->error, sizeof s->error, "no free port on 127.0.0.1: %s", strerror(errno));
            return -1;
        }
        if (!s->dir[0]) {
            snprintf(s->dir, sizeof s->dir, "%s/redis-%d", vgt_dir(), s->port);
            if (mkdir(s->dir, 0700) < 0 && errno != EEXIST) {
                snprintf(s->error, sizeof s->error, "mkdir %s: %s", s->dir, strerror(errno));
                return -1;
            }
            snprintf(s->log, sizeof s->log, "%s/redis.log", s->dir);
        }
        int rc = start_once(s);
        if (rc == 0)
            return 0;
        if (rc < 0 || !picked)
            return -1;
    }
    return -1;
}

void vgt_redis_stop(struct vgt_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGTERM);
    for (int waited = 0; waited < STOP_WAIT_MS; waited += 10) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            s->pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

int vgt_redis_restart(struct vgt_server *s)
{
    vgt_redis_stop(s);
    return vgt_redis_start(s);
}

/* ---- mosquitto ------------------------------------------------------------
 * Same shape as redis-server above: fork, exec, wait for readiness (a TCP
 * connect: mosquitto binds its listener after reading the config), retry on
 * a fresh port if it exits at start. As root mosquitto would switch to the
 * "mosquitto" user, which cannot write our 0700 directories: `user root`. */

/* mosquitto lives in /usr/sbin, which a test's PATH may lack. */
static int find_mosquitto(char *out, size_t cap)
{
    static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin", "/sbin", NULL};
    const char *path = getenv("PATH");
    while (path && *path) {
        size_t n = strcspn(path, ":");
        snprintf(out, cap, "%.*s/mosquitto", (int)n, n ? path : ".");
        if (access(out, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    for (int i = 0; dirs[i]; i++) {
        snprintf(out, cap, "%s/mosquitto", dirs[i]);
        if (access(out, X_OK) == 0)
            return 1;
    }
    return 0;
}

static int tcp_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int mosquitto_once(struct vgt_server *s, const char *bin, const char *conf)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(s->error, sizeof s->error, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive a crashed test */
        if (getppid() != parent)
            _exit(127);
        int log = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
            _exit(127);
        execl(bin, "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int waited = 0; waited < START_WAIT_MS; waited += 20) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            char tail[512];
            s->pid = 0;
            log_tail(s, tail, sizeof tail);
            snprintf(s->error, sizeof s->error, "mosquitto -c %s (port %d) exited at start (status %d); its "
                     "log %s ends:\n%s", conf, s->port, WIFEXITED(st) ? WEXITSTATUS(st) : -1, s->log, tail);
            return 1;
        }
        if (tcp_accepts(s->port))
            return 0;
        sleep_ms(20);
    }
    snprintf(s->error, sizeof s->error, "mosquitto on port %d did not accept a connection within %d ms "
             "(log: %s)", s->port, START_WAIT_MS, s->log);
    vgt_mosquitto_stop(s);
    return -1;
}

int vgt_mosquitto_start_with(struct vgt_server *s, const char *extra)
{
    char bin[600];
    s->error[0] = 0;
    if (s->pid)
        return 0;
    if (!find_mosquitto(bin, sizeof bin)) {
        snprintf(s->error, sizeof s->error, "mosquitto is not installed (not on PATH nor in /usr/sbin): the "
                 "MQTT tests start their own broker on a free port; install it with 'apt-get install "
                 "mosquitto' (deploy/install-deps.sh test does)");
        return -1;
    }
    snprintf(s->host, sizeof s->host, "127.0.0.1");
    int picked = s->port == 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (picked) {
            do
                s->port = vgt_free_port();
            while (s->port == 1883);
            if (s->port <= 0) {
                snprintf(s->error, sizeof s->error, "no free port on 127.0.0.1: %s", strerror(errno));
                return -1;
            }
            s->dir[0] = 0;
        }
        char conf[700];
        if (!s->dir[0]) {
            snprintf(s->dir, sizeof s->dir, "%s/mosquitto-%d", vgt_dir(), s->port);
            if (mkdir(s->dir, 0700) < 0 && errno != EEXIST) {
                snprintf(s->error, sizeof s->error, "mkdir %s: %s", s->dir, strerror(errno));
                return -1;
            }
            snprintf(s->log, sizeof s->log, "%s/mosquitto.log", s->dir);
            snprintf(conf, sizeof conf, "%s/mosquitto.conf", s->dir);
            FILE *f = fopen(conf, "w");
            if (!f) {
                snprintf(s->error, sizeof s->error, "cannot write %s: %s", conf, strerror(errno));
                return -1;
            }
            fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    "max_inflight_messages 0\npersistence false\n%s%s\n", s->port,
                    geteuid() == 0 ? "user root\n" : "", extra ? extra : "");
            fclose(f);
        }
        snprintf(conf, sizeof conf, "%s/mosquitto.conf", s->dir);
        int rc = mosquitto_once(s, bin, conf);
        if (rc == 0)
            return 0;
        if (rc < 0 || !picked)
            return -1;
    }
    return -1;
}

int vgt_mosquitto_start(struct vgt_server *s)
{
    return vgt_mosquitto_start_with(s, NULL);
}

void vgt_mosquitto_stop(struct vgt_server *s)
{
    vgt_redis_stop(s);   /* the same: SIGTERM, a bounded wait, SIGKILL */
}

int vgt_mosquitto_restart(struct vgt_server *s)
{
    vgt_mosquitto_stop(s);
    return vgt_mosquitto_start_with(s, NULL);
}
