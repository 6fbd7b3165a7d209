/* log_line.h - the request log of the program's servers (serve, witness):
 * one line per write on standard error, and request fields made safe to
 * print. */
#ifndef AGENTTRACED_LOG_LINE_H
#define AGENTTRACED_LOG_LINE_H

#include <stdbool.h>
#include <stddef.h>

/* Formats one line (cut at about 1 KiB) and writes it with its "\n" in one
 * write(2), so the lines of concurrent requests never interleave. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --log-format json: log_line writes {"time", "message"} objects. Set
 * before any thread logs. */
void log_line_set_json(bool on);
bool log_line_is_json(void);
/* The time now as 2026-12-02T07:42:06.123Z; its length. */
size_t log_time(char *out, size_t cap);
/* Writes a JSON object the caller built as one line (one write(2) when it
 * fits 4 KiB). */
void log_json(const char *json, size_t n);

/* Copies src (NULL: "") into dst (cap bytes, NUL-terminated, cut to fit)
 * with control characters, DEL and spaces replaced by '?': a client's path
 * or header cannot forge log lines or shift fields. */
void log_sanitize(char *dst, size_t cap, const char *src);

#endif
