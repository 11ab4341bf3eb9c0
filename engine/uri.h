/*
 * uri.h: the endpoint URIs every adapter takes.
 * Owns: struct vg_uri, parsed from
 *   scheme://[USER[:PASSWORD]@]HOSTS[/PATH][?KEY=VALUE&KEY=VALUE...]
 * where HOSTS is HOST[:PORT] or a comma-separated list of them (Kafka
 * bootstrap servers) and IPv6 hosts are bracketed. USER, PASSWORD, PATH and
 * option values are percent-decoded; PATH keeps '+' and '#' (MQTT topic
 * filters) as written.
 * Where the userinfo ends: at the last '@' before the first '/' or '?' (so
 * a path or an option value may hold '@'); but when that leaves no valid
 * first host (empty, or a bad port), a password holds a raw '/', '@' or '?'
 * and the userinfo ends at the last '@' of all: redis://:pa/ss@h:6379 and
 * redis://:p@/x@h work. A reading that does give a valid host wins, so
 * redis://:p@ss/w@h is host "ss"; percent-encode such characters in a
 * password (%2F %40 %3F) to be sure.
 * Must never: know what any option means; adapters ask
 * for the options they have and vg_uri_finish() rejects the rest by name.
 * The password is wiped on vg_uri_fini.
 */
#ifndef VG_URI_H
#define VG_URI_H

#include "engine/error.h"
#include "engine/vigil.h"

struct vg_uri_opt {
    char *key, *value;   /* decoded */
    bool used;           /* asked for by the adapter */
};

struct vg_uri {
    char scheme[16];
    char *user, *password;  /* NULL when absent */
    char *hosts;            /* as written: "h:1883", "[::1]:6379", "a:9092,b:9092" */
    char *host;             /* the first host, without brackets or port */
    int port;               /* the first host's port, or 0 when none was written */
    char *path;             /* after the first '/' of the path, decoded; "" when absent */
    struct vg_uri_opt *opts;
    size_t n_opts;
    const char *what;       /* for messages, e.g. "--input" (borrowed) */
};

/**
 * @brief Parse @p uri. @p what names the flag or config key for messages.
 * @returns 0, or VG_EUSAGE with a message that quotes the bad part.
 * On failure @p u is finalised already.
 */
int vg_uri_parse(const char *uri, const char *what, struct vg_uri *u, struct vg_error *err);

/** @returns the value of option @p key (the last one given), or NULL; marks it used. */
const char *vg_uri_opt(struct vg_uri *u, const char *key);
/** Every value of a repeatable option, in order: fills up to @p cap, @returns the count; marks them used. */
size_t vg_uri_opts(struct vg_uri *u, const char *key, const char **out, size_t cap);
/** Option @p key as an integer in [lo, hi]; @p out keeps its default when absent. */
int vg_uri_long(struct vg_uri *u, const char *key, long lo, long hi, long *out, struct vg_error *err);
/** Option @p key as a duration ("500ms", "2s") in [lo, hi] ms. */
int vg_uri_duration(struct vg_uri *u, const char *key, vg_ts lo, vg_ts hi, vg_ts *out,
                    struct vg_error *err);
/** Option @p key as a boolean: 1/0, true/false, yes/no, on/off. */
int vg_uri_bool(struct vg_uri *u, const char *key, bool *out, struct vg_error *err);
/**
 * @brief After the adapter asked for its options: any option left unused is an
 * error naming it and listing @p known (e.g. "qos, client_id, clean").
 */
int vg_uri_finish(const struct vg_uri *u, const char *known, struct vg_error *err);

/** @brief Free everything, wiping the password first. */
void vg_uri_fini(struct vg_uri *u);

/** @brief Percent-decode [p, p+n) into a new string; NULL on a bad %XX (*bad) or no memory. */
char *vg_uri_decode(const char *p, size_t n, bool *bad);

#endif
