/* tests/test_dashboard.c - `troupe dashboard` (docs/tools.md) in a real
 * browser: the webservice example runs as a node, the dashboard watches
 * it, a few requests go through the service, one of its actors is
 * restarted (`troupe restart`: a crash for its supervisor), and headless
 * Chromium loads the page. The rendered DOM must hold the supervision
 * tree (the example's actor names), the actors table and the crash and
 * restart in the sequence diagram; a screenshot must be a real PNG of a
 * drawn page: decoded with python3's zlib, it has the colours of text and
 * the tree's card is not blank. The dashboard's JSON answers and its
 * errors are checked with curl.
 *
 * Paths come in TR_TOOL_TROUPE and TR_EXAMPLE_WEBSERVICE
 * (tests/meson.build). Without chromium (scripts/deps installs it) the
 * suite says so and is skipped (exit 77). Nothing sleeps to synchronise:
 * lines are waited for with a deadline, and the browser's own clock is
 * virtual (--virtual-time-budget). */
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
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support.h"
#include "troupe.h"

#define S_WAIT_MS 30000

typedef struct {
    pid_t pid;
    int out; /* its stdout */
} s_proc_t;

/* Start argv with stdout on a pipe (stderr stays ours). */
static s_proc_t
s_start(char *const argv[])
{
    int fds[2];
    ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    return (s_proc_t){pid, fds[0]};
}

/* One line of p's stdout, waited for up to S_WAIT_MS. */
static void
s_line(s_proc_t *p, char *buf, size_t cap)
{
    size_t n = 0;
    int64_t deadline = ts_now_ms() + S_WAIT_MS;
    while (n + 1 < cap) {
        struct pollfd pf = {.fd = p->out, .events = POLLIN};
        int64_t left = deadline - ts_now_ms();
        ck_assert_msg(left > 0, "no line within %d ms (so far: '%.*s')",
                      S_WAIT_MS, (int)n, buf);
        if (poll(&pf, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(p->out, buf + n, 1);
        ck_assert_msg(r == 1, "the program ended (so far: '%.*s')", (int)n,
                      buf);
        if (buf[n++] == '\n')
            break;
    }
    buf[n] = '\0';
}

/* End p with sig and wait for it; its exit status (-1: by a signal). */
static int
s_end(s_proc_t *p, int sig)
{
    ck_assert_int_eq(kill(p->pid, sig), 0);
    int st = 0;
    ck_assert_int_eq(waitpid(p->pid, &st, 0), p->pid);
    close(p->out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Run a shell command; its stdout (static, cut at 4 MiB) and status. */
static char *
s_sh(int *status, const char *fmt, ...)
{
    static char out[4 << 20];
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = 0, r;
    while (n < sizeof out - 1 &&
           (r = fread(out + n, 1, sizeof out - 1 - n, p)) > 0)
        n += r;
    out[n] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

static void
s_has(const char *text, const char *what)
{
    ck_assert_msg(strstr(text, what) != NULL, "no '%s' in:\n%.4000s", what,
                  text);
}

/* The port in "...127.0.0.1:<port>..." */
static int
s_port_of(const char *line)
{
    const char *p = strstr(line, "127.0.0.1:");
    ck_assert_msg(p != NULL, "no address in '%s'", line);
    int port = atoi(p + 10);
    ck_assert_int_gt(port, 0);
    return port;
}

static const char *
s_tool(void)
{
    const char *t = getenv("TR_TOOL_TROUPE");
    ck_assert_ptr_nonnull(t);
    return t;
}

/* The webservice example, for a minute, and the dashboard on it. */
static s_proc_t s_ws, s_dash;
static int s_ws_port, s_dash_port;
static char s_ws_pid[24];

static void
s_up(void)
{
    const char *exe = getenv("TR_EXAMPLE_WEBSERVICE");
    ck_assert_ptr_nonnull(exe);
    char line[512];
    s_ws = s_start((char *const[]){(char *)exe, "0", "60", NULL});
    s_line(&s_ws, line, sizeof line);
    s_ws_port = s_port_of(line);
    snprintf(s_ws_pid, sizeof s_ws_pid, "%d", (int)s_ws.pid);
    s_dash = s_start((char *const[]){(char *)s_tool(), "dashboard", s_ws_pid,
                                     "--port", "0", NULL});
    s_line(&s_dash, line, sizeof line);
    s_has(line, "dashboard of node 'node'");
    s_dash_port = s_port_of(line);
}

static void
s_down(void)
{
    /* Ctrl-C: the dashboard ends cleanly, exit 0. */
    ck_assert_int_eq(s_end(&s_dash, SIGINT), 0);
    s_end(&s_ws, SIGINT);
}

/* python3 pixels.py PNG X0 X1 Y0 Y1: decode an 8-bit RGB(A) PNG with the
 * standard library only, and fail unless the rows above Y1 hold over 50
 * colours and the box X0..X1, Y0..Y1 over 1000 dark pixels (text). */
static const char s_pixels_py[] =
    "import struct, sys, zlib\n"
    "d = open(sys.argv[1], 'rb').read()\n"
    "x0, x1, y0, y1 = map(int, sys.argv[2:6])\n"
    "assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'not a PNG'\n"
    "pos, idat = 8, b''\n"
    "while pos < len(d):\n"
    "    n, kind = struct.unpack('>I4s', d[pos:pos + 8])\n"
    "    if kind == b'IHDR':\n"
    "        w, h, depth, ctype, _, _, lace = struct.unpack('>IIBBBBB',\n"
    "            d[pos + 8:pos + 21])\n"
    "    elif kind == b'IDAT':\n"
    "        idat += d[pos + 8:pos + 8 + n]\n"
    "    pos += 12 + n\n"
    "assert depth == 8 and ctype in (2, 6) and lace == 0, (depth, ctype)\n"
    "bpp = 3 if ctype == 2 else 4\n"
    "stride = w * bpp\n"
    "raw = zlib.decompress(idat)\n"
    "prev, colours, ink = bytearray(stride), set(), 0\n"
    "for y in range(y1):\n"
    "    f = raw[y * (stride + 1)]\n"
    "    row = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])\n"
    "    for i in range(stride) if f else ():\n"
    "        a = row[i - bpp] if i >= bpp else 0\n"
    "        b = prev[i]\n"
    "        c = prev[i - bpp] if i >= bpp else 0\n"
    "        if f == 1: p = a\n"
    "        elif f == 2: p = b\n"
    "        elif f == 3: p = (a + b) >> 1\n"
    "        else:\n"
    "            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)\n"
    "            p = a if pa <= pb and pa <= pc else b if pb <= pc else c\n"
    "        row[i] = (row[i] + p) & 255\n"
    "    for x in range(w):\n"
    "        px = bytes(row[x * bpp:x * bpp + 3])\n"
    "        colours.add(px)\n"
    "        ink += y >= y0 and x0 <= x < x1 and sum(px) < 480\n"
    "    prev = row\n"
    "assert len(colours) > 50, ('colours', len(colours))\n"
    "assert ink > 1000, ('dark pixels in the tree', ink)\n";

START_TEST(the_page_shows_the_tree_the_actors_and_a_crash_with_its_restart)
{
    s_up();
    int st;
    for (int i = 0; i < 3; i++) {
        char *o = s_sh(&st, "curl -s -S --max-time 20 "
                            "'http://127.0.0.1:%d/api/v1/users?user_ids=1,2'",
                       s_ws_port);
        ck_assert_int_eq(st, 0);
        s_has(o, "Ada Lovelace");
    }
    /* A crash for the supervisor: store-2 ends abnormally, comes back. */
    char *said = s_sh(&st, "%s restart %s store-2", s_tool(), s_ws_pid);
    ck_assert_int_eq(st, 0);
    const char *idp = strstr(said, "(id ");
    ck_assert_ptr_nonnull(idp);
    int old_id = atoi(idp + 4);
    ck_assert_int_gt(old_id, 0);

    char dir[64], png[128];
    ts_tmpdir(dir, sizeof dir, "dash");
    snprintf(png, sizeof png, "%s/dashboard.png", dir);
    const char *flags =
        "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
        "--disable-background-networking --disable-component-update "
        "--disable-sync --disable-dev-shm-usage --window-size=1280,1400 "
        "--virtual-time-budget=6000";
    char *dom = s_sh(&st, "timeout 120 chromium %s --user-data-dir=%s/u1 "
                          "--dump-dom http://127.0.0.1:%d/ 2>/dev/null",
                     flags, dir, s_dash_port);
    ck_assert_msg(st == 0, "chromium --dump-dom: status %d", st);
    /* The tree, drawn by the script from /api/state. */
    s_has(dom, "id=\"tree-");
    const char *names[] = {"web_sup", "store-0", "store-1", "store-2",
                           "store-3", "users_api", "gateway", "primes"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, ">%s ", names[i]); /* a tree entry */
        s_has(dom, want);
    }
    s_has(dom, "tr_supervisor");
    s_has(dom, "<td>user_store</td>");
    s_has(dom, "class=\"status\">live<");
    /* The messages: a tag, the crash and the restart. */
    s_has(dom, ">get<");
    s_has(dom, "class=\"crash\"");
    s_has(dom, "class=\"restart\"");
    s_has(dom, "restarted as #");
    /* ... on the lane it had: one lane headed store-2. */
    int lanes = 0;
    for (const char *q = dom; (q = strstr(q, "\">store-2 #")) != NULL; q++)
        lanes++;
    ck_assert_int_eq(lanes, 1);
    char old_lane[48];
    snprintf(old_lane, sizeof old_lane, "id=\"lane-%d\"", old_id);
    ck_assert_msg(strstr(dom, old_lane) == NULL,
                  "the crashed store-2 has a lane of its own");
    s_has(dom, "actor was killed"); /* the last failure, in the table */

    s_sh(&st, "timeout 120 chromium %s --user-data-dir=%s/u2 "
              "--screenshot=%s http://127.0.0.1:%d/ >/dev/null 2>&1",
         flags, dir, png, s_dash_port);
    ck_assert_msg(st == 0, "chromium --screenshot: status %d", st);
    FILE *f = fopen(png, "rb");
    ck_assert_msg(f != NULL, "no screenshot at %s", png);
    unsigned char head[24];
    ck_assert_uint_eq(fread(head, 1, sizeof head, f), sizeof head);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert(memcmp(head, "\x89PNG\r\n\x1a\n", 8) == 0);
    /* IHDR: 1280 x 1400, as asked. */
    unsigned w = (unsigned)head[16] << 24 | head[17] << 16 | head[18] << 8 |
                 head[19];
    unsigned h = (unsigned)head[20] << 24 | head[21] << 16 | head[22] << 8 |
                 head[23];
    ck_assert_uint_eq(w, 1280);
    ck_assert_uint_eq(h, 1400);
    /* A blank page of that size compresses to a few KiB; text, a table
     * and a diagram do not. */
    ck_assert_int_gt(size, 40000);
    /* And the pixels: decoded (zlib, the PNG filters), the page has the
     * many colours of drawn text, and the supervision tree's card (top
     * left at 1280 px wide: x 16-632, its entries from y 110) has ink,
     * where a tree that failed to draw leaves it white. */
    char script[160];
    snprintf(script, sizeof script, "%s/pixels.py", dir);
    f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs(s_pixels_py, f);
    fclose(f);
    char *px = s_sh(&st, "python3 %s %s 30 600 110 400 2>&1", script, png);
    ck_assert_msg(st == 0, "the screenshot's pixels: %s", px);
    ts_rmtree(dir);
    s_down();
}
END_TEST

START_TEST(the_json_answers_and_bad_requests)
{
    s_up();
    int st;
    char *o = s_sh(&st, "curl -s -S --max-time 20 "
                        "http://127.0.0.1:%d/api/state",
                   s_dash_port);
    ck_assert_int_eq(st, 0);
    s_has(o, "{\"info\":{\"name\":\"node\"");
    s_has(o, "\"actors\":[{\"id\":");
    s_has(o, "\"tree\":{\"id\":");
    s_has(o, "\"pools\":[{\"id\":");
    o = s_sh(&st, "curl -s -S --max-time 20 "
                  "'http://127.0.0.1:%d/api/v1/users?user_ids=3'",
             s_ws_port);
    o = s_sh(&st, "curl -s -S --max-time 20 "
                  "'http://127.0.0.1:%d/api/events?since=0'",
             s_dash_port);
    s_has(o, "\"watching\":true");
    s_has(o, "\"send\",");
    s_has(o, ",\"get\"]");
    o = s_sh(&st, "curl -s --max-time 20 -w ' %%{http_code}' "
                  "'http://127.0.0.1:%d/api/events?since=-1'",
             s_dash_port);
    s_has(o, "sequence number");
    s_has(o, " 400");
    o = s_sh(&st, "curl -s --max-time 20 -w ' %%{http_code}' "
                  "http://127.0.0.1:%d/nothing",
             s_dash_port);
    s_has(o, " 404");
    o = s_sh(&st, "curl -s --max-time 20 -w ' %%{http_code}' -X POST "
                  "http://127.0.0.1:%d/api/state",
             s_dash_port);
    s_has(o, "read-only");
    s_has(o, " 405");
    o = s_sh(&st, "curl -s --max-time 20 -w ' %%{http_code}' "
                  "http://127.0.0.1:%d/dashboard.js",
             s_dash_port);
    s_has(o, "/api/events?since=");
    s_has(o, " 200");
    /* The node goes: the page's data says so (502), the page is still
     * there. */
    s_end(&s_ws, SIGKILL);
    o = s_sh(&st, "curl -s --max-time 20 -w ' %%{http_code}' "
                  "http://127.0.0.1:%d/api/state",
             s_dash_port);
    s_has(o, "gone");
    s_has(o, " 502");
    ck_assert_int_eq(s_end(&s_dash, SIGTERM), 0);
}
END_TEST

START_TEST(bad_arguments_and_a_busy_port_are_errors)
{
    int st;
    char *o = s_sh(&st, "%s dashboard 2>&1", s_tool());
    ck_assert_int_eq(st, 2);
    o = s_sh(&st, "%s dashboard 1 --port 70000 2>&1", s_tool());
    ck_assert_int_eq(st, 2);
    s_has(o, "--port");
    o = s_sh(&st, "%s dashboard 1 --bind 'a b' 2>&1", s_tool());
    ck_assert_int_eq(st, 2);
    s_has(o, "--bind");
    o = s_sh(&st, "%s dashboard no-such-node-here 2>&1", s_tool());
    ck_assert_int_eq(st, 1);
    s_has(o, "no node");
    /* A port that is taken: said at once, exit 1. */
    s_up();
    o = s_sh(&st, "%s dashboard %s --port %d 2>&1", s_tool(), s_ws_pid,
             s_dash_port);
    ck_assert_int_eq(st, 1);
    s_has(o, "cannot listen on 127.0.0.1:");
    s_down();
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("dashboard");
    TCase *tc = tcase_create("dashboard");
    tcase_set_timeout(tc, 300); /* backstop only */
    tcase_add_test(tc,
                   the_page_shows_the_tree_the_actors_and_a_crash_with_its_restart);
    tcase_add_test(tc, the_json_answers_and_bad_requests);
    tcase_add_test(tc, bad_arguments_and_a_busy_port_are_errors);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    int st = system("chromium --version >/dev/null 2>&1");
    if (st != 0) {
        printf("SKIP: chromium is not installed (scripts/deps chromium "
               "chromium-driver installs it): the dashboard is not tested "
               "in a browser\n");
        return 77;
    }
    return ts_run_suite(s_suite());
}
