/* bench/bench_util.h - what every benchmark program needs: a clock and
 * order statistics of a few rounds. */
#ifndef TR_BENCH_UTIL_H
#define TR_BENCH_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "troupe.h"

/* A benchmark that cannot set itself up stops, saying why. */
static inline void
bu_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
                tr_strerror(rc));
        exit(1);
    }
}

static inline void
bu_zcheck(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
                zmq_strerror(errno));
        exit(1);
    }
}

/* True when name is to run: named among the arguments (options, which
 * start with '-', aside), or no name given at all. */
static inline bool
bu_wanted(int argc, char **argv, const char *name)
{
    bool any = false;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        any = true;
        if (strcmp(argv[i], name) == 0)
            return true;
    }
    return !any;
}

/* Seconds on the monotonic clock. */
static inline double
bu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int
bu_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v). */
static inline double
bu_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bu_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The p-th quantile (0..1) of v[0..n), nearest rank (sorts v). */
static inline double
bu_pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, bu_cmp);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

#endif
