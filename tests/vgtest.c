/*
 * vgtest.c: temp files, process helpers and the suite runner for the tests.
 * Owns: one temp directory per test process. Must never: write outside it.
 */
#include "vgtest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

const char *vgt_dir(void)
{
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vigil-test-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            abort();
        }
    }
    return dir;
}

char *vgt_path(const char *name)
{
    size_t n = strlen(vgt_dir()) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", vgt_dir(), name);
    return p;
}

const char *vgt_write(const char *name, const char *text)
{
    static char paths[16][512];
    static int slot;
    char *p = vgt_path(name);
    FILE *f = fopen(p, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", p);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    char *out = paths[slot++ % 16];
    snprintf(out, 512, "%s", p);
    free(p);
    return out;
}

char *vgt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int vgt_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

const char *vgt_bin(void)
{
    const char *b = getenv("VG_BIN");
    return b && *b ? b : "./vigil";
}

const char *vgt_src(void)
{
    const char *s = getenv("VG_SOURCE_DIR");
    return s && *s ? s : ".";
}

void vgt_cleanup(void)
{
    if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
        dir[0] = 0;
    }
}

int vgt_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    vgt_cleanup();
    return failed ? 1 : 0;
}
