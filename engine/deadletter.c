/*
 * deadletter.c: formats dead-letter records. See deadletter.h.
 * Owns: nothing but formatting. Must never: allocate.
 */
#include "engine/deadletter.h"
#include "engine/json.h"

#include <stdio.h>
#include <string.h>

static bool valid_utf8(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
        if (!len || c > 0xF4 || i + (size_t)len > n)
            return false;
        for (int k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0) ||
            (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] >= 0x90))
            return false;
        i += (size_t)len;
    }
    return true;
}

static size_t base64(char *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

int vg_deadletter_format(char *buf, size_t cap, const char *reason, const char *detail,
                         const char *source, uint64_t pos, const char *data, size_t len,
                         size_t orig_len, vg_ts wall_ms)
{
    if (cap < VG_DEADLETTER_CAP(len))
        return -1;
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "{\"reason\":\"%s\",\"detail\":\"", reason);
    o += (size_t)vg_json_escape(buf + o, cap - o, detail, strlen(detail));
    o += (size_t)snprintf(buf + o, cap - o, "\",\"source\":\"");
    o += (size_t)vg_json_escape(buf + o, cap - o, source, strlen(source));
    if (pos)
        o += (size_t)snprintf(buf + o, cap - o, ":%llu", (unsigned long long)pos);
    o += (size_t)snprintf(buf + o, cap - o, "\",\"at\":%lld,\"len\":%zu", (long long)wall_ms, orig_len);
    if (orig_len > len)
        o += (size_t)snprintf(buf + o, cap - o, ",\"truncated\":true");
    o += (size_t)snprintf(buf + o, cap - o, ",\"line\":\"");
    o += (size_t)vg_json_escape(buf + o, cap - o, data, len);
    buf[o++] = '"';
    if (!valid_utf8((const unsigned char *)data, len)) {
        o += (size_t)snprintf(buf + o, cap - o, ",\"line_base64\":\"");
        o += base64(buf + o, (const unsigned char *)data, len);
        buf[o++] = '"';
    }
    buf[o++] = '}';
    buf[o++] = '\n';
    return (int)o;
}
