/* json.h - the JSON dialect of Python's json module (trace-format.md §2).
 *
 * Reading: at_json_parse() validates one JSON text exactly as json.loads
 * would accept it and records it as a flat array of nodes (a "tape") that
 * points into the caller's bytes: no per-value allocation, nothing decoded
 * until asked. Writing: functions that append the bytes json.dumps would
 * write (ensure_ascii, Python's float repr, first-position/last-value keys).
 *
 * Strings are handed around decoded as WTF-8: UTF-8 in which a lone
 * surrogate (which Python strings can hold) is the 3-byte sequence ED A0..BF xx.
 */
#ifndef AGENTTRACE_JSON_H
#define AGENTTRACE_JSON_H

#include "agenttrace/buf.h"
#include "agenttrace/common.h"
#include <stdbool.h>

typedef enum {
    AT_JSON_NULL = 0,
    AT_JSON_FALSE,
    AT_JSON_TRUE,
    AT_JSON_INT,   /* a number without . e E: unbounded, kept as digits */
    AT_JSON_FLOAT, /* any other number, and NaN, Infinity, -Infinity */
    AT_JSON_STRING,
    AT_JSON_ARRAY,
    AT_JSON_OBJECT,
} at_json_type;

/* Flags of a string node. A string with neither is written back verbatim. */
#define AT_JSON_STR_ESCAPED 1u /* holds a backslash escape */
#define AT_JSON_STR_HIGH    2u /* holds a byte >= 0x7F (non-ASCII or DEL) */

#define AT_JSON_NONE UINT32_MAX /* "no such node" */

/* One value. Object members are laid out key node, value subtree, key node,
 * value subtree...; array items one subtree after another. */
typedef struct {
    uint8_t type;
    uint8_t flags;
    uint16_t reserved;
    uint32_t off; /* strings: first byte after the opening quote; others: first byte */
    uint32_t len; /* scalars: source length (strings: between the quotes);
                     containers: number of items / members */
    uint32_t end; /* index of the first node after this subtree */
} at_json_node;

/* A parsed text. Embedded value (init/fini); reusable across parses, so a
 * line-by-line reader allocates only when a line is larger than any before. */
typedef struct {
    const char *src; /* borrowed: the text given to at_json_parse */
    size_t src_len;
    at_json_node *nodes;
    uint32_t count;
    uint32_t cap;
} at_json_doc;

void at_json_doc_init(at_json_doc *d);
void at_json_doc_fini(at_json_doc *d);

/* Parses s[0..n) as one JSON value with optional surrounding whitespace
 * (space, tab, CR, LF). The root is node 0. Fails with AT_ERR_JSON (offset
 * set) on anything json.loads rejects, AT_ERR_TOO_BIG past AT_MAX_JSON_DEPTH
 * or 2^32 bytes. The input is assumed valid UTF-8 (checked by the caller). */
at_result at_json_parse(at_json_doc *d, const char *s, size_t n, at_error *err) AT_WUR;

static inline const at_json_node *at_json_node_at(const at_json_doc *d, uint32_t i)
{
    return &d->nodes[i];
}
static inline at_json_type at_json_typeof(const at_json_doc *d, uint32_t i)
{
    return i == AT_JSON_NONE ? AT_JSON_NULL : (at_json_type)d->nodes[i].type;
}
static inline bool at_json_is(const at_json_doc *d, uint32_t i, at_json_type t)
{
    return i != AT_JSON_NONE && d->nodes[i].type == t;
}

/* Value of `key` in object `obj` (the last one if the key repeats, as
 * json.loads keeps), or AT_JSON_NONE if absent or obj is not an object. */
uint32_t at_json_get(const at_json_doc *d, uint32_t obj, const char *key);

/* Iteration: first child of a container is c = at_json_first(d, i) (NONE if
 * empty); for objects c is a key and c+1 its value. at_json_next() steps to
 * the next item / member key. */
uint32_t at_json_first(const at_json_doc *d, uint32_t container);
uint32_t at_json_next(const at_json_doc *d, uint32_t container, uint32_t child);

/* Is string node i equal to the n bytes of WTF-8 s once decoded? */
bool at_json_str_eq(const at_json_doc *d, uint32_t i, const char *s, size_t n);
/* Appends the decoded WTF-8 of string node i to out. */
at_result at_json_str_decode(const at_json_doc *d, uint32_t i, at_buf *out) AT_WUR;
/* Python truthiness of a value (0, 0.0, "", [], {}, null, false are false). */
bool at_json_truthy(const at_json_doc *d, uint32_t i);

/* ---- writing ---------------------------------------------------------- */

/* Appends the JSON string literal for WTF-8 s, as json.dumps(ensure_ascii=True). */
at_result at_json_write_wtf8(at_buf *out, const char *s, size_t n) AT_WUR;

/* Appends Python's repr() of a double: shortest round-trip digits, fixed
 * notation for decimal exponents in [-4, 16) with at least one fraction
 * digit, otherwise d.ddde+XX; NaN, Infinity, -Infinity. */
at_result at_json_write_double(at_buf *out, double v) AT_WUR;
/* The same into a caller buffer of at least AT_DOUBLE_REPR_MAX bytes;
 * returns the length written (NUL-terminated). */
#define AT_DOUBLE_REPR_MAX 32
size_t at_double_repr(double v, char *out);

/* Appends what json.dumps(json.loads(tok)) writes for the number token tok
 * (already validated): integers as their digits with -0 as 0; floats parsed
 * correctly rounded (overflow to infinity) then written by repr. */
at_result at_json_write_number_token(at_buf *out, const char *tok, size_t n, bool is_float) AT_WUR;
/* Parses a validated float token (NaN and ±Infinity included). */
double at_json_parse_double(const char *tok, size_t n);

/* A hook that may rewrite string values before they are written (the
 * redaction pass). parent_key is the nearest enclosing object key (NULL at
 * the top or when the string is itself a key, which is never offered).
 * Return AT_OK and set *replaced to use repl's WTF-8 bytes instead. */
typedef at_result (*at_json_string_hook)(void *ctx, const char *parent_key, size_t parent_key_len,
                                         const char *s, size_t n, at_buf *repl, bool *replaced);

typedef struct {
    const char *item_sep; /* "," compact, ", " Python default */
    const char *key_sep;  /* ":" compact, ": " Python default */
    int indent;           /* > 0: pretty with this many spaces (separators "," and ": ") */
    at_json_string_hook hook;
    void *hook_ctx;
} at_json_style;

extern const at_json_style AT_JSON_COMPACT; /* separators=(",", ":") */
extern const at_json_style AT_JSON_DEFAULT; /* Python's default (", ", ": ") */
extern const at_json_style AT_JSON_PRETTY;  /* indent=2 */

/* Appends node i re-serialized in the Python dialect: duplicate keys
 * collapsed (first position, last value), numbers normalized, strings
 * re-escaped. level is the starting indentation level for pretty output. */
at_result at_json_emit(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st,
                       int level) AT_WUR;

/* at_json_emit for a value found under parent_key: strings directly in it
 * (or in arrays directly in it) see that key in the hook. */
at_result at_json_emit_under(at_buf *out, const at_json_doc *d, uint32_t i, const at_json_style *st,
                             int level, const char *parent_key, size_t parent_key_len) AT_WUR;

#endif
