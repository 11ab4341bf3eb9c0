/*
 * file.c: NDJSON files, stdin and stdout/stderr as a source and a sink.
 * Owns: file descriptors and their buffers. Must never: split a line across
 * two messages, or write part of a line.
 * DESIGN: the source reads 1 MiB blocks and hands out the complete lines in
 * the block as borrowed slices; a partial last line moves to the front for
 * the next read. A line longer than the buffer is delivered truncated, with
 * orig_len telling its real length, and the rest of it is skipped (the
 * dead-letter record says so). On a pipe or terminal, a poll that waits 50 ms
 * without data returns no messages, so the pipeline flushes what it holds and
 * alerts are not held back by a partly filled batch. The sink gathers lines in a 256 KiB buffer and
 * writes whole buffers.
 */
#include "engine/adapter.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SRC_BUF (1u << 20)
#define SINK_BUF (256u << 10)

struct vg_source {
    int fd;
    bool own_fd, eof, skipping;
    bool stream;           /* a pipe or terminal: input may pause */
    char *buf;
    size_t start, end;     /* unread bytes are buf[start, end) */
    size_t skipped;        /* bytes of an over-long line skipped so far */
    uint64_t line;         /* number of the next line */
    char name[256];
};

static int file_source_open(const char *uri, struct vg_source **out, struct vg_error *err)
{
    struct vg_source *s = calloc(1, sizeof *s);
    if (!s || !(s->buf = malloc(SRC_BUF))) {
        free(s);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    if (!strcmp(uri, "-")) {
        s->fd = 0;
        snprintf(s->name, sizeof s->name, "stdin");
    } else {
        const char *path = !strncmp(uri, "file://", 7) ? uri + 7 : uri;
        s->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (s->fd < 0) {
            int e = errno;
            free(s->buf);
            free(s);
            return vg_error_set(err, e == ENOENT ? VG_ENOENT : VG_EIO, "cannot open input '%s': %s",
                                path, strerror(e));
        }
        s->own_fd = true;
        snprintf(s->name, sizeof s->name, "%s", path);
    }
    struct stat st;
    s->stream = fstat(s->fd, &st) == 0 && !S_ISREG(st.st_mode);
    s->line = 1;
    *out = s;
    return VG_OK;
}

static int file_source_poll(struct vg_source *s, struct vg_msg *msgs, int cap, int timeout_ms,
                            bool *eof, struct vg_error *err)
{
    int n = 0;
    *eof = false;
    for (;;) {
        /* hand out complete lines already buffered */
        while (n < cap && s->start < s->end) {
            char *p = s->buf + s->start;
            char *nl = memchr(p, '\n', s->end - s->start);
            if (!nl)
                break;
            size_t len = (size_t)(nl - p);
            if (s->skipping) {
                /* the tail of an over-long line: already reported */
                s->skipping = false;
                s->start += len + 1;
                continue;
            }
            if (len && p[len - 1] == '\r')
                len--;
            msgs[n].data = p;
            msgs[n].len = len;
            msgs[n].orig_len = len;
            msgs[n].pos = s->line++;
            msgs[n].plant = NULL;
            msgs[n].plant_len = 0;
            msgs[n].stream = -1;
            s->start += (size_t)(nl - p) + 1;
            if (len)   /* blank lines are not messages */
                n++;
        }
        if (n > 0)
            return n;
        if (s->eof) {
            *eof = true;
            if (s->start < s->end && !s->skipping) {
                /* a last line without a newline */
                msgs[0] = (struct vg_msg){s->buf + s->start, s->end - s->start, s->end - s->start,
                                          s->line++, NULL, 0, -1};
                s->start = s->end;
                *eof = false;
                return 1;
            }
            return 0;
        }
        /* make room: move the partial line to the front */
        if (s->start > 0) {
            memmove(s->buf, s->buf + s->start, s->end - s->start);
            s->end -= s->start;
            s->start = 0;
        }
        if (s->end == SRC_BUF) {
            /* a line longer than the buffer: deliver its head, skip the rest */
            if (s->skipping) {
                s->end = 0;
            } else {
                msgs[0] = (struct vg_msg){s->buf, SRC_BUF, SRC_BUF + 1, s->line++, NULL, 0, -1};
                s->skipping = true;
                s->end = 0;
                return 1;
            }
        }
        if (s->stream) {
            /* a pipe may pause: report idle after a short wait so the pipeline
             * ships what it holds instead of waiting for a full batch */
            struct pollfd pfd = {s->fd, POLLIN, 0};
            if (poll(&pfd, 1, timeout_ms >= 0 && timeout_ms < 50 ? timeout_ms : 50) == 0)
                return 0;
        }
        ssize_t r = read(s->fd, s->buf + s->end, SRC_BUF - s->end);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return vg_error_set(err, VG_EIO, "reading %s: %s", s->name, strerror(errno));
        }
        if (r == 0)
            s->eof = true;
        s->end += (size_t)r;
    }
}

static const char *file_source_name(struct vg_source *s)
{
    return s->name;
}

static void file_source_close(struct vg_source *s)
{
    if (!s)
        return;
    if (s->own_fd)
        close(s->fd);
    free(s->buf);
    free(s);
}

const struct vg_source_ops vg_file_source = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "file",
    .open = file_source_open,
    .poll = file_source_poll,
    .mark = NULL,
    .commit = NULL,
    .name = file_source_name,
    .live = false,
    .close = file_source_close,
};

struct vg_sink {
    int fd;
    bool own_fd;
    char *buf;
    size_t used;
    char name[256];
};

static int write_all(struct vg_sink *k, const char *p, size_t n, struct vg_error *err)
{
    while (n) {
        ssize_t w = write(k->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return vg_error_set(err, VG_EIO, "writing %s: %s", k->name, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return VG_OK;
}

static int file_sink_open(const char *uri, struct vg_sink **out, struct vg_error *err)
{
    struct vg_sink *k = calloc(1, sizeof *k);
    if (!k || !(k->buf = malloc(SINK_BUF))) {
        free(k);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    if (!strcmp(uri, "-") || !strcmp(uri, "stdout")) {
        k->fd = 1;
        snprintf(k->name, sizeof k->name, "stdout");
    } else if (!strcmp(uri, "stderr")) {
        k->fd = 2;
        snprintf(k->name, sizeof k->name, "stderr");
    } else {
        const char *path = !strncmp(uri, "file://", 7) ? uri + 7 : uri;
        k->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (k->fd < 0) {
            int e = errno;
            free(k->buf);
            free(k);
            return vg_error_set(err, VG_EIO, "cannot open output '%s': %s", path, strerror(e));
        }
        k->own_fd = true;
        snprintf(k->name, sizeof k->name, "%s", path);
    }
    *out = k;
    return VG_OK;
}

static int file_sink_flush(struct vg_sink *k, struct vg_error *err)
{
    int rc = write_all(k, k->buf, k->used, err);
    k->used = 0;
    return rc;
}

/* One record, one line: the key is not written (the record holds the plant). */
static int file_sink_put(struct vg_sink *k, const char *key, size_t key_len, const char *p, size_t n,
                         struct vg_error *err)
{
    (void)key;
    (void)key_len;
    if (k->used + n + 1 > SINK_BUF) {
        int rc = file_sink_flush(k, err);
        if (rc < 0)
            return rc;
    }
    if (n + 1 > SINK_BUF) {
        int rc = write_all(k, p, n, err);
        return rc < 0 ? rc : write_all(k, "\n", 1, err);
    }
    memcpy(k->buf + k->used, p, n);
    k->buf[k->used + n] = '\n';
    k->used += n + 1;
    return VG_OK;
}

static void file_sink_close(struct vg_sink *k)
{
    if (!k)
        return;
    file_sink_flush(k, NULL);
    if (k->own_fd)
        close(k->fd);
    free(k->buf);
    free(k);
}

const struct vg_sink_ops vg_file_sink = {
    .version = VG_ADAPTER_VERSION,
    .scheme = "file",
    .open = file_sink_open,
    .put = file_sink_put,
    .flush = file_sink_flush,
    .close = file_sink_close,
};
