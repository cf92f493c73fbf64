/* tests/test_step.c - step mode (TROUPE_STEP=1, runtime/step.c) as a
 * learner uses it: examples/order (two writers, one printer) runs with
 * its stdin, stdout and stderr on pipes; the test reads each list of
 * waiting messages on stderr and answers on stdin as a person would. The
 * printer must print the lines in the order the answers picked them; a
 * message from a sender to a receiver cannot overtake an older one of the
 * same pair; enter picks the oldest; a bad answer is explained; "q" and
 * the end of stdin let the program finish on its own.
 *
 * The example's path comes in TR_EXAMPLE_ORDER. Nothing sleeps: every
 * read waits for its text with a deadline. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "troupe.h"

#define S_WAIT_MS 30000
#define S_PROMPT "q: run freely] "

typedef struct {
    pid_t pid;
    int in, out, err; /* our ends */
    char errbuf[1 << 16];
    size_t errlen, errseen; /* errseen: what earlier reads consumed */
    bool err_eof;
} s_prog_t;

static void
s_start(s_prog_t *p, bool step)
{
    const char *exe = getenv("TR_EXAMPLE_ORDER");
    ck_assert_ptr_nonnull(exe);
    int in[2], out[2], err[2];
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
    memset(p, 0, sizeof *p);
    p->pid = fork();
    ck_assert_int_ge(p->pid, 0);
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        if (step)
            setenv("TROUPE_STEP", "1", 1);
        else
            unsetenv("TROUPE_STEP");
        execl(exe, exe, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    p->in = in[1];
    p->out = out[0];
    p->err = err[0];
}

/* Read stderr until want appears after what was consumed (true), or it
 * ends (false); the text from errseen to the end of want is consumed. */
static bool
s_err_until(s_prog_t *p, const char *want, char **found)
{
    int64_t deadline = ts_now_ms() + S_WAIT_MS;
    for (;;) {
        p->errbuf[p->errlen] = '\0';
        char *at = strstr(p->errbuf + p->errseen, want);
        if (at != NULL) {
            *found = p->errbuf + p->errseen;
            p->errseen = (size_t)(at - p->errbuf) + strlen(want);
            return true;
        }
        if (p->err_eof)
            return false;
        int64_t left = deadline - ts_now_ms();
        ck_assert_msg(left > 0, "no '%s' on stderr within %d ms:\n%s", want,
                      S_WAIT_MS, p->errbuf);
        struct pollfd pf = {.fd = p->err, .events = POLLIN};
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        ck_assert_uint_lt(p->errlen, sizeof p->errbuf - 1);
        ssize_t n = read(p->err, p->errbuf + p->errlen,
                         sizeof p->errbuf - 1 - p->errlen);
        if (n > 0)
            p->errlen += (size_t)n;
        else if (n == 0 || errno != EINTR)
            p->err_eof = true;
    }
}

static void
s_say(s_prog_t *p, const char *line)
{
    size_t len = strlen(line);
    ck_assert_int_eq(write(p->in, line, len), (ssize_t)len);
}

/* Its stdout to the end, and its exit status. */
static int
s_finish(s_prog_t *p, char *out, size_t cap)
{
    size_t n = 0;
    int64_t deadline = ts_now_ms() + S_WAIT_MS;
    for (;;) {
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        int64_t left = deadline - ts_now_ms();
        ck_assert_msg(left > 0, "the program did not end");
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        ssize_t k = read(p->out, out + n, cap - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    out[n] = '\0';
    close(p->in);
    close(p->out);
    close(p->err);
    int st = 0;
    ck_assert_int_eq(waitpid(p->pid, &st, 0), p->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* One listed message: "  N) FROM -> TO  'tag' payload [waits ...]". */
typedef struct {
    int n;
    char text[200];
    bool blocked;
} s_entry_t;

static int
s_parse(const char *block, s_entry_t *e, int cap)
{
    int k = 0;
    const char *p = block;
    while ((p = strstr(p, ") ")) != NULL && k < cap) {
        const char *start = p;
        while (start > block && start[-1] != '\n')
            start--;
        const char *end = strchr(p, '\n');
        if (end == NULL)
            break;
        int n = atoi(start);
        if (n > 0) {
            e[k].n = n;
            snprintf(e[k].text, sizeof e[k].text, "%.*s", (int)(end - p), p);
            e[k].blocked = strstr(e[k].text, "[waits for an older one]");
            k++;
        }
        p = end;
    }
    return k;
}

/* The text between the quotes of a line's payload ("w1: 2"), or "". */
static void
s_payload(const char *text, char *buf, size_t cap)
{
    const char *q = strchr(text, '"');
    const char *e = q ? strchr(q + 1, '"') : NULL;
    snprintf(buf, cap, "%.*s", q && e ? (int)(e - q - 1) : 0, q ? q + 1 : "");
}

START_TEST(the_learner_picks_the_order_across_senders_but_not_within_one)
{
    s_prog_t p;
    s_start(&p, true);
    char *block;
    char picked[8][32];
    int npicked = 0, prompts = 0;
    bool refused = false, entered = false, bad = false;
    while (s_err_until(&p, S_PROMPT, &block)) {
        prompts++;
        ck_assert_int_lt(prompts, 20);
        s_entry_t e[16];
        int k = s_parse(block, e, 16);
        ck_assert_int_gt(k, 0);
        int go_w2 = 0, blocked = 0, last = 0, oldest = 0;
        for (int i = 0; i < k; i++) {
            if (strstr(e[i].text, "-> w2#") && strstr(e[i].text, "'go'"))
                go_w2 = e[i].n;
            if (e[i].blocked && blocked == 0)
                blocked = e[i].n;
            if (!e[i].blocked) {
                last = i;
                if (oldest == 0)
                    oldest = i + 1;
            }
        }
        char line[16];
        if (!bad) { /* a bad answer is explained, and asked again */
            s_say(&p, "seven\n");
            ck_assert(s_err_until(&p, "a number from 1 to", &block));
            ck_assert(s_err_until(&p, "deliver which? ", &block));
            bad = true;
        }
        if (blocked != 0 && !refused) {
            snprintf(line, sizeof line, "%d\n", blocked);
            s_say(&p, line);
            ck_assert(s_err_until(&p, "must wait for", &block));
            ck_assert(s_err_until(&p, "keep their order", &block));
            refused = true;
        }
        int choice;
        if (go_w2 != 0) {
            choice = go_w2 - 1;
            snprintf(line, sizeof line, "%d\n", go_w2);
        } else if (!entered) { /* enter: the oldest that may go */
            choice = oldest - 1;
            snprintf(line, sizeof line, "\n");
            entered = true;
        } else { /* the newest that may go */
            choice = last;
            snprintf(line, sizeof line, "%d\n", e[last].n);
        }
        if (strstr(e[choice].text, "'line'")) {
            ck_assert_int_lt(npicked, 8);
            s_payload(e[choice].text, picked[npicked], sizeof picked[0]);
            npicked++;
        }
        s_say(&p, line);
    }
    char out[4096];
    ck_assert_int_eq(s_finish(&p, out, sizeof out), 0);
    ck_assert(refused);
    ck_assert(entered);
    ck_assert_int_eq(npicked, 4);
    /* The printer printed them as picked. */
    const char *at = out;
    for (int i = 0; i < npicked; i++) {
        char want[sizeof picked[0] + 16];
        snprintf(want, sizeof want, "printer: %.31s\n", picked[i]);
        const char *f = strstr(at, want);
        ck_assert_msg(f != NULL, "no '%s' after the lines before it in:\n%s",
                      want, out);
        at = f + strlen(want);
    }
    /* go to w2 went first, so w2's lines were there before w1's: the
     * newest-first picks printed a w1 line before w2's first. */
    ck_assert_ptr_nonnull(strstr(out, "order: 4 lines"));
}
END_TEST

START_TEST(q_or_the_end_of_input_lets_messages_go_freely)
{
    for (int round = 0; round < 2; round++) {
        s_prog_t p;
        s_start(&p, true);
        char *block;
        ck_assert(s_err_until(&p, S_PROMPT, &block));
        if (round == 0)
            s_say(&p, "q\n");
        else
            close(p.in), p.in = open("/dev/null", O_WRONLY | O_CLOEXEC);
        ck_assert(s_err_until(&p, "messages now go on freely", &block));
        ck_assert_ptr_nonnull(strstr(block, round == 0 ? "q" :
                                                         "no more input"));
        char out[4096];
        ck_assert_int_eq(s_finish(&p, out, sizeof out), 0);
        ck_assert_ptr_nonnull(strstr(out, "printer: w1: 1\n"));
        ck_assert_ptr_nonnull(strstr(out, "printer: w2: 2\n"));
        ck_assert_ptr_nonnull(strstr(out, "order: 4 lines"));
    }
}
END_TEST

START_TEST(without_troupe_step_nothing_waits)
{
    s_prog_t p;
    s_start(&p, false);
    char *block;
    ck_assert(!s_err_until(&p, "troupe step", &block)); /* to its end */
    char out[4096];
    ck_assert_int_eq(s_finish(&p, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "order: 4 lines"));
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("step");
    TCase *tc = tcase_create("step");
    tcase_set_timeout(tc, 120); /* backstop only */
    tcase_add_test(tc,
                   the_learner_picks_the_order_across_senders_but_not_within_one);
    tcase_add_test(tc, q_or_the_end_of_input_lets_messages_go_freely);
    tcase_add_test(tc, without_troupe_step_nothing_waits);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    return ts_run_suite(s_suite());
}
