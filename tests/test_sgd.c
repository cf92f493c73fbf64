/* tests/test_sgd.c - the sgd example (examples/sgd.c): synchronous data
 * parallelism gives the loss of one worker on any number of workers,
 * survives a worker killed in mid-step, and rejects bad arguments.
 *
 * The example is its own executable (TR_EXAMPLE_SGD, from
 * tests/meson.build). A test spawns it with stdout and stderr on pipes,
 * waits for its exit on a pidfd together with its output, up to
 * S_DEADLINE_S (then kills it), and reads the printed figures. This
 * process never creates a ZeroMQ context: the runtime runs only in the
 * children. The example's process workers share its stdout and stderr,
 * so the end of both says they are gone too; a runtime directory left
 * behind (runtime/rundir.c) fails the test. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"

extern char **environ;

/* A run takes well under a second (a few under sanitizers); the deadline
 * is only reached when something hangs. */
#define S_DEADLINE_S 30
#define S_OUT_MAX 16384

/* Two runs of the same seed must agree to this (the final loss is printed
 * with 9 decimals; only the order of the additions differs). */
#define S_LOSS_TOL 1e-8

typedef struct {
    int status;
    size_t len[2];            /* bytes read: stdout, stderr */
    char buf[2][S_OUT_MAX + 2]; /* "\n" + output + NUL: lines are \n-led */
    bool eof[2];
} s_run_t;

static s_run_t s_a, s_b; /* large: static rather than on the stack */

/* Read what is there on fd into run->buf[i]; past S_OUT_MAX the rest is
 * dropped, so that the child never blocks on us. */
static void
s_drain(int fd, s_run_t *run, int i)
{
    char scratch[4096];
    for (;;) {
        size_t room = S_OUT_MAX - run->len[i];
        char *dst = room > 0 ? run->buf[i] + 1 + run->len[i] : scratch;
        ssize_t n = read(fd, dst, room > 0 ? room : sizeof scratch);
        if (n > 0) {
            run->len[i] += room > 0 ? (size_t)n : 0;
            continue;
        }
        if (n == 0)
            run->eof[i] = true;
        else
            ck_assert_msg(errno == EAGAIN || errno == EINTR, "read: %s",
                          strerror(errno));
        if (n == 0 || errno == EAGAIN)
            return;
    }
}

/* A node keeps its ipc endpoints in <base>/<pid>-<start> and removes the
 * directory when destroyed: the example's must be gone. */
static void
s_assert_no_rundir(pid_t pid)
{
    char base[512], prefix[32];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (xdg != NULL && *xdg == '/' && stat(xdg, &st) == 0 &&
        S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
        access(xdg, W_OK) == 0)
        snprintf(base, sizeof base, "%s/troupe", xdg);
    else
        snprintf(base, sizeof base, "/tmp/troupe-%u", (unsigned)geteuid());
    snprintf(prefix, sizeof prefix, "%ld-", (long)pid);
    DIR *d = opendir(base);
    if (d == NULL)
        return;
    struct dirent *e;
    bool left = false;
    while ((e = readdir(d)) != NULL)
        left |= strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    ck_assert_msg(!left, "sgd left its runtime directory %s/%s*", base,
                  prefix);
}

/* Run the example with args (NULL-terminated); fills *run, checks the
 * exit status is want. */
static void
s_run(const char *const *args, int want, s_run_t *run)
{
    const char *path = getenv("TR_EXAMPLE_SGD");
    ck_assert_msg(path != NULL, "TR_EXAMPLE_SGD is not set: run via meson "
                  "test");
    char *argv[16] = {(char *)path};
    for (int i = 0; args[i] != NULL; i++) {
        ck_assert_int_lt(i + 2, 16);
        argv[i + 1] = (char *)args[i];
    }
    int out[2], err[2];
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
    ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, out[1], 1), 0);
    ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, err[1], 2), 0);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    ck_assert_msg(rc == 0, "spawn %s: %s", path, strerror(rc));
    ck_assert_int_eq(fcntl(out[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(fcntl(err[0], F_SETFL, O_NONBLOCK), 0);

    memset(run, 0, sizeof *run);
    run->buf[0][0] = run->buf[1][0] = '\n';
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    ck_assert_msg(pidfd >= 0, "pidfd_open: %s", strerror(errno));
    int64_t deadline = ts_now_ms() + S_DEADLINE_S * 1000;
    bool exited = false;
    /* Until it has exited and both pipes are at their end (its process
     * workers hold them too): no polling, one wait on all three. */
    while (!exited || !run->eof[0] || !run->eof[1]) {
        int64_t left = deadline - ts_now_ms();
        if (left <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p[3] = {
            {.fd = exited ? -1 : pidfd, .events = POLLIN},
            {.fd = run->eof[0] ? -1 : out[0], .events = POLLIN},
            {.fd = run->eof[1] ? -1 : err[0], .events = POLLIN}};
        int n = poll(p, 3, (int)left);
        ck_assert_msg(n >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        if (n > 0 && p[1].revents)
            s_drain(out[0], run, 0);
        if (n > 0 && p[2].revents)
            s_drain(err[0], run, 1);
        if (n > 0 && p[0].revents)
            exited = true;
    }
    ck_assert_int_eq(waitpid(pid, &run->status, 0), pid);
    close(pidfd);
    close(out[0]);
    close(err[0]);
    run->buf[0][1 + run->len[0]] = run->buf[1][1 + run->len[1]] = '\0';
    ck_assert_msg(exited && run->eof[0] && run->eof[1],
                  "sgd did not end in %d s (or a process it started still "
                  "holds its output); stdout:%s\nstderr:%s", S_DEADLINE_S,
                  run->buf[0], run->buf[1]);
    ck_assert_msg(WIFEXITED(run->status) && WEXITSTATUS(run->status) == want,
                  "sgd: exit status 0x%x, not %d; stdout:%s\nstderr:%s",
                  run->status, want, run->buf[0], run->buf[1]);
    s_assert_no_rundir(pid);
}

/* The text after the line that starts with prefix in stdout, or NULL. */
static const char *
s_after(const s_run_t *run, const char *prefix)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s", prefix);
    const char *p = strstr(run->buf[0], key);
    return p ? p + strlen(key) : NULL;
}

/* The final line's figures: loss, accuracy (percent), rows. */
static void
s_final(const s_run_t *run, double *loss, double *acc, long *rows)
{
    const char *p = s_after(run, "sgd: final loss ");
    ck_assert_msg(p != NULL, "no final line in:%s", run->buf[0]);
    ck_assert_msg(sscanf(p, "%lf, accuracy %lf%% on %ld rows", loss, acc,
                         rows) == 3, "unreadable final line: %.80s", p);
}

/* The loss printed for each epoch (1..n) by a and by b are the same. */
static void
s_assert_same_epochs(const s_run_t *a, const s_run_t *b, int n)
{
    for (int e = 1; e <= n; e++) {
        char prefix[32];
        double la, lb;
        snprintf(prefix, sizeof prefix, "epoch %2d: loss ", e);
        const char *pa = s_after(a, prefix), *pb = s_after(b, prefix);
        ck_assert_msg(pa && pb, "no '%s' line in:%s\nor in:%s", prefix,
                      a->buf[0], b->buf[0]);
        ck_assert_int_eq(sscanf(pa, "%lf", &la), 1);
        ck_assert_int_eq(sscanf(pb, "%lf", &lb), 1);
        ck_assert_msg(fabs(la - lb) <= 1e-6, "epoch %d: loss %f vs %f", e,
                      la, lb);
    }
}

/* A finished run: the final loss of b is a's, on all the rows. */
static void
s_assert_same_loss(const s_run_t *a, const s_run_t *b)
{
    double la, lb, aa, ab;
    long ra, rb;
    s_final(a, &la, &aa, &ra);
    s_final(b, &lb, &ab, &rb);
    ck_assert_int_eq(ra, 20000);
    ck_assert_int_eq(rb, 20000);
    ck_assert_msg(fabs(la - lb) <= S_LOSS_TOL, "final loss %.9f vs %.9f",
                  la, lb);
    ck_assert_msg(fabs(aa - ab) < 0.01, "accuracy %.2f%% vs %.2f%%", aa, ab);
    s_assert_same_epochs(a, b, 10);
}

/* The reference: one process worker, the default seed and sizes. */
static void
s_one_worker(s_run_t *run)
{
    s_run((const char *[]){"--workers", "1", NULL}, 0, run);
    double loss, acc;
    long rows;
    s_final(run, &loss, &acc, &rows);
    /* It learned: well below ln 2 (0.693, a coin), and above the noise in
     * the labels lets it go. */
    ck_assert_msg(loss > 0.2 && loss < 0.45, "final loss %f", loss);
    ck_assert_msg(acc > 75, "accuracy %f%%", acc);
}

START_TEST(two_process_workers_reach_the_loss_of_one)
{
    s_one_worker(&s_a);
    s_run((const char *[]){"--workers", "2", NULL}, 0, &s_b);
    ck_assert_ptr_nonnull(s_after(&s_b, "sgd: 20000 rows x 16 features "
                                         "(seed 1), 2 process workers, 10 "
                                         "steps per epoch"));
    s_assert_same_loss(&s_a, &s_b);
}
END_TEST

START_TEST(three_thread_workers_reach_the_loss_of_one)
{
    s_one_worker(&s_a);
    s_run((const char *[]){"--workers", "3", "--mode", "thread", NULL}, 0,
          &s_b);
    ck_assert_ptr_nonnull(s_after(&s_b, "sgd: 20000 rows x 16 features "
                                         "(seed 1), 3 thread workers"));
    s_assert_same_loss(&s_a, &s_b);
}
END_TEST

START_TEST(another_seed_makes_another_data_set)
{
    s_one_worker(&s_a);
    s_run((const char *[]){"--workers", "2", "--seed", "2", NULL}, 0, &s_b);
    double la, lb, aa, ab;
    long ra, rb;
    s_final(&s_a, &la, &aa, &ra);
    s_final(&s_b, &lb, &ab, &rb);
    ck_assert_msg(fabs(la - lb) > 1e-4, "seeds 1 and 2: loss %f and %f", la,
                  lb);
}
END_TEST

START_TEST(a_killed_process_worker_is_restarted_and_loses_nothing)
{
    s_one_worker(&s_a);
    s_run((const char *[]){"--workers", "2", "--kill-at", "15", NULL}, 0,
          &s_b);
    ck_assert_ptr_nonnull(s_after(&s_b, "param: step 15: worker-0 lost: "
                                         "actor died before replying (actor "
                                         "was killed); sending the step "
                                         "again\n"));
    const char *again = s_after(&s_b, "param: step 15: worker-0 answered "
                                      "again: a new process, pid ");
    ck_assert_msg(again != NULL, "no restart in:%s", s_b.buf[0]);
    /* Only that step had to be sent again. */
    ck_assert_ptr_null(strstr(again, "param: "));
    s_assert_same_loss(&s_a, &s_b);
}
END_TEST

START_TEST(a_failed_thread_worker_is_restarted_in_the_first_step)
{
    s_one_worker(&s_a);
    s_run((const char *[]){"--workers", "3", "--mode", "thread",
                           "--kill-at", "1", NULL}, 0, &s_b);
    ck_assert_ptr_nonnull(s_after(&s_b, "param: step 1: worker-0 lost: "
                                         "actor died before replying (actor "
                                         "failed); sending the step again\n"));
    ck_assert_ptr_nonnull(s_after(&s_b, "param: step 1: worker-0 answered "
                                         "again: a new thread, pid "));
    s_assert_same_loss(&s_a, &s_b);
}
END_TEST

START_TEST(bad_arguments_exit_2_with_a_message)
{
    static const struct {
        const char *args[4];
        const char *says;
    } bad[] = {
        {{"--workers", "0"}, "sgd: --workers: expected an integer in 1..64, "
                             "got '0'\n"},
        {{"--epochs", "ten"}, "sgd: --epochs: expected an integer in "
                              "1..100000, got 'ten'\n"},
        {{"--mode", "fork"}, "sgd: --mode: expected process or thread, got "
                             "'fork'\n"},
        {{"--kill-at", "101"}, "sgd: --kill-at 101: there are only 100 steps "
                               "(10 epochs of 10)\n"},
        {{"--rows", "5"}, "sgd: --rows 5: fewer rows than --batches (10)\n"},
        {{"--frobnicate"}, "unrecognized option '--frobnicate'\n"},
        {{"--workers"}, "option '--workers' requires an argument\n"},
        {{"2"}, "sgd: unexpected argument '2'\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_run(bad[i].args, 2, &s_a);
        ck_assert_msg(strstr(s_a.buf[1], bad[i].says) != NULL,
                      "%s: stderr has no '%s':%s", bad[i].args[0],
                      bad[i].says, s_a.buf[1]);
        ck_assert_msg(strstr(s_a.buf[1], "\nusage: sgd ") != NULL,
                      "no usage in:%s", s_a.buf[1]);
        ck_assert_msg(s_a.len[0] == 0, "%s: stdout:%s", bad[i].args[0],
                      s_a.buf[0]);
    }
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("sgd");
    TCase *tc = tcase_create("run");
    tcase_set_timeout(tc, 2 * S_DEADLINE_S + 10); /* backstop only */
    tcase_add_test(tc, two_process_workers_reach_the_loss_of_one);
    tcase_add_test(tc, three_thread_workers_reach_the_loss_of_one);
    tcase_add_test(tc, another_seed_makes_another_data_set);
    tcase_add_test(tc, a_killed_process_worker_is_restarted_and_loses_nothing);
    tcase_add_test(tc, a_failed_thread_worker_is_restarted_in_the_first_step);
    tcase_add_test(tc, bad_arguments_exit_2_with_a_message);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
