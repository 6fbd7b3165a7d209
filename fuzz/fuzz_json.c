/* fuzz_json.c - the JSON dialect (json.h): whatever at_json_parse accepts,
 * at_json_emit writes as text that parses again to the same value, so that
 * writing it again gives the same bytes (compact, default and pretty
 * styles); every string decodes, and its at_json_write_wtf8 literal parses
 * back to the same decoded string. */
#include "fuzz.h"

#include "agenttrace/buf.h"
#include "agenttrace/json.h"
#include "agenttrace/utf8.h"

#include <string.h>

static int utf8_valid(const uint8_t *p, size_t n)
{
    at_utf8_state st;
    int64_t bad;
    memset(&st, 0, sizeof st);
    return at_utf8_feed(&st, (const char *)p, n, &bad) == AT_OK && at_utf8_finish(&st, &bad) == AT_OK;
}

/* Emits node 0 of d in style st into out (reset first). */
static void emit(const at_json_doc *d, const at_json_style *st, at_buf *out)
{
    at_buf_reset(out);
    FUZZ_CHECK(at_json_emit(out, d, 0, st, 0) == AT_OK);
}

/* Every string node decodes; its literal written back parses to it. */
static void check_strings(const at_json_doc *d)
{
    at_buf dec, lit;
    at_json_doc e;
    at_buf_init(&dec, 0);
    at_buf_init(&lit, 0);
    at_json_doc_init(&e);
    for (uint32_t i = 0; i < d->count; i++) {
        if (d->nodes[i].type != AT_JSON_STRING)
            continue;
        at_buf_reset(&dec);
        at_buf_reset(&lit);
        FUZZ_CHECK(at_json_str_decode(d, i, &dec) == AT_OK);
        FUZZ_CHECK(at_json_str_eq(d, i, dec.data ? dec.data : "", dec.len));
        FUZZ_CHECK(at_json_write_wtf8(&lit, dec.data ? dec.data : "", dec.len) == AT_OK);
        FUZZ_CHECK(at_json_parse(&e, lit.data, lit.len, NULL) == AT_OK);
        FUZZ_CHECK(at_json_is(&e, 0, AT_JSON_STRING));
        FUZZ_CHECK(at_json_str_eq(&e, 0, dec.data ? dec.data : "", dec.len));
    }
    at_json_doc_fini(&e);
    at_buf_fini(&lit);
    at_buf_fini(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!utf8_valid(data, size)) /* at_json_parse's contract: the caller checks UTF-8 */
        return 0;
    at_json_doc d, d2;
    at_buf first, again, styled;
    at_json_doc_init(&d);
    at_json_doc_init(&d2);
    at_buf_init(&first, 0);
    at_buf_init(&again, 0);
    at_buf_init(&styled, 0);
    at_error err = {0};
    if (at_json_parse(&d, (const char *)data, size, &err) != AT_OK) {
        FUZZ_CHECK(err.code == AT_ERR_JSON || err.code == AT_ERR_TOO_BIG || err.code == AT_ERR_NOMEM);
        FUZZ_CHECK(err.offset >= 0 && (uint64_t)err.offset <= size);
        goto out;
    }
    FUZZ_CHECK(d.count > 0 && d.nodes[0].end == d.count);
    /* Python truthiness and lookups must not trip over any node */
    (void)at_json_truthy(&d, 0);
    if (at_json_is(&d, 0, AT_JSON_OBJECT))
        (void)at_json_get(&d, 0, "session_id");
    check_strings(&d);

    emit(&d, &AT_JSON_COMPACT, &first);
    FUZZ_CHECK(at_json_parse(&d2, first.data, first.len, NULL) == AT_OK);
    emit(&d2, &AT_JSON_COMPACT, &again);
    FUZZ_CHECK(again.len == first.len && memcmp(again.data, first.data, first.len) == 0);

    const at_json_style *styles[] = {&AT_JSON_DEFAULT, &AT_JSON_PRETTY};
    for (size_t k = 0; k < sizeof styles / sizeof *styles; k++) {
        emit(&d, styles[k], &styled);
        FUZZ_CHECK(at_json_parse(&d2, styled.data, styled.len, NULL) == AT_OK);
        emit(&d2, &AT_JSON_COMPACT, &again);
        FUZZ_CHECK(again.len == first.len && memcmp(again.data, first.data, first.len) == 0);
    }
out:
    at_buf_fini(&styled);
    at_buf_fini(&again);
    at_buf_fini(&first);
    at_json_doc_fini(&d2);
    at_json_doc_fini(&d);
    return 0;
}
