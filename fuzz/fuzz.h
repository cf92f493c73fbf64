/* fuzz/fuzz.h - what the libFuzzer harnesses of fuzz/ share: a check that
 * crashes loudly (libFuzzer keeps the input that made it), and a meter of
 * the bytes malloc'd between two points, so that "decoding this frame
 * allocated nothing" is checked on every input, not only in the tests.
 *
 * The meter uses the sanitizer allocator's hooks, so the harnesses are
 * always built with AddressSanitizer (fuzz/meson.build). It counts the
 * calling thread only: libFuzzer's own threads may allocate meanwhile. */
#ifndef TR_FUZZ_FUZZ_H
#define TR_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <sanitizer/allocator_interface.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed check is a crash: abort() shows as "deadly signal" with the
 * input saved as crash-<sha1>. */
#define FZ_CHECK(expr)                                                      \
    do {                                                                    \
        if (!(expr)) {                                                      \
            fprintf(stderr, "fuzz: %s:%d: check failed: %s\n", __FILE__,    \
                    __LINE__, #expr);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

static _Thread_local bool fz_metering;
static _Thread_local size_t fz_metered;

static void
fz_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    if (fz_metering)
        fz_metered += n;
}

static void
fz_free_hook(const volatile void *p)
{
    (void)p;
}

/* Once, from LLVMFuzzerInitialize. */
static inline void
fz_meter_install(void)
{
    FZ_CHECK(__sanitizer_install_malloc_and_free_hooks(fz_malloc_hook,
                                                       fz_free_hook) != 0);
}

static inline void
fz_meter_start(void)
{
    fz_metered = 0;
    fz_metering = true;
}

/* Bytes malloc'd (calloc, realloc, aligned_alloc too) since the start. */
static inline size_t
fz_meter_stop(void)
{
    fz_metering = false;
    return fz_metered;
}

/* A malloc'd copy of exactly n bytes (never NULL), so that ASan sees any
 * read past the end of what we hand the decoder. */
static inline uint8_t *
fz_copy(const void *data, size_t n)
{
    uint8_t *c = malloc(n > 0 ? n : 1);
    FZ_CHECK(c != NULL);
    for (size_t i = 0; i < n; i++)
        c[i] = ((const uint8_t *)data)[i];
    return c;
}

#endif
