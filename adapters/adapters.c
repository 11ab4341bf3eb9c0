/*
 * adapters.c: the table of compiled-in adapters and URI dispatch.
 * Owns: which scheme goes to which adapter. Must never: hold adapter state.
 * Adding a transport: write adapters/NAME.c with its ops, add one line below.
 */
#include "engine/adapter.h"

#include <stdio.h>
#include <string.h>

extern const struct vg_source_ops vg_file_source;
extern const struct vg_sink_ops vg_file_sink;
extern const struct vg_store_ops vg_memory_store;
extern const struct vg_store_ops vg_redis_store;
extern const struct vg_source_ops vg_mqtt_source;
extern const struct vg_sink_ops vg_mqtt_sink;
extern const struct vg_source_ops vg_mqtts_source;
extern const struct vg_sink_ops vg_mqtts_sink;
extern const struct vg_source_ops vg_kafka_source;
extern const struct vg_sink_ops vg_kafka_sink;
extern const struct vg_sink_ops vg_redis_stream_sink;

static const struct vg_source_ops *const sources[] = {&vg_file_source, &vg_mqtt_source, &vg_mqtts_source, &vg_kafka_source,
                                                      NULL};
static const struct vg_sink_ops *const sinks[] = {&vg_file_sink, &vg_mqtt_sink, &vg_mqtts_sink, &vg_kafka_sink,
                                                  &vg_redis_stream_sink, NULL};
static const struct vg_store_ops *const stores[] = {&vg_memory_store, &vg_redis_store, NULL};

/* "mqtt://x" -> "mqtt"; a path or "-" -> "file"; "memory" -> "memory". */
static void scheme_of(const char *uri, char *out, size_t cap)
{
    const char *sep = strstr(uri, "://");
    size_t n = sep ? (size_t)(sep - uri) : 0;
    if (!sep || n == 0 || n >= cap || strchr(uri, '/') < sep) {
        snprintf(out, cap, "%s", !strcmp(uri, "memory") ? "memory" : "file");
        return;
    }
    memcpy(out, uri, n);
    out[n] = 0;
}

/* Transports on the way (issue 4 and after): named, so a user learns they are coming. */
static const char *const planned_io[] = {"mqtt", "kafka", "redis", NULL};
static const char *const planned_stores[] = {NULL};

static int unknown(const char *scheme, const char *what, const char *const *planned, const char *has,
                   struct vg_error *err)
{
    for (const char *const *p = planned; *p; p++)
        if (!strcmp(*p, scheme))
            return vg_error_set(err, VG_EUSAGE, "%s '%s://' is not available in this build of vigil "
                                "(it has: %s)", what, scheme, has);
    return vg_error_set(err, VG_EUSAGE, "unknown %s scheme '%s://' (this build has: %s)", what, scheme, has);
}

int vg_source_open(const char *uri, struct vg_source_handle *out, struct vg_error *err)
{
    char scheme[32];
    scheme_of(uri, scheme, sizeof scheme);
    for (const struct vg_source_ops *const *o = sources; *o; o++)
        if (!strcmp((*o)->scheme, scheme)) {
            out->ops = *o;
            return (*o)->open(uri, &out->src, err);
        }
    return unknown(scheme, "input", planned_io, "file paths and -", err);
}

int vg_sink_open(const char *uri, struct vg_sink_handle *out, struct vg_error *err)
{
    char scheme[32];
    scheme_of(uri, scheme, sizeof scheme);
    for (const struct vg_sink_ops *const *o = sinks; *o; o++)
        if (!strcmp((*o)->scheme, scheme)) {
            out->ops = *o;
            return (*o)->open(uri, &out->sink, err);
        }
    return unknown(scheme, "output", planned_io, "file paths and -", err);
}

int vg_store_open(const char *uri, struct vg_store_handle *out, struct vg_error *err)
{
    char scheme[32];
    scheme_of(uri, scheme, sizeof scheme);
    for (const struct vg_store_ops *const *o = stores; *o; o++)
        if (!strcmp((*o)->scheme, scheme)) {
            out->ops = *o;
            return (*o)->open(uri, &out->store, err);
        }
    if (!strcmp(scheme, "file"))
        return vg_error_set(err, VG_EUSAGE, "unknown state store '%s' (this build has: memory, "
                            "redis://[:PASSWORD@]HOST:PORT[/DB])", uri);
    return unknown(scheme, "state store", planned_stores, "memory, redis://[:PASSWORD@]HOST:PORT[/DB]", err);
}

void vg_source_close(struct vg_source_handle *h)
{
    if (h->ops)
        h->ops->close(h->src);
    h->ops = NULL;
}

void vg_sink_close(struct vg_sink_handle *h)
{
    if (h->ops)
        h->ops->close(h->sink);
    h->ops = NULL;
}

void vg_store_close(struct vg_store_handle *h)
{
    if (h->ops)
        h->ops->close(h->store);
    h->ops = NULL;
}
