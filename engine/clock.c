/*
 * clock.c: parsing and formatting of event time.
 * Owns: duration and timestamp grammars. Must never: allocate, or depend on the
 * process time zone (everything is computed from explicit offsets).
 * DESIGN: civil dates convert with the days-from-civil arithmetic on the
 * proleptic Gregorian calendar, valid for years 0000-9999.
 */
#include "engine/clock.h"

#include <string.h>
#include <time.h>
#include <stdio.h>

int vg_duration_parse(const char *s, size_t n, vg_ts *out, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    if (n == 0) {
        *why = "empty duration";
        return VG_EINVAL;
    }
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return VG_OK;
    }
    vg_ts total = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] < '0' || s[i] > '9') {
            *why = "a duration is a number followed by ms, s, m, h or d, e.g. 30s or 1h30m";
            return VG_EINVAL;
        }
        int64_t v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (v > (INT64_C(1) << 40)) {
                *why = "duration too large";
                return VG_EINVAL;
            }
            v = v * 10 + (s[i++] - '0');
        }
        int64_t mul;
        if (i + 1 < n + 0 && s[i] == 'm' && s[i + 1] == 's') {
            mul = 1;
            i += 2;
        } else if (i < n && s[i] == 's') {
            mul = 1000;
            i++;
        } else if (i < n && s[i] == 'm') {
            mul = 60000;
            i++;
        } else if (i < n && s[i] == 'h') {
            mul = 3600000;
            i++;
        } else if (i < n && s[i] == 'd') {
            mul = 86400000;
            i++;
        } else {
            *why = i < n ? "unknown duration unit (use ms, s, m, h or d)"
                         : "missing duration unit (use ms, s, m, h or d)";
            return VG_EINVAL;
        }
        /* check before multiplying: v * mul can overflow int64 (e.g. "9999999999999d") */
        if (v > (INT64_C(100) * 366 * 86400000 - total) / mul) {
            *why = "duration too large (at most 100 years)";
            return VG_EINVAL;
        }
        total += v * mul;
    }
    *out = total;
    return VG_OK;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static int digits(const char *s, size_t n, size_t at, size_t count, int *out)
{
    if (at + count > n)
        return -1;
    int v = 0;
    for (size_t i = 0; i < count; i++) {
        char c = s[at + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 0;
}

int vg_rfc3339_parse(const char *s, size_t n, vg_ts *out)
{
    int Y, M, D, h, mi, se;
    if (digits(s, n, 0, 4, &Y) || n < 20 || s[4] != '-' || digits(s, n, 5, 2, &M) || s[7] != '-' ||
        digits(s, n, 8, 2, &D) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s, n, 11, 2, &h) || s[13] != ':' || digits(s, n, 14, 2, &mi) || s[16] != ':' ||
        digits(s, n, 17, 2, &se))
        return VG_EINVAL;
    static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || mi > 59 || se > 60)
        return VG_EINVAL;
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M == 2 && D == 29 && !leap)
        return VG_EINVAL;
    if (se == 60)
        se = 59; /* leap second: clamp, as most systems do */
    size_t i = 19;
    int ms = 0;
    if (i < n && s[i] == '.') {
        i++;
        size_t start = i;
        int scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start)
            return VG_EINVAL;
    }
    int off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (digits(s, n, i + 1, 2, &oh) || i + 3 >= n || s[i + 3] != ':' ||
            digits(s, n, i + 4, 2, &om) || oh > 23 || om > 59)
            return VG_EINVAL;
        off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return VG_EINVAL; /* an offset is required */
    }
    if (i != n)
        return VG_EINVAL;
    int64_t days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    *out = ((days * 86400 + h * 3600 + mi * 60 + se) - (int64_t)off * 60) * 1000 + ms;
    return VG_OK;
}

int vg_ts_parse(const char *s, vg_ts *out)
{
    size_t n = strlen(s);
    if (n == 0)
        return VG_EINVAL;
    size_t i = 0;
    int64_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9' && i < 18)
        v = v * 10 + (s[i++] - '0');
    if (i == n) {
        *out = v;
        return VG_OK;
    }
    return vg_rfc3339_parse(s, n, out);
}

int vg_rfc3339_format(vg_ts ms, int offset_min, char *buf, size_t cap)
{
    int64_t local = ms + (int64_t)offset_min * 60000;
    int64_t secs = local >= 0 ? local / 1000 : (local - 999) / 1000;
    int msr = (int)(local - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int sod = (int)(secs - days * 86400);
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int oa = offset_min < 0 ? -offset_min : offset_min;
    char tz[24];
    if (offset_min == 0)
        snprintf(tz, sizeof tz, "Z");
    else
        snprintf(tz, sizeof tz, "%c%02d:%02d", offset_min < 0 ? '-' : '+', oa / 60, oa % 60);
    if (msr)
        return snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%03d%s", y, m, d, sod / 3600,
                        sod / 60 % 60, sod % 60, msr, tz);
    return snprintf(buf, cap, "%04d-%02u-%02uT%02d:%02d:%02d%s", y, m, d, sod / 3600, sod / 60 % 60,
                    sod % 60, tz);
}

int vg_duration_format(vg_ts ms, char *buf, size_t cap)
{
    static const struct { int64_t ms; const char *u; } units[] = {
        {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    if (ms <= 0)
        return snprintf(buf, cap, "0s");
    size_t len = 0;
    for (size_t i = 0; i < VG_ARRAY_LEN(units) && ms > 0; i++) {
        if (ms >= units[i].ms) {
            int w = snprintf(buf + len, len < cap ? cap - len : 0, "%lld%s",
                             (long long)(ms / units[i].ms), units[i].u);
            len += (size_t)w;
            ms %= units[i].ms;
        }
    }
    return (int)len;
}

vg_ts vg_clock_wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (vg_ts)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
