/*
 * kafka.c: placeholder until the kafka adapter lands (being written now).
 */
#include "engine/adapter.h"

static int open_src(const char *uri, struct vg_source **out, struct vg_error *err)
{
    (void)uri;
    (void)out;
    return vg_error_set(err, VG_EUSAGE, "kafka:// is not available in this build of vigil");
}

static int open_sink(const char *uri, struct vg_sink **out, struct vg_error *err)
{
    (void)uri;
    (void)out;
    return vg_error_set(err, VG_EUSAGE, "kafka:// is not available in this build of vigil");
}

const struct vg_source_ops vg_kafka_source = {.version = VG_ADAPTER_VERSION, .scheme = "kafka", .open = open_src, .live = true};
const struct vg_sink_ops vg_kafka_sink = {.version = VG_ADAPTER_VERSION, .scheme = "kafka", .open = open_sink};
