/* tools/troupe.c - the troupe command: look inside the running nodes of
 * this user on this machine (ls, ps, tree, info, pools, top), stop or
 * restart one of their actors, make CURVE keys, and turn traces into
 * pictures (docs/tools.md).
 *
 * It asks nodes through their control endpoint (docs/control.md) and
 * never waits on one longer than --timeout: a node that is gone, refuses
 * or is stuck gives a message and exit status 1, not a hang. This file
 * holds main and the one-shot commands; top.c the live view, trace.c the
 * trace converters, node.c the runtime directory and the requests. */
#include "tools/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "transport/zsock.h"

static const char s_usage[] =
    "usage: troupe COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "  ls [--all] [--json]            the nodes of this user on this machine\n"
    "  ps NODE [--json]               a node's actors\n"
    "  tree NODE [--json]             its supervision tree\n"
    "  info NODE [--json]             its name, pid, uptime and counters\n"
    "  pools NODE [--json]            its pools\n"
    "  top NODE [--once] [--delay MS] [--sort KEY]\n"
    "                                 live: messages/s, mailboxes, restarts\n"
    "  stop NODE ACTOR                ask an actor to stop\n"
    "  restart NODE ACTOR             end an actor for its supervisor to "
    "restart\n"
    "  keygen [DIR] [--force]         a CURVE key pair, DIR/node.key and "
    "node.pub\n"
    "  trace FILE [--json]            what a trace holds, per kind and actor\n"
    "  trace FILE --perfetto OUT      as Chrome/Perfetto trace events (JSON)\n"
    "  trace FILE --svg OUT [--max N] as a message sequence diagram\n"
    "  capsule FILE [--json]          a crash capsule: the message, the "
    "reason\n"
    "  replay [--gdb] FILE PROGRAM [ARG...]\n"
    "                                 hand a capsule's message again to "
    "its\n"
    "                                 behaviour, alone in PROGRAM\n"
    "  dashboard NODE [--port P] [--bind ADDR]\n"
    "                                 a live web page: tree, actors, "
    "messages\n"
    "\n"
    "NODE: a pid, a node name or a node directory (as troupe ls shows).\n"
    "ACTOR: an id (decimal or 0x hex), name#hex as log lines say, or a "
    "name.\n"
    "--timeout MS: how long a node has to answer (default 1000).\n"
    "Exit status: 0; 1 when a node or a file failed; 2 on a usage error.\n"
    "docs/tools.md says more.\n";

static int
s_usage_error(void)
{
    fputs("usage: troupe COMMAND [ARGS] [OPTIONS]  (troupe --help lists "
          "the commands)\n",
          stderr);
    return TT_EXIT_USAGE;
}

bool
tt_args(int argc, char **argv, const char *allowed, int min_pos, int max_pos,
       tt_args_t *a, int *rc)
{
    int r = tt_args_parse(argc, argv, allowed, a);
    if (r == TT_HELP) {
        fputs(s_usage, stdout);
        *rc = 0;
        return false;
    }
    if (r == 0 && (a->npos < min_pos || a->npos > max_pos)) {
        tt_err(a->npos < min_pos ? "missing argument"
                                 : "too many arguments ('%s')",
               a->npos > 0 ? a->pos[a->npos - 1] : "");
        r = TT_EXIT_USAGE;
    }
    if (r != 0) {
        *rc = s_usage_error();
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* ls                                                                  */
/* ------------------------------------------------------------------ */

/* What ls learns of one node. */
typedef struct {
    tt_node_t *node;
    const char *status; /* "up", "not answering", "no endpoint", "stale" */
    int64_t actors;     /* -1: unknown */
    int64_t uptime_ms;  /* -1: unknown */
    void *sock;
    bool asked;
} s_ls_t;

/* Ask every live node for "info" at once, and wait for all answers up to
 * one deadline: nodes that do not answer cost timeout_ms in all, not
 * each. */
static void
s_ls_ask(s_ls_t *rows, int n, int timeout_ms)
{
    void *ctx = zmq_ctx_new();
    if (ctx == NULL)
        return;
    int waiting = 0;
    static const unsigned char req[] = {0x91, 0xa4, 'i', 'n', 'f', 'o'};
    for (int i = 0; i < n; i++) {
        s_ls_t *r = &rows[i];
        char path[TT_PATH_MAX + 16], ep[TT_PATH_MAX + 24];
        struct stat st;
        snprintf(path, sizeof path, "%s/control", r->node->dir);
        if (r->node->stale)
            continue;
        if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
            r->status = "no endpoint";
            continue;
        }
        snprintf(ep, sizeof ep, "ipc://%s", path);
        r->sock = zmq_socket(ctx, ZMQ_DEALER);
        if (r->sock == NULL)
            continue;
        if (tr__sock_limits(r->sock, TR__MAX_MSG_PROCESS, 0) != 0 ||
            zmq_connect(r->sock, ep) != 0 ||
            zmq_send(r->sock, req, sizeof req, ZMQ_DONTWAIT) < 0)
            continue;
        r->asked = true;
        waiting++;
    }
    int64_t deadline = tt_mono_ms() + timeout_ms;
    zmq_pollitem_t *items = calloc((size_t)(n > 0 ? n : 1), sizeof *items);
    int *which = calloc((size_t)(n > 0 ? n : 1), sizeof *which);
    while (waiting > 0 && items != NULL && which != NULL) {
        int64_t left = deadline - tt_mono_ms();
        if (left <= 0)
            break;
        int k = 0;
        for (int i = 0; i < n; i++)
            if (rows[i].asked) {
                items[k] = (zmq_pollitem_t){.socket = rows[i].sock,
                                            .events = ZMQ_POLLIN};
                which[k++] = i;
            }
        if (zmq_poll(items, k, (long)left) < 0 && zmq_errno() != EINTR)
            break;
        for (int j = 0; j < k; j++) {
            if (!(items[j].revents & ZMQ_POLLIN))
                continue;
            s_ls_t *r = &rows[which[j]];
            zmq_msg_t m;
            zmq_msg_init(&m);
            bool more = true;
            while (more && zmq_msg_recv(&m, r->sock, ZMQ_DONTWAIT) >= 0)
                more = zmq_msg_more(&m); /* the last frame is the answer */
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            size_t off = 0;
            if (msgpack_unpack_next(&u, zmq_msg_data(&m), zmq_msg_size(&m),
                                    &off) == MSGPACK_UNPACK_SUCCESS &&
                tt_get_bool(&u.data, "ok", false)) {
                r->status = "up";
                r->actors = tt_get_int(&u.data, "actors", -1);
                r->uptime_ms = tt_get_int(&u.data, "uptime_ms", -1);
            } else {
                r->status = "bad answer";
            }
            msgpack_unpacked_destroy(&u);
            zmq_msg_close(&m);
            r->asked = false;
            waiting--;
        }
    }
    free(items);
    free(which);
    for (int i = 0; i < n; i++)
        if (rows[i].sock != NULL)
            zmq_close(rows[i].sock);
    zmq_ctx_term(ctx);
}

static int
s_cmd_ls(int argc, char **argv)
{
    tt_args_t a;
    int rc;
    if (!tt_args(argc, argv, "json,all,timeout", 0, 0, &a, &rc))
        return rc;
    tt_node_t *nodes;
    int n = tt_nodes_list(&nodes);
    if (n < 0) {
        if (errno != ENOENT) {
            char base[TT_PATH_MAX];
            tt_base_dir(base, sizeof base);
            tt_err("cannot read %s: %s", base, strerror(errno));
            return TT_EXIT_FAIL;
        }
        n = 0; /* no base directory: no node ever ran here */
    }
    s_ls_t *rows = calloc((size_t)(n > 0 ? n : 1), sizeof *rows);
    if (rows == NULL) {
        free(nodes);
        tt_err("out of memory");
        return TT_EXIT_FAIL;
    }
    int64_t now = tt_unix_ms();
    for (int i = 0; i < n; i++) {
        rows[i] = (s_ls_t){.node = &nodes[i], .actors = -1, .uptime_ms = -1,
                           .status = nodes[i].stale ? "stale"
                                                    : "not answering"};
        if (!nodes[i].stale && nodes[i].has_info)
            rows[i].uptime_ms = now - nodes[i].started_ms;
    }
    s_ls_ask(rows, n, a.timeout_ms);

    if (a.json) {
        fputc('[', stdout);
        int k = 0;
        for (int i = 0; i < n; i++) {
            const s_ls_t *r = &rows[i];
            if (r->node->stale && !a.all)
                continue;
            printf("%s{\"pid\":%ld,\"n\":%u,\"name\":", k++ ? "," : "",
                   r->node->pid, r->node->n);
            tt_json_str(stdout, r->node->has_info ? r->node->name : "");
            fputs(",\"dir\":", stdout);
            tt_json_str(stdout, r->node->dir);
            printf(",\"started_ms\":%" PRId64 ",\"uptime_ms\":",
                   r->node->started_ms);
            if (r->uptime_ms >= 0)
                printf("%" PRId64, r->uptime_ms);
            else
                fputs("null", stdout);
            fputs(",\"actors\":", stdout);
            if (r->actors >= 0)
                printf("%" PRId64, r->actors);
            else
                fputs("null", stdout);
            printf(",\"status\":\"%s\"}", r->status);
        }
        fputs("]\n", stdout);
    } else {
        tt_table_t t;
        tt_table_init(&t, 6, "rllrll",
                      (const char *const[]){"PID", "NAME", "UPTIME",
                                            "ACTORS", "STATUS", "DIR"});
        for (int i = 0; i < n; i++) {
            const s_ls_t *r = &rows[i];
            if (r->node->stale && !a.all)
                continue;
            char pid[24], up[24] = "-", actors[24] = "-", name[TT_NAME_MAX];
            snprintf(pid, sizeof pid, "%ld", r->node->pid);
            snprintf(name, sizeof name, "%s",
                     r->node->has_info ? r->node->name : "?");
            tt_clean(name);
            if (r->uptime_ms >= 0)
                tt_fmt_ms(up, sizeof up, r->uptime_ms);
            if (r->actors >= 0)
                snprintf(actors, sizeof actors, "%" PRId64, r->actors);
            tt_table_add(&t, (const char *const[]){pid, name, up, actors,
                                                   r->status, r->node->dir});
        }
        if (t.nrows > 1)
            tt_table_print(&t, stdout, 0, "\n");
        else
            puts("no node is running");
        tt_table_free(&t);
    }
    free(rows);
    free(nodes);
    return 0;
}

/* ------------------------------------------------------------------ */
/* One request to one node                                             */
/* ------------------------------------------------------------------ */

/* Find NODE and connect; 0 or the exit status. */
static int
s_open(const char *spec, const tt_args_t *a, tt_node_t *node, tt_conn_t *c)
{
    int rc = tt_node_find(spec, node);
    if (rc == 0)
        rc = tt_conn_open(c, node, a->timeout_ms);
    return rc;
}

static void
s_json_line(const msgpack_object *o)
{
    if (o == NULL)
        fputs("null", stdout);
    else
        tt_json_obj(stdout, o);
    fputc('\n', stdout);
}

/* What ps, tree and pools share: read "NODE [--json] [--timeout MS]", ask
 * the node cmd, take the reply's field key (of type type; what is sent
 * names it). With --json the field is printed and *field stays NULL.
 * On 0, c is open (the field points into its reply): close it after. */
static int
s_query(int argc, char **argv, const char *cmd, const char *key,
        msgpack_object_type type, const char *what, tt_conn_t *c,
        const msgpack_object **field)
{
    tt_args_t a;
    tt_node_t node;
    const msgpack_object *reply;
    int rc;
    *field = NULL;
    if (!tt_args(argc, argv, "json,timeout", 1, 1, &a, &rc))
        return rc;
    if ((rc = s_open(a.pos[0], &a, &node, c)) != 0)
        return rc;
    if ((rc = tt_conn_request(c, cmd, 0, NULL, &reply)) == 0) {
        const msgpack_object *f = tt_get(reply, key);
        if (f == NULL || f->type != type) {
            tt_err("%s sent no %s", c->label, what);
            rc = TT_EXIT_FAIL;
        } else if (a.json) {
            s_json_line(f);
        } else {
            *field = f;
        }
    }
    if (rc != 0)
        tt_conn_close(c);
    return rc;
}

static const char *
s_int_cell(char *buf, size_t cap, int64_t v)
{
    if (v < 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%" PRId64, v);
    return buf;
}

static int
s_cmd_ps(int argc, char **argv)
{
    tt_conn_t c;
    const msgpack_object *actors;
    int rc = s_query(argc, argv, "ps", "actors", MSGPACK_OBJECT_ARRAY,
                     "actors list", &c, &actors);
    if (rc != 0)
        return rc;
    if (actors == NULL) /* --json: printed */
        goto done;
    tt_table_t t;
    tt_table_init(&t, 13, "rlllrrlrrrrrl",
                  (const char *const[]){"ID", "NAME", "BEHAVIOUR", "MODE",
                                        "PID", "TID", "STATE", "PARENT",
                                        "MAILBOX", "IN", "OUT", "RESTARTS",
                                        "LAST FAILURE"});
    for (uint32_t i = 0; i < actors->via.array.size; i++) {
        const msgpack_object *x = &actors->via.array.ptr[i];
        char id[24], name[TT_NAME_MAX], beh[TT_NAME_MAX], mode[16], pid[24],
            tid[24], state[16], parent[24], mbox[24], in[24], out[24],
            restarts[24], fail[128];
        snprintf(id, sizeof id, "%" PRId64, tt_get_int(x, "id", 0));
        tt_get_str(x, "name", name, sizeof name, "");
        tt_get_str(x, "behaviour", beh, sizeof beh, "?");
        tt_get_str(x, "mode", mode, sizeof mode, "?");
        s_int_cell(pid, sizeof pid, tt_get_int(x, "pid", -1));
        int64_t t_id = tt_get_int(x, "tid", -1);
        s_int_cell(tid, sizeof tid, t_id > 0 ? t_id : -1);
        tt_get_str(x, "state", state, sizeof state, "?");
        int64_t par = tt_get_int(x, "parent", 0);
        s_int_cell(parent, sizeof parent, par > 0 ? par : -1);
        s_int_cell(mbox, sizeof mbox, tt_get_int(x, "mailbox", -1));
        s_int_cell(in, sizeof in, tt_get_int(x, "in", -1));
        s_int_cell(out, sizeof out, tt_get_int(x, "out", -1));
        s_int_cell(restarts, sizeof restarts, tt_get_int(x, "restarts", -1));
        tt_get_str(x, "last_failure", fail, sizeof fail, "");
        tt_table_add(&t, (const char *const[]){
                             id, name[0] ? name : "-", beh, mode, pid, tid,
                             state, parent, mbox, in, out, restarts,
                             fail[0] ? fail : "-"});
    }
    tt_table_print(&t, stdout, 0, "\n");
    tt_table_free(&t);
done:
    tt_conn_close(&c);
    return rc;
}

/* One line of the tree per actor, children indented under it: the
 * prefix grows by "|   " under a child that has later siblings, by
 * "    " under the last one. */
static void
s_tree_print(const msgpack_object *x, char *prefix, size_t cap, bool root,
             bool last, int depth)
{
    char name[TT_NAME_MAX], beh[TT_NAME_MAX];
    tt_get_str(x, "name", name, sizeof name, "");
    tt_get_str(x, "behaviour", beh, sizeof beh, "?");
    bool sup = tt_get_bool(x, "supervisor", false);
    printf("%s%s", prefix, root ? "" : last ? "`-- " : "|-- ");
    if (name[0])
        printf("%s (%s, id %" PRId64 ")", name, beh, tt_get_int(x, "id", 0));
    else
        printf("<%s> (id %" PRId64 ")", beh, tt_get_int(x, "id", 0));
    puts(!sup ? "" : root ? " [root supervisor]" : " [supervisor]");
    const msgpack_object *kids = tt_get(x, "children");
    if (kids == NULL || kids->type != MSGPACK_OBJECT_ARRAY || depth > 64)
        return;
    size_t len = strlen(prefix);
    if (!root && len + 5 < cap)
        strcat(prefix, last ? "    " : "|   ");
    for (uint32_t i = 0; i < kids->via.array.size; i++)
        s_tree_print(&kids->via.array.ptr[i], prefix, cap, false,
                     i + 1 == kids->via.array.size, depth + 1);
    prefix[len] = '\0';
}

/* The ids in a tree, into ids[0..*n) (up to cap). */
static void
s_tree_ids(const msgpack_object *x, int64_t *ids, size_t *n, size_t cap,
           int depth)
{
    if (*n < cap)
        ids[(*n)++] = tt_get_int(x, "id", 0);
    const msgpack_object *kids = tt_get(x, "children");
    if (kids == NULL || kids->type != MSGPACK_OBJECT_ARRAY || depth > 64)
        return;
    for (uint32_t i = 0; i < kids->via.array.size; i++)
        s_tree_ids(&kids->via.array.ptr[i], ids, n, cap, depth + 1);
}

/* The tree holds only what the root supervises: name the other actors
 * too (plain spawns, a pool's own actor), so nothing running is hidden. */
static int
s_tree_others(tt_conn_t *c, const msgpack_object *tree)
{
    size_t n = 0, cap = 65536;
    int64_t *ids = malloc(cap * sizeof *ids);
    if (ids == NULL)
        return 0;
    s_tree_ids(tree, ids, &n, cap, 0); /* before the next request */
    const msgpack_object *reply;
    int rc = tt_conn_request(c, "ps", 0, NULL, &reply);
    const msgpack_object *actors = rc == 0 ? tt_get(reply, "actors") : NULL;
    int others = 0;
    for (uint32_t i = 0; actors != NULL &&
                         actors->type == MSGPACK_OBJECT_ARRAY &&
                         i < actors->via.array.size;
         i++) {
        const msgpack_object *x = &actors->via.array.ptr[i];
        int64_t id = tt_get_int(x, "id", 0);
        bool in = false;
        for (size_t k = 0; k < n && !in; k++)
            in = ids[k] == id;
        if (in)
            continue;
        if (others++ == 0)
            puts("\nnot under a supervisor:");
        char name[TT_NAME_MAX], beh[TT_NAME_MAX];
        tt_get_str(x, "name", name, sizeof name, "");
        tt_get_str(x, "behaviour", beh, sizeof beh, "?");
        if (name[0])
            printf("    %s (%s, id %" PRId64 ")\n", name, beh, id);
        else
            printf("    <%s> (id %" PRId64 ")\n", beh, id);
    }
    free(ids);
    return rc;
}

static int
s_cmd_tree(int argc, char **argv)
{
    tt_conn_t c;
    const msgpack_object *tree;
    int rc = s_query(argc, argv, "tree", "tree", MSGPACK_OBJECT_MAP, "tree",
                     &c, &tree);
    if (rc != 0)
        return rc;
    if (tree != NULL) {
        char prefix[512] = "";
        s_tree_print(tree, prefix, sizeof prefix, true, true, 0);
        rc = s_tree_others(&c, tree);
    }
    tt_conn_close(&c);
    return rc;
}

static int
s_cmd_info(int argc, char **argv)
{
    tt_args_t a;
    int rc;
    if (!tt_args(argc, argv, "json,timeout", 1, 1, &a, &rc))
        return rc;
    tt_node_t node;
    tt_conn_t c;
    const msgpack_object *reply;
    if ((rc = s_open(a.pos[0], &a, &node, &c)) != 0)
        return rc;
    if ((rc = tt_conn_request(&c, "info", 0, NULL, &reply)) != 0)
        goto done;
    if (a.json) {
        /* The reply as it is, but for "ok", and where the node lives. */
        fputc('{', stdout);
        int k = 0;
        for (uint32_t i = 0; i < reply->via.map.size; i++) {
            const msgpack_object_kv *kv = &reply->via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR &&
                kv->key.via.str.size == 2 &&
                memcmp(kv->key.via.str.ptr, "ok", 2) == 0)
                continue;
            if (k++)
                fputc(',', stdout);
            tt_json_obj(stdout, &kv->key);
            fputc(':', stdout);
            tt_json_obj(stdout, &kv->val);
        }
        fputs(k ? ",\"dir\":" : "\"dir\":", stdout);
        tt_json_str(stdout, node.dir);
        fputs("}\n", stdout);
        goto done;
    }
    char name[TT_NAME_MAX], up[24], when[64] = "?";
    int64_t started = tt_get_int(reply, "started_ms", 0);
    time_t secs = (time_t)(started / 1000);
    struct tm tm;
    if (started > 0 && localtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    tt_fmt_ms(up, sizeof up, tt_get_int(reply, "uptime_ms", 0));
    printf("name      %s\n", tt_get_str(reply, "name", name, sizeof name, "?"));
    printf("pid       %" PRId64 "\n", tt_get_int(reply, "pid", 0));
    printf("dir       %s\n", node.dir);
    printf("started   %s (up %s)\n", when, up);
    printf("actors    %" PRId64 "\n", tt_get_int(reply, "actors", 0));
    const msgpack_object *stats = tt_get(reply, "stats");
    if (stats != NULL && stats->type == MSGPACK_OBJECT_MAP) {
        puts("stats");
        for (uint32_t i = 0; i < stats->via.map.size; i++) {
            const msgpack_object_kv *kv = &stats->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            char key[64];
            int n = (int)(kv->key.via.str.size < 60 ? kv->key.via.str.size
                                                    : 60);
            snprintf(key, sizeof key, "%.*s", n, kv->key.via.str.ptr);
            tt_clean(key);
            printf("  %-14s ", key);
            tt_json_obj(stdout, &kv->val);
            fputc('\n', stdout);
        }
    }
done:
    tt_conn_close(&c);
    return rc;
}

static int
s_cmd_pools(int argc, char **argv)
{
    tt_conn_t c;
    const msgpack_object *pools;
    int rc = s_query(argc, argv, "pools", "pools", MSGPACK_OBJECT_ARRAY,
                     "pools list", &c, &pools);
    if (rc != 0)
        return rc;
    if (pools == NULL) /* --json: printed */
        goto done;
    if (pools->via.array.size == 0) {
        puts("no pools");
        goto done;
    }
    static const char *const keys[] = {"workers", "idle",    "queued",
                                       "running", "done",    "failed",
                                       "retried", "worker_deaths"};
    tt_table_t t;
    tt_table_init(&t, 10, "rlrrrrrrrr",
                  (const char *const[]){"ID", "NAME", "WORKERS", "IDLE",
                                        "QUEUED", "RUNNING", "DONE",
                                        "FAILED", "RETRIED", "DEATHS"});
    for (uint32_t i = 0; i < pools->via.array.size; i++) {
        const msgpack_object *x = &pools->via.array.ptr[i];
        char cell[10][TT_NAME_MAX];
        snprintf(cell[0], sizeof cell[0], "%" PRId64, tt_get_int(x, "id", 0));
        tt_get_str(x, "name", cell[1], sizeof cell[1], "");
        if (cell[1][0] == '\0')
            snprintf(cell[1], sizeof cell[1], "-");
        for (int k = 0; k < 8; k++)
            s_int_cell(cell[2 + k], sizeof cell[2 + k],
                       tt_get_int(x, keys[k], -1));
        const char *row[10];
        for (int k = 0; k < 10; k++)
            row[k] = cell[k];
        tt_table_add(&t, row);
    }
    tt_table_print(&t, stdout, 0, "\n");
    tt_table_free(&t);
done:
    tt_conn_close(&c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* stop, restart                                                       */
/* ------------------------------------------------------------------ */

/* ACTOR as an id: decimal, 0x hex, or name#hex (a log line's label). 0:
 * it is none of those (then it is a name). */
static int64_t
s_parse_id(const char *s)
{
    const char *hash = strrchr(s, '#');
    const char *digits = s;
    int base = 10;
    if (hash != NULL)
        digits = hash + 1, base = 16;
    else if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        digits = s + 2, base = 16;
    if (*digits == '\0')
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(digits, &end, base);
    if (errno != 0 || *end != '\0' || v <= 0 || *digits == '-' ||
        *digits == '+')
        return 0;
    return v;
}

static int
s_cmd_control(int argc, char **argv, const char *cmd)
{
    tt_args_t a;
    int rc;
    if (!tt_args(argc, argv, "timeout", 2, 2, &a, &rc))
        return rc;
    tt_node_t node;
    tt_conn_t c;
    const msgpack_object *reply;
    if ((rc = s_open(a.pos[0], &a, &node, &c)) != 0)
        return rc;
    /* ps first: it turns a name into an id, and lets us say whom we
     * stopped and that there is no such actor. */
    if ((rc = tt_conn_request(&c, "ps", 0, NULL, &reply)) != 0)
        goto done;
    const msgpack_object *actors = tt_get(reply, "actors");
    int64_t id = s_parse_id(a.pos[1]);
    char name[TT_NAME_MAX] = "";
    bool found = false;
    for (uint32_t i = 0; actors != NULL &&
                         actors->type == MSGPACK_OBJECT_ARRAY &&
                         i < actors->via.array.size && !found;
         i++) {
        const msgpack_object *x = &actors->via.array.ptr[i];
        char n[TT_NAME_MAX];
        tt_get_str(x, "name", n, sizeof n, "");
        if (id > 0 ? tt_get_int(x, "id", 0) == id
                   : n[0] != '\0' && strcmp(n, a.pos[1]) == 0) {
            found = true;
            id = tt_get_int(x, "id", 0);
            snprintf(name, sizeof name, "%s", n);
        }
    }
    if (!found) {
        tt_err("%s has no actor '%s' (troupe ps %s lists them)", c.label,
               a.pos[1], a.pos[0]);
        rc = TT_EXIT_FAIL;
        goto done;
    }
    if ((rc = tt_conn_request(&c, cmd, 1, &id, &reply)) != 0)
        goto done;
    char who[TT_NAME_MAX + 32];
    if (name[0])
        snprintf(who, sizeof who, "%s (id %" PRId64 ")", name, id);
    else
        snprintf(who, sizeof who, "actor %" PRId64, id);
    if (strcmp(cmd, "stop") == 0)
        printf("asked %s to stop\n", who);
    else
        printf("ended %s for its supervisor to restart it\n", who);
done:
    tt_conn_close(&c);
    return rc;
}

/* ------------------------------------------------------------------ */
/* keygen                                                              */
/* ------------------------------------------------------------------ */

/* Write text to dir/name with mode, replacing what is there only when
 * force: a temporary file renamed over it, so that a reader never sees
 * half a key. */
static int
s_write_key(const char *dir, const char *name, const char *text, mode_t mode,
            bool force)
{
    char path[TT_PATH_MAX + 32], tmp[TT_PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        tt_err("%s: %s", tmp, strerror(errno));
        return TT_EXIT_FAIL;
    }
    size_t len = strlen(text);
    bool ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len &&
              write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok) {
        /* link fails on an existing name: no overwrite without force,
         * even if the file appeared since we looked. */
        if (force)
            ok = rename(tmp, path) == 0;
        else
            ok = link(tmp, path) == 0;
        e = errno;
    }
    unlink(tmp);
    if (!ok) {
        tt_err("%s: %s", path, strerror(e));
        return TT_EXIT_FAIL;
    }
    return 0;
}

static int
s_cmd_keygen(int argc, char **argv)
{
    tt_args_t a;
    int rc;
    if (!tt_args(argc, argv, "force", 0, 1, &a, &rc))
        return rc;
    char dir[TT_PATH_MAX - 64];
    if (a.npos == 1) {
        snprintf(dir, sizeof dir, "%s", a.pos[0]);
    } else {
        const char *cfg = getenv("XDG_CONFIG_HOME");
        const char *home = getenv("HOME");
        if (cfg != NULL && cfg[0] == '/')
            snprintf(dir, sizeof dir, "%s/troupe", cfg);
        else if (home != NULL && home[0] == '/')
            snprintf(dir, sizeof dir, "%s/.config/troupe", home);
        else {
            tt_err("no DIR given and no $HOME to put the keys under");
            return TT_EXIT_USAGE;
        }
    }
    if (!zmq_has("curve")) {
        tt_err("this libzmq was built without CURVE: no keys to make");
        return TT_EXIT_FAIL;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0700) != 0) {
            tt_err("%s: %s", dir, strerror(errno));
            return TT_EXIT_FAIL;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        tt_err("%s is not a directory", dir);
        return TT_EXIT_FAIL;
    }
    char path[TT_PATH_MAX];
    if (!a.force) {
        for (int i = 0; i < 2; i++) {
            snprintf(path, sizeof path, "%s/%s", dir,
                     i ? "node.pub" : "node.key");
            if (lstat(path, &st) == 0) {
                tt_err("%s exists: not overwriting it (--force replaces "
                       "both files)", path);
                return TT_EXIT_FAIL;
            }
        }
    }
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) {
        tt_err("zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
        return TT_EXIT_FAIL;
    }
    /* The secret key first: a public key without its secret is no use. */
    rc = s_write_key(dir, "node.key", sec, 0600, a.force);
    if (rc == 0 && (rc = s_write_key(dir, "node.pub", pub, 0644, a.force)) !=
                       0) {
        snprintf(path, sizeof path, "%s/node.key", dir);
        unlink(path);
    }
    memset(sec, 0, sizeof sec);
    if (rc == 0)
        printf("wrote %s/node.key (secret, 0600) and %s/node.pub (public): "
               "%s\n", dir, dir, pub);
    return rc;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
    if (argc < 2)
        return s_usage_error();
    const char *cmd = argv[1];
    int n = argc - 2;
    char **rest = argv + 2;
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(s_usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "ls") == 0)
        return s_cmd_ls(n, rest);
    if (strcmp(cmd, "ps") == 0)
        return s_cmd_ps(n, rest);
    if (strcmp(cmd, "tree") == 0)
        return s_cmd_tree(n, rest);
    if (strcmp(cmd, "info") == 0)
        return s_cmd_info(n, rest);
    if (strcmp(cmd, "pools") == 0)
        return s_cmd_pools(n, rest);
    if (strcmp(cmd, "top") == 0)
        return tt_cmd_top(n, rest);
    if (strcmp(cmd, "stop") == 0 || strcmp(cmd, "restart") == 0)
        return s_cmd_control(n, rest, cmd);
    if (strcmp(cmd, "keygen") == 0)
        return s_cmd_keygen(n, rest);
    if (strcmp(cmd, "trace") == 0)
        return tt_cmd_trace(n, rest);
    if (strcmp(cmd, "dashboard") == 0)
        return tt_cmd_dashboard(n, rest);
    if (strcmp(cmd, "capsule") == 0)
        return tt_cmd_capsule(n, rest);
    if (strcmp(cmd, "replay") == 0)
        return tt_cmd_replay(n, rest);
    tt_err("unknown command '%s'", cmd);
    return s_usage_error();
}
