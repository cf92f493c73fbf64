/* fuzz/fuzz_http.c - libFuzzer harness for the HTTP gateway's request
 * handling (actors/http.c): any bytes a client may send on one
 * connection, through the gateway's own code from the STREAM socket's
 * frames on (s_on_frame: http-parser, the head and body limits,
 * pipelining, routing, the "http" message to the handler, the answer,
 * response writing, closing, draining).
 *
 * actors/http.c is compiled into this file, so its statics are reachable,
 * and what it asks of the rest of troupe is played here instead: the
 * ZeroMQ socket (zmq_send writes into a buffer, frames are handed to
 * s_on_frame) and the runtime around it (tr_ask, tr_pool_submit and the
 * futures they give, tr_reply). The futures settle the way the runtime
 * may settle them (troupe.h, tr_future_then): already at tr_future_then,
 * while a later ask waits for room in a mailbox and reads the inbox, after
 * each read of the socket, or only at the end; in order or in reverse.
 *
 * Input: byte 0 picks how the bytes are cut into reads, when and in what
 * order answers come, whether the peer goes away and whether the gateway
 * drains; byte 1 the head and body limits; the rest is what the client
 * sends. The handler's answer for a request is picked by the first
 * character of its query ("?0".."?7", see s_plan).
 *
 * Every input checks that:
 *  - nothing crashes, overreads, leaks or trips UBSan (ASan + UBSan);
 *  - each request reaching a handler reads back with tr_http_req_read, its
 *    path matches its route, its header names are non-empty lower-case
 *    tokens, its body fits the limit;
 *  - what is sent on the connection is whole responses (status line,
 *    Content-Length, that many bytes), the handler's answers in request
 *    order, nothing after a "Connection: close" response or after the
 *    close;
 *  - once every answer came, no request is left waiting, and the gateway
 *    frees everything when it ends. */
#include "fuzz/fuzz.h"

#include <string.h>
#include <zmq.h>

#include "transport/msg.h"
#include "troupe.h"

/* The gateway's sends come here (one connection: its id, then bytes). */
static int fz_zmq_send(void *sock, const void *buf, size_t len, int flags);
#define zmq_send fz_zmq_send

#include "actors/http.c"

#undef zmq_send

/* ------------------------------------------------------------------ */
/* What the gateway sent                                               */

static struct {
    uint8_t *buf;   /* the bytes sent on the connection */
    size_t len, cap;
    bool id_next;   /* the next send is a routing id */
    bool to_us;     /* the id just sent is the connection's */
    int closes;     /* [id][] sends */
    bool after_close; /* bytes sent after a close */
} s_out;

static const uint8_t s_id[5] = {0, 0x6b, 0x8b, 0x45, 0x67};

static int
fz_zmq_send(void *sock, const void *buf, size_t len, int flags)
{
    (void)sock;
    if (s_out.id_next) {
        FZ_CHECK(flags & ZMQ_SNDMORE);
        s_out.to_us = len == sizeof s_id && memcmp(buf, s_id, len) == 0;
        FZ_CHECK(s_out.to_us); /* one connection, never refused */
        s_out.id_next = false;
        return (int)len;
    }
    FZ_CHECK(!(flags & ZMQ_SNDMORE));
    s_out.id_next = true;
    if (len == 0) {
        s_out.closes++;
        return 0;
    }
    if (s_out.closes > 0)
        s_out.after_close = true;
    if (s_out.len + len > s_out.cap) {
        size_t cap = s_out.cap ? s_out.cap : 4096;
        while (cap < s_out.len + len)
            cap *= 2;
        s_out.buf = realloc(s_out.buf, cap);
        FZ_CHECK(s_out.buf != NULL);
        s_out.cap = cap;
    }
    memcpy(s_out.buf + s_out.len, buf, len);
    s_out.len += len;
    return (int)len;
}

/* ------------------------------------------------------------------ */
/* The runtime, played                                                 */

/* What a handler does with a request: s_plan. */
enum {
    P_OK,        /* 200 "seq=N" */
    P_TIMEDOUT,  /* the future settles TR_ETIMEDOUT: 504 */
    P_CANCELED,  /* TR_ECANCELED: 503 */
    P_NOT_HTTP,  /* an answer of another tag: 500 */
    P_BAD_STATUS, /* status 1000: 500 */
    P_LONG_CTYPE, /* a content type of 200 bytes: 500 */
    P_DEAD,      /* TR_EDEAD: 500 */
    P_REFUSED,   /* the ask itself fails (TR_EAGAIN): 503 at once */
};

struct tr_future {
    int plan;
    unsigned seq;
    bool settled;
    bool cancel_asked;
    tr_future_cb fn;
    void *arg;
};

enum { WHEN_AFTER_READ, WHEN_AT_THEN, WHEN_NEXT_ASK, WHEN_END };

static struct {
    int when;         /* WHEN_* */
    bool reverse;     /* answer the newest first */
    tr_future_t *live[4096]; /* futures not destroyed, oldest first */
    size_t nlive;
    unsigned asks;    /* requests that reached a handler */
    unsigned answered; /* 200 "seq=N" answers made */
    int drain_replies;
} s_rt;

static char s_pool_obj; /* the route's pool: only its address is used */
static s_gw_t s_gw;
static s_conf_t s_conf;
static s_route_t s_routes[3];

/* Settle every live future not settled yet and run the callbacks of all
 * settled ones (what the runtime does when the thread reads its inbox). */
static void
s_pump(void)
{
    for (size_t i = 0; i < s_rt.nlive; i++)
        s_rt.live[i]->settled = true;
    for (;;) {
        tr_future_t *f = NULL;
        for (size_t i = 0; i < s_rt.nlive && f == NULL; i++) {
            tr_future_t *g = s_rt.live[s_rt.reverse ? s_rt.nlive - 1 - i : i];
            if (g->settled && g->fn != NULL)
                f = g;
        }
        if (f == NULL)
            return;
        tr_future_cb fn = f->fn;
        f->fn = NULL;
        fn(f->arg, f); /* may destroy f, may make new futures */
    }
}

/* The answer of a request: P_* from the query's first character. */
static int
s_plan(const tr_http_req_t *r)
{
    return r->query[0] >= '0' && r->query[0] <= '7' ? r->query[0] - '0'
                                                     : P_OK;
}

/* A request reaches a handler: check it and make its future. */
static int
s_handler(const char *route, tr_msg_t **msg, tr_future_t **out)
{
    tr_http_req_t r;
    FZ_CHECK(msg != NULL && *msg != NULL && out != NULL);
    FZ_CHECK(tr_http_req_read(*msg, &r) == 0);
    FZ_CHECK(strncmp(r.path, route, strlen(route)) == 0);
    FZ_CHECK(r.body_len <= s_gw.conf->max_body);
    /* the headers: non-empty lower-case names */
    tr_reader_t rd;
    uint32_t n;
    tr_reader_init(&rd, *msg);
    for (int i = 0; i < 3; i++)
        FZ_CHECK(tr_read_skip(&rd) == 0);
    FZ_CHECK(tr_read_map(&rd, &n) == 0);
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t kl, vl;
        FZ_CHECK(tr_read_str(&rd, &k, &kl) == 0);
        FZ_CHECK(tr_read_str(&rd, &v, &vl) == 0);
        FZ_CHECK(kl > 0);
        for (size_t j = 0; j < kl; j++)
            FZ_CHECK(k[j] > ' ' && k[j] < 127 && k[j] != ':' &&
                     !(k[j] >= 'A' && k[j] <= 'Z'));
        FZ_CHECK(memchr(v, 0, vl) == NULL);
    }
    int plan = s_plan(&r);
    if (plan == P_REFUSED)
        return TR_EAGAIN; /* *msg still the caller's */
    if (s_rt.when == WHEN_NEXT_ASK)
        s_pump(); /* a full mailbox: the ask reads the inbox meanwhile */
    if (s_rt.nlive == sizeof s_rt.live / sizeof s_rt.live[0])
        return TR_EAGAIN; /* a long input (-max_len): a full mailbox */
    tr_future_t *f = calloc(1, sizeof *f);
    FZ_CHECK(f != NULL);
    f->plan = plan;
    f->seq = s_rt.asks++;
    f->settled = s_rt.when == WHEN_AT_THEN;
    s_rt.live[s_rt.nlive++] = f;
    tr_msg_destroy(msg);
    *out = f;
    return 0;
}

int
tr_ask(tr_node_t *node, const char *name, tr_msg_t **msg, int timeout_ms,
       tr_future_t **fut)
{
    (void)node;
    FZ_CHECK(timeout_ms > 0);
    if (strcmp(name, "gone") == 0)
        return TR_ENOENT;
    FZ_CHECK(strcmp(name, "echo") == 0);
    return s_handler("/a", msg, fut);
}

int
tr_pool_submit(tr_pool_t *pool, const char *task, tr_msg_t **args,
               int timeout_ms, tr_future_t **fut)
{
    FZ_CHECK(pool == (tr_pool_t *)(void *)&s_pool_obj);
    FZ_CHECK(strcmp(task, "work") == 0 && timeout_ms > 0);
    return s_handler("/p", args, fut);
}

int
tr_pool_cancel_async(tr_pool_t *pool, tr_future_t *fut)
{
    FZ_CHECK(pool == (tr_pool_t *)(void *)&s_pool_obj && fut != NULL);
    if (fut->settled)
        return TR_EINVAL;
    fut->cancel_asked = true;
    return 0;
}

int
tr_future_then(tr_future_t *fut, tr_future_cb fn, void *arg)
{
    FZ_CHECK(fut != NULL && fn != NULL && fut->fn == NULL);
    if (fut->settled) {
        fn(arg, fut);
        return 0;
    }
    fut->fn = fn;
    fut->arg = arg;
    return 0;
}

int
tr_future_get(tr_future_t *fut, int timeout_ms, tr_msg_t **reply)
{
    FZ_CHECK(fut != NULL && timeout_ms == 0 && reply != NULL);
    FZ_CHECK(fut->settled);
    static const int codes[] = {
        [P_TIMEDOUT] = TR_ETIMEDOUT, [P_CANCELED] = TR_ECANCELED,
        [P_DEAD] = TR_EDEAD};
    if (fut->plan == P_TIMEDOUT || fut->plan == P_CANCELED ||
        fut->plan == P_DEAD)
        return codes[fut->plan];
    tr_msg_t *m = NULL;
    char text[32];
    int n = snprintf(text, sizeof text, "seq=%u", fut->seq);
    if (fut->plan == P_NOT_HTTP) {
        FZ_CHECK(tr_msg_create(&m, "other") == 0);
    } else if (fut->plan == P_BAD_STATUS) {
        FZ_CHECK(tr_http_response(&m, 200, NULL, "", 0) == 0);
        tr_msg_destroy(&m);
        FZ_CHECK(tr_msg_create(&m, "http") == 0);
        FZ_CHECK(tr_msg_add_int(m, 1000) == 0);
        FZ_CHECK(tr_msg_add_str(m, "text/plain") == 0);
        FZ_CHECK(tr_msg_add_bin(m, "", 0) == 0);
    } else if (fut->plan == P_LONG_CTYPE) {
        char ct[201];
        memset(ct, 'x', 200);
        ct[200] = 0;
        FZ_CHECK(tr_http_response(&m, 200, ct, "", 0) == 0);
    } else {
        FZ_CHECK(tr_http_response(&m, 200, "text/plain", text,
                                  (size_t)n) == 0);
        s_rt.answered++;
    }
    *reply = m;
    return 0;
}

void
tr_future_destroy(tr_future_t **fp)
{
    if (fp == NULL || *fp == NULL)
        return;
    size_t i = 0;
    while (i < s_rt.nlive && s_rt.live[i] != *fp)
        i++;
    FZ_CHECK(i < s_rt.nlive);
    memmove(&s_rt.live[i], &s_rt.live[i + 1],
            (s_rt.nlive - i - 1) * sizeof s_rt.live[0]);
    s_rt.nlive--;
    free(*fp);
    *fp = NULL;
}

tr_node_t *
tr_actor_node(const tr_actor_t *self)
{
    (void)self;
    return NULL;
}

int
tr_reply(tr_actor_t *self, const tr_msg_t *request, tr_msg_t **reply)
{
    (void)self;
    FZ_CHECK(tr_msg_is(request, "drain") && tr_msg_is(*reply, "ok"));
    s_rt.drain_replies++;
    tr_msg_destroy(reply);
    return 0;
}

int
tr_reply_error(tr_actor_t *self, const tr_msg_t *request, int code)
{
    (void)self;
    FZ_CHECK(tr_msg_is(request, "drain"));
    FZ_CHECK(code == TR_ETIMEDOUT || code == TR_ESHUTDOWN);
    s_rt.drain_replies++;
    return 0;
}

void
tr__behaviour_register_static(const tr_behaviour_t *b)
{
    (void)b;
}

/* Not reached from s_on_frame, the sweep, drain or terminate: only the
 * actor's init and the public start and stop use these. */
static void *
s_unreached(const char *fn)
{
    fprintf(stderr, "fuzz: %s reached\n", fn);
    abort();
}

int
tr_actor_watch_io(tr_actor_t *self, void *socket, int fd, tr_io_fn fn)
{
    (void)self, (void)socket, (void)fd, (void)fn;
    return s_unreached(__func__) != NULL;
}

int
tr_call_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg, int timeout_ms,
           tr_msg_t **reply)
{
    (void)node, (void)to, (void)msg, (void)timeout_ms, (void)reply;
    return s_unreached(__func__) != NULL;
}

void *
tr_node_zmq_context(tr_node_t *node)
{
    (void)node;
    return s_unreached(__func__);
}

int
tr_spawn(tr_node_t *node, const char *behaviour, const tr_spawn_opts_t *opts,
         tr_id_t *out)
{
    (void)node, (void)behaviour, (void)opts, (void)out;
    return s_unreached(__func__) != NULL;
}

int
tr_stop(tr_node_t *node, tr_id_t id, int timeout_ms)
{
    (void)node, (void)id, (void)timeout_ms;
    return s_unreached(__func__) != NULL;
}

int
tr_timer_every(tr_actor_t *self, int interval_ms, tr_msg_t **msg,
               uint64_t *timer)
{
    (void)self, (void)interval_ms, (void)msg, (void)timer;
    return s_unreached(__func__) != NULL;
}

/* ------------------------------------------------------------------ */
/* The run                                                             */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tr_log_set_level(TR_LOG_ERROR); /* refusals are logged at DEBUG */
    static char a[] = "/a", p[] = "/p", g[] = "/gone", echo[] = "echo",
                gone[] = "gone", work[] = "work";
    s_routes[0] = (s_route_t){.prefix = a, .actor = echo};
    s_routes[1] = (s_route_t){.method = "POST", .prefix = p,
                              .pool = (tr_pool_t *)(void *)&s_pool_obj,
                              .task = work, .timeout_ms = 50};
    s_routes[2] = (s_route_t){.method = "GET", .prefix = g, .actor = gone};
    s_conf.routes = s_routes;
    s_conf.nroutes = 3;
    s_conf.max_connections = 4;
    s_conf.head_timeout_ms = 10000;
    s_conf.idle_timeout_ms = 60000;
    return 0;
}

/* The responses in s_out: whole, in order, nothing after a close. */
static void
s_check_output(void)
{
    FZ_CHECK(!s_out.after_close);
    FZ_CHECK(s_out.closes <= 1);
    if (s_out.len == 0)
        return;
    const char *p = (const char *)s_out.buf, *end = p + s_out.len;
    long last_seq = -1;
    bool closed = false;
    while (p < end) {
        FZ_CHECK(!closed); /* nothing after "Connection: close" */
        const char *eoh = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        FZ_CHECK(eoh != NULL);
        char head[1024];
        size_t hl = (size_t)(eoh - p) + 4;
        FZ_CHECK(hl < sizeof head);
        memcpy(head, p, hl);
        head[hl] = 0;
        int status = 0;
        FZ_CHECK(sscanf(head, "HTTP/1.1 %3d ", &status) == 1);
        FZ_CHECK(status >= 100 && status <= 999);
        const char *cl = strstr(head, "\r\nContent-Length: ");
        FZ_CHECK(cl != NULL);
        char *e;
        unsigned long blen = strtoul(cl + 18, &e, 10);
        FZ_CHECK(e[0] == '\r' && blen <= (size_t)(end - eoh - 4));
        const char *body = eoh + 4;
        long seq;
        if (status == 200 && blen > 4 && memcmp(body, "seq=", 4) == 0) {
            seq = strtol(body + 4, NULL, 10);
            FZ_CHECK(seq > last_seq); /* in request order */
            last_seq = seq;
        }
        closed = strstr(head, "\r\nConnection: close\r\n") != NULL;
        p = body + blen;
    }
    /* a "close" response is followed by the close itself */
    FZ_CHECK(!closed || s_out.closes == 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t cuts[8] = {0, 1, 2, 3, 5, 8, 13, 64};
    if (size < 2)
        return 0;
    uint8_t mode = data[0], lim = data[1];
    size_t cut = cuts[mode & 7];
    memset(&s_rt, 0, sizeof s_rt);
    s_rt.when = (mode >> 3) & 3;
    s_rt.reverse = (mode >> 5) & 1;
    bool peer_goes = (mode >> 6) & 1, drain = (mode >> 7) & 1;
    memset(&s_out, 0, sizeof s_out);
    s_out.id_next = true;
    s_conf.max_head = (size_t)64 << (lim & 7);        /* 64..8192 */
    s_conf.max_body = (size_t)16 << ((lim >> 3) & 7); /* 16..2048 */
    memset(&s_gw, 0, sizeof s_gw);
    s_gw.conf = &s_conf;
    data += 2;
    size -= 2;
    /* a copy of exactly each read, so that ASan sees any overread */
    uint8_t *copy = fz_copy(data, size);

    s_on_frame(&s_gw, s_id, sizeof s_id, "", 0); /* opened */
    FZ_CHECK(s_conn_find(&s_gw, s_id, sizeof s_id) != NULL);
    for (size_t off = 0; off < size;) {
        size_t n = cut == 0 || cut > size - off ? size - off : cut;
        char *read = (char *)fz_copy(copy + off, n);
        s_on_frame(&s_gw, s_id, sizeof s_id, read, n);
        free(read);
        off += n;
        if (s_rt.when == WHEN_AFTER_READ)
            s_pump();
    }
    if (peer_goes)
        s_on_frame(&s_gw, s_id, sizeof s_id, "", 0); /* closed by the peer */
    if (drain) {
        tr_msg_t *m = NULL;
        FZ_CHECK(tr__msg_create_sys(&m, "drain") == 0);
        FZ_CHECK(tr_msg_add_int(m, 0) == 0);
        m->env.flags = TR__F_REQUEST;
        FZ_CHECK(s_gw_handle(NULL, &s_gw, m) == 0);
        tr_msg_destroy(&m);
    }
    s_pump();
    FZ_CHECK(s_rt.nlive == 0);
    s_sweep(&s_gw);
    /* Every answer came: nothing is waiting, and the connection, if
     * still open, has nothing queued. */
    s_conn_t *c = s_conn_find(&s_gw, s_id, sizeof s_id);
    FZ_CHECK(c == NULL || c->nslots == 0);
    FZ_CHECK(s_rt.drain_replies == (drain ? 1 : 0));
    if (c == NULL && s_out.closes == 1 && !peer_goes) {
        /* the close notice of a connection the gateway closed */
        s_on_frame(&s_gw, s_id, sizeof s_id, "", 0);
        FZ_CHECK(s_conn_find(&s_gw, s_id, sizeof s_id) == NULL);
    }
    s_check_output();
    s_gw_terminate(NULL, &s_gw, 0);
    free(copy);
    free(s_out.buf);
    return 0;
}
