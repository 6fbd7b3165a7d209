/* verify.h - GET /sessions/{id}/verify and GET /objects/sha256/{hex}.
 * The request's parameters are parsed by the caller (http_server.c). */
#ifndef AGENTTRACED_API_VERIFY_H
#define AGENTTRACED_API_VERIFY_H

#include "http.h"

#include "agenttrace/verify.h"

/* Verifies version `version` (0: the current one) of session id (an id or
 * a unique prefix) from its object: the chain (report_verify), whether the
 * bytes hash to the version's recorded digest (object_ok), and with a log
 * the version's entry and its inclusion in the latest signed checkpoint,
 * the proof checked against the checkpoint's root as an auditor would. */
void api_verify_session(server_ctx *ctx, const char *id, at_verify_mode mode, uint64_t version, http_response *hr);

/* The object named by hexs (64 hex digits, either case), streamed, with its
 * digest as ETag; 304 when if_none_match (may be NULL) names it. */
void api_object(server_ctx *ctx, const char *hexs, const char *if_none_match, http_response *hr);

#endif
