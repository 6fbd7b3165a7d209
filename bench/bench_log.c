/* bench_log.c - the transparency log at scale: a log of N entries (default
 * 1,000,000 entries shaped like ours) is built in a temporary directory,
 * then for entries spread over it: the inclusion proof's size (hashes, and
 * bytes of a tlog-proof file with a signed checkpoint) and the time to
 * verify it as an auditor does (checkpoint signature + inclusion), and a
 * consistency proof between two sizes.
 *
 *   bench/bench_log [--entries N] */
#include "agenttrace/merkle.h"
#include "agenttrace/note.h"
#include "agenttrace/tlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    uint64_t total = 1000000;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--entries") == 0)
            total = strtoull(argv[i + 1], NULL, 10);
    char dir[] = "/tmp/bench-log-XXXXXX";
    if (!mkdtemp(dir))
        return 2;
    at_error err = {0};
    at_tlog *log = at_tlog_open(dir, &err);
    if (!log) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    enum { BATCH = 10000 };
    static char texts[BATCH][320];
    static at_slice e[BATCH];
    double t0 = now();
    for (uint64_t done = 0; done < total;) {
        size_t n = total - done < BATCH ? (size_t)(total - done) : BATCH;
        for (size_t i = 0; i < n; i++) {
            int k = snprintf(texts[i], sizeof texts[i],
                             "agent-traced/head/v1\nsession \"bench-%08llu\"\nversion 1\nevents 123\nhead "
                             "%064llx\nobject %064llx\n",
                             (unsigned long long)(done + i), (unsigned long long)(done + i) * 7919,
                             (unsigned long long)(done + i) * 104729);
            e[i] = (at_slice){texts[i], (size_t)k};
        }
        uint64_t first;
        if (at_tlog_append(log, e, n, &first, &err) != AT_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        done += n;
    }
    double t1 = now();
    uint64_t size = at_tlog_size(log);
    printf("log: %llu entries appended in %.2f s (%.0f entries/s, batches of %d, each synced)\n",
           (unsigned long long)size, t1 - t0, (double)size / (t1 - t0), BATCH);

    /* a signed checkpoint over it */
    at_buf skey, vkey, text, note;
    at_buf_init(&skey, 0);
    at_buf_init(&vkey, 0);
    at_buf_init(&text, 0);
    at_buf_init(&note, 0);
    at_note_signer *signer = NULL;
    at_note_verifier *verifier = NULL;
    at_note_checkpoint cp = {.origin = "bench.example/log", .origin_len = 17, .size = size};
    if (at_note_keygen("bench.example/log", 17, AT_NOTE_ED25519, &skey, &vkey, &err) != AT_OK ||
        at_note_signer_new(skey.data, skey.len, AT_NOTE_ED25519, &signer, &err) != AT_OK ||
        at_note_verifier_new(vkey.data, vkey.len, &verifier, &err) != AT_OK ||
        at_tlog_root(log, size, cp.root, &err) != AT_OK || at_note_checkpoint_format(&cp, &text, &err) != AT_OK ||
        at_note_sign(text.data, text.len, (const at_note_signer *const[]){signer}, 1, &note, &err) != AT_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double troot = now();
    for (int i = 0; i < 100; i++)
        if (at_tlog_root(log, size - (uint64_t)i, cp.root, &err) != AT_OK)
            return 1;
    printf("root of a tree of %llu: %.1f us\n", (unsigned long long)size, (now() - troot) / 100 * 1e6);

    /* proofs for entries spread over the log */
    const uint64_t picks[] = {0, size / 3, size / 2, size - 1};
    for (size_t p = 0; p < sizeof picks / sizeof *picks; p++) {
        uint8_t(*proof)[32] = NULL;
        size_t n = 0;
        double a = now();
        if (at_tlog_inclusion(log, picks[p], size, &proof, &n, &err) != AT_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double b = now();
        /* the proof file: header, index, base64 hash lines, the signed checkpoint */
        size_t file = strlen("c2sp.org/tlog-proof@v1\n") + 8 + 300 * 4 / 3 + 22 + n * 45 + 1 + note.len;
        at_buf entry;
        at_buf_init(&entry, 0);
        uint8_t leaf[32];
        if (at_tlog_entry(log, picks[p], &entry, &err) != AT_OK ||
            at_merkle_leaf_hash(entry.data, entry.len, leaf) != AT_OK)
            return 1;
        /* what an auditor does: open the signed note, check the inclusion */
        at_note *opened = malloc(sizeof *opened);
        const at_note_verifier *known[1] = {verifier};
        int reps = 2000;
        double c = now();
        for (int i = 0; i < reps; i++) {
            at_note_checkpoint pc;
            if (at_note_open(note.data, note.len, known, 1, opened, &err) != AT_OK ||
                at_note_checkpoint_parse(opened->text, opened->text_len, &pc, &err) != AT_OK ||
                at_merkle_verify_inclusion(picks[p], pc.size, leaf, (const uint8_t *)proof, n, pc.root) != AT_OK) {
                fprintf(stderr, "verification failed\n");
                return 1;
            }
        }
        double d = now();
        printf("entry %llu: inclusion proof of %zu hashes (%zu bytes; a tlog-proof file of about %zu bytes), "
               "made in %.1f us, verified (signature + inclusion) in %.1f us\n",
               (unsigned long long)picks[p], n, n * 32, file, (b - a) * 1e6, (d - c) / reps * 1e6);
        free(opened);
        free(proof);
        at_buf_fini(&entry);
    }
    uint8_t(*cproof)[32] = NULL;
    size_t cn = 0;
    double a = now();
    if (at_tlog_consistency(log, size / 2 + 12345, size, &cproof, &cn, &err) != AT_OK)
        return 1;
    printf("consistency %llu -> %llu: %zu hashes, made in %.1f us\n", (unsigned long long)(size / 2 + 12345),
           (unsigned long long)size, cn, (now() - a) * 1e6);
    free(cproof);
    at_tlog_free(log);
    at_note_signer_free(signer);
    at_note_verifier_free(verifier);
    at_buf_fini(&skey);
    at_buf_fini(&vkey);
    at_buf_fini(&text);
    at_buf_fini(&note);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
