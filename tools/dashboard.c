/* tools/dashboard.c - `troupe dashboard NODE`: a web page that shows a
 * node live (docs/tools.md). The command runs a node of its own (no
 * control endpoint, so `troupe ls` does not list it) with troupe's HTTP
 * gateway and one actor, "dash", that answers every request: the page,
 * its style and script (tools/dashboard/, compiled in), and two JSON
 * answers made from the watched node's control endpoint:
 *
 *   GET /api/state          {"info", "actors", "tree", "pools"}
 *   GET /api/events?since=N {"watching", "next", "events"}
 *
 * It asks the node to "watch" first (docs/control.md: a ring of the last
 * trace records), so the page can draw the messages. It is read-only:
 * nothing on the page stops or restarts an actor. It listens on
 * 127.0.0.1 unless --bind says otherwise.
 */
#include "tools/tool.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "troupe.h"

#define S_DEFAULT_PORT 8740

typedef struct {
    tt_node_t node;
    tt_conn_t conn;
    bool open;
    int timeout_ms;
} s_dash_t;

/* ------------------------------------------------------------------ */
/* Answers                                                             */

static int
s_reply(tr_actor_t *self, const tr_msg_t *req, int status, const char *type,
        const void *body, size_t len)
{
    return tr_http_reply(self, req, status, type, body, len);
}

static int
s_reply_error(tr_actor_t *self, const tr_msg_t *req, int status,
              const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return s_reply(self, req, 500, NULL, "out of memory", 13);
    fputs("{\"error\":", f);
    tt_json_str(f, text);
    fputs("}", f);
    fclose(f);
    int rc = s_reply(self, req, status, "application/json", buf, len);
    free(buf);
    return rc;
}

/* A request to the node; on failure *why says what went wrong. */
static const msgpack_object *
s_ask(s_dash_t *d, const char *cmd, int nargs, const int64_t *args,
      const char **why)
{
    const msgpack_object *reply;
    if (!d->open) {
        if (tt_conn_open(&d->conn, &d->node, d->timeout_ms) != 0) {
            *why = tt_err_last;
            return NULL;
        }
        d->open = true;
    }
    if (tt_conn_request(&d->conn, cmd, nargs, args, &reply) != 0) {
        *why = tt_err_last;
        return NULL;
    }
    return reply;
}

/* The reply's field key as JSON (null when it has none). */
static void
s_field(FILE *f, const msgpack_object *reply, const char *key)
{
    const msgpack_object *o = reply ? tt_get(reply, key) : NULL;
    if (o == NULL)
        fputs("null", f);
    else
        tt_json_obj(f, o);
}

/* A reply map as JSON without its "ok". */
static void
s_map_but_ok(FILE *f, const msgpack_object *m)
{
    fputc('{', f);
    int k = 0;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 2 &&
            memcmp(kv->key.via.str.ptr, "ok", 2) == 0)
            continue;
        if (k++)
            fputc(',', f);
        tt_json_obj(f, &kv->key);
        fputc(':', f);
        tt_json_obj(f, &kv->val);
    }
    fputc('}', f);
}

static int
s_state(tr_actor_t *self, s_dash_t *d, const tr_msg_t *req)
{
    const char *why = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return s_reply_error(self, req, 500, "out of memory");
    /* Each reply lives until the next request: written out at once. */
    const msgpack_object *r = s_ask(d, "info", 0, NULL, &why);
    if (r != NULL) {
        fputs("{\"info\":", f);
        s_map_but_ok(f, r);
        r = s_ask(d, "ps", 0, NULL, &why);
    }
    if (r != NULL) {
        fputs(",\"actors\":", f);
        s_field(f, r, "actors");
        r = s_ask(d, "pools", 0, NULL, &why);
    }
    if (r != NULL) {
        fputs(",\"pools\":", f);
        s_field(f, r, "pools");
        /* No root supervisor yet is no error: the tree is null. */
        r = s_ask(d, "tree", 0, NULL, &why);
        fputs(",\"tree\":", f);
        s_field(f, r, "tree");
        fputs("}", f);
        r = (const msgpack_object *)f; /* done */
    }
    fclose(f);
    int rc = r != NULL ? s_reply(self, req, 200, "application/json", buf, len)
                       : s_reply_error(self, req, 502, why);
    free(buf);
    return rc;
}

static int
s_events(tr_actor_t *self, s_dash_t *d, const tr_msg_t *req,
         const char *query)
{
    char v[32];
    int64_t since = 0;
    if (tr_http_query_get(query, "since", v, sizeof v) == 0) {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || x < 0)
            return s_reply_error(self, req, 400,
                                 "since: a sequence number (0 or more)");
        since = x;
    }
    const char *why = NULL;
    const msgpack_object *r = s_ask(d, "events", 1, &since, &why);
    if (r == NULL)
        return s_reply_error(self, req, 502, why);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return s_reply_error(self, req, 500, "out of memory");
    s_map_but_ok(f, r);
    fclose(f);
    int rc = s_reply(self, req, 200, "application/json", buf, len);
    free(buf);
    return rc;
}

static int
s_dash_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_dash_t *d = state;
    tr_http_req_t *req = malloc(sizeof *req);
    if (req == NULL)
        return TR_ENOMEM;
    int rc = tr_http_req_read(msg, req);
    if (rc != 0) {
        free(req);
        return rc == TR_EINVAL ? TR_EUNHANDLED : rc;
    }
    const char *path = strcmp(req->path, "/") == 0 ? "/index.html" : req->path;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        rc = s_reply_error(self, msg, 405, "the dashboard is read-only");
    } else if (strcmp(path, "/api/state") == 0) {
        rc = s_state(self, d, msg);
    } else if (strcmp(path, "/api/events") == 0) {
        rc = s_events(self, d, msg, req->query);
    } else {
        const tt_file_t *file = NULL;
        for (const tt_file_t *x = tt_dash_files; x->path && !file; x++)
            if (strcmp(x->path, path) == 0)
                file = x;
        if (file != NULL)
            rc = s_reply(self, msg, 200, file->type, file->data, file->len);
        else
            rc = s_reply(self, msg, 404, NULL, "not found\n", 10);
    }
    free(req);
    return rc;
}

/* args: [node directory, timeout ms] */
static int
s_dash_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)self;
    s_dash_t *d = state;
    tr_reader_t r;
    char dir[TT_PATH_MAX];
    int64_t timeout;
    tr_reader_init(&r, args);
    int rc = tr_read_str_copy(&r, dir, sizeof dir);
    if (rc == 0)
        rc = tr_read_int(&r, &timeout);
    if (rc != 0)
        return rc;
    tt_err_quiet = true; /* errors go into the answers */
    tt_node_load(&d->node, dir);
    d->timeout_ms = (int)timeout;
    return 0;
}

static void
s_dash_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    s_dash_t *d = state;
    if (d->open)
        tt_conn_close(&d->conn);
    d->open = false;
}

TR_BEHAVIOUR(tt_dashboard, .state_size = sizeof(s_dash_t),
             .init = s_dash_init, .handle = s_dash_handle,
             .terminate = s_dash_terminate)

/* ------------------------------------------------------------------ */
/* The command                                                         */

static bool
s_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "localhost") == 0;
}

int
tt_cmd_dashboard(int argc, char **argv)
{
    tt_args_t a;
    int rc;
    if (!tt_args(argc, argv, "port,bind,timeout", 1, 1, &a, &rc))
        return rc;
    const char *bind = a.bind ? a.bind : "127.0.0.1";
    int port = a.port >= 0 ? a.port : S_DEFAULT_PORT;
    if (bind[0] == '\0' || strlen(bind) > 253 ||
        strpbrk(bind, " /:[]\t\n") != NULL) {
        tt_err("--bind: an IPv4 address or a host name, not '%s'", bind);
        return TT_EXIT_USAGE;
    }

    /* The node must be there, and watch its messages for us. */
    tt_node_t node;
    tt_conn_t c;
    const msgpack_object *reply;
    if ((rc = tt_node_find(a.pos[0], &node)) != 0 ||
        (rc = tt_conn_open(&c, &node, a.timeout_ms)) != 0)
        return rc;
    rc = tt_conn_request(&c, "watch", 0, NULL, &reply);
    char label[sizeof c.label];
    snprintf(label, sizeof label, "%s", c.label);
    tt_conn_close(&c);
    if (rc != 0)
        return rc;

    /* Signals are waited for by this thread only: blocked before any
     * thread starts, so that every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    tr_node_t *own = NULL;
    tr_http_t *gw = NULL;
    tr_msg_t *args = NULL;
    if ((rc = tr_node_create(&own, &(tr_node_opts_t){
                                       .name = "troupe-dashboard",
                                       .no_control = true})) != 0) {
        tt_err("cannot make the dashboard's node: %s", tr_strerror(rc));
        return TT_EXIT_FAIL;
    }
    if ((rc = tr_msg_create(&args, "args")) != 0 ||
        (rc = tr_msg_add_str(args, node.dir)) != 0 ||
        (rc = tr_msg_add_int(args, a.timeout_ms)) != 0 ||
        (rc = tr_spawn(own, "tt_dashboard",
                       &(tr_spawn_opts_t){.name = "dash", .args = args},
                       NULL)) != 0) {
        tt_err("cannot start the dashboard: %s", tr_strerror(rc));
        goto fail;
    }
    char ep[300];
    snprintf(ep, sizeof ep, "tcp://%s:%d", bind, port);
    tr_http_route_t route = {.method = NULL, .prefix = "/", .actor = "dash",
                             .timeout_ms = a.timeout_ms * 5};
    if ((rc = tr_http_start(own, &(tr_http_opts_t){.name = "dash_http",
                                                   .endpoint = ep,
                                                   .routes = &route,
                                                   .nroutes = 1},
                            &gw)) != 0) {
        tt_err("cannot listen on %s:%d: %s%s", bind, port, tr_strerror(rc),
               a.port < 0 ? " (--port picks another port, --port 0 any "
                            "free one)"
                          : "");
        goto fail;
    }
    if (!s_loopback(bind))
        fprintf(stderr, "troupe: warning: serving on %s: whoever can reach "
                "it sees this node's actors and messages\n", bind);
    printf("dashboard of %s at http://%s:%d/ (Ctrl-C ends it)\n", label,
           bind, tr_http_port(gw));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    tr_msg_destroy(&args);
    tr_http_stop(&gw, 1000);
    rc = tr_node_destroy(&own);
    return rc == 0 ? 0 : TT_EXIT_FAIL;
fail:
    tr_msg_destroy(&args);
    if (gw != NULL)
        tr_http_stop(&gw, 1000);
    tr_node_destroy(&own);
    return TT_EXIT_FAIL;
}
