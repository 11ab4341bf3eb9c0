/*
 * vgtest.h: helpers shared by the Check suites.
 * Owns: temporary files and directories of one test run, and running the
 * vigil binary. Must never: leave files behind or touch anything outside
 * its temporary directory.
 */
#ifndef VG_TEST_H
#define VG_TEST_H

#include <check.h>
#include <stddef.h>

/** A fresh temporary directory (removed by vgt_cleanup). Returns its path. */
const char *vgt_dir(void);
/** Write @p text to @p name in the temp dir. Returns the full path (static storage per call slot). */
const char *vgt_write(const char *name, const char *text);
/** Full path of @p name in the temp dir (a new string; caller frees). */
char *vgt_path(const char *name);
/** Read a whole file (caller frees); NULL if missing. */
char *vgt_read(const char *path, size_t *len);
/** Run a shell command line; returns the exit status (or -1). */
int vgt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** The vigil binary under test ($VG_BIN). */
const char *vgt_bin(void);
/** The source tree ($VG_SOURCE_DIR). */
const char *vgt_src(void);
/** Remove the temp dir. */
void vgt_cleanup(void);
/** Run a suite and return a process exit status. */
int vgt_run(Suite *s);

#endif
