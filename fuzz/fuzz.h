/* fuzz.h - what every fuzz target shares: the libFuzzer entry point, and
 * FUZZ_CHECK, which aborts on a broken property so that libFuzzer saves the
 * input and a replay (fuzz/replay.c) counts it as a failure. Bad input must
 * never reach an abort: FUZZ_CHECK states our own invariants only. */
#ifndef AGENTTRACE_FUZZ_H
#define AGENTTRACE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                                     \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond);                      \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

/* A small deterministic generator (splitmix64), for chunk sizes and cuts
 * derived from the input itself so that a saved input replays exactly. */
static inline uint64_t fuzz_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* FNV-1a of the input: the generator's seed. */
static inline uint64_t fuzz_seed(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

#endif
