/*
 * clock.h: event time — durations, timestamps, and (later) the watermark clock.
 * Owns: the textual forms of time: "30s", "1h30m", epoch ms, RFC 3339.
 * Must never: read the wall clock inside a parse; wall time enters only through
 * vg_clock_wall_ms(), so replays stay deterministic.
 */
#ifndef VG_CLOCK_H
#define VG_CLOCK_H

#include "engine/vigil.h"

/**
 * @brief Parse a duration: one or more <digits><unit> with unit ms|s|m|h|d, e.g.
 * "30s", "1h30m", "250ms"; "0" alone is zero.
 * @returns 0 and *out in ms, or VG_EINVAL with a short reason in *why.
 */
int vg_duration_parse(const char *s, size_t n, vg_ts *out, const char **why);

/**
 * @brief Parse an RFC 3339 timestamp with offset ("2026-11-23T08:00:00+08:00",
 * fractional seconds and "Z" allowed).
 * @returns 0 and *out in epoch ms, or VG_EINVAL.
 */
int vg_rfc3339_parse(const char *s, size_t n, vg_ts *out);

/** @brief Parse a command-line TS: epoch ms digits or RFC 3339. */
int vg_ts_parse(const char *s, vg_ts *out);

/** @brief Format @p ms as RFC 3339 with the given UTC offset in minutes. @returns length. */
int vg_rfc3339_format(vg_ts ms, int offset_min, char *buf, size_t cap);

/** @brief Format a duration in its shortest exact form ("1h30m", "250ms", "0s"). */
int vg_duration_format(vg_ts ms, char *buf, size_t cap);

/** @brief Wall clock, epoch ms. The only door through which wall time enters. */
vg_ts vg_clock_wall_ms(void);

#endif
