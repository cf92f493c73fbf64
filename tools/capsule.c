/* tools/capsule.c - `troupe capsule FILE` prints a crash capsule
 * (docs/control.md: what the runtime writes when an actor fails handling a
 * message), and `troupe replay FILE PROGRAM` starts PROGRAM with
 * TROUPE_REPLAY=FILE, which makes its tr_init run the capsule's behaviour
 * alone and hand it the message again (runtime/capsule.c), so that the
 * crash can be watched again, under gdb with --gdb. */
#include "tools/tool.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_FILE ((size_t)1 << 30)

/* The replaying program's exit statuses (runtime/capsule.c). */
#define S_REPLAY_HANDLED 0
#define S_REPLAY_FAILED 3
#define S_REPLAY_BAD 4

typedef struct {
    char *data;
    size_t len;
    msgpack_unpacked u;
    const msgpack_object *root;
} s_capsule_t;

/* Read and check FILE; prints why not and returns TT_EXIT_FAIL. */
static int
s_load(const char *path, s_capsule_t *c)
{
    memset(c, 0, sizeof *c);
    msgpack_unpacked_init(&c->u);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        tt_err("%s: %s", path, strerror(errno));
        return TT_EXIT_FAIL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size <= 0 || (size_t)st.st_size > S_MAX_FILE) {
        tt_err("%s: not a capsule (empty, too large or not a file)", path);
        fclose(f);
        return TT_EXIT_FAIL;
    }
    c->len = (size_t)st.st_size;
    c->data = malloc(c->len);
    bool ok = c->data != NULL && fread(c->data, 1, c->len, f) == c->len;
    fclose(f);
    size_t off = 0;
    if (ok)
        ok = msgpack_unpack_next(&c->u, c->data, c->len, &off) ==
                 MSGPACK_UNPACK_SUCCESS &&
             c->u.data.type == MSGPACK_OBJECT_MAP &&
             tt_get_int(&c->u.data, "troupe_capsule", 0) == 1;
    if (!ok) {
        tt_err("%s is not a crash capsule (troupe writes them in "
               "<node dir>/capsules or $TROUPE_CAPSULES)", path);
        return TT_EXIT_FAIL;
    }
    c->root = &c->u.data;
    return 0;
}

static void
s_free(s_capsule_t *c)
{
    msgpack_unpacked_destroy(&c->u);
    free(c->data);
}

/* A payload: its msgpack values as JSON, or hex when they do not parse. */
static void
s_payload(const msgpack_object *bin)
{
    const char *p = bin->via.bin.ptr;
    size_t len = bin->via.bin.size, off = 0;
    if (len == 0) {
        puts("(empty)");
        return;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int n = 0;
    while (off < len && n < 64) {
        size_t at = off;
        if (msgpack_unpack_next(&u, p, len, &off) != MSGPACK_UNPACK_SUCCESS) {
            off = at;
            break;
        }
        fputs(n++ ? ", " : "", stdout);
        tt_json_obj(stdout, &u.data);
    }
    msgpack_unpacked_destroy(&u);
    if (off < len) {
        printf("%s%zu bytes that are not msgpack:", n ? " and " : "",
               len - off);
        for (size_t i = off; i < len && i < off + 32; i++)
            printf(" %02x", (unsigned char)p[i]);
        if (len - off > 32)
            fputs(" ...", stdout);
    }
    fputc('\n', stdout);
}

static void
s_print(const char *path, const msgpack_object *r)
{
    char name[TT_NAME_MAX], beh[TT_NAME_MAX], node[TT_NAME_MAX], mode[16],
        why[128], when[64] = "?";
    tt_get_str(r, "name", name, sizeof name, "");
    tt_get_str(r, "behaviour", beh, sizeof beh, "?");
    tt_get_str(r, "node", node, sizeof node, "?");
    tt_get_str(r, "mode", mode, sizeof mode, "?");
    tt_get_str(r, "reason_text", why, sizeof why, "?");
    int64_t ms = tt_get_int(r, "time_ms", 0);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms > 0 && localtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    bool quarantined = tt_get_bool(r, "quarantined", false);
    printf("capsule    %s\n", path);
    printf("actor      %s%s(%s, id %" PRId64 "), a %s actor of node '%s', "
           "in process %" PRId64 "\n",
           name[0] ? name : "", name[0] ? " " : "", beh,
           tt_get_int(r, "actor", 0), mode, node, tt_get_int(r, "pid", 0));
    printf("when       %s\n", when);
    int64_t sig = tt_get_int(r, "signal", 0);
    if (quarantined)
        printf("what       QUARANTINED: the message was dropped, not "
               "handled\n");
    printf("reason     %s (%" PRId64 ")", why, tt_get_int(r, "reason", 0));
    if (sig > 0)
        printf(", signal %" PRId64 " (%s)", sig, strsignal((int)sig));
    fputc('\n', stdout);
    int64_t row = tt_get_int(r, "crashes_in_a_row", 0);
    printf("restarts   %" PRId64 " before this actor; this message crashed "
           "the name %" PRId64 " time%s in a row\n",
           tt_get_int(r, "restarts", 0), row, row == 1 ? "" : "s");
    const msgpack_object *m = tt_get(r, "message");
    if (m != NULL && m->type == MSGPACK_OBJECT_MAP) {
        char tag[80];
        tt_get_str(m, "tag", tag, sizeof tag, "?");
        bool req = tt_get_bool(m, "request", false);
        printf("message    '%s' from #%" PRId64 ", %s", tag,
               tt_get_int(m, "sender", 0), req ? "an ask" : "a tell");
        if (req)
            printf(" (correlation id %" PRId64 ")", tt_get_int(m, "corr", 0));
        fputc('\n', stdout);
        const msgpack_object *p = tt_get(m, "payload");
        if (p != NULL && p->type == MSGPACK_OBJECT_BIN) {
            printf("payload    %u bytes: ", p->via.bin.size);
            s_payload(p);
        }
        const msgpack_object *fr = tt_get(m, "frame");
        if (fr != NULL && fr->type == MSGPACK_OBJECT_BIN)
            printf("frame      %u bytes as received (header, tag, payload: "
                   "--json has them)\n", fr->via.bin.size);
    } else {
        puts("message    none");
    }
    const msgpack_object *rec = tt_get(r, "recent");
    if (rec != NULL && rec->type == MSGPACK_OBJECT_ARRAY) {
        printf("before it  %u message%s (oldest first)%s\n",
               rec->via.array.size, rec->via.array.size == 1 ? "" : "s",
               rec->via.array.size ? ":" : "");
        for (uint32_t i = 0; i < rec->via.array.size; i++) {
            const msgpack_object *x = &rec->via.array.ptr[i];
            char tag[32];
            tt_get_str(x, "tag", tag, sizeof tag, "?");
            printf("           '%s' from #%" PRId64 ", %" PRId64 " bytes\n",
                   tag, tt_get_int(x, "sender", 0), tt_get_int(x, "size", 0));
        }
    }
    const msgpack_object *bt = tt_get(r, "backtrace");
    if (bt != NULL && bt->type == MSGPACK_OBJECT_ARRAY &&
        bt->via.array.size > 0) {
        puts("backtrace  (from the signal handler)");
        for (uint32_t i = 0; i < bt->via.array.size; i++) {
            const msgpack_object *x = &bt->via.array.ptr[i];
            if (x->type != MSGPACK_OBJECT_STR)
                continue;
            char line[512];
            int n = (int)(x->via.str.size < 500 ? x->via.str.size : 500);
            snprintf(line, sizeof line, "%.*s", n, x->via.str.ptr);
            tt_clean(line);
            printf("           %s\n", line);
        }
    }
    printf("replay     troupe replay %s PROGRAM   (--gdb: under gdb)\n",
           path);
}

int
tt_cmd_capsule(int argc, char **argv)
{
    tt_args_t a;
    int rc;
    if (!tt_args(argc, argv, "json", 1, 1, &a, &rc))
        return rc;
    s_capsule_t c;
    if ((rc = s_load(a.pos[0], &c)) != 0) {
        s_free(&c);
        return rc;
    }
    if (a.json) {
        tt_json_obj(stdout, c.root);
        fputc('\n', stdout);
    } else {
        s_print(a.pos[0], c.root);
    }
    s_free(&c);
    return 0;
}

/* replay [--gdb] [--timeout MS] FILE PROGRAM [ARG...]: the options come
 * first, as everything after PROGRAM is its own. */
int
tt_cmd_replay(int argc, char **argv)
{
    bool gdb = false;
    const char *timeout = NULL;
    int i = 0;
    for (; i < argc && strncmp(argv[i], "-", 1) == 0; i++) {
        if (strcmp(argv[i], "--gdb") == 0) {
            gdb = true;
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout = argv[++i];
            char *end;
            long v = strtol(timeout, &end, 10);
            if (*end != '\0' || v <= 0 || v > INT_MAX) {
                tt_err("option '--timeout': bad value '%s'", timeout);
                return TT_EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            puts("usage: troupe replay [--gdb] [--timeout MS] FILE PROGRAM "
                 "[ARG...]");
            return 0;
        } else {
            tt_err("unknown option '%s' (options come before FILE)",
                   argv[i]);
            return TT_EXIT_USAGE;
        }
    }
    if (argc - i < 2) {
        tt_err("usage: troupe replay [--gdb] [--timeout MS] FILE PROGRAM "
               "[ARG...]");
        return TT_EXIT_USAGE;
    }
    const char *file = argv[i], *prog = argv[i + 1];
    s_capsule_t c;
    int rc = s_load(file, &c);
    if (rc != 0) {
        s_free(&c);
        return rc;
    }
    const msgpack_object *m = tt_get(c.root, "message");
    char beh[TT_NAME_MAX], tag[80] = "";
    tt_get_str(c.root, "behaviour", beh, sizeof beh, "?");
    if (m != NULL && m->type == MSGPACK_OBJECT_MAP)
        tt_get_str(m, "tag", tag, sizeof tag, "");
    s_free(&c);
    if (tag[0] == '\0') {
        tt_err("%s holds no message to replay", file);
        return TT_EXIT_FAIL;
    }
    char abs[PATH_MAX];
    if (realpath(file, abs) == NULL) {
        tt_err("%s: %s", file, strerror(errno));
        return TT_EXIT_FAIL;
    }
    setenv("TROUPE_REPLAY", abs, 1);
    unsetenv("TROUPE_CHILD");
    if (timeout != NULL)
        setenv("TROUPE_REPLAY_MS", timeout, 1);
    int nargs = argc - i - 1; /* PROGRAM and its arguments */
    char **args = calloc((size_t)nargs + 8, sizeof *args);
    if (args == NULL) {
        tt_err("out of memory");
        return TT_EXIT_FAIL;
    }
    int k = 0;
    if (gdb) {
        args[k++] = "gdb";
        args[k++] = "-q";
        args[k++] = "-ex";
        args[k++] = "run";
        args[k++] = "--args";
    }
    for (int j = 0; j < nargs; j++)
        args[k++] = argv[i + 1 + j];
    args[k] = NULL;
    printf("replaying '%s' to a new %s, alone in %s%s\n", tag, beh, prog,
           gdb ? " under gdb" : "");
    fflush(stdout);
    if (gdb) { /* the terminal is gdb's now */
        execvp("gdb", args);
        tt_err("cannot run gdb: %s", strerror(errno));
        free(args);
        return TT_EXIT_FAIL;
    }
    pid_t pid = fork();
    if (pid == 0) {
        execvp(args[0], args);
        fprintf(stderr, "troupe: cannot run %s: %s\n", args[0],
                strerror(errno));
        _exit(127);
    }
    free(args);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (pid < 0) {
        tt_err("fork: %s", strerror(errno));
        return TT_EXIT_FAIL;
    }
    if (WIFSIGNALED(st)) {
        printf("reproduced: %s died of signal %d (%s) handling '%s'\n", prog,
               WTERMSIG(st), strsignal(WTERMSIG(st)), tag);
        return 0;
    }
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    switch (code) {
    case S_REPLAY_FAILED:
        printf("reproduced: %s failed handling '%s' again\n", beh, tag);
        return 0;
    case S_REPLAY_HANDLED:
        printf("not reproduced: '%s' was handled without a failure\n", tag);
        return TT_EXIT_FAIL;
    case S_REPLAY_BAD:
        tt_err("%s could not replay the capsule (it said why above)", prog);
        return TT_EXIT_FAIL;
    case 127:
        return TT_EXIT_FAIL;
    default:
        tt_err("%s exited %d: does its main call tr_init(&argc, &argv) "
               "first?", prog, code);
        return TT_EXIT_FAIL;
    }
}
