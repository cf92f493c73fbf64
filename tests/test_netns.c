/* tests/test_netns.c - many hosts on one machine: three nodes, each a
 * process (tests/netns_node.c) in a network namespace of its own, joined
 * by veth pairs to a bridge in a fourth namespace (10.77.N.1-3/24).
 * Nothing here touches the machine's own network: every interface is
 * made inside the namespaces this test creates, and they are deleted
 * afterwards (and stale ones of an earlier, interrupted run first).
 *
 * What is shown: the nodes find each other through one seed over
 * CURVE; a node whose process is SIGKILLed, one cut off silently (an
 * nftables drop rule inside its namespace: packets vanish, no FIN, no
 * RST) and one whose link goes down are each DOWN for a watcher on another
 * node within the configured time (TROUPE_DOWN_AFTER_MS plus slack);
 * calls to it fail instead of hanging; when the link returns the node is
 * up again and answers. A pipeline on one host whose stage runs on
 * another completes, every item once and right, when that host's node
 * is SIGKILLed half way (its workers come back on the third).
 *
 * Needs root, ip netns and nft: without them main says which is missing
 * and the suite is skipped (exit 77), rather than passing untried. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "support.h"
#include "troupe.h"

#define S_DOWN_AFTER_MS 1500
/* DOWN must come within down_after plus one ping interval and slack for
 * a loaded machine. */
#define S_DOWN_BOUND_MS (S_DOWN_AFTER_MS + 2500)

static char s_prefix[16]; /* "trnNNNN" */
static int s_net;         /* third octet of 10.77.x.0/24 */

static int
s_sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define SH(...) ck_assert_msg(s_sh(__VA_ARGS__) == 0, "command failed")

typedef struct {
    char name[8];
    pid_t pid;
    int in, out; /* its stdin (we write), its stdout (we read) */
    char buf[4096];
    size_t len;
} s_host_t;

static s_host_t s_hosts[3];
static char s_keydir[256];

/* What this machine lacks to run the suite, or NULL. */
static const char *
s_netns_missing(void)
{
    if (geteuid() != 0)
        return "root (it makes network namespaces)";
    char ns[32];
    snprintf(ns, sizeof ns, "trnprobe%d", (int)getpid());
    if (s_sh("ip netns add %s 2>/dev/null", ns) != 0)
        return "a network namespace: `ip netns add` failed (iproute2 "
               "installed? namespaces allowed here?)";
    s_sh("ip netns del %s", ns);
    if (s_sh("command -v nft >/dev/null") != 0)
        return "nft (nftables), for the partition test";
    return NULL;
}

static void
s_net_down(void)
{
    for (int i = 0; i < 3; i++)
        if (s_hosts[i].pid > 0) {
            kill(s_hosts[i].pid, SIGKILL);
            waitpid(s_hosts[i].pid, NULL, 0);
            s_hosts[i].pid = 0;
            close(s_hosts[i].in);
            close(s_hosts[i].out);
        }
    s_sh("for n in $(ip netns list | awk '{print $1}' | grep '^%s'); do "
         "ip netns pids $n | xargs -r kill -9; ip netns del $n; done",
         s_prefix);
    if (s_keydir[0])
        ts_rmtree(s_keydir);
}

static void
s_net_up(void)
{
    snprintf(s_prefix, sizeof s_prefix, "trn%d", (int)(getpid() % 10000));
    s_net = 10 + (int)(getpid() % 200);
    /* stale namespaces of an interrupted run */
    s_sh("for n in $(ip netns list | awk '{print $1}' | grep '^trn[0-9]'); "
         "do ip netns pids $n | xargs -r kill -9; ip netns del $n; done");
    SH("ip netns add %sh && ip -n %sh link add br0 type bridge && "
       "ip -n %sh link set br0 up && ip -n %sh link set lo up",
       s_prefix, s_prefix, s_prefix, s_prefix);
    for (int i = 0; i < 3; i++) {
        char ns[24];
        snprintf(ns, sizeof ns, "%s%c", s_prefix, 'a' + i);
        SH("ip netns add %s && "
           "ip -n %s link add eth0 type veth peer name v%c netns %sh && "
           "ip -n %sh link set v%c master br0 up && "
           "ip -n %s addr add 10.77.%d.%d/24 dev eth0 && "
           "ip -n %s link set eth0 up && ip -n %s link set lo up",
           ns, ns, 'a' + i, s_prefix, s_prefix, 'a' + i, ns, s_net, i + 1,
           ns, ns);
    }
    /* keys: one pair a node, one cluster file naming all three */
    ts_tmpdir(s_keydir, sizeof s_keydir, "troupe-netns");
    char path[320];
    snprintf(path, sizeof path, "%s/cluster", s_keydir);
    FILE *cf = fopen(path, "w");
    ck_assert_ptr_nonnull(cf);
    for (int i = 0; i < 3; i++) {
        char pub[41], sec[41];
        ck_assert_int_eq(zmq_curve_keypair(pub, sec), 0);
        snprintf(path, sizeof path, "%s/%c.key", s_keydir, 'a' + i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert(write(fd, sec, 40) == 40 && write(fd, "\n", 1) == 1);
        close(fd);
        fprintf(cf, "%c %s tcp://10.77.%d.%d:7000\n", 'a' + i, pub, s_net,
                i + 1);
    }
    fclose(cf);
}

/* Start host i's node: netns_node in its namespace, seeded by a. */
static void
s_start(int i)
{
    s_host_t *h = &s_hosts[i];
    snprintf(h->name, sizeof h->name, "%c", 'a' + i);
    h->len = 0;
    int pin[2], pout[2];
    ck_assert_int_eq(pipe(pin), 0);
    ck_assert_int_eq(pipe(pout), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
        char ns[24], listen[64], key[320], cluster[320], down[16];
        snprintf(ns, sizeof ns, "%s%c", s_prefix, 'a' + i);
        snprintf(listen, sizeof listen, "tcp://10.77.%d.%d:7000", s_net,
                 i + 1);
        snprintf(key, sizeof key, "%s/%c.key", s_keydir, 'a' + i);
        snprintf(cluster, sizeof cluster, "%s/cluster", s_keydir);
        snprintf(down, sizeof down, "%d", S_DOWN_AFTER_MS);
        setenv("TROUPE_LISTEN", listen, 1);
        if (i != 0)
            setenv("TROUPE_SEEDS", "a", 1);
        setenv("TROUPE_KEY", key, 1);
        setenv("TROUPE_CLUSTER", cluster, 1);
        setenv("TROUPE_DOWN_AFTER_MS", down, 1);
        const char *prog = getenv("TR_NETNS_NODE");
        execlp("ip", "ip", "netns", "exec", ns, prog, h->name, (char *)NULL);
        _exit(127);
    }
    close(pin[0]);
    close(pout[1]);
    h->pid = pid;
    h->in = pin[1];
    h->out = pout[0];
}

/* The next line of host i that starts with want (other lines are
 * skipped), waiting up to ms; false on timeout or end. */
static bool
s_expect(int i, const char *want, int ms, char *line, size_t cap)
{
    s_host_t *h = &s_hosts[i];
    int64_t until = ts_now_ms() + ms;
    for (;;) {
        char *nl;
        while ((nl = memchr(h->buf, '\n', h->len)) != NULL) {
            size_t n = (size_t)(nl - h->buf);
            char got[512];
            snprintf(got, sizeof got, "%.*s", (int)n, h->buf);
            memmove(h->buf, nl + 1, h->len - n - 1);
            h->len -= n + 1;
            if (strncmp(got, want, strlen(want)) == 0) {
                if (line != NULL)
                    snprintf(line, cap, "%.*s", (int)(cap - 1), got);
                return true;
            }
            fprintf(stderr, "host %s: %s\n", h->name, got);
        }
        int64_t left = until - ts_now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {h->out, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(h->out, h->buf + h->len, sizeof h->buf - h->len - 1);
        if (r <= 0)
            return false;
        h->len += (size_t)r;
    }
}

static void
s_cmd(int i, const char *fmt, ...)
{
    char line[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ck_assert(write(s_hosts[i].in, line, (size_t)n) == n);
}

/* Three nodes, all connected to each other. */
static void
s_cluster(void)
{
    for (int i = 0; i < 3; i++) {
        s_start(i);
        ck_assert_msg(s_expect(i, "ready", TS_CALL_MS, NULL, 0),
                      "host %d did not start", i);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j) {
                s_cmd(i, "await %c\n", 'a' + j);
                char want[16];
                snprintf(want, sizeof want, "up %c", 'a' + j);
                ck_assert_msg(s_expect(i, want, TS_CALL_MS, NULL, 0),
                              "%c never saw %c", 'a' + i, 'a' + j);
            }
}

static void
s_call_ok(int i, char to)
{
    char want[32], line[256];
    snprintf(want, sizeof want, "call %c", to);
    s_cmd(i, "call %c\n", to);
    ck_assert(s_expect(i, want, TS_CALL_MS, line, sizeof line));
    ck_assert_msg(strstr(line, " ok") != NULL, "%s", line);
}

/* A call to node to fails (and does not hang). */
static void
s_call_fails(int i, char to)
{
    char want[32], line[256];
    snprintf(want, sizeof want, "call %c", to);
    s_cmd(i, "call %c\n", to);
    ck_assert(s_expect(i, want, TS_CALL_MS, line, sizeof line));
    ck_assert_msg(strstr(line, " ok") == NULL, "%s", line);
}

/* a watches echo@to; then cut (a shell command) and time the DOWN. */
static int64_t
s_time_down(char to, const char *cut)
{
    char want[32];
    s_cmd(0, "watch %c\n", to);
    snprintf(want, sizeof want, "watching %c", to);
    ck_assert(s_expect(0, want, TS_CALL_MS, NULL, 0));
    int64_t t0 = ts_now_ms();
    if (cut != NULL)
        SH("%s", cut);
    else
        kill(s_hosts[to - 'a'].pid, SIGKILL);
    snprintf(want, sizeof want, "down %c", to);
    char line[256];
    ck_assert_msg(s_expect(0, want, S_DOWN_BOUND_MS * 2, line, sizeof line),
                  "no DOWN for %c", to);
    int64_t took = ts_now_ms() - t0;
    ck_assert_msg(strstr(line, "not connected") != NULL, "%s", line);
    fprintf(stderr, "DOWN of %c after %lld ms (%s)\n", to, (long long)took,
            cut ? cut : "SIGKILL");
    return took;
}

START_TEST(three_hosts_find_each_other_and_talk)
{
    s_net_up();
    s_cluster();
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                s_call_ok(i, (char)('a' + j));
    for (int i = 0; i < 3; i++) {
        s_cmd(i, "quit\n");
        ck_assert(s_expect(i, "bye", TS_CALL_MS, NULL, 0));
    }
    s_net_down();
}
END_TEST

START_TEST(a_killed_node_is_down_in_time)
{
    s_net_up();
    s_cluster();
    int64_t took = s_time_down('c', NULL);
    ck_assert_int_le(took, S_DOWN_BOUND_MS);
    s_call_fails(0, 'c');
    s_call_ok(0, 'b'); /* the others go on */
    s_call_ok(1, 'a');
    s_net_down();
}
END_TEST

START_TEST(a_silent_partition_is_down_in_time_and_heals)
{
    s_net_up();
    s_cluster();
    char cut[512], heal[256];
    snprintf(cut, sizeof cut,
             "ip netns exec %sb nft -f - <<'EOF'\n"
             "table inet cut {\n"
             " chain in { type filter hook input priority 0; "
             "iifname \"eth0\" drop; }\n"
             " chain out { type filter hook output priority 0; "
             "oifname \"eth0\" drop; }\n"
             "}\nEOF",
             s_prefix);
    snprintf(heal, sizeof heal, "ip netns exec %sb nft delete table inet cut",
             s_prefix);
    int64_t took = s_time_down('b', cut);
    ck_assert_int_le(took, S_DOWN_BOUND_MS);
    s_call_fails(0, 'b'); /* at once or at its 2 s deadline: no hang */
    s_call_ok(0, 'c');
    SH("%s", heal);
    s_cmd(0, "await b\n");
    ck_assert(s_expect(0, "up b", TS_CALL_MS, NULL, 0));
    s_call_ok(0, 'b');
    s_call_ok(1, 'a');
    s_net_down();
}
END_TEST

START_TEST(a_link_that_goes_down_is_down_in_time_and_comes_back)
{
    s_net_up();
    s_cluster();
    char cut[128], heal[128];
    snprintf(cut, sizeof cut, "ip -n %sc link set eth0 down", s_prefix);
    snprintf(heal, sizeof heal,
             "ip -n %sc link set eth0 up && "
             "ip -n %sc addr replace 10.77.%d.3/24 dev eth0",
             s_prefix, s_prefix, s_net);
    int64_t took = s_time_down('c', cut);
    ck_assert_int_le(took, S_DOWN_BOUND_MS);
    s_call_fails(0, 'c');
    SH("%s", heal);
    s_cmd(0, "await c\n");
    ck_assert(s_expect(0, "up c", TS_CALL_MS, NULL, 0));
    s_call_ok(0, 'c');
    s_call_ok(2, 'b');
    s_net_down();
}
END_TEST

START_TEST(a_pipeline_completes_when_a_node_is_killed_mid_run)
{
    s_net_up();
    s_cluster();
    enum { N = 6000 };
    /* the stage's workers on b, or on c once b is gone */
    s_cmd(0, "pipe %d node b|c:2\n", N);
    ck_assert_msg(s_expect(0, "pipe half", TS_CALL_MS * 3, NULL, 0),
                  "the pipeline did not get half way");
    kill(s_hosts[1].pid, SIGKILL);
    char line[256];
    ck_assert_msg(s_expect(0, "pipe ", TS_CALL_MS * 3, line, sizeof line),
                  "the pipeline did not finish");
    long long sum = 0;
    unsigned long long n = 0;
    int bad = -1;
    ck_assert_msg(sscanf(line, "pipe done n=%llu sum=%lld bad=%d", &n, &sum,
                         &bad) == 3,
                  "%s", line);
    long long want = 0;
    for (long long i = 0; i < N; i++)
        want += i * i;
    ck_assert_uint_eq(n, N);
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(sum, want);
    s_net_down();
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("netns");
    TCase *tc = tcase_create("hosts");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, three_hosts_find_each_other_and_talk);
    tcase_add_test(tc, a_killed_node_is_down_in_time);
    tcase_add_test(tc, a_silent_partition_is_down_in_time_and_heals);
    tcase_add_test(tc, a_link_that_goes_down_is_down_in_time_and_comes_back);
    tcase_add_test(tc, a_pipeline_completes_when_a_node_is_killed_mid_run);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    const char *missing = s_netns_missing();
    if (missing != NULL) {
        printf("SKIP: the multi-host suite needs %s; scripts/deps "
               "iproute2 nftables installs the tools, and it runs as root\n",
               missing);
        return 77;
    }
    return ts_run_suite(s_suite());
}
