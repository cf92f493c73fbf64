/* runtime/remote.c - many nodes over tcp: the gateway (docs/nodes.md).
 *
 * One thread per distributed node. It owns:
 * - a mailbox and an inbox (PULL, inproc) under a record of its own: every
 *   message for an actor of another node is sent there, as if the gateway
 *   were that actor (port.c maps foreign ids to it);
 * - a ROUTER bound on tcp (CURVE server, unless plain text was asked for)
 *   where the other nodes' gateways deliver, and the ZAP handler that
 *   lets in only the keys of the cluster file;
 * - one DEALER per other node (CURVE client), connected to its ROUTER.
 *
 * On the wire every message is two parts: a byte saying where it goes
 * ('M' mailbox, 'I' inbox, 'C' between gateways) and a troupe frame, whose
 * deadline travels as the time left (clocks of two hosts mean nothing to
 * each other). The gateway never blocks: a frame that cannot go on (a full
 * mailbox here, a full connection there) is held while the other
 * direction keeps moving.
 *
 * Liveness: ZeroMQ heartbeats on every connection, and a ping every
 * down_after/4; a node not heard from for down_after is down: its
 * connection is dropped (with what was queued on it), every watcher of its
 * actors gets DOWN with TR_ENOCONN, and hellos go out until it answers. */
#include "runtime/remote.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/behaviour.h"
#include "runtime/future.h"
#include "runtime/control.h"
#include "runtime/place.h"
#include "runtime/port.h"
#include "runtime/process.h"
#include "runtime/rundir.h"
#include "transport/clock.h"
#include "transport/envelope.h"
#include "transport/log.h"
#include "transport/msg.h"
#include "transport/zsock.h"

#define S_EP_MAX 128
#define S_PEERS_MAX 64
#define S_NAMES_MAX 256
#define S_BATCH 64
#define S_HWM 10000
#define S_POLL_MAX_MS 50
#define S_BATCH_BYTES (64 * 1024) /* a batch to a node is sent past this */
#define S_BATCH_FRAMES 256
/* A ZAP request: seven short frames (a key is 32 bytes, an address or a
 * routing id at most 255). */
#define S_ZAP_MAX 1024
/* What the ROUTER's monitor tells: how a connection ended. */
#define S_MON_EVENTS                                                        \
    (ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |        \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
#define S_MON_READ 64 /* events read in one go */
#define S_MON_LINES 4 /* lines about them in one go; then a sum */
#define S_BYE_LINGER_MS 100 /* a leaving node's $bye, at most */

typedef struct s_watch {
    tr_id_t watcher, target;
} s_watch_t;

typedef struct s_peer {
    /* Read by other threads under r->mu; written by the gateway under it. */
    char name[TR_NAME_MAX + 1]; /* "" until its welcome (a seed) */
    char endpoint[S_EP_MAX];
    uint32_t tag; /* 0 until known */
    tr_id_t gw;   /* its gateway's id */
    bool up;
    /* The gateway's own. */
    char key[41];   /* its public key, z85; "" in plain text */
    uint64_t nonce; /* of our last hello: its welcome echoes it */
    void *dealer;   /* to its ROUTER; NULL while down */
    bool client;    /* it does not listen: it is sent to through our
                     * ROUTER, by its name (e.g. examples/python_client) */
    uint64_t heard_ns, pinged_ns, hello_ns;
    uint8_t *batch; /* frames for it not yet sent (a node, not a client) */
    size_t blen, bcap;
    int bcount;
    s_watch_t *watches; /* our actors watching its actors */
    size_t nw, capw;
} s_peer_t;

typedef struct s_member { /* a line of the cluster file */
    char name[TR_NAME_MAX + 1];
    char key[41];
    char endpoint[S_EP_MAX];
} s_member_t;

typedef struct s_name { /* "name@node" -> id, until that id ends */
    char key[2 * TR_NAME_MAX + 2];
    tr_id_t id;
} s_name_t;

struct tr__remote {
    tr_node_t *node;
    char listen[S_EP_MAX];
    char endpoint[S_EP_MAX]; /* as bound */
    char *seeds;
    bool plaintext;
    char pub[41], sec[41];
    s_member_t *members;
    size_t nmembers;
    int down_after_ms, ping_ms;
    tr__rec_t *rec; /* the gateway's record (registered) */
    pthread_t thread;
    bool running;
    _Atomic tr_id_t spawner; /* runs spawns asked by other nodes */
    _Atomic bool stopping; /* the loop ends (stop_tx only wakes it) */
    void *stop_tx;
    char stop_ep[64];

    pthread_mutex_t mu; /* guards what other threads read, below */
    pthread_cond_t cv;  /* a peer came up */
    s_peer_t *peers[S_PEERS_MAX];
    size_t npeers;
    s_name_t names[S_NAMES_MAX];
    size_t nnames;
    char **connects; /* asked for by tr_node_connect, not yet tried */
    size_t nconnects, capconnects;

    /* The gateway thread's own. */
    void *router, *zap, *mbox, *inbox;
    void *mon;          /* the ROUTER's monitor (PAIR), or NULL */
    char mon_ep[64];
    uint64_t byes;      /* $byes read whose connection has not ended yet */
    uint64_t bye_ns;    /* when the last one was read */
    uint16_t why_event; /* the last handshake that failed, for the line */
    uint32_t why_value; /* of its connection's end (0: none) */
    struct tr__port *port;
    zmq_msg_t out_held; /* a frame for a full connection */
    s_peer_t *out_peer;
    char out_box;
    bool out_holding;
    bool out_blocked;   /* a batch did not go: a connection is full */
    struct s_inbatch *in_batch; /* a batch being handed out, or NULL */
    s_peer_t *in_peer;
    size_t in_off;      /* its next entry */
    zmq_msg_t in_held; /* a frame for a full mailbox here */
    tr_id_t in_to;
    tr__box_t in_box;
    uint64_t in_since;
    bool in_holding;
};

/* ------------------------------------------------------------------ */
/* Little helpers                                                      */
/* ------------------------------------------------------------------ */

/* The frame's deadline as time left (out) or back to this host's clock
 * (in); 0 stays 0, and a deadline already past stays past. */
static void
s_deadline_out(uint8_t *frame)
{
    uint64_t d = tr__get64(frame + TR__ENV_OFF_DEADLINE);
    if (d != 0) {
        uint64_t now = tr__now_ns();
        tr__put64(frame + TR__ENV_OFF_DEADLINE, d > now ? d - now : 1);
    }
}

static void
s_deadline_in(uint8_t *frame)
{
    uint64_t d = tr__get64(frame + TR__ENV_OFF_DEADLINE);
    if (d != 0)
        tr__put64(frame + TR__ENV_OFF_DEADLINE, tr__now_ns() + d);
}

static bool
s_is_endpoint(const char *s)
{
    return strncmp(s, "tcp://", 6) == 0 || strncmp(s, "ipc://", 6) == 0;
}

static s_peer_t *
s_peer_by_tag(tr__remote_t *r, uint32_t tag)
{
    for (size_t i = 0; i < r->npeers; i++)
        if (r->peers[i]->tag == tag)
            return r->peers[i];
    return NULL;
}

static s_peer_t *
s_peer_by_name(tr__remote_t *r, const char *name, size_t len)
{
    for (size_t i = 0; i < r->npeers; i++)
        if (strlen(r->peers[i]->name) == len &&
            memcmp(r->peers[i]->name, name, len) == 0)
            return r->peers[i];
    return NULL;
}

static const s_member_t *
s_member(const tr__remote_t *r, const char *name, const char *endpoint)
{
    for (size_t i = 0; i < r->nmembers; i++)
        if ((name && strcmp(r->members[i].name, name) == 0) ||
            (endpoint && strcmp(r->members[i].endpoint, endpoint) == 0))
            return &r->members[i];
    return NULL;
}

static bool
s_key_allowed(const tr__remote_t *r, const char *z85)
{
    for (size_t i = 0; i < r->nmembers; i++)
        if (strcmp(r->members[i].key, z85) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* Options, keys and the cluster file                                  */
/* ------------------------------------------------------------------ */

static const char *
s_env_or(const char *opt, const char *env)
{
    if (opt != NULL)
        return opt;
    const char *v = getenv(env);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* A file with a secret in it: ours, and nobody else may read it. */
static int
s_private_file(const char *path, FILE **out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tr__refuse(TR_EINVAL, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0 ||
        st.st_uid != geteuid()) {
        fclose(f);
        return tr__refuse(TR_EPERM, "%s: a secret key must be the user's own "
                          "file with mode 0600", path);
    }
    *out = f;
    return 0;
}

static int
s_read_key(tr__remote_t *r, const char *path)
{
    FILE *f = NULL;
    int rc = s_private_file(path, &f);
    if (rc != 0)
        return rc;
    char line[128] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!ok || strlen(line) != 40 || zmq_curve_public(r->pub, line) != 0) {
        memset(line, 0, sizeof line);
        return tr__refuse(TR_EINVAL, "%s: not a CURVE secret key (40 z85 "
                          "characters; `troupe keygen` makes one)", path);
    }
    memcpy(r->sec, line, 41);
    memset(line, 0, sizeof line);
    return 0;
}

static int
s_read_cluster(tr__remote_t *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return tr__refuse(TR_EINVAL, "cluster file %s: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 022) != 0) {
        fclose(f);
        return tr__refuse(TR_EPERM, "cluster file %s: others can write it",
                          path);
    }
    char line[512];
    int lineno = 0, rc = 0;
    size_t cap = 0;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        /* (z85 keys may hold a '#': comments are whole lines) */
        size_t lead = strspn(line, " \t");
        if (line[lead] == '#')
            continue;
        char name[TR_NAME_MAX + 2] = "", key[64] = "", ep[S_EP_MAX + 1] = "";
        int n = sscanf(line, "%64s %63s %128s", name, key, ep);
        if (n <= 0)
            continue;
        uint8_t bin[32];
        if (n < 2 || strlen(name) > TR_NAME_MAX || strlen(key) != 40 ||
            zmq_z85_decode(bin, key) == NULL || strlen(ep) >= S_EP_MAX) {
            rc = tr__refuse(TR_EINVAL, "cluster file %s:%d: want \"NAME "
                            "PUBLIC-KEY [ENDPOINT]\"", path, lineno);
            break;
        }
        if (tr__grow((void **)&r->members, r->nmembers, &cap,
                     sizeof *r->members, 8) != 0) {
            rc = TR_ENOMEM;
            break;
        }
        s_member_t *m = &r->members[r->nmembers++];
        snprintf(m->name, sizeof m->name, "%s", name);
        memcpy(m->key, key, 41);
        snprintf(m->endpoint, sizeof m->endpoint, "%s", ep);
    }
    fclose(f);
    return rc;
}

int
tr__remote_prepare(tr_node_t *node, tr__remote_t **out)
{
    *out = NULL;
    const tr_node_opts_t *o = &node->opts;
    const char *listen = s_env_or(o->listen, "TROUPE_LISTEN");
    const char *seeds = s_env_or(o->seeds, "TROUPE_SEEDS");
    if (listen == NULL && seeds == NULL)
        return 0;
    if (listen == NULL)
        return tr__refuse(TR_EINVAL, "node '%s': seeds without listen (the "
                          "other nodes answer on our endpoint)", node->name);
    for (const char *ep = listen; ep != NULL;
         ep = strchr(ep, ',') ? strchr(ep, ',') + 1 : NULL)
        if ((strncmp(ep, "tcp://", 6) != 0 && strncmp(ep, "ipc://", 6) != 0) ||
            strlen(listen) >= S_EP_MAX)
            return tr__refuse(TR_EINVAL, "node '%s': listen wants tcp://"
                              "ADDR:PORT or ipc://PATH (comma-separated), not "
                              "'%s'", node->name, listen);
    if (o->down_after_ms < 0)
        return tr__refuse(TR_EINVAL, "node option down_after_ms is negative");
    tr__remote_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return TR_ENOMEM;
    r->node = node;
    snprintf(r->listen, sizeof r->listen, "%s", listen);
    const char *da = getenv("TROUPE_DOWN_AFTER_MS");
    r->down_after_ms = o->down_after_ms ? o->down_after_ms
                       : da != NULL && atoi(da) > 0 ? atoi(da)
                                                     : 3000;
    r->ping_ms = r->down_after_ms / 4 > 0 ? r->down_after_ms / 4 : 1;
    const char *plain = getenv("TROUPE_INSECURE_PLAINTEXT");
    r->plaintext = o->insecure_plaintext ||
                   (plain != NULL && strcmp(plain, "1") == 0);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = 0;
    const char *key = s_env_or(o->key_file, "TROUPE_KEY");
    const char *cluster = s_env_or(o->cluster_file, "TROUPE_CLUSTER");
    if (cluster != NULL)
        rc = s_read_cluster(r, cluster);
    if (rc == 0 && !r->plaintext) {
        if (!zmq_has("curve"))
            rc = tr__refuse(TR_ENOTSUP, "this libzmq has no CURVE: tcp "
                            "needs insecure_plaintext");
        else if (key == NULL || cluster == NULL)
            rc = tr__refuse(TR_EINVAL, "node '%s': tcp is encrypted and "
                            "needs key_file (troupe keygen) and cluster_file"
                            " (who may connect), or insecure_plaintext",
                            node->name);
        else
            rc = s_read_key(r, key);
    }
    if (rc == 0 && seeds != NULL && (r->seeds = strdup(seeds)) == NULL)
        rc = TR_ENOMEM;
    if (rc != 0) {
        tr__remote_t *rr = r;
        tr__remote_stop(&rr);
        return rc;
    }
    uint32_t tag = 0;
    while (tag == 0 || tag == 1) { /* 0: alone; keep 1 out of the way too */
        if (getrandom(&tag, sizeof tag, 0) != sizeof tag)
            tag = (uint32_t)tr__now_ns() ^ (uint32_t)getpid();
        tag &= (1u << TR__TAG_BITS) - 1;
    }
    node->tag = tag;
    atomic_store(&node->next_id, ((uint64_t)tag << TR__TAG_SHIFT) | 1);
    *out = r;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Peers                                                               */
/* ------------------------------------------------------------------ */

static void
s_sockopt_int(void *s, int opt, int v)
{
    zmq_setsockopt(s, opt, &v, sizeof v);
}

static void
s_heartbeats(tr__remote_t *r, void *s)
{
    s_sockopt_int(s, ZMQ_HEARTBEAT_IVL, r->ping_ms);
    s_sockopt_int(s, ZMQ_HEARTBEAT_TIMEOUT, r->down_after_ms);
    s_sockopt_int(s, ZMQ_HEARTBEAT_TTL, r->down_after_ms);
}

static int
s_dealer_open(tr__remote_t *r, s_peer_t *p)
{
    int rc;
    void *s = tr__sock_open(r->node->zctx, ZMQ_DEALER, S_HWM, 0, &rc);
    if (s == NULL)
        return rc;
    if ((rc = tr__sock_limits(s, r->node->opts.max_message_bytes, 0)) != 0) {
        zmq_close(s);
        return rc;
    }
    s_sockopt_int(s, ZMQ_RECONNECT_IVL, 100);
    s_sockopt_int(s, ZMQ_RECONNECT_IVL_MAX, 2000);
    s_heartbeats(r, s);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, r->node->name, strlen(r->node->name));
    if (!r->plaintext) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, p->key, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, r->pub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, r->sec, 40);
    }
    if (zmq_connect(s, p->endpoint) != 0) {
        rc = tr__refuse(TR_EINVAL, "connect %s: %s", p->endpoint,
                        zmq_strerror(zmq_errno()));
        zmq_close(s);
        return rc;
    }
    p->dealer = s;
    return 0;
}

static s_peer_t *
s_peer_add(tr__remote_t *r, const char *name, const char *endpoint,
           const char *key)
{
    if (r->npeers == S_PEERS_MAX) {
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': more than %d other nodes; "
                "%s ignored", r->node->name, S_PEERS_MAX, endpoint);
        return NULL;
    }
    s_peer_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    snprintf(p->name, sizeof p->name, "%s", name ? name : "");
    snprintf(p->endpoint, sizeof p->endpoint, "%s", endpoint);
    snprintf(p->key, sizeof p->key, "%s", key ? key : "");
    pthread_mutex_lock(&r->mu);
    r->peers[r->npeers++] = p;
    pthread_mutex_unlock(&r->mu);
    return p;
}

/* The socket toward p; for a client, its routing id has gone first. */
static void *
s_toward(tr__remote_t *r, s_peer_t *p)
{
    if (!p->client)
        return p->dealer;
    if (zmq_send(r->router, p->name, strlen(p->name),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return NULL;
    return r->router;
}

/* Send a control message ('C') to p: tag and the values add put in. */
typedef int (*s_fill_fn)(tr__remote_t *r, s_peer_t *p, tr_msg_t *m);

static int
s_ctl(tr__remote_t *r, s_peer_t *p, const char *tag, s_fill_fn fill)
{
    if (p->dealer == NULL && !p->client)
        return TR_ENOCONN;
    tr_msg_t *m;
    int rc = tr__msg_create_sys(&m, tag);
    if (rc != 0)
        return rc;
    if (fill != NULL && (rc = fill(r, p, m)) != 0) {
        tr_msg_destroy(&m);
        return rc;
    }
    size_t len;
    const uint8_t *frame = tr__msg_frame(m, &len);
    void *sock = s_toward(r, p);
    if (sock == NULL ||
        zmq_send(sock, "C", 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 1 ||
        zmq_send(sock, frame, len, ZMQ_DONTWAIT) < 0)
        rc = TR_EAGAIN; /* a full connection: the next ping will do */
    tr_msg_destroy(&m);
    return rc;
}

/* Who we are: name, tag, endpoint, gateway id, nonce. */
static int
s_fill_self(tr__remote_t *r, s_peer_t *p, tr_msg_t *m)
{
    int rc;
    if ((rc = tr_msg_add_uint(m, 1)) != 0 || /* version */
        (rc = tr_msg_add_str(m, r->node->name)) != 0 ||
        (rc = tr_msg_add_uint(m, r->node->tag)) != 0 ||
        (rc = tr_msg_add_str(m, r->endpoint)) != 0 ||
        (rc = tr_msg_add_uint(m, r->rec->id)) != 0 ||
        (rc = tr_msg_add_uint(m, p->nonce)) != 0)
        return rc;
    return 0;
}

static int
s_fill_welcome(tr__remote_t *r, s_peer_t *p, tr_msg_t *m)
{
    int rc = s_fill_self(r, p, m);
    uint32_t n = 0;
    for (size_t i = 0; i < r->npeers; i++)
        n += r->peers[i] != p && r->peers[i]->up && !r->peers[i]->client;
    if (rc == 0)
        rc = tr_msg_add_array(m, n);
    for (size_t i = 0; i < r->npeers && rc == 0; i++) {
        s_peer_t *q = r->peers[i];
        if (q == p || !q->up || q->client)
            continue;
        if ((rc = tr_msg_add_str(m, q->name)) == 0 &&
            (rc = tr_msg_add_str(m, q->endpoint)) == 0)
            rc = tr_msg_add_str(m, q->key);
    }
    return rc;
}

static void
s_hello(tr__remote_t *r, s_peer_t *p)
{
    if (p->dealer == NULL && s_dealer_open(r, p) != 0)
        return;
    uint64_t nonce;
    if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce)
        nonce = tr__now_ns();
    p->nonce = nonce | 1;
    p->hello_ns = tr__now_ns();
    (void)s_ctl(r, p, "$hello", s_fill_self);
}

/* A local id: send it a DOWN about target, with reason. */
static void
s_down_to(tr__remote_t *r, tr_id_t watcher, tr_id_t target, int reason)
{
    if (watcher == r->rec->id) { /* our own watch: the names cache */
        pthread_mutex_lock(&r->mu);
        for (size_t i = 0; i < r->nnames;)
            if (r->names[i].id == target)
                r->names[i] = r->names[--r->nnames];
            else
                i++;
        pthread_mutex_unlock(&r->mu);
        return;
    }
    (void)tr__port_send_sys(r->port, watcher, TR__SYS_DOWN, (int64_t)target,
                            reason);
}

static void
s_peer_down(tr__remote_t *r, s_peer_t *p, const char *why)
{
    if (p->up) /* (a client that leaves is no news) */
        TR__LOG(p->client ? TR_LOG_INFO : TR_LOG_WARN, "nodes",
                "node '%s': %s '%s' is down (%s)", r->node->name,
                p->client ? "client" : "node", p->name, why);
    pthread_mutex_lock(&r->mu);
    p->up = false;
    for (size_t i = 0; i < r->nnames;)
        if (tr__id_tag(r->names[i].id) == p->tag)
            r->names[i] = r->names[--r->nnames];
        else
            i++;
    pthread_mutex_unlock(&r->mu);
    tr__sock_close(&p->dealer); /* what was queued goes with it */
    if (p->bcount > 0)
        TR__LOG(TR_LOG_DEBUG, "nodes", "%d messages for node '%s' dropped",
                p->bcount, p->name);
    free(p->batch);
    p->batch = NULL;
    p->blen = p->bcap = 0;
    p->bcount = 0;
    if (r->out_holding && r->out_peer == p) {
        zmq_msg_close(&r->out_held);
        r->out_holding = false;
        TR__STAT_INC(r->node, dead_letters);
    }
    s_watch_t *w = p->watches;
    size_t n = p->nw;
    p->watches = NULL;
    p->nw = p->capw = 0;
    for (size_t i = 0; i < n; i++)
        s_down_to(r, w[i].watcher, w[i].target, TR_ENOCONN);
    free(w);
}

/* A client that went away is forgotten (it comes back with a hello, as
 * a new one): nodes stay, to be said hello to until they answer. */
static void
s_client_forget(tr__remote_t *r, s_peer_t *p)
{
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->npeers; i++)
        if (r->peers[i] == p) {
            r->peers[i] = r->peers[--r->npeers];
            break;
        }
    pthread_mutex_unlock(&r->mu);
    free(p->batch);
    free(p->watches);
    free(p);
}

static void
s_peer_up(tr__remote_t *r, s_peer_t *p, const char *name, uint32_t tag,
          tr_id_t gw)
{
    if (p->up && (p->tag != tag || p->gw != gw))
        s_peer_down(r, p, "it restarted"); /* a new incarnation */
    bool was = p->up;
    pthread_mutex_lock(&r->mu);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->tag = tag;
    p->gw = gw;
    p->up = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    p->heard_ns = tr__now_ns();
    if (!was)
        TR__LOG(TR_LOG_INFO, "nodes", "node '%s': node '%s' is up at %s",
                r->node->name, p->name, p->endpoint);
}

/* A seed or a tr_node_connect: an endpoint, or a member's name. */
static void
s_join(tr__remote_t *r, const char *seed)
{
    const s_member_t *m = s_member(r, seed, seed);
    const char *ep = s_is_endpoint(seed) ? seed
                     : m != NULL && m->endpoint[0] ? m->endpoint
                                                   : NULL;
    if (ep == NULL) {
        TR__LOG(TR_LOG_ERROR, "nodes", "node '%s': seed '%s' is neither an "
                "endpoint nor a member with one", r->node->name, seed);
        return;
    }
    if (strcmp(ep, r->endpoint) == 0)
        return; /* ourselves */
    for (size_t i = 0; i < r->npeers; i++)
        if (strcmp(r->peers[i]->endpoint, ep) == 0)
            return;
    if (!r->plaintext && m == NULL) {
        TR__LOG(TR_LOG_ERROR, "nodes", "node '%s': seed %s: its key is not "
                "in the cluster file", r->node->name, ep);
        return;
    }
    s_peer_t *p = s_peer_add(r, NULL, ep, m ? m->key : NULL);
    if (p != NULL)
        s_hello(r, p);
}

static void
s_join_list(tr__remote_t *r, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (copy == NULL)
        return;
    for (char *s = strtok_r(copy, ", ", &save); s != NULL;
         s = strtok_r(NULL, ", ", &save))
        s_join(r, s);
    free(copy);
}

/* ------------------------------------------------------------------ */
/* From other nodes                                                    */
/* ------------------------------------------------------------------ */

typedef struct s_self {
    uint64_t version, tag, gw, nonce;
    char name[TR_NAME_MAX + 1];
    char endpoint[S_EP_MAX];
} s_self_t;

static int
s_read_self(tr_reader_t *rd, s_self_t *s)
{
    int rc;
    if ((rc = tr_read_uint(rd, &s->version)) != 0 ||
        (rc = tr_read_str_copy(rd, s->name, sizeof s->name)) < 0 ||
        (rc = tr_read_uint(rd, &s->tag)) != 0 ||
        (rc = tr_read_str_copy(rd, s->endpoint, sizeof s->endpoint)) < 0 ||
        (rc = tr_read_uint(rd, &s->gw)) != 0 ||
        (rc = tr_read_uint(rd, &s->nonce)) != 0)
        return rc < 0 ? rc : TR_EPROTO;
    if (s->version != 1)
        return TR_EVERSION;
    if (s->name[0] == '\0' || s->tag == 0 || s->tag >> TR__TAG_BITS ||
        tr__id_tag(s->gw) != s->tag ||
        (s->endpoint[0] != '\0' && !s_is_endpoint(s->endpoint)))
        return TR_EPROTO;
    return 0;
}

/* An endpoint bound to every address names the host by where it came
 * from instead. */
static void
s_fix_endpoint(char *ep, size_t cap, const char *from)
{
    const char *host = ep + 6;
    if (from == NULL || strncmp(ep, "tcp://", 6) != 0 ||
        (strncmp(host, "0.0.0.0:", 8) != 0 &&
                         strncmp(host, "*:", 2) != 0))
        return;
    char port[16];
    snprintf(port, sizeof port, "%s", strrchr(ep, ':') + 1);
    snprintf(ep, cap, "tcp://%s:%s", from, port);
}

static void
s_on_hello(tr__remote_t *r, tr_reader_t *rd, const char *key,
           const char *from)
{
    s_self_t s;
    int rc = s_read_self(rd, &s);
    if (rc != 0) {
        TR__STAT_INC(r->node, bad_frames);
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': bad hello from %s: %s",
                r->node->name, from ? from : "?", tr_strerror(rc));
        return;
    }
    s_fix_endpoint(s.endpoint, sizeof s.endpoint, from);
    const s_member_t *m = s_member(r, s.name, NULL);
    if (!r->plaintext && m != NULL && strcmp(m->key, key) != 0) {
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': refused '%s' from %s: the "
                "cluster file gives that name another key", r->node->name,
                s.name, from ? from : "?");
        return;
    }
    if (strcmp(s.name, r->node->name) == 0 || s.tag == r->node->tag) {
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': refused a node from %s "
                "with our own %s", r->node->name, from ? from : "?",
                s.tag == r->node->tag ? "tag (try again)" : "name");
        return;
    }
    s_peer_t *p = s_peer_by_name(r, s.name, strlen(s.name));
    s_peer_t *same_tag = s_peer_by_tag(r, (uint32_t)s.tag);
    if (same_tag != NULL && same_tag != p && same_tag->up) {
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': refused '%s': node '%s' "
                "has its tag", r->node->name, s.name, same_tag->name);
        return;
    }
    if (p == NULL) {
        /* A seed we said hello to, whose welcome has not come yet? */
        for (size_t i = 0; i < r->npeers && p == NULL; i++)
            if (r->peers[i]->name[0] == '\0' &&
                strcmp(r->peers[i]->endpoint, s.endpoint) == 0)
                p = r->peers[i];
    }
    if (p == NULL && (p = s_peer_add(r, s.name, s.endpoint, key)) == NULL)
        return;
    p->client = s.endpoint[0] == '\0'; /* answered through our ROUTER */
    if (p->client)
        tr__sock_close(&p->dealer);
    if (strcmp(p->endpoint, s.endpoint) != 0 || strcmp(p->key, key) != 0) {
        tr__sock_close(&p->dealer); /* it moved */
        snprintf(p->endpoint, sizeof p->endpoint, "%s", s.endpoint);
        snprintf(p->key, sizeof p->key, "%s", key);
    }
    if (!p->client && p->dealer == NULL && s_dealer_open(r, p) != 0)
        return;
    uint64_t ours = p->nonce;
    p->nonce = s.nonce; /* echoed in our welcome */
    (void)s_ctl(r, p, "$welcome", s_fill_welcome);
    p->nonce = ours;
    s_peer_up(r, p, s.name, (uint32_t)s.tag, s.gw);
}

static void
s_on_welcome(tr__remote_t *r, tr_reader_t *rd, const char *key,
             const char *from)
{
    s_self_t s;
    uint32_t n = 0;
    int rc = s_read_self(rd, &s);
    if (rc == 0)
        rc = tr_read_array(rd, &n);
    if (rc != 0) {
        TR__STAT_INC(r->node, bad_frames);
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': bad welcome from %s",
                r->node->name, from ? from : "?");
        return;
    }
    s_fix_endpoint(s.endpoint, sizeof s.endpoint, from);
    s_peer_t *p = NULL;
    for (size_t i = 0; i < r->npeers && p == NULL; i++)
        if (r->peers[i]->nonce == s.nonce)
            p = r->peers[i];
    if (p == NULL || (!r->plaintext && strcmp(p->key, key) != 0))
        return; /* not an answer to a hello of ours */
    s_peer_t *named = s_peer_by_name(r, s.name, strlen(s.name));
    if (named != NULL && named != p) {
        /* We knew it by name already (it said hello first): one entry. */
        pthread_mutex_lock(&r->mu);
        for (size_t i = 0; i < r->npeers; i++)
            if (r->peers[i] == p)
                r->peers[i] = r->peers[--r->npeers];
        pthread_mutex_unlock(&r->mu);
        tr__sock_close(&p->dealer);
        free(p->watches);
        free(p);
        p = named;
    }
    s_peer_up(r, p, s.name, (uint32_t)s.tag, s.gw);
    /* And the nodes it knows. */
    for (uint32_t i = 0; i < n; i++) {
        char name[TR_NAME_MAX + 1], ep[S_EP_MAX], k[41];
        if (tr_read_str_copy(rd, name, sizeof name) < 0 ||
            tr_read_str_copy(rd, ep, sizeof ep) < 0 ||
            tr_read_str_copy(rd, k, sizeof k) < 0)
            break;
        if (strcmp(name, r->node->name) == 0 ||
            s_peer_by_name(r, name, strlen(name)) != NULL ||
            !s_is_endpoint(ep))
            continue;
        if (!r->plaintext && !s_key_allowed(r, k))
            continue; /* it could not connect to us anyway */
        s_peer_t *q = s_peer_add(r, name, ep, k);
        if (q != NULL)
            s_hello(r, q);
    }
}

/* A troupe frame from another node for the gateway itself. */
static void s_serve(tr__remote_t *r, s_peer_t *p, zmq_msg_t *zm);

/* A batch received from a node: its frames go to their actors without a
 * copy, each pointing into it; the last one freed frees it. */
typedef struct s_inbatch {
    zmq_msg_t msg;
    _Atomic int refs;
} s_inbatch_t;

static void
s_inbatch_unref(s_inbatch_t *b)
{
    if (atomic_fetch_sub(&b->refs, 1) == 1) {
        zmq_msg_close(&b->msg);
        free(b);
    }
}

static void
s_inbatch_free(void *data, void *hint)
{
    (void)data;
    s_inbatch_unref(hint);
}

static void
s_deliver_in(tr__remote_t *r)
{
    int rc = tr__port_forward(r->port, &r->in_held, r->in_to, r->in_box);
    if (rc == TR_EAGAIN) {
        if (tr__ms_left(r->in_since) != 0)
            return; /* still held */
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': a message for %llx from "
                "another node dropped: its mailbox stayed full",
                r->node->name, (unsigned long long)r->in_to);
    } else if (rc == TR_ENOENT) {
        /* Usually an actor that has just ended: no warning. */
        TR__LOG(TR_LOG_INFO, "nodes", "node '%s': a message for %llx from "
                "another node dropped: no such actor", r->node->name,
                (unsigned long long)r->in_to);
    }
    if (rc != 0) {
        TR__STAT_INC(r->node, dead_letters);
        zmq_msg_close(&r->in_held);
    }
    r->in_holding = false;
}

static void
s_on_frame(tr__remote_t *r, s_peer_t *p, char box, zmq_msg_t *zm)
{
    uint8_t *data = zmq_msg_data(zm);
    size_t len = zmq_msg_size(zm);
    tr__env_t env;
    const char *tag;
    size_t taglen, plen;
    const uint8_t *payload;
    int rc = tr__env_parse(data, len, &env, &tag, &taglen, &payload, &plen);
    if (rc != 0) {
        TR__STAT_INC(r->node, bad_frames);
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': malformed frame from node "
                "'%s' dropped: %s", r->node->name, p->name, tr_strerror(rc));
        zmq_msg_close(zm);
        return;
    }
    if (tr__id_tag(env.sender) != p->tag ||
        tr__id_tag(env.target) != r->node->tag) {
        TR__STAT_INC(r->node, bad_frames);
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': misaddressed frame from "
                "node '%s' dropped: %llx to %llx", r->node->name, p->name,
                (unsigned long long)env.sender,
                (unsigned long long)env.target);
        zmq_msg_close(zm);
        return;
    }
    s_deadline_in(data);
    if ((env.flags & TR__F_SYSTEM) && env.code == TR__SYS_DOWN) {
        /* A watch of ours ends: forget it. */
        tr_reader_t rd;
        int64_t a = 0;
        tr_reader_init_bytes(&rd, payload, plen);
        if (tr_read_int(&rd, &a) == 0) {
            for (size_t i = 0; i < p->nw;) {
                if (p->watches[i].target == (tr_id_t)a &&
                    p->watches[i].watcher == env.target)
                    p->watches[i] = p->watches[--p->nw];
                else
                    i++;
            }
        }
        if (env.target == r->rec->id) {
            s_down_to(r, r->rec->id, (tr_id_t)a, 0);
            zmq_msg_close(zm);
            return;
        }
    }
    if (env.target == r->rec->id) {
        s_serve(r, p, zm);
        return;
    }
    r->in_held = *zm; /* zm is ours to move */
    r->in_to = env.target;
    r->in_box = box == 'M' ? TR__BOX_MAILBOX : TR__BOX_INBOX;
    r->in_since = tr__deadline_after_ms(r->node->opts.send_timeout_ms);
    r->in_holding = true;
    s_deliver_in(r);
}

/* Hand out the entries of r->in_batch from r->in_off on, until one
 * waits for room (held) or the batch is done. */
static void
s_batch_step(tr__remote_t *r)
{
    s_inbatch_t *b = r->in_batch;
    const uint8_t *base = zmq_msg_data(&b->msg);
    size_t size = zmq_msg_size(&b->msg);
    while (!r->in_holding && r->in_off < size) {
        uint32_t len = 0;
        if (size - r->in_off < 5 ||
            (len = tr__get32(base + r->in_off)) > size - r->in_off - 5 ||
            (base[r->in_off + 4] != 'M' && base[r->in_off + 4] != 'I')) {
            TR__STAT_INC(r->node, bad_frames);
            TR__LOG(TR_LOG_WARN, "nodes", "node '%s': malformed batch from "
                    "node '%s': the rest dropped", r->node->name,
                    r->in_peer->name);
            break;
        }
        char box = (char)base[r->in_off + 4];
        uint8_t *data = (uint8_t *)base + r->in_off + 5;
        r->in_off += 5 + (size_t)len;
        zmq_msg_t sub;
        atomic_fetch_add(&b->refs, 1);
        if (zmq_msg_init_data(&sub, data, len, s_inbatch_free, b) != 0) {
            atomic_fetch_sub(&b->refs, 1);
            TR__STAT_INC(r->node, dead_letters);
            continue;
        }
        s_on_frame(r, r->in_peer, box, &sub);
    }
    if (!r->in_holding) {
        r->in_batch = NULL;
        s_inbatch_unref(b);
    }
}

static void
s_on_batch(tr__remote_t *r, s_peer_t *p, zmq_msg_t *zm)
{
    s_inbatch_t *b = malloc(sizeof *b);
    if (b == NULL) {
        TR__STAT_INC(r->node, dead_letters);
        zmq_msg_close(zm);
        return;
    }
    b->msg = *zm; /* moved */
    atomic_init(&b->refs, 1);
    r->in_batch = b;
    r->in_peer = p;
    r->in_off = 0;
    s_batch_step(r);
}

/* For a line: a peer that has said hello has a name. */
static const char *
s_who(const s_peer_t *p, char *buf, size_t cap)
{
    if (p != NULL)
        snprintf(buf, cap, "'%s'", p->name);
    else
        snprintf(buf, cap, "a peer not yet known");
    return buf;
}

static void
s_router_read(tr__remote_t *r)
{
    for (int n = 0; n < S_BATCH && !r->in_holding && r->in_batch == NULL;
         n++) {
        zmq_msg_t rid, boxm, zm;
        zmq_msg_init(&rid);
        if (zmq_msg_recv(&rid, r->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&rid);
            return;
        }
        zmq_msg_init(&boxm);
        zmq_msg_init(&zm);
        bool ok = zmq_msg_more(&rid) &&
                  zmq_msg_recv(&boxm, r->router, 0) >= 0 &&
                  zmq_msg_more(&boxm) && zmq_msg_size(&boxm) == 1 &&
                  zmq_msg_recv(&zm, r->router, 0) >= 0 && !zmq_msg_more(&zm);
        while (zmq_msg_more(&zm) || (!ok && zmq_msg_more(&boxm))) {
            /* a message of other parts: drop the rest of it */
            zmq_msg_t rest;
            zmq_msg_init(&rest);
            int got = zmq_msg_recv(&rest, r->router, 0);
            bool more = got >= 0 && zmq_msg_more(&rest);
            zmq_msg_close(&rest);
            ok = false;
            if (!more)
                break;
        }
        char box = 0;
        if (ok)
            box = *(const char *)zmq_msg_data(&boxm);
        s_peer_t *p = s_peer_by_name(r, zmq_msg_data(&rid), zmq_msg_size(&rid));
        zmq_msg_close(&rid);
        char key[41] = "", from[64] = "";
        if (ok && box == 'C') { /* who it is: only the handshake asks */
            const char *v = zmq_msg_gets(&boxm, "User-Id");
            if (v != NULL && !r->plaintext)
                snprintf(key, sizeof key, "%s", v);
            if ((v = zmq_msg_gets(&boxm, "Peer-Address")) != NULL)
                snprintf(from, sizeof from, "%s", v);
        }
        zmq_msg_close(&boxm);
        if (!ok) {
            TR__STAT_INC(r->node, bad_frames);
            char buf[TR_NAME_MAX + 8];
            const char *who = s_who(p, buf, sizeof buf);
            TR__LOG(TR_LOG_WARN, "nodes", "node '%s': a message from %s "
                    "dropped: not two parts, a box byte and a frame",
                    r->node->name, who);
            zmq_msg_close(&zm);
            continue;
        }
        if (p != NULL && p->up)
            p->heard_ns = tr__now_ns();
        if (box == 'C') {
            tr_msg_t view;
            int rc = tr__msg_view_init(&view, &zm);
            if (rc != 0) {
                TR__STAT_INC(r->node, bad_frames);
                char buf[TR_NAME_MAX + 8];
                const char *who = s_who(p, buf, sizeof buf);
                TR__LOG(TR_LOG_WARN, "nodes", "node '%s': malformed control "
                        "frame from %s dropped: %s", r->node->name, who,
                        tr_strerror(rc));
                zmq_msg_close(&zm);
                continue;
            }
            tr_reader_t rd;
            tr_reader_init(&rd, &view);
            if (tr_msg_is(&view, "$hello"))
                s_on_hello(r, &rd, key, from[0] ? from : NULL);
            else if (tr_msg_is(&view, "$welcome"))
                s_on_welcome(r, &rd, key, from[0] ? from : NULL);
            else if (tr_msg_is(&view, "$bye")) {
                r->byes++; /* its connection's end is no drop */
                r->bye_ns = tr__now_ns();
                if (p != NULL && p->up) {
                    s_peer_down(r, p, "it left");
                    if (p->client)
                        s_client_forget(r, p);
                }
            }
            /* $ping: heard, that is all */
            tr__msg_view_close(&view);
        } else if (box == 'B' && p != NULL && p->up && !p->client) {
            s_on_batch(r, p, &zm);
        } else if ((box == 'M' || box == 'I') && p != NULL && p->up) {
            s_on_frame(r, p, box, &zm);
        } else {
            /* From a node that is not (or no longer) connected: what it
             * sent before its hello, or after it was given up. */
            TR__STAT_INC(r->node, dead_letters);
            zmq_msg_close(&zm);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Requests to the gateway (another node's, or a thread of ours)      */
/* ------------------------------------------------------------------ */

static void
s_answer(tr__remote_t *r, const tr__env_t *req, int code, tr_msg_t **reply)
{
    tr_msg_t *m = reply ? *reply : NULL;
    if (m == NULL && tr__msg_create_sys(&m, "$error") != 0)
        return;
    m->env.flags = TR__F_REPLY | (code < 0 ? TR__F_ERROR : 0);
    m->env.code = code < 0 ? code : 0;
    m->env.corr = req->corr;
    m->env.deadline_ns = 0;
    if (tr__port_send(r->port, req->sender, &m, TR__BOX_INBOX, TR__NOWAIT) !=
        0)
        tr_msg_destroy(&m);
    if (reply)
        *reply = NULL;
}

/* Spawns asked for by other nodes run in an actor of their own, the
 * node's spawner: an init may take its time, and the gateway never
 * waits. The gateway hands it the request as it came (sender kept), and
 * it answers the asker directly. */
static int
s_spawner(tr_actor_t *self, void *state, const tr_msg_t *req)
{
    (void)state;
    if (!tr_msg_is(req, "$spawn") || !tr_msg_is_request(req))
        return 0;
    tr_reader_t rd;
    char beh[TR_NAME_MAX + 1], name[TR_NAME_MAX + 1] = "";
    uint64_t mode = 0, hwm = 0, keep = 0, hb = 0;
    const void *args = NULL;
    size_t alen = 0;
    tr_reader_init(&rd, req);
    int rc = tr_read_str_copy(&rd, beh, sizeof beh) < 0 ? TR_EPROTO : 0;
    if (rc == 0 && tr_read_type(&rd) == TR_TYPE_NIL)
        (void)tr_read_nil(&rd);
    else if (rc == 0 && tr_read_str_copy(&rd, name, sizeof name) < 0)
        rc = TR_EPROTO;
    if (rc == 0 &&
        (tr_read_uint(&rd, &mode) != 0 || tr_read_uint(&rd, &hwm) != 0 ||
         tr_read_uint(&rd, &keep) != 0 || tr_read_uint(&rd, &hb) != 0 ||
         mode > TR_PROCESS || hwm > INT32_MAX || hb > INT32_MAX))
        rc = TR_EPROTO;
    if (rc == 0 && tr_read_type(&rd) == TR_TYPE_BIN &&
        tr_read_bin(&rd, &args, &alen) != 0)
        rc = TR_EPROTO;
    tr_msg_t *amsg = NULL;
    tr_id_t id = 0;
    if (rc == 0 && args != NULL &&
        ((rc = tr_msg_create(&amsg, "args")) != 0 ||
         (rc = tr_msg_add_raw(amsg, args, alen)) != 0))
        rc = rc == TR_ENOMEM ? rc : TR_EPROTO;
    tr_node_t *node = tr_actor_node(self);
    if (rc == 0) {
        tr_spawn_opts_t so = {.name = name[0] ? name : NULL,
                              .mode = (tr_mode_t)mode,
                              .mailbox_hwm = (int)hwm,
                              .keep_name = keep != 0,
                              .heartbeat_ms = (int)hb,
                              .args = amsg};
        tr__place_off = true; /* placed by the asker */
        rc = tr_spawn(node, beh, &so, &id);
        tr__place_off = false;
        TR__LOG(TR_LOG_INFO, "nodes", "node '%s': spawn of '%s' asked by "
                "%llx: %s", node->name, beh,
                (unsigned long long)tr_msg_sender(req),
                rc == 0 ? "started" : tr_strerror(rc));
    }
    tr_msg_destroy(&amsg);
    if (rc != 0)
        return tr_reply_error(self, req, rc);
    tr_msg_t *m = NULL;
    if ((rc = tr__msg_create_sys(&m, "$spawned")) == 0 &&
        (rc = tr_msg_add_uint(m, id)) == 0)
        rc = tr_reply(self, req, &m);
    tr_msg_destroy(&m);
    return rc == TR_ENOENT ? 0 : rc; /* an asker gone is not our failure */
}
TR_BEHAVIOUR(tr_spawner, .handle = s_spawner);

static void
s_serve(tr__remote_t *r, s_peer_t *p, zmq_msg_t *zm)
{
    tr_msg_t view;
    if (tr__msg_view_init(&view, zm) != 0) {
        TR__STAT_INC(r->node, bad_frames);
        zmq_msg_close(zm);
        return;
    }
    tr__env_t env = view.env;
    tr_reader_t rd;
    tr_reader_init(&rd, &view);
    if ((env.flags & TR__F_SYSTEM) && env.code == TR__SYS_RMON) {
        /* Another node's actor watches one of ours. */
        int64_t target = 0, reason = TR_ENOENT;
        if (tr_read_int(&rd, &target) == 0) {
            tr__rec_t *rec = tr__reg_get(&r->node->reg, (tr_id_t)target);
            if (rec == NULL || rec->kind != TR__REC_ACTOR ||
                tr__rec_monitor(rec, env.sender) != 0) {
                int why;
                if (tr__reg_grave(&r->node->reg, (tr_id_t)target, &why) == 0)
                    reason = why;
                s_down_to(r, env.sender, (tr_id_t)target, (int)reason);
            }
            tr__rec_unref(&rec);
        }
    } else if ((env.flags & TR__F_REQUEST) && tr_msg_is(&view, "$whereis")) {
        char name[TR_NAME_MAX + 1];
        tr_id_t id = 0;
        int rc = tr_read_str_copy(&rd, name, sizeof name) < 0 ? TR_EPROTO : 0;
        if (rc == 0)
            rc = tr__reg_resolve(&r->node->reg, name, 0, 0, &id);
        tr_msg_t *m = NULL;
        if (rc == 0 && (rc = tr__msg_create_sys(&m, "$whereis")) == 0 &&
            (rc = tr_msg_add_uint(m, id)) != 0)
            tr_msg_destroy(&m);
        s_answer(r, &env, rc, rc == 0 ? &m : NULL);
    } else if ((env.flags & TR__F_REQUEST) && tr_msg_is(&view, "$control")) {
        /* The control endpoint's requests, over tcp: from a peer the
         * cluster file admits, or, on a node that opted out of CURVE
         * (insecure_plaintext), from anyone (docs/control.md). */
        const void *req = NULL, *ans = NULL;
        size_t rlen = 0, alen = 0;
        void *buf = NULL;
        tr_msg_t *m = NULL;
        int rc = tr_read_bin(&rd, &req, &rlen) != 0 ? TR_EPROTO : 0;
        if (rc == 0 &&
            (rc = tr__control_answer(r->node, req, rlen, &buf, &alen)) == 0)
            ans = buf;
        if (rc == 0 && (rc = tr__msg_create_sys(&m, "$control")) == 0 &&
            (rc = tr_msg_add_bin(m, ans, alen)) != 0)
            tr_msg_destroy(&m);
        free(buf);
        s_answer(r, &env, rc, rc == 0 ? &m : NULL);
    } else if ((env.flags & TR__F_REQUEST) && tr_msg_is(&view, "$spawn")) {
        /* To the spawner, as it came: it answers the asker. */
        zmq_msg_t fw;
        int rc = TR_ECLOSED;
        tr_id_t sp = atomic_load(&r->spawner);
        if (sp != 0 && zmq_msg_init_size(&fw, view.len) == 0) {
            memcpy(zmq_msg_data(&fw), view.buf, view.len);
            tr__put64((uint8_t *)zmq_msg_data(&fw) + TR__ENV_OFF_TARGET, sp);
            rc = tr__port_forward(r->port, &fw, sp, TR__BOX_MAILBOX);
            if (rc != 0)
                zmq_msg_close(&fw);
        }
        if (rc != 0)
            s_answer(r, &env, rc == TR_EAGAIN ? TR_EAGAIN : TR_ECLOSED, NULL);
    } else {
        TR__STAT_INC(r->node, bad_frames);
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': unknown request '%s' from "
                "node '%s'", r->node->name, tr_msg_tag(&view),
                p ? p->name : "(here)");
        if (env.flags & TR__F_REQUEST)
            s_answer(r, &env, TR_EUNHANDLED, NULL);
    }
    tr__msg_view_close(&view);
}

/* ------------------------------------------------------------------ */
/* To other nodes                                                      */
/* ------------------------------------------------------------------ */

static int
s_push_out(tr__remote_t *r, s_peer_t *p, char box, zmq_msg_t *zm)
{
    void *sock = s_toward(r, p);
    if (sock == NULL ||
        zmq_send(sock, &box, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 1)
        return zmq_errno() == EAGAIN && !p->client ? TR_EAGAIN : TR_ESYS;
    /* The first part went: the rest of the message always does. */
    return tr__zmsg_send(zm, sock, 0);
}

static void
s_free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* Send p's batch: 0, or TR_EAGAIN (a full connection: kept for later). */
static int
s_flush(s_peer_t *p)
{
    if (p->bcount == 0)
        return 0;
    if (p->dealer == NULL) { /* down meanwhile */
        p->blen = 0;
        p->bcount = 0;
        return 0;
    }
    if (zmq_send(p->dealer, "B", 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) != 1)
        return zmq_errno() == EAGAIN ? TR_EAGAIN : TR_ESYS;
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, p->batch, p->blen, s_free_buf, NULL) != 0 ||
        tr__zmsg_send(&m, p->dealer, 0) != 0) {
        zmq_msg_close(&m);
        return TR_ESYS; /* (does not happen once the first part went) */
    }
    p->batch = NULL; /* ZeroMQ's now */
    p->blen = p->bcap = 0;
    p->bcount = 0;
    return 0;
}

static void
s_flush_all(tr__remote_t *r)
{
    bool blocked = false;
    for (size_t i = 0; i < r->npeers; i++)
        blocked |= s_flush(r->peers[i]) == TR_EAGAIN;
    r->out_blocked = blocked;
}

/* Queue a frame for p (its deadline already made relative): into p's
 * batch for a node, straight out for a client. zm is consumed, except
 * on TR_EAGAIN (a client's full connection). */
/* Append one frame's bytes to node p's batch. */
static int
s_batch_add(tr__remote_t *r, s_peer_t *p, char box, const void *frame,
            size_t len)
{
    if (p->blen + 5 + len > p->bcap) {
        size_t cap = p->bcap ? p->bcap : 4096;
        while (cap < p->blen + 5 + len)
            cap *= 2;
        uint8_t *nb = realloc(p->batch, cap);
        if (nb == NULL)
            return TR_ENOMEM;
        p->batch = nb;
        p->bcap = cap;
    }
    uint8_t *at = p->batch + p->blen;
    tr__put32(at, (uint32_t)len);
    at[4] = (uint8_t)box;
    memcpy(at + 5, frame, len);
    p->blen += 5 + len;
    p->bcount++;
    if ((p->blen >= S_BATCH_BYTES || p->bcount >= S_BATCH_FRAMES) &&
        s_flush(p) == TR_EAGAIN)
        r->out_blocked = true;
    return 0;
}

static int
s_enqueue(tr__remote_t *r, s_peer_t *p, char box, zmq_msg_t *zm)
{
    if (p->client)
        return s_push_out(r, p, box, zm);
    int rc = s_batch_add(r, p, box, zmq_msg_data(zm), zmq_msg_size(zm));
    zmq_msg_close(zm);
    return rc;
}

/* A local watcher asks (TR__SYS_RMON to the gateway) to watch target. */
static void
s_watch(tr__remote_t *r, tr_id_t watcher, tr_id_t target)
{
    s_peer_t *p = s_peer_by_tag(r, tr__id_tag(target));
    if (p == NULL || !p->up) {
        s_down_to(r, watcher, target, TR_ENOCONN);
        return;
    }
    if (tr__grow((void **)&p->watches, p->nw, &p->capw, sizeof *p->watches,
                 16) != 0) {
        s_down_to(r, watcher, target, TR_ENOMEM);
        return;
    }
    p->watches[p->nw++] = (s_watch_t){watcher, target};
    tr_msg_t *m;
    if (tr__msg_create_sys(&m, "$rmon") != 0)
        return;
    m->env.flags = TR__F_SYSTEM;
    m->env.code = TR__SYS_RMON;
    m->env.sender = watcher;
    m->env.target = p->gw;
    zmq_msg_t zm;
    if (tr_msg_add_int(m, (int64_t)target) == 0 &&
        tr_msg_add_int(m, 0) == 0) {
        if (!p->client) {
            size_t len;
            const uint8_t *frame = tr__msg_frame(m, &len);
            (void)s_batch_add(r, p, 'I', frame, len); /* a copy */
        } else if (tr__msg_zmq_lend(m, &zm) == 0) {
            if (s_push_out(r, p, 'I', &zm) == 0)
                m = NULL;
            else
                tr__msg_zmq_abandon(m, &zm);
        }
    }
    tr_msg_destroy(&m);
}

/* Bind the mailbox and inbox on ipc too, for process actors of this
 * node (their service sends EXPOSE when one looks the gateway up). */
static void
s_expose(tr__remote_t *r)
{
    if (atomic_load(&r->rec->exposed))
        return;
    char ep[TR__RUNDIR_MAX + 64];
    if (tr__endpoint_ipc(r->node, ep, sizeof ep, r->rec->id,
                         TR__BOX_MAILBOX) != 0 ||
        zmq_bind(r->mbox, ep) != 0 ||
        tr__endpoint_ipc(r->node, ep, sizeof ep, r->rec->id,
                         TR__BOX_INBOX) != 0 ||
        zmq_bind(r->inbox, ep) != 0) {
        TR__LOG(TR_LOG_ERROR, "nodes", "node '%s': the gateway cannot bind "
                "for process actors: %s", r->node->name,
                zmq_strerror(zmq_errno()));
        return;
    }
    atomic_store(&r->rec->exposed, true);
}

/* A frame for another node (or for the gateway) from a thread here. */
static void
s_on_out(tr__remote_t *r, char box, zmq_msg_t *zm)
{
    uint8_t *data = zmq_msg_data(zm);
    size_t len = zmq_msg_size(zm);
    tr__env_t env;
    const char *tag;
    size_t taglen, plen;
    const uint8_t *payload;
    if (tr__env_parse(data, len, &env, &tag, &taglen, &payload, &plen) != 0) {
        TR__STAT_INC(r->node, bad_frames);
        zmq_msg_close(zm);
        return;
    }
    if (env.target == r->rec->id) {
        if ((env.flags & TR__F_SYSTEM) && env.code == TR__SYS_RMON) {
            tr_reader_t rd;
            int64_t a = 0, b = 0;
            tr_reader_init_bytes(&rd, payload, plen);
            if (tr_read_int(&rd, &a) == 0 && tr_read_int(&rd, &b) == 0)
                s_watch(r, b ? r->rec->id : env.sender, (tr_id_t)a);
        } else if ((env.flags & TR__F_SYSTEM) &&
                   env.code == TR__SYS_EXPOSE) {
            s_expose(r); /* a process actor here sends to other nodes */
        } else if ((env.flags & TR__F_SYSTEM) && env.code == TR__SYS_SYNC) {
            /* a sender retiring its connection to us: all read */
            tr_reader_t rd;
            int64_t token = 0;
            tr_reader_init_bytes(&rd, payload, plen);
            if (tr_read_int(&rd, &token) == 0)
                (void)tr__port_send_sys(r->port, env.sender, TR__SYS_SYNCED,
                                        (int64_t)r->rec->id, token);
        } else {
            TR__STAT_INC(r->node, bad_frames);
        }
        zmq_msg_close(zm);
        return;
    }
    s_peer_t *p = s_peer_by_tag(r, tr__id_tag(env.target));
    if (p == NULL || !p->up) {
        zmq_msg_close(zm);
        TR__STAT_INC(r->node, dead_letters);
        if (env.flags & TR__F_REQUEST)
            s_answer(r, &env, TR_ENOCONN, NULL);
        return;
    }
    s_deadline_out(data);
    int rc = s_enqueue(r, p, box, zm);
    if (rc == TR_EAGAIN) {
        r->out_held = *zm;
        r->out_peer = p;
        r->out_box = box;
        r->out_holding = true;
        return;
    }
    if (rc != 0) {
        TR__STAT_INC(r->node, dead_letters);
        zmq_msg_close(zm);
    }
}

static void
s_pull_read(tr__remote_t *r, void *sock, char box)
{
    for (int n = 0; n < S_BATCH && !r->out_holding && !r->out_blocked; n++) {
        zmq_msg_t zm;
        zmq_msg_init(&zm);
        if (zmq_msg_recv(&zm, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&zm);
            return;
        }
        s_on_out(r, box, &zm);
    }
}

/* ------------------------------------------------------------------ */
/* ZAP: who may connect                                                */
/* ------------------------------------------------------------------ */

static void
s_zap(tr__remote_t *r)
{
    zmq_msg_t part[8];
    int n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, r->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < 8)
            part[n++] = m;
        else
            zmq_msg_close(&m);
    }
    if (n < 6) {
        for (int i = 0; i < n; i++)
            zmq_msg_close(&part[i]);
        return;
    }
    /* version, request id, domain, address, routing id, mechanism,
     * credentials... */
    const char *status = "400", *text = "not allowed";
    char user[41] = "";
    char addr[64];
    snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&part[3]),
             (const char *)zmq_msg_data(&part[3]));
    bool curve = zmq_msg_size(&part[5]) == 5 &&
                 memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0;
    bool null = zmq_msg_size(&part[5]) == 4 &&
                memcmp(zmq_msg_data(&part[5]), "NULL", 4) == 0;
    if (curve && n >= 7 && zmq_msg_size(&part[6]) == 32) {
        zmq_z85_encode(user, zmq_msg_data(&part[6]), 32);
        if (s_key_allowed(r, user)) {
            status = "200";
            text = "OK";
        } else {
            TR__LOG(TR_LOG_WARN, "nodes", "node '%s': refused a connection "
                    "from %s: key %s is not in the cluster file",
                    r->node->name, addr, user);
            user[0] = '\0';
        }
    } else if (null && r->plaintext) {
        status = "200";
        text = "OK";
    } else {
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': refused a connection from "
                "%s: mechanism %.*s", r->node->name, addr,
                (int)zmq_msg_size(&part[5]),
                (const char *)zmq_msg_data(&part[5]));
    }
    zmq_send(r->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(r->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]),
             ZMQ_SNDMORE);
    zmq_send(r->zap, status, 3, ZMQ_SNDMORE);
    zmq_send(r->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(r->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(r->zap, "", 0, 0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&part[i]);
}

/* ------------------------------------------------------------------ */
/* Connections that end                                                */
/* ------------------------------------------------------------------ */

/* libzmq drops a tcp or ipc connection by itself when the peer breaks
 * the protocol (a message over ZMQ_MAXMSGSIZE, bytes that are not ZMTP,
 * a handshake that fails or outlasts ZMQ_HANDSHAKE_IVL): the gateway
 * never sees what was sent, only that the connection ended, which the
 * ROUTER's monitor says (ZMQ_EVENT_DISCONNECTED, after a
 * HANDSHAKE_FAILED event when that was the cause). libzmq 4.3 says
 * neither which peer it was (only the fd) nor why a connection past its
 * handshake ended, so ends are weighed against the $byes read: an end
 * with no $bye outstanding is a connection cut or lost, counted
 * (dropped_connections) and logged. Read with the timers: nothing on
 * the message path. */

static const char *
s_end_why(uint16_t event, uint32_t value, char *buf, size_t cap)
{
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        snprintf(buf, cap, "the ZAP handler refused it (status %u)", value);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            snprintf(buf, cap, "its handshake failed: another security "
                     "mechanism (CURVE or plain text)");
        else
            snprintf(buf, cap, "its handshake failed: ZeroMQ protocol "
                     "error 0x%x", value);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        snprintf(buf, cap, "its handshake did not finish (closed, or too "
                 "slow)");
        break;
    default:
        snprintf(buf, cap, "a message over max_message_bytes, bytes that "
                 "are not ZeroMQ's, or the peer went away");
    }
    return buf;
}

/* One event of the monitor; *lines: how many were logged in this go. */
static void
s_conn_event(tr__remote_t *r, uint16_t event, uint32_t value, const char *ep,
             int *lines)
{
    if (event != ZMQ_EVENT_DISCONNECTED) { /* its end comes next */
        r->why_event = event;
        r->why_value = value;
        return;
    }
    uint16_t why = r->why_event;
    r->why_event = 0;
    /* A $bye excuses one end, soon after it: a peer that said it and
     * kept its connection must not excuse a later drop for ever. */
    if (r->byes > 0 && tr__now_ns() - r->bye_ns >
                           (uint64_t)r->down_after_ms * 1000000u)
        r->byes = 0;
    if (why == 0 && r->byes > 0) {
        r->byes--;
        return;
    }
    TR__STAT_INC(r->node, dropped_connections);
    if ((*lines)++ >= S_MON_LINES)
        return;
    char buf[128];
    const char *text = s_end_why(why, r->why_value, buf, sizeof buf);
    /* (the ZAP handler has logged whom it refused, and why) */
    TR__LOG(why == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? TR_LOG_INFO
                                                   : TR_LOG_WARN,
            "nodes", "node '%s': a connection to %s ended without a $bye: "
            "%s", r->node->name, ep, text);
}

static void
s_monitor_read(tr__remote_t *r)
{
    /* Not while the ROUTER waits: it is read first, below. */
    if (r->mon == NULL || r->in_holding || r->in_batch != NULL)
        return;
    struct {
        uint16_t event;
        uint32_t value;
        char ep[S_EP_MAX];
    } ev[S_MON_READ];
    int n = 0;
    while (n < S_MON_READ) {
        zmq_msg_t head, ep;
        zmq_msg_init(&head);
        if (zmq_msg_recv(&head, r->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            break;
        }
        /* [u16 event, u32 value][endpoint]: the parts come together */
        zmq_msg_init(&ep);
        if (zmq_msg_size(&head) == 6 && zmq_msg_more(&head) &&
            zmq_msg_recv(&ep, r->mon, 0) >= 0) {
            const uint8_t *d = zmq_msg_data(&head);
            memcpy(&ev[n].event, d, 2);
            memcpy(&ev[n].value, d + 2, 4);
            snprintf(ev[n].ep, sizeof ev[n].ep, "%.*s",
                     (int)zmq_msg_size(&ep), (const char *)zmq_msg_data(&ep));
            n++;
        }
        zmq_msg_close(&head);
        zmq_msg_close(&ep);
    }
    if (n == 0)
        return;
    /* libzmq handed a peer's $bye to the ROUTER before the end of its
     * connection to the monitor, but the two are different sockets, and
     * the ROUTER may not have been read since: read it now, so that the
     * $bye is counted before the end it excuses. */
    s_router_read(r);
    int lines = 0;
    for (int i = 0; i < n; i++)
        s_conn_event(r, ev[i].event, ev[i].value, ev[i].ep, &lines);
    if (lines > S_MON_LINES)
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': %d more connections "
                "ended without a $bye", r->node->name, lines - S_MON_LINES);
}

/* Watch the ROUTER's connections end (before it binds: no event is lost,
 * and libzmq's side of the monitor never sends with no one connected).
 * Without it the gateway runs all the same, uncounted. */
static void
s_monitor_open(tr__remote_t *r)
{
    snprintf(r->mon_ep, sizeof r->mon_ep, "inproc://tr-gwmon-%p", (void *)r);
    void *s = zmq_socket(r->node->zctx, ZMQ_PAIR);
    /* No high-water mark: libzmq sends events from its I/O thread with a
     * blocking send, which must never wait for the gateway. */
    int unbounded = 0;
    if (s == NULL || tr__sock_limits(s, S_EP_MAX, 0) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &unbounded, sizeof unbounded) != 0 ||
        zmq_socket_monitor(r->router, r->mon_ep, S_MON_EVENTS) != 0 ||
        zmq_connect(s, r->mon_ep) != 0) {
        TR__LOG(TR_LOG_WARN, "nodes", "node '%s': no monitor on the "
                "gateway (connections cut will not be counted): %s",
                r->node->name, zmq_strerror(zmq_errno()));
        zmq_socket_monitor(r->router, NULL, 0);
        if (s != NULL)
            zmq_close(s);
        return;
    }
    r->mon = s;
}

/* ------------------------------------------------------------------ */
/* The gateway's loop                                                  */
/* ------------------------------------------------------------------ */

static void
s_timers(tr__remote_t *r)
{
    uint64_t now = tr__now_ns();
    uint64_t ping = (uint64_t)r->ping_ms * 1000000u;
    uint64_t down = (uint64_t)r->down_after_ms * 1000000u;
    for (size_t i = 0; i < r->npeers; i++) {
        s_peer_t *p = r->peers[i];
        if (p->up) {
            if (r->in_holding) /* we are the slow one: not its fault */
                p->heard_ns = now;
            if (now - p->heard_ns > down) {
                s_peer_down(r, p, "not heard from in time");
                if (p->client) {
                    s_client_forget(r, p); /* (the last one moved here) */
                    i--;
                }
                continue;
            }
            if (now - p->pinged_ns >= ping) {
                p->pinged_ns = now;
                (void)s_ctl(r, p, "$ping", NULL);
            }
        } else if (!p->client && now - p->hello_ns >= 2 * ping) {
            s_hello(r, p); /* until it answers (a client comes back) */
        }
    }
    /* Joins asked for since. */
    pthread_mutex_lock(&r->mu);
    char **c = r->connects;
    size_t n = r->nconnects;
    r->connects = NULL;
    r->nconnects = r->capconnects = 0;
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < n; i++) {
        s_join(r, c[i]);
        free(c[i]);
    }
    free(c);
}

static void *
s_main(void *arg)
{
    tr__remote_t *r = arg;
    void *stop = zmq_socket(r->node->zctx, ZMQ_PAIR);
    if (stop == NULL || tr__sock_limits(stop, TR__MAX_MSG_WAKE, 0) != 0 ||
        zmq_connect(stop, r->stop_ep) != 0 ||
        tr__port_get(r->node, &r->port) != 0) {
        TR__LOG(TR_LOG_ERROR, "nodes", "node '%s': the gateway cannot start",
                r->node->name);
        if (stop != NULL)
            zmq_close(stop);
        return NULL;
    }
    if (r->seeds != NULL)
        s_join_list(r, r->seeds);
    uint64_t next_timers = 0;
    for (;;) {
        zmq_pollitem_t it[5] = {
            {stop, 0, ZMQ_POLLIN, 0},
            {r->router, 0,
             r->in_holding || r->in_batch != NULL ? 0 : ZMQ_POLLIN, 0},
            {r->inbox, 0, r->out_holding || r->out_blocked ? 0 : ZMQ_POLLIN,
             0},
            {r->mbox, 0, r->out_holding || r->out_blocked ? 0 : ZMQ_POLLIN,
             0},
            {r->zap, 0, ZMQ_POLLIN, 0}, /* last: absent in plain text */
        };
        int64_t wait = tr__ms_left(next_timers);
        if (wait < 0 || wait > S_POLL_MAX_MS)
            wait = S_POLL_MAX_MS;
        if (r->in_holding || r->out_holding || r->out_blocked)
            wait = 1;
        if (zmq_poll(it, r->zap ? 5 : 4, (long)wait) < 0 &&
            zmq_errno() != EINTR)
            break;
        if ((it[0].revents & ZMQ_POLLIN) || atomic_load(&r->stopping))
            break;
        if (r->zap != NULL && (it[4].revents & ZMQ_POLLIN))
            s_zap(r);
        if (r->in_holding) {
            s_deliver_in(r);
            if (!r->in_holding && r->in_batch != NULL)
                s_batch_step(r); /* the rest of the batch */
        }
        if (it[1].revents & ZMQ_POLLIN)
            s_router_read(r);
        if (r->out_holding) {
            int rc = s_push_out(r, r->out_peer, r->out_box, &r->out_held);
            if (rc != TR_EAGAIN) {
                if (rc != 0) {
                    TR__STAT_INC(r->node, dead_letters);
                    zmq_msg_close(&r->out_held);
                }
                r->out_holding = false;
            }
        }
        if (it[2].revents & ZMQ_POLLIN)
            s_pull_read(r, r->inbox, 'I');
        if (it[3].revents & ZMQ_POLLIN)
            s_pull_read(r, r->mbox, 'M');
        /* What was read goes now, one message a node. */
        s_flush_all(r);
        if (tr__now_ns() >= next_timers) {
            s_timers(r);
            s_monitor_read(r);
            next_timers = tr__deadline_after_ms(
                r->ping_ms < S_POLL_MAX_MS ? r->ping_ms : S_POLL_MAX_MS);
        }
    }
    /* Leaving: say so, so that the others need not wait to notice, nor
     * count our connections' end as a drop; the $bye gets a moment to go
     * (closing a socket with no linger would throw it away). */
    for (size_t i = 0; i < r->npeers; i++) {
        s_peer_t *p = r->peers[i];
        if (p->up && s_ctl(r, p, "$bye", NULL) == 0 && p->dealer != NULL)
            s_sockopt_int(p->dealer, ZMQ_LINGER, S_BYE_LINGER_MS);
    }
    zmq_close(stop);
    return NULL;
}

static int
s_bind_box(tr__remote_t *r, tr__box_t box, void **out)
{
    int rc;
    char ep[64];
    void *s = tr__sock_open(r->node->zctx, ZMQ_PULL, 0,
                            box == TR__BOX_MAILBOX ? S_HWM : 0, &rc);
    if (s == NULL)
        return rc;
    tr__endpoint(ep, sizeof ep, r->rec->id, box);
    if (zmq_bind(s, ep) != 0) {
        rc = tr__zerr(zmq_errno(), "bind");
        zmq_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int
tr__remote_start(tr__remote_t *r)
{
    tr_node_t *node = r->node;
    int rc;
    if ((rc = tr__rec_new(&r->rec, tr__node_new_id(node), TR__REC_ACTOR,
                          NULL)) != 0)
        return rc;
    snprintf(r->rec->behaviour, sizeof r->rec->behaviour, "$gateway");
    r->rec->raw_reader = true; /* it forwards frames as they are */
    r->rec->hwm = S_HWM;
    if ((rc = tr__reg_add(&node->reg, r->rec)) != 0 ||
        (rc = s_bind_box(r, TR__BOX_MAILBOX, &r->mbox)) != 0 ||
        (rc = s_bind_box(r, TR__BOX_INBOX, &r->inbox)) != 0)
        return rc;
    if (!r->plaintext) {
        r->zap = zmq_socket(node->zctx, ZMQ_REP);
        if (r->zap == NULL)
            return tr__zerr(zmq_errno(), "ZAP handler");
        if ((rc = tr__sock_limits(r->zap, S_ZAP_MAX, 0)) != 0)
            return rc;
        if (zmq_bind(r->zap, "inproc://zeromq.zap.01") != 0)
            return tr__zerr(zmq_errno(), "ZAP handler");
    }
    r->router = tr__sock_open(node->zctx, ZMQ_ROUTER, S_HWM, S_HWM, &rc);
    if (r->router == NULL)
        return rc;
    /* This node's own limit (sockets get the process's largest). */
    if ((rc = tr__sock_limits(r->router, node->opts.max_message_bytes, 0)) !=
        0)
        return rc;
    /* A node that comes back under its name takes its routing id over
     * from its old connection, which the ROUTER may not have seen close. */
    s_sockopt_int(r->router, ZMQ_ROUTER_HANDOVER, 1);
    /* A peer that has not finished ZeroMQ's handshake by then (garbage
     * on the port, a slowloris) is hung up on. */
    s_sockopt_int(r->router, ZMQ_HANDSHAKE_IVL, r->down_after_ms);
    s_heartbeats(r, r->router);
    zmq_setsockopt(r->router, ZMQ_ZAP_DOMAIN, "troupe", 6);
    if (!r->plaintext) {
        s_sockopt_int(r->router, ZMQ_CURVE_SERVER, 1);
        zmq_setsockopt(r->router, ZMQ_CURVE_SECRETKEY, r->sec, 40);
    }
    s_monitor_open(r);
    /* Every endpoint listed; the first is the one other nodes are told. */
    char list[S_EP_MAX], *save = NULL;
    snprintf(list, sizeof list, "%s", r->listen);
    for (char *ep = strtok_r(list, ",", &save); ep != NULL;
         ep = strtok_r(NULL, ",", &save)) {
        if (zmq_bind(r->router, ep) != 0)
            return tr__refuse(TR_EINVAL, "node '%s': listen on %s: %s",
                              node->name, ep, zmq_strerror(zmq_errno()));
        size_t len = sizeof r->endpoint;
        if (r->endpoint[0] == '\0' &&
            zmq_getsockopt(r->router, ZMQ_LAST_ENDPOINT, r->endpoint, &len) !=
                0)
            snprintf(r->endpoint, sizeof r->endpoint, "%s", ep);
    }
    snprintf(r->stop_ep, sizeof r->stop_ep, "inproc://tr-gateway-%p",
             (void *)r);
    r->stop_tx = zmq_socket(node->zctx, ZMQ_PAIR);
    if (r->stop_tx == NULL)
        return TR_ESYS;
    if (tr__sock_limits(r->stop_tx, TR__MAX_MSG_WAKE, 0) != 0 ||
        zmq_bind(r->stop_tx, r->stop_ep) != 0 ||
        pthread_create(&r->thread, NULL, s_main, r) != 0)
        return TR_ESYS;
    r->running = true;
    TR__LOG(TR_LOG_INFO, "nodes", "node '%s' listens on %s (%s)", node->name,
            r->endpoint, r->plaintext ? "plain text" : "CURVE");
    return 0;
}

void
tr__remote_stop(tr__remote_t **rp)
{
    tr__remote_t *r = *rp;
    if (r == NULL)
        return;
    *rp = NULL;
    if (r->running) {
        /* The flag ends the loop within one poll even if the wake-up
         * cannot be sent (the thread not yet connected to it). */
        atomic_store(&r->stopping, true);
        zmq_send(r->stop_tx, "x", 1, ZMQ_DONTWAIT);
        pthread_join(r->thread, NULL);
    }
    if (r->rec != NULL) {
        atomic_store(&r->rec->dead, 1);
        tr__reg_remove(&r->node->reg, r->rec, false, 0);
        tr__rec_unref(&r->rec);
    }
    if (r->out_holding)
        zmq_msg_close(&r->out_held);
    if (r->in_holding)
        zmq_msg_close(&r->in_held);
    if (r->in_batch != NULL)
        s_inbatch_unref(r->in_batch);
    tr__sock_close(&r->stop_tx);
    if (r->mon != NULL) /* the monitor first: it must not send to no one */
        zmq_socket_monitor(r->router, NULL, 0);
    tr__sock_close(&r->mon);
    tr__sock_close(&r->router);
    tr__sock_close(&r->zap);
    tr__sock_close(&r->mbox);
    tr__sock_close(&r->inbox);
    for (size_t i = 0; i < r->npeers; i++) {
        tr__sock_close(&r->peers[i]->dealer);
        free(r->peers[i]->batch);
        free(r->peers[i]->watches);
        free(r->peers[i]);
    }
    for (size_t i = 0; i < r->nconnects; i++)
        free(r->connects[i]);
    free(r->connects);
    free(r->members);
    free(r->seeds);
    memset(r->sec, 0, sizeof r->sec);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* ------------------------------------------------------------------ */
/* For the rest of the runtime, and the public calls                   */
/* ------------------------------------------------------------------ */

int
tr__remote_spawner(tr__remote_t *r)
{
    tr_id_t id = 0;
    int rc = tr_spawn(r->node, "tr_spawner", NULL, &id);
    atomic_store(&r->spawner, id);
    return rc;
}

tr_id_t
tr__remote_rec_id(const tr__remote_t *r)
{
    return r->rec ? r->rec->id : 0;
}

tr__rec_t *
tr__remote_rec(tr_node_t *node)
{
    tr__remote_t *r = node->remote;
    if (r == NULL || r->rec == NULL)
        return NULL;
    tr__rec_ref(r->rec);
    return r->rec;
}

int
tr__remote_watch(tr__port_t *port, tr_id_t target)
{
    /* (node->gw: a process actor's node knows its parent's gateway) */
    tr_node_t *node = atomic_load_explicit(&port->node, memory_order_relaxed);
    return tr__port_send_sys(port, node->gw, TR__SYS_RMON, (int64_t)target,
                             0);
}

/* Wait (under r->mu) until the node called name is up; its gateway id. */
static int
s_await_locked(tr__remote_t *r, const char *name, size_t len,
               uint64_t deadline, tr_id_t *gw)
{
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000u),
                          .tv_nsec = (long)(deadline % 1000000000u)};
    for (;;) {
        s_peer_t *p = s_peer_by_name(r, name, len);
        if (p != NULL && p->up) {
            if (gw != NULL)
                *gw = p->gw;
            return 0;
        }
        int w = deadline == 0 ? pthread_cond_wait(&r->cv, &r->mu)
                              : pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (w == ETIMEDOUT)
            return TR_ETIMEDOUT;
    }
}

static int
s_gateway_of(tr_node_t *node, const char *at, size_t len, int64_t timeout_ms,
             tr_id_t *gw)
{
    tr__remote_t *r = node->remote;
    if (r == NULL)
        return tr__refuse(TR_ENOCONN, "node '%s' is not connected to other "
                          "nodes (no listen option)", node->name);
    uint64_t deadline = timeout_ms < 0 ? 0 : tr__deadline_after_ms(timeout_ms);
    pthread_mutex_lock(&r->mu);
    int rc = s_await_locked(r, at, len, deadline, gw);
    pthread_mutex_unlock(&r->mu);
    if (rc == TR_ETIMEDOUT)
        rc = tr__refuse(TR_ENOCONN, "node '%.*s' is not connected", (int)len,
                        at);
    return rc;
}

/* Ask a node's gateway; the reply's one uint into *v. */
static int
s_ask_gateway(tr_node_t *node, tr_id_t gw, tr_msg_t **msg, int timeout_ms,
              uint64_t *v)
{
    tr_future_t *f;
    tr_msg_t *reply = NULL;
    int rc = tr_ask_id(node, gw, msg, timeout_ms, &f);
    if (rc != 0) {
        tr_msg_destroy(msg);
        return rc;
    }
    rc = tr_future_get(f, TR_FOREVER, &reply);
    if (rc == TR_EDEAD && tr_future_exit_reason(f) == TR_ENOCONN)
        rc = TR_ENOCONN;
    tr_future_destroy(&f);
    if (rc == 0) {
        tr_reader_t rd;
        tr_reader_init(&rd, reply);
        if (tr_read_uint(&rd, v) != 0)
            rc = TR_EPROTO;
    }
    tr_msg_destroy(&reply);
    return rc;
}

int
tr__remote_whereis(tr_node_t *node, const char *name, size_t namelen,
                   const char *at, int64_t timeout_ms, tr_id_t *id)
{
    tr__remote_t *r = node->remote;
    size_t atlen = strlen(at);
    if (namelen == 0 || namelen > TR_NAME_MAX || atlen == 0 ||
        atlen > TR_NAME_MAX)
        return tr__refuse(namelen > TR_NAME_MAX || atlen > TR_NAME_MAX
                              ? TR_ENAMETOOLONG
                              : TR_EINVAL,
                          "name '%.*s@%s'", (int)namelen, name, at);
    char key[2 * TR_NAME_MAX + 2];
    snprintf(key, sizeof key, "%.*s@%s", (int)namelen, name, at);
    if (r != NULL) {
        pthread_mutex_lock(&r->mu);
        for (size_t i = 0; i < r->nnames; i++)
            if (strcmp(r->names[i].key, key) == 0) {
                *id = r->names[i].id;
                pthread_mutex_unlock(&r->mu);
                return 0;
            }
        pthread_mutex_unlock(&r->mu);
    }
    tr_id_t gw;
    int rc = s_gateway_of(node, at, atlen, timeout_ms, &gw);
    if (rc != 0)
        return rc;
    tr_msg_t *m;
    if ((rc = tr__msg_create_sys(&m, "$whereis")) != 0)
        return rc;
    if ((rc = tr_msg_add_strn(m, name, namelen)) != 0) {
        tr_msg_destroy(&m);
        return rc;
    }
    uint64_t v = 0;
    rc = s_ask_gateway(node, gw,  &m,
                       timeout_ms < 0 || timeout_ms > INT32_MAX
                           ? node->opts.ask_timeout_ms
                           : (int)timeout_ms,
                       &v);
    if (rc != 0)
        return rc;
    *id = v;
    pthread_mutex_lock(&r->mu);
    if (r->nnames < S_NAMES_MAX) {
        snprintf(r->names[r->nnames].key, sizeof r->names[0].key, "%s", key);
        r->names[r->nnames++].id = v;
    }
    pthread_mutex_unlock(&r->mu);
    /* The gateway watches it, to forget it when it ends. */
    tr__port_t *p;
    if (tr__port_get(node, &p) == 0)
        (void)tr__port_send_sys(p, r->rec->id, TR__SYS_RMON, (int64_t)v, 1);
    return 0;
}

int
tr_node_endpoint(const tr_node_t *node, char *buf, size_t cap)
{
    if (node == NULL || buf == NULL)
        return TR_EINVAL;
    if (node->remote == NULL)
        return TR_ENOENT;
    if ((size_t)snprintf(buf, cap, "%s", node->remote->endpoint) >= cap)
        return TR_ERANGE;
    return 0;
}

int
tr_node_await(tr_node_t *node, const char *peer, int timeout_ms)
{
    if (node == NULL || peer == NULL || peer[0] == '\0' ||
        timeout_ms < TR_FOREVER)
        return TR_EINVAL;
    tr__remote_t *r = node->remote;
    if (r == NULL)
        return TR_ENOCONN;
    uint64_t deadline =
        timeout_ms < 0 ? 0 : tr__deadline_after_ms(timeout_ms);
    pthread_mutex_lock(&r->mu);
    int rc = s_await_locked(r, peer, strlen(peer), deadline, NULL);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int
tr_node_connect(tr_node_t *node, const char *seed)
{
    if (node == NULL || seed == NULL || seed[0] == '\0')
        return TR_EINVAL;
    tr__remote_t *r = node->remote;
    if (r == NULL)
        return TR_ENOCONN;
    if (!s_is_endpoint(seed) && s_member(r, seed, NULL) == NULL)
        return tr__refuse(TR_EINVAL, "tr_node_connect: '%s' is neither an "
                          "endpoint nor a member of the cluster file", seed);
    if (!r->plaintext && s_member(r, seed, seed) == NULL)
        return tr__refuse(TR_EINVAL, "tr_node_connect: no key for %s in "
                          "the cluster file", seed);
    char *copy = strdup(seed);
    if (copy == NULL)
        return TR_ENOMEM;
    pthread_mutex_lock(&r->mu);
    int rc = tr__grow((void **)&r->connects, r->nconnects, &r->capconnects,
                      sizeof *r->connects, 4);
    if (rc == 0)
        r->connects[r->nconnects++] = copy;
    pthread_mutex_unlock(&r->mu);
    if (rc != 0) {
        free(copy);
        return TR_ENOMEM;
    }
    // cppcheck-suppress memleak ; copy is in r->connects, freed there
    return 0;
}

int
tr_node_peers(tr_node_t *node, tr_node_peer_t *out, size_t cap, size_t *n)
{
    if (node == NULL || n == NULL || (out == NULL && cap > 0))
        return TR_EINVAL;
    tr__remote_t *r = node->remote;
    if (r == NULL)
        return TR_ENOCONN;
    pthread_mutex_lock(&r->mu);
    *n = r->npeers;
    for (size_t i = 0; i < r->npeers && i < cap; i++) {
        snprintf(out[i].name, sizeof out[i].name, "%s", r->peers[i]->name);
        snprintf(out[i].endpoint, sizeof out[i].endpoint, "%s",
                 r->peers[i]->endpoint);
        out[i].up = r->peers[i]->up;
    }
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int
tr_id_node(tr_node_t *node, tr_id_t id, char *buf, size_t cap)
{
    if (node == NULL || buf == NULL || cap == 0)
        return TR_EINVAL;
    const char *name = NULL;
    char tmp[TR_NAME_MAX + 1];
    if (!tr__id_foreign(node, id)) {
        name = node->name;
    } else {
        pthread_mutex_lock(&node->remote->mu);
        s_peer_t *p = s_peer_by_tag(node->remote, tr__id_tag(id));
        if (p != NULL) {
            snprintf(tmp, sizeof tmp, "%s", p->name);
            name = tmp;
        }
        pthread_mutex_unlock(&node->remote->mu);
    }
    if (name == NULL)
        return TR_ENOENT;
    return (size_t)snprintf(buf, cap, "%s", name) >= cap ? TR_ERANGE : 0;
}

int
tr_spawn_on(tr_node_t *node, const char *on, const char *behaviour,
            const tr_spawn_opts_t *opts, tr_id_t *id)
{
    static const tr_spawn_opts_t none = {0};
    if (node == NULL || on == NULL)
        return tr__refuse(TR_EINVAL, "tr_spawn_on: NULL %s",
                          node ? "node name" : "node");
    if (opts == NULL)
        opts = &none;
    if (strcmp(on, node->name) == 0)
        return tr_spawn(node, behaviour, opts, id);
    int rc = tr__name_check(behaviour);
    if (rc != 0)
        return rc;
    if (opts->name != NULL && (rc = tr__name_check(opts->name)) != 0)
        return rc;
    if (opts->link || opts->executable != NULL)
        return tr__refuse(TR_ENOTSUP, "tr_spawn_on: link and executable are "
                          "for this node's actors only");
    if (opts->mailbox_hwm < 0 || opts->heartbeat_ms < 0 ||
        (opts->mode != TR_THREAD && opts->mode != TR_PROCESS))
        return tr__refuse(TR_EINVAL, "tr_spawn_on: bad options");
    tr_id_t gw;
    if ((rc = s_gateway_of(node, on, strlen(on), node->opts.ask_timeout_ms,
                           &gw)) != 0)
        return rc;
    tr_msg_t *m;
    if ((rc = tr__msg_create_sys(&m, "$spawn")) != 0)
        return rc;
    size_t alen = 0;
    const void *args = opts->args ? tr_msg_payload(opts->args, &alen) : NULL;
    if ((rc = tr_msg_add_str(m, behaviour)) != 0 ||
        (rc = opts->name ? tr_msg_add_str(m, opts->name)
                         : tr_msg_add_nil(m)) != 0 ||
        (rc = tr_msg_add_uint(m, (uint64_t)opts->mode)) != 0 ||
        (rc = tr_msg_add_uint(m, (uint64_t)opts->mailbox_hwm)) != 0 ||
        (rc = tr_msg_add_uint(m, opts->keep_name)) != 0 ||
        (rc = tr_msg_add_uint(m, (uint64_t)opts->heartbeat_ms)) != 0 ||
        (rc = args ? tr_msg_add_bin(m, args, alen) : tr_msg_add_nil(m)) !=
            0) {
        tr_msg_destroy(&m);
        return rc;
    }
    /* A process actor's start takes a while: more than an ask's time. */
    int timeout = node->opts.ask_timeout_ms < 15000
                      ? 15000
                      : node->opts.ask_timeout_ms;
    uint64_t v = 0;
    rc = s_ask_gateway(node, gw, &m, timeout, &v);
    if (rc == 0 && id != NULL)
        *id = v;
    return rc;
}
