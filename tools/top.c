/* tools/top.c - troupe top: a node's actors, refreshed every second, with
 * messages in and out per second (from the difference of the "in" and
 * "out" counters between two looks), mailbox depth and restarts.
 *
 * It is plain ANSI: the alternate screen, cursor home, erase to end of
 * line. No curses, so it works in any terminal, over ssh too. The keys
 * come through the terminal in non-canonical mode (termios); the
 * terminal is given back on q, on Ctrl-C (SIGINT, which the terminal
 * still sends), on SIGTERM and SIGHUP, and around a Ctrl-Z. With --once,
 * or when stdout is not a terminal, it prints one frame (after two looks
 * --delay apart, so that the rates mean something) and exits. */
#include "tools/tool.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* One actor of one look. */
typedef struct {
    int64_t id, in, out, mailbox, restarts;
    double in_rate, out_rate; /* < 0: unknown (first look, process actor) */
    char name[TT_NAME_MAX], beh[TT_NAME_MAX], mode[12], state[12];
    char failure[96];
} s_actor_t;

typedef struct {
    s_actor_t *a;
    int n;
    int64_t at_ms; /* CLOCK_MONOTONIC */
    char node[TT_NAME_MAX];
    int64_t pid, uptime_ms, actors, spawned, crashed, restarts;
} s_look_t;

static volatile sig_atomic_t s_quit, s_winch, s_tstp;
static struct termios s_saved;
static bool s_raw; /* the terminal is ours: give it back */

static void
s_on_signal(int sig)
{
    if (sig == SIGWINCH)
        s_winch = 1;
    else if (sig == SIGTSTP)
        s_tstp = 1;
    else
        s_quit = 1;
}

static void
s_write_all(const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n, len -= (size_t)n;
    }
}

static void
s_term_restore(void)
{
    if (!s_raw)
        return;
    s_raw = false;
    /* Cursor back, main screen back, then the old terminal modes. */
    s_write_all("\033[?25h\033[?1049l");
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &s_saved);
}

static void
s_term_enter(bool keys)
{
    if (keys) {
        struct termios raw = s_saved;
        /* Keys one at a time and unechoed; ISIG stays, so Ctrl-C and
         * Ctrl-Z still come as signals. */
        raw.c_lflag &= (tcflag_t)~(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
    }
    s_raw = true;
    s_write_all("\033[?1049h\033[?25l");
}

static void
s_handlers(void)
{
    struct sigaction sa = {.sa_handler = s_on_signal};
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: poll returns EINTR and the loop sees the flag. */
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGTSTP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* Take one look: info, then ps. 0 or the exit status. */
static int
s_look(tt_conn_t *c, s_look_t *look)
{
    const msgpack_object *r;
    int rc = tt_conn_request(c, "info", 0, NULL, &r);
    if (rc != 0)
        return rc;
    look->at_ms = tt_mono_ms();
    tt_get_str(r, "name", look->node, sizeof look->node, "?");
    look->pid = tt_get_int(r, "pid", 0);
    look->uptime_ms = tt_get_int(r, "uptime_ms", 0);
    look->actors = tt_get_int(r, "actors", 0);
    /* docs/control.md names "crashed" and "restarts"; nodes of this
     * version say "failed", and restarts are summed from ps below. */
    const msgpack_object *st = tt_get(r, "stats");
    look->spawned = tt_get_int(st, "spawned", -1);
    look->crashed = tt_get_int(st, "crashed", tt_get_int(st, "failed", -1));
    look->restarts = tt_get_int(st, "restarts", -1);
    bool sum_restarts = tt_get(st, "restarts") == NULL; /* st dies below */
    if ((rc = tt_conn_request(c, "ps", 0, NULL, &r)) != 0)
        return rc;
    const msgpack_object *ps = tt_get(r, "actors");
    int64_t sum = 0;
    if (ps == NULL || ps->type != MSGPACK_OBJECT_ARRAY) {
        tt_err("%s sent no actors list", c->label);
        return TT_EXIT_FAIL;
    }
    free(look->a);
    look->n = (int)ps->via.array.size;
    look->a = calloc((size_t)(look->n > 0 ? look->n : 1), sizeof *look->a);
    if (look->a == NULL) {
        tt_err("out of memory");
        return TT_EXIT_FAIL;
    }
    for (int i = 0; i < look->n; i++) {
        const msgpack_object *x = &ps->via.array.ptr[i];
        s_actor_t *a = &look->a[i];
        a->id = tt_get_int(x, "id", 0);
        a->in = tt_get_int(x, "in", -1);
        a->out = tt_get_int(x, "out", -1);
        a->mailbox = tt_get_int(x, "mailbox", -1);
        a->restarts = tt_get_int(x, "restarts", 0);
        a->in_rate = a->out_rate = -1;
        tt_get_str(x, "name", a->name, sizeof a->name, "");
        tt_get_str(x, "behaviour", a->beh, sizeof a->beh, "?");
        tt_get_str(x, "mode", a->mode, sizeof a->mode, "?");
        tt_get_str(x, "state", a->state, sizeof a->state, "?");
        tt_get_str(x, "last_failure", a->failure, sizeof a->failure, "");
        sum += a->restarts > 0 ? a->restarts : 0;
    }
    if (sum_restarts)
        look->restarts = sum;
    return 0;
}

/* Rates of now from the counters of before (same id; ids are never
 * reused, so a restarted actor starts afresh). */
static void
s_rates(s_look_t *now, const s_look_t *before)
{
    double dt = (double)(now->at_ms - before->at_ms) / 1000.0;
    if (before->a == NULL || dt <= 0)
        return;
    for (int i = 0; i < now->n; i++) {
        s_actor_t *a = &now->a[i];
        for (int j = 0; j < before->n; j++) {
            const s_actor_t *b = &before->a[j];
            if (b->id != a->id)
                continue;
            if (a->in >= 0 && b->in >= 0 && a->in >= b->in)
                a->in_rate = (double)(a->in - b->in) / dt;
            if (a->out >= 0 && b->out >= 0 && a->out >= b->out)
                a->out_rate = (double)(a->out - b->out) / dt;
            break;
        }
    }
}

static char s_sort = 'm';

static const char *
s_label(const s_actor_t *a)
{
    return a->name[0] ? a->name : a->beh;
}

static int
s_cmp(const void *x, const void *y)
{
    const s_actor_t *a = x, *b = y;
    int c = 0;
    switch (s_sort) {
    case 'm': c = (b->mailbox > a->mailbox) - (b->mailbox < a->mailbox); break;
    case 'i': c = (b->in_rate > a->in_rate) - (b->in_rate < a->in_rate); break;
    case 'o':
        c = (b->out_rate > a->out_rate) - (b->out_rate < a->out_rate);
        break;
    case 'r':
        c = (b->restarts > a->restarts) - (b->restarts < a->restarts);
        break;
    case 'n': c = strcmp(s_label(a), s_label(b)); break;
    }
    return c != 0 ? c : (a->id > b->id) - (a->id < b->id);
}

static void
s_rate_cell(char *buf, size_t cap, double r)
{
    if (r < 0)
        snprintf(buf, cap, "-");
    else if (r < 10)
        snprintf(buf, cap, "%.1f", r);
    else
        snprintf(buf, cap, "%.0f", r);
}

static const char *
s_sort_name(char k)
{
    switch (k) {
    case 'i': return "in/s";
    case 'o': return "out/s";
    case 'r': return "restarts";
    case 'n': return "name";
    default: return "mailbox";
    }
}

/* One frame: on a terminal, from the top left, each line erased to its
 * end and cut to the width, as many actors as there are rows; else plain
 * lines. */
static void
s_draw(s_look_t *look, bool term, bool keys)
{
    int width = 0, height = 0;
    struct winsize ws;
    if (term && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
        width = ws.ws_col;
        height = ws.ws_row;
    }
    const char *eol = term ? "\033[K\n" : "\n";
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (f == NULL)
        return;
    if (term)
        fputs("\033[H", f);
    char up[24], head[256];
    tt_fmt_ms(up, sizeof up, look->uptime_ms);
    snprintf(head, sizeof head,
             "troupe top - node '%s' pid %" PRId64 ", up %s, %" PRId64
             " actors, %" PRId64 " spawned, %" PRId64 " crashed, %" PRId64
             " restarts",
             look->node, look->pid, up, look->actors, look->spawned,
             look->crashed, look->restarts);
    if (width > 0 && (int)strlen(head) > width)
        head[width] = '\0';
    fprintf(f, "%s%s", head, eol);
    if (keys)
        fprintf(f, "sort: %s   (m mailbox, i in/s, o out/s, r restarts, "
                   "n name, q quit)%s",
                s_sort_name(s_sort), eol);
    fputs(eol, f);

    qsort(look->a, (size_t)look->n, sizeof *look->a, s_cmp);
    tt_table_t t;
    tt_table_init(&t, 10, "rlllrrrrll",
                  (const char *const[]){"ID", "NAME", "BEHAVIOUR", "STATE",
                                        "IN/s", "OUT/s", "MAILBOX",
                                        "RESTARTS", "MODE", "LAST FAILURE"});
    int rows = look->n;
    if (height > 0) {
        int room = height - (keys ? 4 : 3) - 1; /* heading lines, header */
        if (rows > room)
            rows = room > 0 ? room : 0;
    }
    for (int i = 0; i < rows; i++) {
        const s_actor_t *a = &look->a[i];
        char id[24], in[24], out[24], mbox[24], rst[24];
        snprintf(id, sizeof id, "%" PRId64, a->id);
        s_rate_cell(in, sizeof in, a->in_rate);
        s_rate_cell(out, sizeof out, a->out_rate);
        if (a->mailbox >= 0)
            snprintf(mbox, sizeof mbox, "%" PRId64, a->mailbox);
        else
            snprintf(mbox, sizeof mbox, "-");
        snprintf(rst, sizeof rst, "%" PRId64, a->restarts);
        tt_table_add(&t, (const char *const[]){
                             id, a->name[0] ? a->name : "-", a->beh,
                             a->state, in, out, mbox, rst, a->mode,
                             a->failure[0] ? a->failure : "-"});
    }
    tt_table_print(&t, f, width, eol);
    tt_table_free(&t);
    if (rows < look->n)
        fprintf(f, "(%d more)%s", look->n - rows, eol);
    if (term)
        fputs("\033[J", f);
    fclose(f);
    if (term) {
        s_write_all(text);
    } else {
        fwrite(text, 1, size, stdout);
        fflush(stdout);
    }
    free(text);
}

/* Wait up to ms for a key (when keys) or a signal; true when the frame
 * must be drawn again at once (a new sort order, a resized terminal). */
static bool
s_wait(int ms, bool *keys_p)
{
    bool keys = *keys_p;
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    int n = poll(keys ? &p : NULL, keys ? 1 : 0, ms > 0 ? ms : 0);
    if (n <= 0)
        return s_winch != 0;
    char buf[32];
    ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
    bool redraw = false;
    for (ssize_t i = 0; i < got; i++) {
        char k = buf[i];
        if (k == 'q' || k == 'Q' || k == 3 /* Ctrl-C without ISIG */)
            s_quit = 1;
        else if (k == 'm' || k == 'i' || k == 'o' || k == 'r' || k == 'n') {
            s_sort = k;
            redraw = true;
        } else if (k == '\033') {
            break; /* an arrow or other escape sequence: not ours */
        }
    }
    if (got == 0)
        *keys_p = false; /* end of input: keep refreshing, without keys */
    return redraw;
}

int
tt_cmd_top(int argc, char **argv)
{
    tt_args_t a;
    int rc;
    if (!tt_args(argc, argv, "once,delay,timeout,sort", 1, 1, &a, &rc))
        return rc;
    if (a.sort != NULL) {
        /* A key (m, i, o, r, n) or its name (mailbox, in, out, ...). */
        static const char *const names[] = {"mailbox", "in", "out",
                                            "restarts", "name"};
        char key = 0;
        for (int i = 0; i < 5 && key == 0; i++)
            if (strcmp(a.sort, names[i]) == 0 ||
                (a.sort[0] == names[i][0] && a.sort[1] == '\0'))
                key = names[i][0]; /* the key is the name's first letter */
        if (key == 0) {
            tt_err("--sort: '%s' is none of mailbox, in, out, restarts, "
                   "name",
                   a.sort);
            return TT_EXIT_USAGE;
        }
        s_sort = key;
    }
    tt_node_t node;
    tt_conn_t c;
    if ((rc = tt_node_find(a.pos[0], &node)) != 0 ||
        (rc = tt_conn_open(&c, &node, a.timeout_ms)) != 0)
        return rc;
    s_look_t look[2] = {{0}};
    int cur = 0;
    bool term = !a.once && isatty(STDOUT_FILENO);

    if (!term) {
        /* Two looks --delay apart, then one frame. */
        if ((rc = s_look(&c, &look[0])) == 0) {
            int64_t until = look[0].at_ms + a.delay_ms;
            for (int64_t left; (left = until - tt_mono_ms()) > 0;)
                poll(NULL, 0, (int)left);
            if ((rc = s_look(&c, &look[1])) == 0) {
                s_rates(&look[1], &look[0]);
                s_draw(&look[1], false, false);
            }
        }
        goto done;
    }

    bool keys = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &s_saved) == 0;
    s_handlers();
    atexit(s_term_restore);
    tt_err_hook = s_term_restore; /* a message must not go to our screen */
    s_term_enter(keys);
    while (!s_quit) {
        if ((rc = s_look(&c, &look[cur])) != 0)
            break;
        s_rates(&look[cur], &look[!cur]);
        int64_t next = look[cur].at_ms + a.delay_ms;
        s_draw(&look[cur], true, keys);
        while (!s_quit) {
            if (s_tstp) {
                /* Ctrl-Z: give the terminal back, stop; on fg, take it
                 * again and draw. */
                s_tstp = 0;
                s_term_restore();
                signal(SIGTSTP, SIG_DFL);
                raise(SIGTSTP);
                s_handlers();
                tcgetattr(STDIN_FILENO, &s_saved);
                s_term_enter(keys);
                s_draw(&look[cur], true, keys);
            }
            int64_t left = next - tt_mono_ms();
            if (left <= 0)
                break;
            if (s_wait((int)left, &keys)) {
                s_winch = 0;
                s_draw(&look[cur], true, keys);
            }
        }
        cur = !cur;
    }
    s_term_restore();
done:
    free(look[0].a);
    free(look[1].a);
    tt_conn_close(&c);
    return rc;
}
