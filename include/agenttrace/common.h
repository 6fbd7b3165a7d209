/* common.h - result codes, the error record, and every size cap in one place. */
#ifndef AGENTTRACE_COMMON_H
#define AGENTTRACE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define AT_WUR __attribute__((warn_unused_result))

/* One result enum for the whole library. AT_OK is 0; everything else fails. */
typedef enum {
    AT_OK = 0,
    AT_ERR_NOMEM,     /* an allocation failed */
    AT_ERR_IO,        /* a system call failed (errno in at_error.sys_errno) */
    AT_ERR_UTF8,      /* input is not valid UTF-8 (offset set) */
    AT_ERR_JSON,      /* input is not valid JSON in the Python dialect */
    AT_ERR_TOO_BIG,   /* a cap below was exceeded */
    AT_ERR_INVALID,   /* a value is well-formed but not acceptable (bad id, bad field) */
    AT_ERR_NOT_FOUND, /* no such session, event or object */
    AT_ERR_EMPTY,     /* input had no bytes at all */
    AT_ERR_CONFLICT,  /* the request does not fit the stored state (a wrong resume offset) */
    AT_ERR_NO_SPACE,  /* the file system is full (ENOSPC, EDQUOT, EFBIG; errno kept): HTTP 507 */
} at_result;

/* Where and why an operation failed. Callers pass one in; functions fill it
 * on failure only. `offset` is a 0-based byte offset into the input stream,
 * `line` a 0-based line index; either is -1 when it does not apply. */
typedef struct {
    at_result code;
    int64_t offset;
    int64_t line;
    int sys_errno;
    char message[256];
} at_error;

/* Records a failure in err (which may be NULL) and returns code. */
at_result at_error_set(at_error *err, at_result code, int64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Human name of a result code ("invalid UTF-8", ...). */
const char *at_result_str(at_result r);

/* The result a failed system call's errno e stands for: AT_ERR_NO_SPACE
 * for a full file system (ENOSPC, EDQUOT, EFBIG), else AT_ERR_IO. */
at_result at_errno_result(int e);

/* Writes all n bytes to fd (retrying short writes and EINTR); otherwise
 * at_errno_result(errno), errno kept. Bytes may have been written before a
 * failure: the caller truncates them away if they must not stay. */
at_result at_write_all(int fd, const void *p, size_t n) AT_WUR;

/* An anonymous read-write file in dir (NULL: /tmp) that disappears when
 * closed, even after a crash where O_TMPFILE is supported; -1 on failure. */
int at_open_tmpfile(const char *dir);

/* ---- caps: every buffer that grows from input is bounded by one of these */
#define AT_MAX_LINE_BYTES     (64u * 1024 * 1024) /* one transcript/NDJSON line */
#define AT_MAX_JSON_DEPTH     1000                /* nesting of arrays/objects */
#define AT_MAX_SESSION_ID     255                 /* bytes, a file name */
#define AT_MAX_EVENT_ID_BYTES 48                  /* an imported event id: 12 code points */
#define AT_MAX_USAGE_IDS      (1u << 20)          /* distinct (message id, request id) pairs one import
                                                     dedups (usage.h): 16 bytes each + slots */
#define AT_MAX_USAGE_MODELS   4096                /* models of one transcript's usage */
#define AT_MAX_USAGE_DAYS     65536               /* (day, model) buckets of one transcript's usage */
#define AT_PENDING_MEM_BYTES  (4u * 1024 * 1024)  /* events held before the session id is known */
#define AT_MAX_META_BYTES     (1u * 1024 * 1024)  /* meta.json */

#endif
