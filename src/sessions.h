/* sessions.h - listing the sessions of a storage directory (sessions.c).
 *
 * The public part (id checks, prefix resolution) is declared in http.h;
 * this is what collector.c needs besides. The storage directory is the
 * only truth: nothing here caches a listing, so sessions written by other
 * processes appear at the next call. */
#ifndef AGENTTRACED_SESSIONS_H
#define AGENTTRACED_SESSIONS_H

#include "agenttrace/common.h"
#include <stdbool.h>
#include <stddef.h>

/* Is <root>/<name> a session, i.e. does it hold a meta.json? "objects" and
 * dot-names never are. name must already be an acceptable id. */
bool sessions_exists(const char *root, const char *name);

/* Every session directory name under root (the ones holding meta.json),
 * in directory order. On success *ids is a malloc'd array of *n malloc'd
 * strings (free with sessions_free_ids). AT_ERR_IO when root cannot be
 * listed, AT_ERR_NOMEM. */
at_result sessions_scan(const char *root, char ***ids, size_t *n) AT_WUR;
void sessions_free_ids(char **ids, size_t n);

#endif
