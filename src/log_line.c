/* log_line.c - request log lines (log_line.h). */
#include "log_line.h"

#include "agenttrace/buf.h"
#include "agenttrace/json.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static bool as_json; /* set once, before any thread logs */

void log_line_set_json(bool on)
{
    as_json = on;
}

bool log_line_is_json(void)
{
    return as_json;
}

size_t log_time(char *out, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int k = n ? snprintf(out + n, cap - n, ".%03ldZ", (long)(tv.tv_usec / 1000)) : -1;
    return k > 0 && n + (size_t)k < cap ? n + (size_t)k : n;
}

static void write_line(const char *p, size_t n)
{
    ssize_t w = write(STDERR_FILENO, p, n);
    (void)w;
}

void log_line(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 2 ? (size_t)n : sizeof line - 2;
    if (as_json) { /* {"time", "message"}: one JSON object a line */
        char t[40];
        size_t tn = log_time(t, sizeof t);
        at_buf b;
        at_buf_init(&b, 0);
        if (at_buf_adds(&b, "{\"time\": \"") == AT_OK && at_buf_add(&b, t, tn) == AT_OK &&
            at_buf_adds(&b, "\", \"message\": ") == AT_OK && at_json_write_wtf8(&b, line, len) == AT_OK &&
            at_buf_adds(&b, "}\n") == AT_OK)
            write_line(b.data, b.len);
        at_buf_fini(&b);
        return;
    }
    line[len++] = '\n';
    write_line(line, len);
}

void log_json(const char *json, size_t n)
{
    char line[4096];
    if (n + 1 > sizeof line) {
        write_line(json, n);
        write_line("\n", 1);
        return;
    }
    memcpy(line, json, n);
    line[n] = '\n';
    write_line(line, n + 1);
}

void log_sanitize(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c < 0x20 || c == 0x7f || c == ' ') ? '?' : (char)c;
    }
    dst[i] = 0;
}
