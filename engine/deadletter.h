/*
 * deadletter.h: the dead-letter record — what was rejected, why, and the
 * original bytes, so nothing is ever dropped silently.
 * Owns: the dead-letter JSON format (schemas/dead_letter.schema.json).
 * Must never: lose bytes: invalid UTF-8 is escaped as \u00XX in "line" and the
 * exact bytes are also given base64-encoded in "line_base64".
 */
#ifndef VG_DEADLETTER_H
#define VG_DEADLETTER_H

#include "engine/vigil.h"

/** Bytes a record for a message of @p len bytes may need. */
#define VG_DEADLETTER_CAP(len) ((len) * 8 + 1024)

/**
 * @brief Format one record as a JSON line ending in '\n'.
 * @param source  "stdin", a path or a topic; @p pos its line or offset (0: none).
 * @returns length, or -1 if @p cap is too small.
 */
int vg_deadletter_format(char *buf, size_t cap, const char *reason, const char *detail,
                         const char *source, uint64_t pos, const char *data, size_t len,
                         size_t orig_len, vg_ts wall_ms);

#endif
