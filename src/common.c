/* common.c - the error record, and writing a whole buffer. */
#include "agenttrace/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int at_open_tmpfile(const char *dir)
{
    if (!dir)
        dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    char path[4096]; /* a filesystem without O_TMPFILE: create, then unlink */
    if (snprintf(path, sizeof path, "%s/at-tmp-XXXXXX", dir) >= (int)sizeof path)
        return -1;
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

at_result at_errno_result(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG ? AT_ERR_NO_SPACE : AT_ERR_IO;
}

at_result at_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return at_errno_result(errno);
        }
        c += k;
        n -= (size_t)k;
    }
    return AT_OK;
}

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
    case AT_ERR_CONFLICT: return "conflict";
    case AT_ERR_NO_SPACE: return "no space left on device";
    }
    return "unknown error";
}
