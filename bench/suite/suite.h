/* bench/suite/suite.h - what every C program of the side-by-side suite
 * shares: the command line, the RESULT lines, a clock, the workloads'
 * pseudo-random numbers and memory readings. Knows no actor system.
 *
 * Every program of the suite (C, C++, Erlang, Python) takes the same
 * command line and prints the same lines, so that bench/suite/runner.py
 * can drive them all alike:
 *
 *     PROG [--mode M] [--rounds R] WORKLOAD:k=v,k=v ...
 *
 * and, per workload and round, one line
 *
 *     RESULT <workload> <system> <number> <check>
 *
 * where number is the seconds the timed part took (memory: KiB in all for
 * the n actors) and check is the workload's result (a count, a checksum),
 * which the runner compares with the right one. The workloads and their
 * checks are described in bench/suite/README.md. */
#ifndef TR_SUITE_H
#define TR_SUITE_H

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SU_MAX_SPECS 32
#define SU_MAX_KV 8

typedef struct {
    char name[32];
    int nkv;
    char key[SU_MAX_KV][16];
    long val[SU_MAX_KV];
} su_spec_t;

typedef struct {
    const char *mode; /* --mode; NULL when not given */
    int rounds;       /* --rounds; 1 by default */
    int nspecs;
    su_spec_t specs[SU_MAX_SPECS];
} su_args_t;

/* Stop the program, saying why (the runner reports the failure). */
static inline void __attribute__((noreturn, format(printf, 1, 2)))
su_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* "name:k=v,k=v" into *s; false when malformed. */
static inline bool
su_parse_spec(const char *text, su_spec_t *s)
{
    memset(s, 0, sizeof *s);
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    if (len == 0 || len >= sizeof s->name)
        return false;
    memcpy(s->name, text, len);
    const char *p = colon ? colon + 1 : text + len;
    while (*p) {
        const char *eq = strchr(p, '=');
        if (eq == NULL || eq == p || (size_t)(eq - p) >= sizeof s->key[0] ||
            s->nkv == SU_MAX_KV)
            return false;
        memcpy(s->key[s->nkv], p, (size_t)(eq - p));
        char *end;
        s->val[s->nkv++] = strtol(eq + 1, &end, 10);
        if (end == eq + 1 || (*end != ',' && *end != '\0'))
            return false;
        p = *end == ',' ? end + 1 : end;
    }
    return true;
}

static inline void
su_parse_args(int argc, char **argv, su_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->rounds = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc)
            a->mode = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            a->rounds = atoi(argv[++i]);
        else if (a->nspecs < SU_MAX_SPECS &&
                 su_parse_spec(argv[i], &a->specs[a->nspecs]))
            a->nspecs++;
        else
            su_die("bad argument '%s' (usage: [--mode M] [--rounds R] "
                   "WORKLOAD:k=v,...)", argv[i]);
    }
    if (a->rounds < 1)
        su_die("--rounds must be at least 1");
}

/* A workload parameter; dies when it is missing or below 1. */
static inline long
su_get(const su_spec_t *s, const char *key)
{
    for (int i = 0; i < s->nkv; i++)
        if (strcmp(s->key[i], key) == 0) {
            if (s->val[i] < 1)
                su_die("%s: %s must be at least 1", s->name, key);
            return s->val[i];
        }
    su_die("%s: parameter %s missing", s->name, key);
}

static inline void
su_result(const char *workload, const char *system, double number,
          const char *check)
{
    printf("RESULT %s %s %.6f %s\n", workload, system, number, check);
    fflush(stdout);
}

static inline void
su_result_int(const char *workload, const char *system, double number,
              long long check)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", check);
    su_result(workload, system, number, buf);
}

/* Seconds on the monotonic clock. */
static inline double
su_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The workloads' pseudo-random numbers (big's choice of peer): the same
 * 64-bit LCG (Knuth's MMIX constants) in every language, seeded with the
 * actor's index + 1, so that every system sends the same pings. */
static inline uint64_t
su_rand(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return *state >> 33;
}

/* big: the peer actor idx pings next (another actor than itself). */
static inline long
su_big_peer(long idx, long actors, uint64_t *state)
{
    return (idx + 1 + (long)(su_rand(state) % (uint64_t)(actors - 1))) %
           actors;
}

/* Resident memory of this process, KiB. */
static inline long
su_rss_kib(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Proportional set size of a process, KiB (its private pages plus its
 * share of the pages it shares): what one more process costs the machine,
 * where RSS would count the shared libraries once per process. */
static inline long
su_pss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = 0;
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Pss: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* This process's children (read from every thread's children list, since
 * a child belongs to the thread that forked it): up to max pids into out;
 * returns how many. */
static inline int
su_children(pid_t *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        if (e->d_name[0] == '.')
            continue;
        char path[320];
        snprintf(path, sizeof path, "/proc/self/task/%s/children",
                 e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        int pid;
        while (n < max && fscanf(f, "%d", &pid) == 1)
            out[n++] = pid;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Sum of the PSS of the children not in before[0..nbefore). */
static inline long
su_new_children_pss_kib(const pid_t *before, int nbefore, int *count)
{
    static pid_t now[4096];
    int n = su_children(now, 4096);
    long kib = 0;
    *count = 0;
    for (int i = 0; i < n; i++) {
        bool old = false;
        for (int j = 0; j < nbefore && !old; j++)
            old = before[j] == now[i];
        if (!old) {
            kib += su_pss_kib(now[i]);
            ++*count;
        }
    }
    return kib;
}

#endif
