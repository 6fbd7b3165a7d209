/* common.c - the error record. */
#include "agenttrace/common.h"

#include <stdarg.h>
#include <stdio.h>

at_result at_error_set(at_error *err, at_result code, int64_t offset, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->offset = offset;
        err->line = -1;
        err->sys_errno = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *at_result_str(at_result r)
{
    switch (r) {
    case AT_OK: return "ok";
    case AT_ERR_NOMEM: return "out of memory";
    case AT_ERR_IO: return "input/output error";
    case AT_ERR_UTF8: return "invalid UTF-8";
    case AT_ERR_JSON: return "invalid JSON";
    case AT_ERR_TOO_BIG: return "too large";
    case AT_ERR_INVALID: return "invalid";
    case AT_ERR_NOT_FOUND: return "not found";
    case AT_ERR_EMPTY: return "empty input";
    }
    return "unknown error";
}
