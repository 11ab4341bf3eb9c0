/*
 * json.h: one input line (or MQTT/Kafka payload) to normalised messages.
 * Owns: the input contract of DESIGN.md (single sample, plant batch, report
 * event, ack and maintenance controls) and the dead-letter reasons for input.
 * Must never: allocate per message, or accept anything it cannot represent
 * exactly; a line is taken whole or rejected whole.
 * DESIGN: jsmn (Debian's libjsmn-dev, strict mode) tokenises into a reused token
 * array; this module checks the separators jsmn leaves unchecked, matches keys
 * by length and bytes, converts numbers with an exact fast path (Clinger: at
 * most 15 significant digits and |exp10| <= 22) and strtod otherwise. Strings
 * without escapes are borrowed from the line; escaped ones are decoded into a
 * per-parser scratch buffer. bench/bench_parse.c holds the measurements.
 */
#ifndef VG_JSON_H
#define VG_JSON_H

#include "engine/event.h"

#define VG_LINE_MAX 65536      /* bytes per line; longer lines are dead-lettered */
#define VG_POINTS_MAX 1024     /* points in one plant batch */
#define VG_ID_MAX 64           /* bytes in plant, device, metric, event names */

/** Why a line was rejected: a stable machine reason and a human detail. */
struct vg_reject {
    const char *reason;  /* static: "malformed", "missing_field", … */
    char detail[160];
};

struct vg_json_parser;

/** @brief Create a parser (owns its token array and scratch). @returns NULL on OOM. */
struct vg_json_parser *vg_json_parser_create(void);
void vg_json_parser_destroy(struct vg_json_parser *jp);

/**
 * @brief The plant the transport names for the next messages (an MQTT topic
 * level), or NULL. With one, a message without "plant" takes it, and one whose
 * "plant" differs is rejected as `plant_mismatch`. @p plant is borrowed until
 * the next call here.
 */
void vg_json_parser_plant(struct vg_json_parser *jp, const char *plant, size_t n);

/**
 * @brief Parse one line.
 * @param line  the bytes, not necessarily NUL-terminated; no trailing newline.
 * @param out   on success, points at an array of *n messages owned by the parser,
 *              valid until the next call; strings borrow from @p line or the parser.
 * @returns 0, or VG_EINVAL with @p rej filled.
 * @thread the one thread that owns @p jp.
 */
int vg_json_parse(struct vg_json_parser *jp, const char *line, size_t len,
                  const struct vg_sample **out, unsigned *n, struct vg_reject *rej);

/**
 * @brief Append @p s as a JSON string body (no quotes) to @p buf, escaping
 * quotes, backslashes and control bytes, and bytes that are not valid UTF-8 as
 * \u00XX. @returns bytes written, or -1 if @p cap is too small.
 */
int vg_json_escape(char *buf, size_t cap, const char *s, size_t n);

#endif
