/*
 * config.h: the configuration file of `vigil run --config FILE` (YAML).
 * Owns: struct vg_config — every value the file sets, as the strings and
 * numbers `vigil run` would take from its flags, with the file position of
 * each key for messages. Must never: open an endpoint, connect to a server,
 * or know what an adapter option means (adapters reject unknown options by
 * name when cli.c opens them); never print a password.
 *
 * DESIGN: one key per `vigil run` flag (the flag's name with '_' for '-'),
 * and room to grow: an endpoint is a string or a mapping, and a new section
 * is a new top-level key.
 *
 *   version: 1                        # required
 *   rules: [rules/, extra.yaml]       # a path or a list; relative to the file's directory
 *   registry: registry.yaml           # relative to the file's directory
 *   input: mqtt://broker:1883/plants/+/telemetry    # endpoint: a string ...
 *   alerts:                           # ... or a mapping
 *     uri: kafka://k1:9092,k2:9092/vigil.alerts
 *     username: vigil                 # percent-encoded into the URI's userinfo
 *     password: ${KAFKA_PASSWORD}     # from the environment
 *     options: { acks: all, linger: 5ms }   # percent-encoded into ?key=value&...
 *   sms: ...  dead_letter: ...  state: ...  # endpoints, as above
 *   threads: 4                        # default: the number of cores
 *   lateness: 30s                     # durations: ms s m h d
 *   checkpoint_interval: 1s
 *   start: "2026-11-23T00:00:00+08:00"  # TS: epoch ms or RFC 3339
 *   until: 1763913600000
 *   summary: true
 *   notify: { daily_cap_per_number: 20, digest_at: "08:30" }   # Asia/Shanghai
 *
 * Every scalar may hold ${NAME} (the environment variable NAME; an error if it
 * is not set) or ${NAME:-default} (default when NAME is unset or empty);
 * "$${" is a literal "${". Inside a { } mapping such a value must be quoted
 * ("${NAME}"): its braces would end the mapping. Relative file paths — rules, registry, and
 * endpoints that are files — resolve against the config file's directory;
 * "-" (quote it: a bare - is a YAML list item), "stdin" (input, the same as
 * "-"), "stdout", "stderr" and "memory" are not paths. Unknown keys are errors
 * naming the keys allowed there. Every error is "file:line:col: message".
 */
#ifndef VG_CONFIG_H
#define VG_CONFIG_H

#include "engine/error.h"
#include "engine/vigil.h"

/** The keys of a config file, for positions and messages. */
enum vg_config_key {
    VG_CONF_RULES,
    VG_CONF_REGISTRY,
    VG_CONF_INPUT,
    VG_CONF_ALERTS,
    VG_CONF_SMS,
    VG_CONF_DEAD_LETTER,
    VG_CONF_STATE,
    VG_CONF_THREADS,
    VG_CONF_LATENESS,
    VG_CONF_CHECKPOINT_INTERVAL,
    VG_CONF_START,
    VG_CONF_UNTIL,
    VG_CONF_SUMMARY,
    VG_CONF_NOTIFY,
    VG_CONF_KEYS
};

/** Where a key's value starts in the file (1-based); line 0: the file does not set it. */
struct vg_config_pos {
    int line, col;
};

#define VG_CONFIG_DIGEST_DEFAULT 480  /* 08:00 local time */

/**
 * A loaded configuration. Every string is owned by the struct (freed, and
 * endpoint URIs wiped, by vg_config_fini). A value the file does not set
 * holds its default, and pos[key].line is 0.
 */
struct vg_config {
    char *file;                  /* the config file, as given */
    char **rules;                /* NULL-terminated rule paths (NULL: not set) */
    size_t n_rules;
    char *registry;              /* registry path, or NULL */
    char *input;                 /* endpoint URIs or paths, canonical (credentials and */
    char *alerts;                /*   options folded in, percent-encoded), or NULL when */
    char *sms;                   /*   the file does not set them */
    char *dead_letter;
    char *state;
    int threads;                 /* 1..VG_THREADS_MAX, or 0: not set (the number of cores) */
    vg_ts lateness_ms;           /* default 0 */
    vg_ts checkpoint_ms;         /* default 1000 */
    vg_ts start, until;          /* VG_TS_NONE when unset */
    bool summary;                /* default false; set when pos[VG_CONF_SUMMARY].line */
    int sms_daily_cap;           /* notify.daily_cap_per_number; default 0 (no cap) */
    int sms_digest_minute;       /* notify.digest_at as local minute of day; default 480 */
    struct vg_config_pos pos[VG_CONF_KEYS];
};

/** @brief The defaults: nothing set, owning no memory (vg_config_fini is still fine). */
void vg_config_init(struct vg_config *c);

/**
 * @brief Load @p file into @p c (which is initialised first). Collects every
 * error it finds into @p diags as file:line:col: message.
 * @returns 0; VG_ENOENT when the file cannot be opened (one diagnostic);
 * VG_EINVAL when it is invalid (c is then finalised: nothing is half-set);
 * VG_ENOMEM.
 */
int vg_config_load(struct vg_config *c, const char *file, struct vg_diags *diags);

/** @brief Free everything; endpoint URIs (which may hold passwords) are wiped first. */
void vg_config_fini(struct vg_config *c);

/** @returns the key's name as written in the file, e.g. "dead_letter". */
const char *vg_config_key_name(enum vg_config_key key);

/** @returns true when the file sets @p key. */
static inline bool vg_config_has(const struct vg_config *c, enum vg_config_key key)
{
    return c->pos[key].line != 0;
}

/**
 * @brief An endpoint for messages, with no secret in it: the URI without
 * userinfo and query, followed by what was left out, e.g.
 * "redis://r:6379/0 (user, password, 1 option)"; a path as it is.
 * @returns @p buf.
 */
const char *vg_config_endpoint_show(const char *uri, char *buf, size_t cap);

#endif
