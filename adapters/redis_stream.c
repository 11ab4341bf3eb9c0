/*
 * redis_stream.c: placeholder until the Redis Stream sink lands (being written now).
 */
#include "engine/adapter.h"

static int open_sink(const char *uri, struct vg_sink **out, struct vg_error *err)
{
    (void)uri;
    (void)out;
    return vg_error_set(err, VG_EUSAGE, "redis:// outputs are not available in this build of vigil");
}

const struct vg_sink_ops vg_redis_stream_sink = {.version = VG_ADAPTER_VERSION, .scheme = "redis", .open = open_sink};
