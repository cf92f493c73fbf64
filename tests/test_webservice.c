/* tests/test_webservice.c - the webservice example, run as users run it,
 * checked with curl: the users endpoint answers in the order asked within
 * its deadline, /primes and /health answer, bad input gets 400, a primes
 * worker killed during a burst of requests costs no request (the pool
 * runs it again; the worker comes back), and under chaos mode every
 * request of a burst gets its one right answer, in less than 3 times the
 * fault-free time.
 *
 * The example's path comes in TR_EXAMPLE_WEBSERVICE (tests/meson.build).
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "troupe.h"

static pid_t s_pid;
static int s_port;
static FILE *s_out;
static char s_err[64]; /* the example's stderr, when it runs with chaos */

/* Start the example on a free port (for up to 60 s), with chaos (NULL:
 * none) in its environment and then its stderr in a file (s_err); read
 * its port. */
static void
s_start(const char *chaos)
{
    const char *exe = getenv("TR_EXAMPLE_WEBSERVICE");
    ck_assert_ptr_nonnull(exe);
    s_err[0] = 0;
    if (chaos != NULL) {
        ts_template(s_err, sizeof s_err, "ws-err");
        int fd = mkstemp(s_err);
        ck_assert_int_ge(fd, 0);
        close(fd);
    }
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    s_pid = fork();
    ck_assert_int_ge(s_pid, 0);
    if (s_pid == 0) {
        if (chaos != NULL) {
            setenv("TROUPE_CHAOS", chaos, 1);
            int fd = open(s_err, O_WRONLY | O_APPEND);
            if (fd < 0 || dup2(fd, 2) < 0)
                _exit(126);
            close(fd);
        }
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(exe, exe, "0", "60", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    s_out = fdopen(fds[0], "r");
    char line[256] = {0};
    ck_assert_ptr_nonnull(fgets(line, sizeof line, s_out));
    const char *p = strstr(line, "127.0.0.1:");
    ck_assert_ptr_nonnull(p);
    s_port = atoi(p + 10);
    ck_assert_int_gt(s_port, 0);
}

static void
s_setup(void)
{
    s_start(NULL);
}

/* Stop it as Ctrl-C would: it must say "stopped" and exit 0. */
static void
s_teardown(void)
{
    ck_assert_int_eq(kill(s_pid, SIGINT), 0);
    char line[256] = {0};
    ck_assert_ptr_nonnull(fgets(line, sizeof line, s_out));
    ck_assert_str_eq(line, "webservice: stopped\n");
    int st = 0;
    ck_assert_int_eq(waitpid(s_pid, &st, 0), s_pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    fclose(s_out);
}

/* Run curl with args (after the URL base is filled in); its output. */
static char *
s_curl(const char *fmt, ...)
{
    static char out[16384];
    char args[4096], cmd[4200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "curl -s -S --max-time 20 %s", args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    ck_assert_int_eq(pclose(p), 0);
    return out;
}

/* ------------------------------------------------------------------ */
/* Bursts of /primes requests                                          */

#define S_BURST_MAX 64

/* A burst: n requests /primes?below=from+i at once (par at a time),
 * each answer's body in its own file of dir. */
typedef struct {
    FILE *p;
    char dir[64];
    int n;
    long from;
    int64_t t0;
} s_burst_t;

static void
s_burst_start(s_burst_t *b, int n, long from, int par)
{
    ck_assert_int_le(n, S_BURST_MAX);
    *b = (s_burst_t){.n = n, .from = from};
    ts_tmpdir(b->dir, sizeof b->dir, "ws-burst");
    char cmd[16384];
    int len = snprintf(cmd, sizeof cmd,
                       "curl -s --no-progress-meter --max-time 30 --parallel "
                       "--parallel-max %d "
                       "-w '%%{http_code} %%{filename_effective}\\n'", par);
    for (int i = 0; i < n; i++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len,
                        " -o %s/%d 'http://127.0.0.1:%d/primes?below=%ld'",
                        b->dir, i, s_port, from + i);
    ck_assert_int_lt(len, (int)sizeof cmd);
    b->t0 = ts_now_ms();
    b->p = popen(cmd, "r");
    ck_assert_ptr_nonnull(b->p);
}

/* Primes below n, the count the service must give. */
static long
s_primes_below(long n)
{
    char *composite = calloc((size_t)n + 1, 1);
    ck_assert_ptr_nonnull(composite);
    long count = 0;
    for (long i = 2; i < n; i++) {
        if (composite[i])
            continue;
        count++;
        for (long j = i * i; j < n; j += i)
            composite[j] = 1;
    }
    free(composite);
    return count;
}

/* Wait for the burst's answers: each one's status in code[i] (0: none)
 * and whether it came once with the right body in right[i]; the time
 * from the first request to the last answer, in ms. */
static int64_t
s_burst_end(s_burst_t *b, int *code, bool *right)
{
    for (int i = 0; i < b->n; i++) {
        code[i] = 0;
        right[i] = false;
    }
    char path[128];
    int c;
    while (fscanf(b->p, "%d %127s", &c, path) == 2) {
        const char *slash = strrchr(path, '/');
        ck_assert_ptr_nonnull(slash);
        int i = atoi(slash + 1);
        ck_assert(i >= 0 && i < b->n);
        ck_assert_int_eq(code[i], 0); /* one answer a request */
        code[i] = c;
    }
    ck_assert_int_eq(pclose(b->p), 0);
    int64_t took = ts_now_ms() - b->t0;
    for (int i = 0; i < b->n; i++) {
        char want[96], got[96] = {0};
        snprintf(path, sizeof path, "%s/%d", b->dir, i);
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            size_t len = fread(got, 1, sizeof got - 1, f);
            got[len] = 0;
            fclose(f);
        }
        snprintf(want, sizeof want, "{\"below\":%ld,\"count\":%ld}",
                 b->from + i, s_primes_below(b->from + i));
        right[i] = strcmp(got, want) == 0;
    }
    ts_rmtree(b->dir);
    return took;
}

START_TEST(users_come_back_in_the_order_asked_and_bad_input_is_400)
{
    char *o = s_curl("'http://127.0.0.1:%d/api/v1/users?user_ids=3,1,99,x,2' "
                     "-w ' %%{http_code}'", s_port);
    ck_assert_str_eq(o,
        "[{\"id\":3,\"name\":\"Grace Hopper\",\"email\":\"grace@example.org\"},"
        "{\"id\":1,\"name\":\"Ada Lovelace\",\"email\":\"ada@example.org\"},"
        "{\"error\":\"no such user\"},{\"error\":\"not an id\"},"
        "{\"id\":2,\"name\":\"Alan Turing\",\"email\":\"alan@example.org\"}]"
        " 200");
    /* ten lookups of 20 ms each run side by side: well under 200 ms */
    int64_t t0 = ts_now_ms();
    o = s_curl("'http://127.0.0.1:%d/api/v1/users?user_ids=1,2,3,4,5,6,7,8,"
               "9,10' -w ' %%{http_code}'", s_port);
    ck_assert_int_lt(ts_now_ms() - t0, 2000);
    ck_assert_ptr_nonnull(strstr(o, "\"id\":10"));
    ck_assert_ptr_nonnull(strstr(o, "] 200"));
    o = s_curl("'http://127.0.0.1:%d/api/v1/users' -w ' %%{http_code}'",
               s_port);
    ck_assert_ptr_nonnull(strstr(o, " 400"));
    o = s_curl("'http://127.0.0.1:%d/health' -w ' %%{http_code}'", s_port);
    ck_assert_str_eq(o, "{\"status\":\"ok\"} 200");
    o = s_curl("'http://127.0.0.1:%d/primes?below=100000' "
               "-w ' %%{http_code}'", s_port);
    ck_assert_str_eq(o, "{\"below\":100000,\"count\":9592} 200");
    o = s_curl("'http://127.0.0.1:%d/primes?below=-5' -w ' %%{http_code}'",
               s_port);
    ck_assert_ptr_nonnull(strstr(o, " 400"));
    o = s_curl("'http://127.0.0.1:%d/nothing' -w ' %%{http_code}'", s_port);
    ck_assert_ptr_nonnull(strstr(o, " 404"));
}
END_TEST

/* The example's worker processes (its children), up to max. */
static int
s_workers(pid_t *pids, int max)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "pgrep -P %d", (int)s_pid);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int n = 0;
    while (n < max && fscanf(p, "%d", &pids[n]) == 1)
        n++;
    pclose(p);
    return n;
}

/* CPU ticks a process has used (utime + stime), or -1 once gone. */
static long
s_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
                                   "%*u %ld %ld", &ut, &st) != 2)
        return -1;
    return ut + st;
}

/* The pool gives the request of a worker that died to another worker,
 * so a kill in the middle of a burst costs no answer. */
START_TEST(a_worker_killed_in_a_burst_costs_no_request)
{
    enum { N = 24 };
    pid_t w[4];
    ck_assert_int_eq(s_workers(w, 4), 2);
    long before = s_ticks(w[0]);
    /* 24 requests at once, each counting primes for a few tens of ms */
    s_burst_t b;
    s_burst_start(&b, N, 300000, N);
    /* kill the first worker once it is at work */
    int64_t end = ts_now_ms() + TS_CALL_MS;
    while (s_ticks(w[0]) <= before && ts_now_ms() < end)
        ;
    ck_assert_int_gt(s_ticks(w[0]), before);
    ck_assert_int_eq(kill(w[0], SIGKILL), 0);
    int code[N];
    bool right[N];
    (void)s_burst_end(&b, code, right);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(code[i] == 200, "request %d: %d", i, code[i]);
        ck_assert_msg(right[i], "request %d: a wrong body", i);
    }
    /* the worker is back, and the service works */
    pid_t now[4];
    end = ts_now_ms() + TS_CALL_MS;
    int n;
    while ((n = s_workers(now, 4)) != 2 && ts_now_ms() < end)
        ;
    ck_assert_int_eq(n, 2);
    ck_assert(now[0] != w[0] && now[1] != w[0]);
    char *o = s_curl("'http://127.0.0.1:%d/primes?below=1000' "
                     "-w ' %%{http_code}'", s_port);
    ck_assert_str_eq(o, "{\"below\":1000,\"count\":168} 200");
}
END_TEST

/* The chaos report's kills and stops, from the example's stderr. */
static void
s_chaos_report(unsigned long long *kills, unsigned long long *stops)
{
    FILE *f = fopen(s_err, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "chaos: report (");
        found = p != NULL &&
                sscanf(p, "chaos: report (seed=%*u, %*u draws): injected "
                       "%llu kills, %llu stops", kills, stops) == 2;
    }
    fclose(f);
    unlink(s_err);
    ck_assert_msg(found, "no chaos report from the example");
}

/* A fault-free service's burst of n requests (below from + i, par at a
 * time): every answer 200 and right; its time in ms. */
static int64_t
s_clean_burst(int n, long from, int par)
{
    int code[S_BURST_MAX];
    bool right[S_BURST_MAX];
    s_burst_t b;
    s_start(NULL);
    s_burst_start(&b, n, from, par);
    int64_t took = s_burst_end(&b, code, right);
    for (int i = 0; i < n; i++)
        ck_assert_msg(code[i] == 200 && right[i], "fault-free request %d: %d",
                      i, code[i]);
    s_teardown();
    return took;
}

/* Chaos mode on the service: 60 requests at once (12 at a time), while
 * its primes workers are SIGKILLed and SIGSTOPped on a seeded schedule.
 * Each request gets one answer, 200 with the right count, none hangs,
 * the service still answers after, and the burst takes less than 3
 * times the same burst fault-free. The fault-free one runs before and
 * after, and the slower counts: the requests are CPU-bound, so their
 * time follows the machine's load, which other suites change meanwhile.
 *
 * What the example guarantees is that a request fails (500) only if its
 * worker dies under it on each of its 3 tries (max_retries 2). The
 * schedule draws every 200 ms, so kills are at least that far apart: a
 * request killed once runs again at once (first in the queue, on the
 * other worker or the new one, up by then), in tens of ms even loaded,
 * and is done long before the next kill could come. So none is killed
 * three times. With draws every 40 ms, as this test had, some were: 1
 * request of 60 in 4 runs of 10 (the example did not retry then, and
 * 17 to 41 of 60 failed), and the burst took up to 2.9 times as long.
 *
 * Why these sizes: the fault-free burst is about 0.9 s (60 counts of
 * primes below 200,000, ~30 ms each, on 2 workers), 1.5 s with a busy
 * loop on one CPU. Each kill costs a restart (~17 ms, more under ASan or
 * load) and a request's work done twice; each stop holds a worker 100
 * ms. At a draw every 200 ms with kill=0.5 and stop=0.5 that is about a
 * quarter more time, plus what does not shrink with the burst: a stop
 * or a restart at its very end, 100 ms or so against a bound of 2.7 s.
 * A shorter burst would make that end count more, a longer one would
 * only take longer. */
START_TEST(under_chaos_every_request_gets_its_one_right_answer_in_under_3x)
{
    enum { N = 60, FROM = 200000, PAR = 12 };
    int code[N];
    bool right[N];
    s_burst_t b;
    int64_t t_before = s_clean_burst(N, FROM, PAR);

    s_start("seed=5,every=200,kill=0.5,stop=0.5,stop_ms=100");
    s_burst_start(&b, N, FROM, PAR);
    int64_t t_chaos = s_burst_end(&b, code, right);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        ok += code[i] == 200 && right[i];
        if (code[i] != 200 || !right[i])
            fprintf(stderr, "webservice under chaos: request %d: %d%s\n", i,
                    code[i], code[i] == 200 ? ", a wrong body" : "");
    }
    char *o = s_curl("'http://127.0.0.1:%d/health' -w ' %%{http_code}'",
                     s_port);
    ck_assert_str_eq(o, "{\"status\":\"ok\"} 200");
    s_teardown();
    unsigned long long kills = 0, stops = 0;
    s_chaos_report(&kills, &stops);

    int64_t t_after = s_clean_burst(N, FROM, PAR);
    int64_t t_clean = t_before > t_after ? t_before : t_after;
    fprintf(stderr, "webservice: %d requests in %lld and %lld ms "
            "fault-free, %lld ms under chaos (x%.2f: %llu kills, %llu "
            "stops), %d answered right\n", N, (long long)t_before,
            (long long)t_after, (long long)t_chaos,
            (double)t_chaos / (double)t_clean, kills, stops, ok);
    ck_assert_int_eq(ok, N);
    ck_assert_uint_ge(kills + stops, 1); /* the chaos did strike */
    ck_assert_int_lt(t_chaos, 3 * t_clean);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("webservice");
    TCase *tc = tcase_create("webservice");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, users_come_back_in_the_order_asked_and_bad_input_is_400);
    tcase_add_test(tc, a_worker_killed_in_a_burst_costs_no_request);
    suite_add_tcase(s, tc);
    tc = tcase_create("chaos");
    tcase_set_timeout(tc, 60);
    tcase_add_test(
        tc, under_chaos_every_request_gets_its_one_right_answer_in_under_3x);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
