/*
 * bench/parse_simdjson.cpp -- simdjson (ondemand) candidate for bench_parse.
 *
 * Owns: a thin extern "C" shim over one reused simdjson::ondemand::parser that
 * extracts plant, device, metric, value and ts from one telemetry line into
 * the bench_sample struct of bench/bench_parse.c, either in place (caller
 * guarantees SIMDJSON_PADDING readable bytes after the line) or after copying
 * the line into a padded buffer it owns.
 *
 * Must never: let a C++ exception or a pointer into the parser's buffers
 * escape through the C interface, write to the caller's input, or change the
 * bench_sample layout without changing bench_parse.c (checked at start-up
 * through bench_sj_layout()).
 */
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

extern "C" {

/* Mirror of struct bench_sample in bench_parse.c. */
struct bench_sample {
    double value;
    int64_t ts_ms;
    uint32_t plant_len, device_len, metric_len, ts_str_len;
    int32_t ts_is_str;
    char plant[64];
    char device[64];
    char metric[64];
    char ts_str[48];
};

struct bench_sj;
struct bench_sj *bench_sj_new(size_t max_line) noexcept;
void bench_sj_free(struct bench_sj *sj) noexcept;
int bench_sj_parse(struct bench_sj *sj, const char *line, size_t len, size_t cap,
                   struct bench_sample *out) noexcept;
int bench_sj_parse_copy(struct bench_sj *sj, const char *line, size_t len,
                        struct bench_sample *out) noexcept;
size_t bench_sj_padding(void) noexcept;
void bench_sj_layout(size_t *size, size_t *off_ts_str, size_t *off_ts_is_str) noexcept;
const char *bench_sj_info(void) noexcept;

} // extern "C"

struct bench_sj {
    simdjson::ondemand::parser parser;
    std::unique_ptr<char[]> buf; // for the copy variant
    size_t buf_cap = 0;          // usable bytes, excluding padding
};

namespace {

enum { F_PLANT, F_DEVICE, F_METRIC, F_VALUE, F_TS };
constexpr unsigned F_ALL = 0x1f;

int key_id(std::string_view k) noexcept
{
    switch (k.size()) {
    case 2:
        return k == "ts" ? F_TS : -1;
    case 5:
        return k == "plant" ? F_PLANT : k == "value" ? F_VALUE : -1;
    case 6:
        return k == "device" ? F_DEVICE : k == "metric" ? F_METRIC : -1;
    default:
        return -1;
    }
}

bool put(char *dst, uint32_t *len, size_t cap, std::string_view s) noexcept
{
    if (s.size() >= cap) return false;
    std::memcpy(dst, s.data(), s.size());
    dst[s.size()] = '\0';
    *len = static_cast<uint32_t>(s.size());
    return true;
}

int extract(simdjson::ondemand::document &doc, bench_sample *out) noexcept
{
    using namespace simdjson;
    ondemand::object obj;
    if (doc.get_object().get(obj) != SUCCESS) return -1;
    unsigned mask = 0;
    for (auto field : obj) {
        std::string_view key;
        if (field.unescaped_key().get(key) != SUCCESS) return -1;
        int id = key_id(key);
        if (id < 0) continue; // the iterator skips the value
        if (mask & (1u << id)) return -1; // duplicate key
        ondemand::value v;
        if (field.value().get(v) != SUCCESS) return -1;
        std::string_view sv;
        switch (id) {
        case F_PLANT:
            if (v.get_string().get(sv) != SUCCESS || !put(out->plant, &out->plant_len, sizeof out->plant, sv))
                return -1;
            break;
        case F_DEVICE:
            if (v.get_string().get(sv) != SUCCESS || !put(out->device, &out->device_len, sizeof out->device, sv))
                return -1;
            break;
        case F_METRIC:
            if (v.get_string().get(sv) != SUCCESS || !put(out->metric, &out->metric_len, sizeof out->metric, sv))
                return -1;
            break;
        case F_VALUE:
            if (v.get_double().get(out->value) != SUCCESS) return -1;
            break;
        default: { // F_TS
            ondemand::json_type t;
            if (v.type().get(t) != SUCCESS) return -1;
            if (t == ondemand::json_type::string) {
                if (v.get_string().get(sv) != SUCCESS || !put(out->ts_str, &out->ts_str_len, sizeof out->ts_str, sv))
                    return -1;
                out->ts_is_str = 1;
            } else if (t == ondemand::json_type::number) {
                // get_int64 refuses fractions, exponents and out-of-range values
                if (v.get_int64().get(out->ts_ms) != SUCCESS) return -1;
                out->ts_is_str = 0;
            } else {
                return -1;
            }
        }
        }
        mask |= 1u << id;
    }
    if (mask != F_ALL) return -1;
    // Nothing but whitespace may follow the object.
    const char *loc = nullptr;
    if (doc.current_location().get(loc) != OUT_OF_BOUNDS) return -1;
    return 0;
}

} // namespace

extern "C" {

struct bench_sj *bench_sj_new(size_t max_line) noexcept
{
    auto *sj = new (std::nothrow) bench_sj;
    if (!sj) return nullptr;
    sj->buf.reset(new (std::nothrow) char[max_line + simdjson::SIMDJSON_PADDING]);
    if (!sj->buf || sj->parser.allocate(max_line) != simdjson::SUCCESS) {
        delete sj;
        return nullptr;
    }
    sj->buf_cap = max_line;
    return sj;
}

void bench_sj_free(struct bench_sj *sj) noexcept
{
    delete sj;
}

int bench_sj_parse(struct bench_sj *sj, const char *line, size_t len, size_t cap,
                   struct bench_sample *out) noexcept
{
    simdjson::ondemand::document doc;
    if (sj->parser.iterate(line, len, cap).get(doc) != simdjson::SUCCESS) return -1;
    return extract(doc, out);
}

int bench_sj_parse_copy(struct bench_sj *sj, const char *line, size_t len,
                        struct bench_sample *out) noexcept
{
    if (len > sj->buf_cap) {
        std::unique_ptr<char[]> bigger(new (std::nothrow) char[len + simdjson::SIMDJSON_PADDING]);
        if (!bigger) return -1;
        sj->buf = std::move(bigger);
        sj->buf_cap = len;
    }
    std::memcpy(sj->buf.get(), line, len);
    simdjson::ondemand::document doc;
    if (sj->parser.iterate(sj->buf.get(), len, sj->buf_cap + simdjson::SIMDJSON_PADDING).get(doc) !=
        simdjson::SUCCESS)
        return -1;
    return extract(doc, out);
}

size_t bench_sj_padding(void) noexcept
{
    return simdjson::SIMDJSON_PADDING;
}

void bench_sj_layout(size_t *size, size_t *off_ts_str, size_t *off_ts_is_str) noexcept
{
    *size = sizeof(bench_sample);
    *off_ts_str = offsetof(bench_sample, ts_str);
    *off_ts_is_str = offsetof(bench_sample, ts_is_str);
}

#define BENCH_SJ_STR2(x) #x
#define BENCH_SJ_STR(x) BENCH_SJ_STR2(x)

const char *bench_sj_info(void) noexcept
{
    static char info[128];
    if (!info[0]) {
        std::string_view active = simdjson::get_active_implementation()->name();
        std::snprintf(info, sizeof info, "simdjson %s (stage 1: %.*s, ondemand compiled for: %s)",
                      BENCH_SJ_STR(SIMDJSON_VERSION), static_cast<int>(active.size()), active.data(),
                      BENCH_SJ_STR(SIMDJSON_BUILTIN_IMPLEMENTATION));
    }
    return info;
}

} // extern "C"
