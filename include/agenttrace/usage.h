/* usage.h - token usage of a Claude Code transcript, counted as ccusage
 * 18.0.11 counts it (docs/usage.md), and its cost from the price table
 * shipped in data/prices.tsv.
 *
 * The importer hands every JSON object line it parses to at_usage_add; a
 * line counts when ccusage's schema accepts it (a message.usage with
 * numeric input_tokens and output_tokens, a timestamp of the form
 * YYYY-MM-DDTHH:MM:SS[.mmm]Z, ...), and a message counts once per
 * (message.id, requestId) pair. Sums are kept per model, per (UTC day,
 * model) and in total, as doubles added in file order (JavaScript's
 * arithmetic, so the sums are ccusage's). What a price applies to is kept
 * beside them, so that the cost is computed when asked, from the table of
 * the running program. */
#ifndef AGENTTRACE_USAGE_H
#define AGENTTRACE_USAGE_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include "agenttrace/json.h"
#include <stdbool.h>
#include <stdint.h>

/* The four kinds of tokens, in this order everywhere. */
enum { AT_TOK_INPUT, AT_TOK_OUTPUT, AT_TOK_CACHE_CREATION, AT_TOK_CACHE_READ, AT_TOK_KINDS };

/* A message's count beyond this many tokens of one kind takes the
 * model's *_above_200k price (ccusage's tiered pricing). */
#define AT_USAGE_TIER_TOKENS 200000.0

typedef struct {
    uint64_t messages;           /* messages counted */
    double tokens[AT_TOK_KINDS]; /* sums of the counts as given (a count may be negative or fractional) */
    double priced[AT_TOK_KINDS]; /* sums of the positive counts: what prices apply to */
    double above[AT_TOK_KINDS];  /* sums of the parts of counts beyond AT_USAGE_TIER_TOKENS */
} at_usage_sums;

typedef struct {
    char *model; /* owned; NULL: the messages named no model */
    bool fast;   /* usage.speed "fast": reported as "<model>-fast" */
    at_usage_sums sums;
} at_usage_model;

typedef struct {
    int32_t day;    /* YYYYMMDD of the message's timestamp (UTC) */
    uint32_t model; /* index into models */
    at_usage_sums sums;
} at_usage_day;

/* One transcript's usage (embedded: init/fini). */
typedef struct {
    at_usage_model *models;
    size_t nmodels, models_cap;
    at_usage_day *days;
    size_t ndays, days_cap;
    at_usage_sums total;
    bool overflow; /* a cap was reached: more than AT_MAX_USAGE_IDS distinct
                      messages (later repeats of the ones past it were
                      counted again) or models or days (not counted) */
    /* the (message id, request id) pairs counted: a 128-bit hash of
     * "<id>:<requestId>" (usage.c: id_hash; kept in import states, so it
     * never changes), open addressing */
    uint8_t (*ids)[16];
    size_t nids, ids_cap;
    uint32_t *slots; /* index + 1; 0 empty */
    size_t nslots;   /* a power of two, or 0 */
    at_buf scratch;  /* the decoded strings of the line at hand */
} at_usage;

void at_usage_init(at_usage *u);
void at_usage_fini(at_usage *u);

/* Counts line d (root: an object) if ccusage would; msg is the root's
 * "message" value (at_json_get(d, 0, "message"), which the importer has
 * at hand). Fails only for memory. */
at_result at_usage_add(at_usage *u, const at_json_doc *d, uint32_t msg) AT_WUR;

/* The usage as the JSON object the store keeps (usage.<N>.json):
 *   {"format": 1, "overflow": bool,
 *    "total": SUMS, "models": [{"model": str|null, "fast": bool, ...SUMS}],
 *    "days": [{"day": "YYYY-MM-DD", "model": index, ...SUMS}]}
 *   SUMS = "messages": n, "tokens": [4], "priced": [4], "above": [4]
 * Appended to out. */
at_result at_usage_write(const at_usage *u, at_buf *out) AT_WUR;
/* Reads that JSON back into u (initialized, empty). AT_ERR_INVALID when it
 * is not one at_usage_write wrote; AT_ERR_NOMEM. */
at_result at_usage_read(at_usage *u, const char *json, size_t n) AT_WUR;

/* The (message id, request id) set, for the importer's saved state:
 * appended as u32 count + 16 bytes each; loaded back (u holding no ids). */
at_result at_usage_ids_save(const at_usage *u, at_buf *out) AT_WUR;
at_result at_usage_ids_load(at_usage *u, const uint8_t *p, size_t n, size_t *used) AT_WUR;

/* ---- prices ------------------------------------------------------------- */

typedef struct {
    const char *model;
    double base[AT_TOK_KINDS]; /* USD per token; 0 where the table has none */
    double tier[AT_TOK_KINDS]; /* beyond AT_USAGE_TIER_TOKENS in one message */
    bool has_tier[AT_TOK_KINDS];
    double fast; /* multiplier for "fast" messages */
} at_price;

/* The price of a model as ccusage finds it without guessing: the name
 * itself, then prefixed with "anthropic/", "claude-3-5-", "claude-3-",
 * "claude-", "openrouter/openai/". NULL: unpriced (ccusage's last resort,
 * a substring match, is not made). */
const at_price *at_price_find(const char *model);

/* The cost of sums priced at p (fast: the fast multiplier applies). */
double at_usage_cost(const at_usage_sums *s, const at_price *p, bool fast);

/* Adds b into a (messages and every sum). */
void at_usage_sums_add(at_usage_sums *a, const at_usage_sums *b);

/* The name a model is reported under: "<model>-fast" for fast ones,
 * "unknown" for none (as ccusage names them). Appended to out. */
at_result at_usage_model_name(const at_usage_model *m, at_buf *out) AT_WUR;

/* Appends a token count as JSON: an integer when it is one (below 2^53),
 * else Python's repr of the double; null when not finite. */
at_result at_usage_write_count(at_buf *out, double v) AT_WUR;

#endif
