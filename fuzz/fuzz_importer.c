/* fuzz_importer.c - the streaming importer (importer.h) fed a transcript in
 * chunks of random sizes (drawn from the input's own hash, so a saved input
 * replays the same way): the result and every byte written equal those of
 * one feed of the whole input; what it writes always passes the strict
 * chain verifier with the count and digests the result reports; and an
 * import resumed from the state after a random cut, fed the rest, gives the
 * same events.ndjson as the whole import. Half the inputs run with
 * redaction on. */
#include "fuzz.h"

#include "agenttrace/importer.h"
#include "agenttrace/redact.h"
#include "agenttrace/verify.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct {
    at_result r;
    at_import_result res;
    char *out; /* what the import wrote */
    size_t out_len;
} run;

static at_redact *redactor(void)
{
    static at_redact *rd;
    if (!rd) {
        at_error err = {0};
        FUZZ_CHECK((rd = at_redact_new(&err)) != NULL);
    }
    return rd;
}

/* Imports data[0..n): chunk sizes from *rng (NULL: one feed), resuming from
 * state (NULL: fresh), keeping the state when keep. */
static void import_run(const char *data, size_t n, uint64_t *rng, at_redact *rd, const void *state,
                       size_t state_len, int keep, run *rn)
{
    memset(rn, 0, sizeof *rn);
    int fd = memfd_create("fuzz_importer", 0);
    FUZZ_CHECK(fd >= 0);
    at_error err = {0}, later = {0};
    at_import_options o = {.source = "fuzz.jsonl",
                           .out_fd = fd,
                           .redact = rd,
                           .resume = state,
                           .resume_len = state_len,
                           .keep_state = keep};
    at_import *im = at_import_new(&o, &err);
    rn->r = im ? AT_OK : err.code;
    for (size_t off = 0; rn->r == AT_OK && off < n;) {
        size_t k = n - off;
        if (rng) {
            uint64_t x = fuzz_rand(rng);
            /* mostly small chunks, sometimes large ones */
            size_t c = (x & 3) == 0 ? (size_t)(x >> 8) % 4096 + 1 : (size_t)(x >> 8) % 16 + 1;
            if (c < k)
                k = c;
        }
        rn->r = at_import_feed(im, data + off, k, &err);
        off += k;
    }
    if (im) {
        at_result r = at_import_finish(im, &rn->res, &later);
        if (rn->r == AT_OK)
            rn->r = r;
    }
    at_import_free(im);
    off_t size = lseek(fd, 0, SEEK_END);
    FUZZ_CHECK(size >= 0);
    rn->out = malloc((size_t)size + 1);
    FUZZ_CHECK(rn->out != NULL);
    rn->out_len = (size_t)pread(fd, rn->out, (size_t)size, 0);
    FUZZ_CHECK(rn->out_len == (size_t)size);
    close(fd);
}

static void run_fini(run *rn)
{
    at_import_result_fini(&rn->res);
    free(rn->out);
}

static int same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* The strict verifier passes what the import wrote, as the result says. */
static void check_verifies(const run *rn)
{
    at_verifier *v = at_verifier_new(AT_VERIFY_STRICT);
    FUZZ_CHECK(v != NULL);
    at_verify_report rep;
    memset(&rep, 0, sizeof rep);
    at_error err = {0};
    FUZZ_CHECK(at_verifier_feed(v, rn->out, rn->out_len, &err) == AT_OK);
    FUZZ_CHECK(at_verifier_finish(v, &rep, &err) == AT_OK);
    if (!rep.ok)
        fprintf(stderr, "line %lld: %s\n", (long long)rep.broken_at, rep.reason);
    FUZZ_CHECK(rep.ok);
    FUZZ_CHECK(rep.total_events == rn->res.events);
    FUZZ_CHECK(memcmp(rep.file_sha256, rn->res.events_sha256, AT_SHA256_LEN) == 0);
    FUZZ_CHECK(rep.have_head && memcmp(rep.head, rn->res.head, AT_SHA256_LEN) == 0);
    at_verify_report_fini(&rep);
    at_verifier_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    uint64_t rng = fuzz_seed(data, size);
    at_redact *rd = (rng >> 63) ? redactor() : NULL;
    run whole, chunked;
    import_run(p, size, NULL, rd, NULL, 0, 0, &whole);
    import_run(p, size, &rng, rd, NULL, 0, 0, &chunked);
    FUZZ_CHECK(whole.r == chunked.r);
    FUZZ_CHECK(same_bytes(whole.out, whole.out_len, chunked.out, chunked.out_len));
    if (whole.r == AT_OK) {
        FUZZ_CHECK(whole.res.events == chunked.res.events);
        FUZZ_CHECK(memcmp(whole.res.head, chunked.res.head, AT_SHA256_LEN) == 0);
        FUZZ_CHECK(whole.res.skipped_lines == chunked.res.skipped_lines);
        check_verifies(&whole);

        /* a resume after a random cut */
        size_t cut = size ? (size_t)(fuzz_rand(&rng) % (size + 1)) : 0;
        run first, rest;
        import_run(p, cut, &rng, rd, NULL, 0, 1, &first);
        if (first.res.state) {
            import_run(p + cut, size - cut, &rng, rd, first.res.state, first.res.state_len, 0, &rest);
            /* refused: no entry named the session before the cut */
            if (rest.r != AT_ERR_INVALID || rest.res.events != 0) {
                FUZZ_CHECK(rest.r == AT_OK);
                FUZZ_CHECK(rest.res.body_bytes <= first.out_len);
                FUZZ_CHECK(rest.res.body_bytes + rest.out_len == whole.out_len);
                FUZZ_CHECK(memcmp(first.out, whole.out, rest.res.body_bytes) == 0);
                FUZZ_CHECK(same_bytes(rest.out, rest.out_len, whole.out + rest.res.body_bytes,
                                      whole.out_len - rest.res.body_bytes));
                FUZZ_CHECK(rest.res.events == whole.res.events);
                FUZZ_CHECK(memcmp(rest.res.events_sha256, whole.res.events_sha256, AT_SHA256_LEN) == 0);
            }
            run_fini(&rest);
        }
        run_fini(&first);
    }
    run_fini(&chunked);
    run_fini(&whole);
    return 0;
}
