/* fuzz_chain.c - the streaming chain verifier (verify.h), in both modes:
 * any bytes give a verdict, never an error (below the line cap); fed in
 * random chunks (drawn from the input's hash) the verdict is the one of a
 * single feed, field by field; what the strict rule accepts the legacy
 * rule accepts too; the digest is the SHA-256 of the bytes. */
#include "fuzz.h"

#include "agenttrace/sha256.h"
#include "agenttrace/verify.h"

#include <string.h>

static void verify(const uint8_t *p, size_t n, at_verify_mode mode, uint64_t *rng, at_verify_report *rep)
{
    at_verifier *v = at_verifier_new(mode);
    FUZZ_CHECK(v != NULL);
    memset(rep, 0, sizeof *rep);
    at_error err = {0};
    for (size_t off = 0; off < n;) {
        size_t k = n - off;
        if (rng) {
            uint64_t x = fuzz_rand(rng);
            size_t c = (x & 1) ? (size_t)(x >> 8) % 8 + 1 : (size_t)(x >> 8) % 512 + 1;
            if (c < k)
                k = c;
        }
        FUZZ_CHECK(at_verifier_feed(v, (const char *)p + off, k, &err) == AT_OK);
        off += k;
    }
    FUZZ_CHECK(at_verifier_finish(v, rep, &err) == AT_OK);
    at_verifier_free(v);
}

static void same_report(const at_verify_report *a, const at_verify_report *b)
{
    FUZZ_CHECK(a->ok == b->ok);
    FUZZ_CHECK(a->total_events == b->total_events);
    FUZZ_CHECK(a->broken_at == b->broken_at);
    FUZZ_CHECK((a->broken_event_id == NULL) == (b->broken_event_id == NULL));
    FUZZ_CHECK(!a->broken_event_id || strcmp(a->broken_event_id, b->broken_event_id) == 0);
    FUZZ_CHECK(strcmp(a->reason, b->reason) == 0);
    FUZZ_CHECK(memcmp(a->file_sha256, b->file_sha256, AT_SHA256_LEN) == 0);
    FUZZ_CHECK(a->have_head == b->have_head);
    FUZZ_CHECK(!a->have_head || memcmp(a->head, b->head, AT_SHA256_LEN) == 0);
    FUZZ_CHECK(a->bytes == b->bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t rng = fuzz_seed(data, size);
    uint8_t digest[AT_SHA256_LEN];
    at_sha256_oneshot(data, size, digest);
    at_verify_report whole[2];
    for (int m = 0; m < 2; m++) {
        at_verify_report chunked;
        verify(data, size, (at_verify_mode)m, NULL, &whole[m]);
        verify(data, size, (at_verify_mode)m, &rng, &chunked);
        same_report(&whole[m], &chunked);
        FUZZ_CHECK(whole[m].bytes == size);
        FUZZ_CHECK(memcmp(whole[m].file_sha256, digest, AT_SHA256_LEN) == 0);
        FUZZ_CHECK(whole[m].ok == (whole[m].broken_at < 0));
        at_verify_report_fini(&chunked);
    }
    FUZZ_CHECK(!whole[AT_VERIFY_STRICT].ok || whole[AT_VERIFY_LEGACY].ok);
    at_verify_report_fini(&whole[0]);
    at_verify_report_fini(&whole[1]);
    return 0;
}
