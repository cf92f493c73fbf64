/* bench/bench_util.h - what every benchmark program needs: a clock and
 * order statistics of a few rounds. */
#ifndef TR_BENCH_UTIL_H
#define TR_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

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
