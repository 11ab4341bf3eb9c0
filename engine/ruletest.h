/*
 * ruletest.h: `vigil test` — rule unit tests written in YAML, in the spirit of
 * `promtool test rules`: input messages on a relative time line, and every
 * alert the rules must raise from them.
 * Owns: the test-file format below, the series notation, running each test
 * through the real engine, and the readable diff of expected and actual alerts.
 * Must never: evaluate rules itself (every test goes through vg_ruleset_load,
 * vg_registry_load and vg_pipeline_run with one worker, exactly as `vigil run`
 * would), leave temporary files behind, or stop at the first invalid file.
 * DESIGN: a test's messages are generated, merged in time order (stable: input
 * order for equal times) and written as NDJSON with absolute epoch-ms `ts` to a
 * temporary file; the file source reads it and the file sink writes alerts and
 * dead letters to temporary files, which are read back. Expected and actual
 * alerts are compared per subject (rule + plant + device) in order, with a
 * longest-common-subsequence diff so one wrong alert shows as one `-`/`+` pair.
 *
 * File format (`rules/ammonia_refrigeration.test.yaml`):
 *
 *   rule_files: [ammonia_refrigeration.yaml]  # relative to this file; a string or a list;
 *                                             # default: this file's name minus ".test"
 *   registry: registry.example.yaml           # optional: a path relative to this file,
 *                                             # or an inline mapping in registry format
 *   tests:
 *     - name: yellow after 30 s               # optional (default "test N")
 *       start: 2025-11-23T08:00:00+08:00      # time zero, epoch ms or RFC 3339
 *                                             # (default 2025-11-23T00:00:00Z); the run's --start
 *       lateness: 0s                          # optional; the run's --lateness
 *       until: 10m                            # optional; the run's --until (relative to start)
 *       input:
 *         # a series: one sample every `every` from `from` (default 0s)
 *         - { plant: P1, device: NH3-01, metric: nh3_ppm, every: 10s, values: "10 30x3 _ 40+5x2" }
 *         # one message: a sample (metric + value) or a report (event, value optional)
 *         - { at: 90s, plant: P1, device: NH3-01, metric: nh3_ppm, value: 160, quality: M }
 *         - { at: 1d, plant: P1, device: D-01, event: dust_cleaning_report }
 *         # a raw line, written unchanged; `at` (default 0s) only places it in the merge
 *         - { raw: '{"type":"maintenance","plant":"P1","from":0,"until":1}' }
 *       expect:                               # EVERY alert the rules raise in this test
 *         - { at: 40s, rule: nh3_over_limit, plant: P1, device: NH3-01,
 *             status: firing, level: yellow, started_at: 10s }   # started_at, value optional
 *       expect_dead_letters: 0                # optional count
 *
 * Times (`at`, `from`, `until`, `started_at`) are durations after `start`
 * ("40s", "1h30m", "0", "-5s") or absolute: epoch milliseconds (from the year
 * 2000 on, so that a bare `40` is an error, not 1970) or RFC 3339. Series
 * values: "10 30 32" plain numbers; "30x3" is 30 four times (the value, then 3
 * more); "10+5x3" is 10 15 20 25 and "10-5x2" is 10 5 0; "_" is no sample at
 * that step and "_x3" three steps without one.
 *
 * An expected alert matches an actual one when rule, plant, device, status,
 * level and `at` are equal (and `started_at`, `value`, `region` when given).
 * A test passes when every actual alert is expected and every expected one
 * happened, in order per subject, and the dead-letter count is right if given.
 */
#ifndef VG_RULETEST_H
#define VG_RULETEST_H

#include <stdio.h>
#include "engine/error.h"

/** Most values one series may expand to. */
#define VG_SERIES_MAX 1000000

/** One step of an expanded series: a number, or no sample at that step. */
struct vg_series_value {
    double value;
    bool missing;
};

/**
 * @brief Expand series notation ("10 30x3 _ 10+5x3 _x2") into one entry per step.
 * @param out  on success a malloc'd array of *n entries (caller frees; NULL if *n is 0).
 * @param bad  on failure, the byte offset of the offending token in @p s.
 * @param why  on failure, a short reason.
 * @returns 0, or VG_EINVAL (nothing allocated), or VG_ENOMEM.
 * @thread any.
 */
int vg_ruletest_expand_values(const char *s, size_t len, struct vg_series_value **out, size_t *n,
                              size_t *bad, const char **why);

struct vg_ruletest_counts {
    unsigned passed, failed;   /* tests; a test in an invalid file counts as failed */
    unsigned files, invalid;   /* test files read, and those that were invalid */
};

/**
 * @brief Run the tests in files and directories (a directory runs its
 * *.test.yaml and *.test.yml files in name order). Failing tests print a diff
 * to @p out; invalid test, rule or registry files print file:line:col:
 * message lines to @p diag. Neither prints the summary line.
 * @returns 0 with @p counts filled (also when tests failed), or a VG_E* code
 * with @p err filled when a temporary file could not be written or read.
 */
int vg_ruletest_run(const char *const *paths, size_t n_paths, FILE *out, FILE *diag,
                    struct vg_ruletest_counts *counts, struct vg_error *err);

#endif
