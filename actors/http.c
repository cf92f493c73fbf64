/* actors/http.c - the HTTP gateway: HTTP/1.1 in front of actors and pools.
 *
 * The gateway is a thread actor that owns a ZeroMQ STREAM socket (watched
 * with tr_actor_watch_io). STREAM gives each tcp connection an id: a
 * message is [id][bytes], an empty one says the connection opened or
 * closed, and sending [id][] closes it. Bytes go through http-parser
 * (Debian's libhttp-parser); each complete request becomes an "http"
 * message [method, path, query, headers {name: value}, body] to its
 * route's actor (an ask) or pool (a task). The answer, an "http" message
 * [status, content type, body], becomes the response.
 *
 * A connection keeps its requests in a queue in arrival order; answers
 * may come in any order but responses go out in that order (pipelining).
 * Each request waits for its answer in a slot with a deadline; a sweep
 * timer (every 50 ms) fails slots past their deadline (503 when a pool
 * had not started the task, which is then cancelled; 504 otherwise) and
 * closes connections whose head is late or that idled too long.
 */
#include <ctype.h>
#include <limits.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>

#include "runtime/map.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/zsock.h"
#include "troupe.h"

#define S_SWEEP_MS 50
#define S_ID_MAX 256 /* a STREAM routing id's size */

/* ------------------------------------------------------------------ */
/* Configuration (handed from tr_http_start to the actor's init)       */

typedef struct s_route {
    char method[16]; /* "": any */
    char *prefix;
    char *actor;
    tr_pool_t *pool;
    char *task;
    int timeout_ms;
} s_route_t;

typedef struct s_conf {
    char endpoint[256];
    s_route_t *routes;
    int nroutes;
    int max_connections;
    size_t max_head, max_body;
    int head_timeout_ms, idle_timeout_ms;
    int port; /* written by init */
} s_conf_t;

struct tr_http {
    tr_node_t *node;
    tr_id_t id;
    s_conf_t *conf;
};

static void
s_conf_free(s_conf_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < c->nroutes; i++) {
        free(c->routes[i].prefix);
        free(c->routes[i].actor);
        free(c->routes[i].task);
    }
    free(c->routes);
    free(c);
}

/* ------------------------------------------------------------------ */
/* Connections and the requests they wait for                          */

typedef struct s_conn s_conn_t;
typedef struct s_gw s_gw_t;

/* A request in a connection's queue. */
typedef struct s_slot {
    s_conn_t *conn;
    struct s_slot *next;
    tr_future_t *f;     /* the handler's answer, while waited for */
    tr_pool_t *pool;    /* the task's pool (to cancel it at the deadline) */
    uint64_t deadline_ns;
    bool ready;         /* resp holds the response */
    bool cancelling;    /* past the deadline: the pool asked to cancel */
    bool close_after;   /* the client asked for it, or an error */
    char *resp;
    size_t resp_len;
} s_slot_t;

struct s_conn {
    uint8_t id[S_ID_MAX];
    size_t idlen;
    uint64_t key;
    http_parser parser;
    s_gw_t *gw;
    /* the request being parsed */
    char *head;         /* url, then "name\0value\0" pairs */
    size_t head_len, head_cap;
    size_t url_len;
    int nheaders;
    enum { S_URL, S_FIELD, S_VALUE } at; /* what the head's bytes are */
    int refuse;         /* a callback's refusal: 431, 413 or 500 */
    char *body;
    size_t body_len, body_cap;
    bool in_message;    /* between message begin and complete */
    bool head_done;     /* the head is in: what follows is body, trailers */
    bool parsing;       /* inside http_parser_execute: not freed here */
    uint64_t head_since;  /* when the current head began; 0: none */
    uint64_t idle_since;  /* when the connection went idle */
    bool closing;       /* no more requests: close once answered */
    bool closed;        /* the peer went away: drop answers */
    s_slot_t *first, *last;
    int nslots;
};

struct s_gw {
    s_conf_t *conf;
    void *sock;
    tr__map_t conns; /* key -> s_conn_t* */
    uint64_t next_key;
    tr_actor_t *self;
    bool draining;
    tr_msg_t *drain_req; /* answered once nothing is left */
    uint64_t drain_deadline;
    /* ids of connections closed here: their close notice is not an
     * opening (STREAM ids are never reused) */
    uint64_t closed_keys[256];
    unsigned nclosed;
};

static const char *
s_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : "Error";
    }
}

/* Build a response into the slot. */
static int
s_respond(s_slot_t *s, int status, const char *ctype, const void *body,
          size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n",
                     status, s_reason(status),
                     ctype && ctype[0] ? ctype : "text/plain", len,
                     s->close_after ? "Connection: close\r\n" : "",
                     status == 503 ? "Retry-After: 1\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof head)
        return TR_ERANGE;
    free(s->resp);
    s->resp = malloc((size_t)n + len);
    if (s->resp == NULL)
        return TR_ENOMEM;
    memcpy(s->resp, head, (size_t)n);
    if (len > 0)
        memcpy(s->resp + n, body, len);
    s->resp_len = (size_t)n + len;
    s->ready = true;
    return 0;
}

static int
s_respond_text(s_slot_t *s, int status, const char *text)
{
    return s_respond(s, status, "text/plain", text, strlen(text));
}

/* Send [id][bytes] to a connection (or close it with no bytes). */
static void
s_send_raw(s_gw_t *gw, s_conn_t *c, const void *data, size_t len)
{
    if (zmq_send(gw->sock, c->id, c->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(gw->sock, data, len, ZMQ_DONTWAIT) < 0)
        tr_log(TR_LOG_DEBUG, "http", "send to a connection: %s",
               zmq_strerror(zmq_errno()));
}

static void s_conn_free(s_gw_t *gw, s_conn_t *c);

static void
s_slot_free(s_slot_t *s)
{
    if (s->f != NULL) {
        /* Its answer is of no use now: a queued task is cancelled, a
         * running one finishes and its answer is dropped. */
        if (s->pool != NULL)
            (void)tr_pool_cancel_async(s->pool, s->f);
        tr_future_destroy(&s->f);
    }
    free(s->resp);
    free(s);
}

/* Send the answered slots at the head of the queue, in order; close the
 * connection after one that says so. */
static void
s_flush(s_gw_t *gw, s_conn_t *c)
{
    while (c->first != NULL && c->first->ready) {
        s_slot_t *s = c->first;
        c->first = s->next;
        if (c->first == NULL)
            c->last = NULL;
        c->nslots--;
        if (!c->closed)
            s_send_raw(gw, c, s->resp, s->resp_len);
        bool close = s->close_after;
        s_slot_free(s);
        if (close) {
            c->closing = true;
            break;
        }
    }
    if (c->nslots == 0)
        c->idle_since = tr__now_ns();
    /* An answer may come while the connection's bytes are parsed (a
     * settled future's callback runs at once, and an ask that waits for
     * room reads the inbox): s_parse flushes again when it is done. */
    if ((c->closing || c->closed) && c->nslots == 0 && !c->parsing) {
        if (!c->closed)
            s_send_raw(gw, c, "", 0); /* close */
        s_conn_free(gw, c);
    }
}

static s_slot_t *
s_slot_new(s_conn_t *c)
{
    s_slot_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->conn = c;
    if (c->last != NULL)
        c->last->next = s;
    else
        c->first = s;
    c->last = s;
    c->nslots++;
    return s;
}

/* An answer came (or failed): the slot's response. */
static void
s_on_answer(void *arg, tr_future_t *f)
{
    s_slot_t *s = arg;
    s_conn_t *c = s->conn;
    s->f = NULL;
    tr_msg_t *r = NULL;
    int rc = tr_future_get(f, 0, &r);
    tr_future_destroy(&f);
    if (rc == 0) {
        tr_reader_t rd;
        int64_t status;
        const char *ct = NULL, *body = NULL;
        size_t ctlen = 0, blen = 0;
        char ctype[128];
        tr_reader_init(&rd, r);
        if (!tr_msg_is(r, "http") || tr_read_int(&rd, &status) != 0 ||
            status < 100 || status > 999 ||
            tr_read_str(&rd, &ct, &ctlen) != 0 || ctlen >= sizeof ctype ||
            tr_read_bin(&rd, (const void **)&body, &blen) != 0) {
            tr_log(TR_LOG_WARN, "http", "a handler's answer '%s' is not an "
                   "http response", tr_msg_tag(r));
            (void)s_respond_text(s, 500, "bad answer from the handler\n");
        } else {
            memcpy(ctype, ct, ctlen);
            ctype[ctlen] = 0;
            if (s_respond(s, (int)status, ctype, body, blen) != 0)
                (void)s_respond_text(s, 500, "response too large\n");
        }
    } else if (rc == TR_ECANCELED) { /* no worker took it in time */
        (void)s_respond_text(s, 503, "no worker free in time\n");
    } else if (rc == TR_ETIMEDOUT) {
        (void)s_respond_text(s, 504, "the handler did not answer in time\n");
    } else if (rc == TR_ECLOSED || rc == TR_ESHUTDOWN || rc == TR_ENOENT) {
        (void)s_respond_text(s, 503, "no handler\n");
    } else {
        char text[160];
        snprintf(text, sizeof text, "the handler failed: %s\n",
                 tr_strerror(rc));
        (void)s_respond_text(s, 500, text);
    }
    tr_msg_destroy(&r);
    s_flush(c->gw, c);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

static const s_route_t *
s_route(const s_gw_t *gw, const char *method, const char *path)
{
    for (int i = 0; i < gw->conf->nroutes; i++) {
        const s_route_t *r = &gw->conf->routes[i];
        if ((r->method[0] == 0 || strcmp(r->method, method) == 0) &&
            strncmp(path, r->prefix, strlen(r->prefix)) == 0)
            return r;
    }
    return NULL;
}

/* A whole request: route it. */
static int
s_dispatch(s_gw_t *gw, s_conn_t *c)
{
    s_slot_t *s = s_slot_new(c);
    if (s == NULL)
        return TR_ENOMEM;
    s->close_after = !http_should_keep_alive(&c->parser) || gw->draining;
    const char *method = http_method_str((enum http_method)c->parser.method);
    /* The url: path and query. */
    struct http_parser_url u;
    http_parser_url_init(&u);
    char path[TR_HTTP_PATH_MAX + 1], query[TR_HTTP_PATH_MAX + 1];
    path[0] = query[0] = 0;
    if (http_parser_parse_url(c->head, c->url_len, 0, &u) != 0)
        return s_respond_text(s, 400, "malformed request target\n");
    if (u.field_set & (1 << UF_PATH)) {
        if (u.field_data[UF_PATH].len > TR_HTTP_PATH_MAX)
            return s_respond_text(s, 414, "path too long\n");
        memcpy(path, c->head + u.field_data[UF_PATH].off,
               u.field_data[UF_PATH].len);
        path[u.field_data[UF_PATH].len] = 0;
    }
    if (u.field_set & (1 << UF_QUERY)) {
        if (u.field_data[UF_QUERY].len > TR_HTTP_PATH_MAX)
            return s_respond_text(s, 414, "query too long\n");
        memcpy(query, c->head + u.field_data[UF_QUERY].off,
               u.field_data[UF_QUERY].len);
        query[u.field_data[UF_QUERY].len] = 0;
    }
    const s_route_t *r = s_route(gw, method, path);
    if (r == NULL)
        return s_respond_text(s, 404, "no such resource\n");
    if (gw->draining)
        return s_respond_text(s, 503, "shutting down\n");
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "http");
    if (rc == 0 && (rc = tr_msg_add_str(m, method)) == 0 &&
        (rc = tr_msg_add_str(m, path)) == 0 &&
        (rc = tr_msg_add_str(m, query)) == 0 &&
        (rc = tr_msg_add_map(m, (uint32_t)c->nheaders)) == 0) {
        const char *p = c->head + c->url_len + 1;
        for (int i = 0; i < c->nheaders && rc == 0; i++) {
            size_t nl = strlen(p);
            if ((rc = tr_msg_add_strn(m, p, nl)) == 0) {
                p += nl + 1;
                size_t vl = strlen(p);
                rc = tr_msg_add_strn(m, p, vl);
                p += vl + 1;
            }
        }
        if (rc == 0)
            rc = tr_msg_add_bin(m, c->body, c->body_len);
    }
    int timeout = r->timeout_ms > 0 ? r->timeout_ms : 10000;
    s->deadline_ns = tr__deadline_after_ms(timeout);
    if (rc == 0) {
        if (r->pool != NULL) {
            /* The task's own limit is the route's too: a process worker
             * stuck in it is killed and replaced. */
            rc = tr_pool_submit(r->pool, r->task, &m, timeout, &s->f);
            s->pool = r->pool;
        } else {
            rc = tr_ask(tr_actor_node(gw->self), r->actor, &m, timeout,
                        &s->f);
        }
    }
    tr_msg_destroy(&m);
    if (rc == 0)
        rc = tr_future_then(s->f, s_on_answer, s);
    if (rc != 0) {
        tr_future_destroy(&s->f);
        s->pool = NULL;
        return s_respond_text(s, rc == TR_EAGAIN || rc == TR_ENOENT ||
                                         rc == TR_ECLOSED
                                     ? 503
                                     : 500,
                              "the handler cannot be reached\n");
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* http-parser callbacks (p->data is the connection)                    */

/* Room for need bytes in *buf (of *cap, doubling from first): false
 * when out of memory. */
static bool
s_room(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    char *nb = realloc(*buf, n);
    if (nb == NULL)
        return false;
    *buf = nb;
    *cap = n;
    return true;
}

static int
s_head_add(s_conn_t *c, const char *at, size_t len, bool nul)
{
    size_t need = c->head_len + len + (nul ? 1 : 0);
    if (need > c->gw->conf->max_head) {
        c->refuse = 431;
        return 1;
    }
    if (!s_room(&c->head, &c->head_cap, need, 512)) {
        c->refuse = 500;
        return 1;
    }
    memcpy(c->head + c->head_len, at, len);
    c->head_len += len;
    if (nul)
        c->head[c->head_len++] = 0;
    return 0;
}

static int
s_on_begin(http_parser *p)
{
    s_conn_t *c = p->data;
    c->head_len = c->url_len = c->body_len = 0;
    c->nheaders = 0;
    c->at = S_URL;
    c->in_message = true;
    c->head_done = false;
    if (c->head_since == 0)
        c->head_since = tr__now_ns();
    return 0;
}

static int
s_on_url(http_parser *p, const char *at, size_t len)
{
    s_conn_t *c = p->data;
    if (s_head_add(c, at, len, false) != 0)
        return 1;
    c->url_len = c->head_len;
    return 0;
}

/* Names and values are stored "name\0value\0"; a callback may bring a
 * piece of one (the bytes came in several reads). */
static int
s_on_field(http_parser *p, const char *at, size_t len)
{
    s_conn_t *c = p->data;
    if (c->head_done)
        return 0; /* a trailer (after a chunked body): dropped */
    /* Debian builds http-parser lenient (HTTP_PARSER_STRICT=0): it takes
     * a space in a name, and before the colon, which RFC 9112 (5.1)
     * says to refuse with 400. */
    if (memchr(at, ' ', len) != NULL) {
        c->refuse = 400;
        return 1;
    }
    if (c->at != S_FIELD) { /* the url or the last value ends here */
        if (s_head_add(c, "", 0, true) != 0)
            return 1;
        c->nheaders++;
        c->at = S_FIELD;
    }
    /* header names go lower case, as HTTP/2 has them */
    char low[256];
    while (len > 0) {
        size_t n = len < sizeof low ? len : sizeof low;
        for (size_t i = 0; i < n; i++)
            low[i] = (char)tolower((unsigned char)at[i]);
        if (s_head_add(c, low, n, false) != 0)
            return 1;
        at += n;
        len -= n;
    }
    return 0;
}

static int
s_on_value(http_parser *p, const char *at, size_t len)
{
    s_conn_t *c = p->data;
    if (c->head_done)
        return 0; /* a trailer's value */
    /* The head keeps "name\0value\0": a NUL in a value would shift the
     * names and values after it. http-parser refuses one inside a value
     * but lets it through as a value's first byte. */
    if (memchr(at, 0, len) != NULL) {
        c->refuse = 400;
        return 1;
    }
    if (c->at != S_VALUE) { /* the name ends here */
        if (s_head_add(c, "", 0, true) != 0)
            return 1;
        c->at = S_VALUE;
    }
    return s_head_add(c, at, len, false);
}

static int
s_on_headers_done(http_parser *p)
{
    s_conn_t *c = p->data;
    if (s_head_add(c, "", 0, true) != 0) /* the url or last value ends */
        return -1;
    c->head_done = true;
    c->head_since = 0; /* the head is in: its clock stops */
    if (p->content_length != ULLONG_MAX &&
        p->content_length > c->gw->conf->max_body) {
        c->refuse = 413;
        return -1;
    }
    return 0;
}

static int
s_on_body(http_parser *p, const char *at, size_t len)
{
    s_conn_t *c = p->data;
    size_t need = c->body_len + len;
    if (need > c->gw->conf->max_body) {
        c->refuse = 413;
        return 1;
    }
    if (!s_room(&c->body, &c->body_cap, need, 1024)) {
        c->refuse = 500;
        return 1;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int
s_on_complete(http_parser *p)
{
    s_conn_t *c = p->data;
    c->in_message = false;
    if (s_dispatch(c->gw, c) != 0) {
        c->refuse = 500;
        return 1;
    }
    /* Nothing after it is read. The request's own answer may have come
     * already and closed the connection (s_flush), leaving no slot. */
    if (c->closing || (c->last != NULL && c->last->close_after))
        http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings s_settings = {
    .on_message_begin = s_on_begin,
    .on_url = s_on_url,
    .on_header_field = s_on_field,
    .on_header_value = s_on_value,
    .on_headers_complete = s_on_headers_done,
    .on_body = s_on_body,
    .on_message_complete = s_on_complete,
};

/* Bytes from a connection. A request the parser refuses gets its error
 * response after those before it, and the connection closes. */
static void
s_parse(s_gw_t *gw, s_conn_t *c, const char *data, size_t len)
{
    if (c->closing)
        return; /* after an error or "Connection: close": ignored */
    c->idle_since = 0;
    if (!c->in_message && c->head_since == 0)
        c->head_since = tr__now_ns();
    c->refuse = 0;
    c->parsing = true;
    size_t n = http_parser_execute(&c->parser, &s_settings, data, len);
    c->parsing = false;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED) { /* a request said "Connection: close" */
        c->closing = true;
        s_flush(gw, c);
        return;
    }
    if (e == HPE_OK && n == len) {
        if (!c->in_message)
            c->head_since = 0;
        s_flush(gw, c);
        return;
    }
    /* An error: say which, after what came before, and close. */
    int status = c->refuse ? c->refuse
                 : e == HPE_HEADER_OVERFLOW ? 431
                                            : 400;
    s_slot_t *s = s_slot_new(c);
    if (s != NULL) {
        s->close_after = true;
        (void)s_respond_text(s, status,
                             status == 431   ? "request head too large\n"
                             : status == 413 ? "request body too large\n"
                             : status == 500 ? "out of memory\n"
                                             : "malformed request\n");
    }
    c->closing = true;
    c->head_since = 0;
    tr_log(TR_LOG_DEBUG, "http", "request refused (%d): %s", status,
           http_errno_name(e));
    s_flush(gw, c);
}

/* ------------------------------------------------------------------ */
/* The socket                                                          */

static uint64_t
s_key(const uint8_t *id, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the id */
    for (size_t i = 0; i < len; i++)
        h = (h ^ id[i]) * 1099511628211ULL;
    return h ? h : 1;
}

static s_conn_t *
s_conn_find(s_gw_t *gw, const uint8_t *id, size_t len)
{
    s_conn_t *c = tr__map_get(&gw->conns, s_key(id, len));
    return c != NULL && c->idlen == len && memcmp(c->id, id, len) == 0 ? c
                                                                       : NULL;
}

static void
s_conn_free(s_gw_t *gw, s_conn_t *c)
{
    tr__map_del(&gw->conns, c->key);
    if (!c->closed) /* closed here: a notice may follow */
        gw->closed_keys[gw->nclosed++ % 256] = c->key;
    while (c->first != NULL) {
        s_slot_t *s = c->first;
        c->first = s->next;
        s_slot_free(s);
    }
    free(c->head);
    free(c->body);
    free(c);
}

static void
s_conn_open(s_gw_t *gw, const uint8_t *id, size_t len)
{
    s_conn_t *c = NULL;
    if (gw->draining || (int)gw->conns.len >= gw->conf->max_connections ||
        (c = calloc(1, sizeof *c)) == NULL) {
        s_conn_t tmp = {.idlen = len};
        memcpy(tmp.id, id, len);
        if (!gw->draining)
            tr_log(TR_LOG_WARN, "http", "%d connections: one more refused",
                   (int)gw->conns.len);
        static const char busy[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
            "Retry-After: 1\r\nConnection: close\r\n\r\n";
        s_send_raw(gw, &tmp, busy, sizeof busy - 1);
        s_send_raw(gw, &tmp, "", 0);
        gw->closed_keys[gw->nclosed++ % 256] = s_key(id, len);
        return;
    }
    memcpy(c->id, id, len);
    c->idlen = len;
    c->key = s_key(id, len);
    c->gw = gw;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->idle_since = tr__now_ns();
    if (tr__map_put(&gw->conns, c->key, c) != 0) {
        s_send_raw(gw, c, "", 0);
        free(c);
    }
}

/* One message of the STREAM socket: [id][] says the connection opened
 * or closed, [id][bytes] brings its bytes. Apart from the socket, so that
 * fuzz/fuzz_http.c can drive it from a buffer. */
static void
s_on_frame(s_gw_t *gw, const uint8_t *id, size_t idlen, const char *data,
           size_t len)
{
    s_conn_t *c = s_conn_find(gw, id, idlen);
    if (len == 0) { /* opened, or closed by the peer */
        uint64_t key = s_key(id, idlen);
        bool ours = false;
        for (unsigned i = 0; i < 256 && c == NULL && !ours; i++)
            if (gw->closed_keys[i] == key) {
                gw->closed_keys[i] = 0;
                ours = true;
            }
        if (c == NULL && !ours) {
            s_conn_open(gw, id, idlen);
        } else if (c != NULL) {
            c->closed = true;
            c->closing = true;
            if (c->nslots == 0)
                s_conn_free(gw, c);
        }
    } else if (c != NULL) {
        s_parse(gw, c, data, len);
    }
}

/* The STREAM socket has input: [id][bytes] messages. */
static int
s_on_socket(tr_actor_t *self, void *state, void *sock, int fd)
{
    s_gw_t *gw = state;
    (void)self, (void)fd;
    for (int k = 0; k < 32; k++) {
        uint8_t id[S_ID_MAX];
        int idlen = zmq_recv(sock, id, sizeof id, ZMQ_DONTWAIT);
        if (idlen < 0)
            return zmq_errno() == EAGAIN ? 0 : TR_ESYS;
        zmq_msg_t data;
        zmq_msg_init(&data);
        if (zmq_msg_recv(&data, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&data);
            return TR_ESYS;
        }
        s_on_frame(gw, id, (size_t)idlen, zmq_msg_data(&data),
                   zmq_msg_size(&data));
        zmq_msg_close(&data);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Deadlines, draining                                                 */

static void s_drain_check(s_gw_t *gw);

static void
s_sweep(s_gw_t *gw)
{
    uint64_t now = tr__now_ns();
    uint64_t head_ns = (uint64_t)gw->conf->head_timeout_ms * 1000000u;
    uint64_t idle_ns = (uint64_t)gw->conf->idle_timeout_ms * 1000000u;
    s_conn_t *late[64];
    size_t nlate = 0;
    TR__MAP_EACH(&gw->conns, slot)
    {
        s_conn_t *c = slot->val;
        for (s_slot_t *s = c->first; s != NULL; s = s->next) {
            if (s->ready || s->f == NULL || now < s->deadline_ns)
                continue;
            /* Past its deadline: the pool is asked to cancel the task
             * if no worker took it (its answer, TR_ECANCELED, makes a
             * 503); if none comes within two sweeps, it runs: 504. */
            if (s->pool != NULL && !s->cancelling &&
                tr_pool_cancel_async(s->pool, s->f) == 0) {
                s->cancelling = true;
                s->deadline_ns = now + 2 * S_SWEEP_MS * 1000000ull;
                continue;
            }
            tr_future_destroy(&s->f);
            (void)s_respond_text(s, 504,
                                 "the handler did not answer in time\n");
        }
        bool head_late = c->head_since != 0 && now - c->head_since > head_ns &&
                         !c->closing;
        bool idle = c->nslots == 0 && c->idle_since != 0 &&
                    (now - c->idle_since > idle_ns || gw->draining);
        if ((head_late || idle || (c->first && c->first->ready)) &&
            nlate < 64)
            late[nlate++] = c;
        if (head_late && nlate <= 64) {
            s_slot_t *s = s_slot_new(c);
            c->closing = true;
            c->head_since = 0;
            if (s != NULL) {
                s->close_after = true;
                (void)s_respond_text(s, 408, "request head too slow\n");
            }
        } else if (idle) {
            c->closing = true;
        }
    }
    for (size_t i = 0; i < nlate; i++)
        s_flush(gw, late[i]);
    s_drain_check(gw);
}

/* A drain is over when no connection has a request in flight. */
static void
s_drain_check(s_gw_t *gw)
{
    if (gw->drain_req == NULL)
        return;
    bool busy = false;
    TR__MAP_EACH(&gw->conns, slot)
    {
        s_conn_t *c = slot->val;
        busy |= c->nslots > 0;
    }
    bool late = tr__now_ns() >= gw->drain_deadline;
    if (busy && !late)
        return;
    if (busy) { /* what is left gets 503 */
        TR__MAP_EACH(&gw->conns, slot)
        {
            s_conn_t *c = slot->val;
            for (s_slot_t *s = c->first; s != NULL; s = s->next)
                if (!s->ready) {
                    tr_future_destroy(&s->f);
                    /* only the last says "close" (s_flush stops after
                     * one that does); closing closes after the last */
                    s->close_after = s == c->last;
                    (void)s_respond_text(s, 503, "shutting down\n");
                }
        }
    }
    s_conn_t *all[256];
    size_t n;
    do { /* close every connection (flush frees them) */
        n = 0;
        TR__MAP_EACH(&gw->conns, slot)
        {
            if (n < 256)
                all[n++] = slot->val;
        }
        for (size_t i = 0; i < n; i++) {
            all[i]->closing = true;
            s_flush(gw, all[i]);
        }
    } while (n == 256);
    tr_msg_t *ok = NULL;
    if (busy)
        (void)tr_reply_error(gw->self, gw->drain_req, TR_ETIMEDOUT);
    else if (tr_msg_create(&ok, "ok") == 0)
        (void)tr_reply(gw->self, gw->drain_req, &ok);
    tr_msg_destroy(&ok);
    tr_msg_destroy(&gw->drain_req);
}

/* ------------------------------------------------------------------ */
/* The actor                                                           */

static int
s_gw_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    s_gw_t *gw = state;
    tr_reader_t r;
    uint64_t conf;
    tr_reader_init(&r, args);
    if (tr_read_uint(&r, &conf) != 0)
        return TR_EINVAL;
    gw->conf = (s_conf_t *)(uintptr_t)conf;
    gw->self = self;
    gw->sock = zmq_socket(tr_node_zmq_context(tr_actor_node(self)),
                          ZMQ_STREAM);
    if (gw->sock == NULL)
        return TR_ESYS;
    int one = 1;
    zmq_setsockopt(gw->sock, ZMQ_STREAM_NOTIFY, &one, sizeof one);
    /* A request's head and body at most. ZeroMQ hands a STREAM socket
     * what tcp gave it in pieces of at most 8 KiB and does not check
     * this there (4.3): the parser's own limits are what bound a request
     * (413, 431). It is set so that no socket is without one. */
    int rc = tr__sock_limits(gw->sock, (int64_t)(gw->conf->max_head +
                                                 gw->conf->max_body),
                             0);
    if (rc == 0 && zmq_bind(gw->sock, gw->conf->endpoint) != 0) {
        tr_log(TR_LOG_ERROR, "http", "cannot listen on %s: %s",
               gw->conf->endpoint, zmq_strerror(zmq_errno()));
        rc = TR_ESYS;
    }
    char ep[256];
    size_t len = sizeof ep;
    if (rc == 0 &&
        zmq_getsockopt(gw->sock, ZMQ_LAST_ENDPOINT, ep, &len) == 0) {
        const char *colon = strrchr(ep, ':');
        gw->conf->port = colon ? atoi(colon + 1) : 0;
    }
    if (rc == 0)
        rc = tr_actor_watch_io(self, gw->sock, -1, s_on_socket);
    tr_msg_t *tick = NULL;
    if (rc == 0 && (rc = tr_msg_create(&tick, "sweep")) == 0)
        rc = tr_timer_every(self, S_SWEEP_MS, &tick, NULL);
    tr_msg_destroy(&tick);
    if (rc != 0) { /* no terminate after a failed init: close it here */
        zmq_close(gw->sock);
        gw->sock = NULL;
    }
    return rc;
}

static int
s_gw_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_gw_t *gw = state;
    if (tr_msg_is(msg, "sweep")) {
        s_sweep(gw);
        return 0;
    }
    if (tr_msg_is(msg, "drain") && tr_msg_is_request(msg)) {
        tr_reader_t r;
        int64_t ms = 0;
        tr_reader_init(&r, msg);
        (void)tr_read_int(&r, &ms);
        if (gw->drain_req != NULL)
            return tr_reply_error(self, msg, TR_EBUSY);
        int rc = tr_msg_dup(msg, &gw->drain_req);
        if (rc != 0)
            return tr_reply_error(self, msg, rc);
        gw->draining = true;
        gw->drain_deadline = tr__deadline_after_ms(ms > 0 ? ms : 1);
        /* Requests in flight are answered, then their connections
         * close; nothing more is read from them. */
        TR__MAP_EACH(&gw->conns, slot)
        {
            s_conn_t *c = slot->val;
            c->closing = true;
            /* The last response says "Connection: close"; s_flush sends
             * nothing after one that does, so not the others. */
            if (c->last != NULL && !c->last->ready)
                c->last->close_after = true;
        }
        s_sweep(gw); /* idle connections close now */
        return 0;
    }
    return TR_EUNHANDLED;
}

static void
s_gw_terminate(tr_actor_t *self, void *state, int reason)
{
    s_gw_t *gw = state;
    (void)self, (void)reason;
    s_conn_t *all[256];
    size_t n;
    do {
        n = 0;
        TR__MAP_EACH(&gw->conns, slot)
        {
            if (n < 256)
                all[n++] = slot->val;
        }
        for (size_t i = 0; i < n; i++) {
            if (gw->sock != NULL && !all[i]->closed)
                s_send_raw(gw, all[i], "", 0);
            s_conn_free(gw, all[i]);
        }
    } while (n == 256);
    tr__map_free(&gw->conns);
    if (gw->drain_req != NULL)
        (void)tr_reply_error(self, gw->drain_req, TR_ESHUTDOWN);
    tr_msg_destroy(&gw->drain_req);
    if (gw->sock != NULL)
        zmq_close(gw->sock);
}

TR_BEHAVIOUR(tr_http_gateway, .state_size = sizeof(s_gw_t),
             .init = s_gw_init, .handle = s_gw_handle,
             .terminate = s_gw_terminate);

/* ------------------------------------------------------------------ */
/* Starting and stopping                                               */

static char *
s_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int
tr_http_start(tr_node_t *node, const tr_http_opts_t *opts, tr_http_t **out)
{
    if (node == NULL || opts == NULL || out == NULL ||
        opts->endpoint == NULL || opts->routes == NULL || opts->nroutes < 1 ||
        strlen(opts->endpoint) >= sizeof((s_conf_t *)0)->endpoint ||
        opts->max_connections < 0 || opts->head_timeout_ms < 0 ||
        opts->idle_timeout_ms < 0)
        return tr__refuse(TR_EINVAL, "tr_http_start: no node, endpoint or "
                          "routes, or a negative limit");
    for (int i = 0; i < opts->nroutes; i++) {
        const tr_http_route_t *r = &opts->routes[i];
        if (r->prefix == NULL || r->prefix[0] != '/' ||
            (r->actor == NULL) == (r->pool == NULL) ||
            (r->pool != NULL && r->task == NULL) || r->timeout_ms < 0 ||
            (r->method != NULL && strlen(r->method) >= 16))
            return tr__refuse(TR_EINVAL, "tr_http_start: route %d needs a "
                              "path prefix (\"/...\") and an actor or a pool "
                              "and task", i);
    }
    s_conf_t *c = calloc(1, sizeof *c);
    tr_http_t *gw = calloc(1, sizeof *gw);
    if (c == NULL || gw == NULL ||
        (c->routes = calloc((size_t)opts->nroutes, sizeof *c->routes)) ==
            NULL) {
        free(gw);
        s_conf_free(c);
        return TR_ENOMEM;
    }
    snprintf(c->endpoint, sizeof c->endpoint, "%s", opts->endpoint);
    c->nroutes = opts->nroutes;
    int rc = 0;
    for (int i = 0; i < opts->nroutes && rc == 0; i++) {
        const tr_http_route_t *r = &opts->routes[i];
        s_route_t *d = &c->routes[i];
        snprintf(d->method, sizeof d->method, "%s", r->method ? r->method : "");
        d->prefix = s_strdup(r->prefix);
        d->actor = s_strdup(r->actor);
        d->task = s_strdup(r->task);
        d->pool = r->pool;
        d->timeout_ms = r->timeout_ms;
        if (d->prefix == NULL || (r->actor && d->actor == NULL) ||
            (r->task && d->task == NULL))
            rc = TR_ENOMEM;
    }
    c->max_connections = opts->max_connections ? opts->max_connections : 1024;
    c->max_head = opts->max_head_bytes ? opts->max_head_bytes : 8192;
    c->max_body = opts->max_body_bytes ? opts->max_body_bytes : 1 << 20;
    c->head_timeout_ms = opts->head_timeout_ms ? opts->head_timeout_ms : 10000;
    c->idle_timeout_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms : 60000;
    tr_msg_t *args = NULL;
    if (rc == 0 && (rc = tr_msg_create(&args, "conf")) == 0 &&
        (rc = tr_msg_add_uint(args, (uint64_t)(uintptr_t)c)) == 0)
        rc = tr_spawn(node, "tr_http_gateway",
                      &(tr_spawn_opts_t){.name = opts->name, .args = args},
                      &gw->id);
    tr_msg_destroy(&args);
    if (rc != 0) {
        free(gw);
        s_conf_free(c);
        return rc;
    }
    gw->node = node;
    gw->conf = c;
    *out = gw;
    return 0;
}

int
tr_http_port(const tr_http_t *gw)
{
    return gw ? gw->conf->port : 0;
}

tr_id_t
tr_http_id(const tr_http_t *gw)
{
    return gw ? gw->id : 0;
}

int
tr_http_stop(tr_http_t **gwp, int timeout_ms)
{
    if (gwp == NULL || *gwp == NULL || timeout_ms < TR_FOREVER)
        return TR_EINVAL;
    tr_http_t *gw = *gwp;
    int ms = timeout_ms == TR_DEFAULT ? 5000
             : timeout_ms == TR_FOREVER ? INT32_MAX / 2
                                        : timeout_ms;
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "drain");
    if (rc == 0 && (rc = tr_msg_add_int(m, ms)) == 0)
        rc = tr_call_id(gw->node, gw->id, &m, ms + 1000, NULL);
    tr_msg_destroy(&m);
    int src = tr_stop(gw->node, gw->id, TR_DEFAULT);
    if (rc == 0 && src != 0 && src != TR_ENOENT)
        rc = src;
    s_conf_free(gw->conf);
    free(gw);
    *gwp = NULL;
    return rc == TR_ENOENT ? 0 : rc;
}

/* ------------------------------------------------------------------ */
/* Handlers' side                                                      */

int
tr_http_req_read(const tr_msg_t *msg, tr_http_req_t *req)
{
    if (msg == NULL || req == NULL || !tr_msg_is(msg, "http"))
        return TR_EINVAL;
    tr_reader_t r;
    tr_reader_init(&r, msg);
    int rc = tr_read_str_copy(&r, req->method, sizeof req->method);
    if (rc == 0)
        rc = tr_read_str_copy(&r, req->path, sizeof req->path);
    if (rc == 0)
        rc = tr_read_str_copy(&r, req->query, sizeof req->query);
    if (rc == 0)
        rc = tr_read_skip(&r); /* headers: see tr_http_req_header */
    if (rc == 0)
        rc = tr_read_bin(&r, &req->body, &req->body_len);
    return rc == 0 ? 0 : TR_EPROTO;
}

int
tr_http_req_header(const tr_msg_t *msg, const char *name, char *buf,
                   size_t cap)
{
    if (msg == NULL || name == NULL || buf == NULL || !tr_msg_is(msg, "http"))
        return TR_EINVAL;
    tr_reader_t r;
    uint32_t n;
    tr_reader_init(&r, msg);
    for (int i = 0; i < 3; i++)
        if (tr_read_skip(&r) != 0)
            return TR_EPROTO;
    if (tr_read_map(&r, &n) != 0)
        return TR_EPROTO;
    size_t nl = strlen(name);
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (tr_read_str(&r, &k, &kl) != 0)
            return TR_EPROTO;
        if (kl == nl && strncasecmp(k, name, nl) == 0)
            return tr_read_str_copy(&r, buf, cap);
        if (tr_read_skip(&r) != 0)
            return TR_EPROTO;
    }
    return TR_ENOENT;
}

static int
s_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

int
tr_http_query_get(const char *query, const char *key, char *buf, size_t cap)
{
    if (query == NULL || key == NULL || buf == NULL || cap == 0)
        return TR_EINVAL;
    size_t kl = strlen(key);
    const char *p = query;
    while (*p) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t o = 0;
            for (size_t i = kl + 1; i < len; i++) {
                int ch = (unsigned char)p[i];
                if (ch == '+') {
                    ch = ' ';
                } else if (ch == '%') {
                    int hi = i + 2 < len ? s_hex(p[i + 1]) : -1;
                    int lo = i + 2 < len ? s_hex(p[i + 2]) : -1;
                    if (hi < 0 || lo < 0)
                        return TR_EINVAL;
                    ch = hi * 16 + lo;
                    i += 2;
                }
                if (o + 1 >= cap)
                    return TR_ERANGE;
                buf[o++] = (char)ch;
            }
            buf[o] = 0;
            return 0;
        }
        if (len == kl && strncmp(p, key, kl) == 0) {
            buf[0] = 0; /* "key" alone: present, empty */
            return 0;
        }
        p += len + (end ? 1 : 0);
    }
    return TR_ENOENT;
}

int
tr_http_response(tr_msg_t **result, int status, const char *content_type,
                 const void *body, size_t len)
{
    if (result == NULL || status < 100 || status > 999 ||
        (body == NULL && len > 0))
        return TR_EINVAL;
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "http");
    if (rc == 0 && (rc = tr_msg_add_int(m, status)) == 0 &&
        (rc = tr_msg_add_str(m, content_type ? content_type : "text/plain")) ==
            0)
        rc = tr_msg_add_bin(m, body, len);
    if (rc != 0) {
        tr_msg_destroy(&m);
        return rc;
    }
    *result = m;
    return 0;
}

int
tr_http_reply(tr_actor_t *self, const tr_msg_t *req, int status,
              const char *content_type, const void *body, size_t len)
{
    tr_msg_t *m = NULL;
    int rc = tr_http_response(&m, status, content_type, body, len);
    if (rc == 0)
        rc = tr_reply(self, req, &m);
    tr_msg_destroy(&m);
    return rc;
}
