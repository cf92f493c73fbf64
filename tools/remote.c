/* tools/remote.c - the troupe command on a node elsewhere: a client of
 * its gateway (docs/protocol.md, "Between nodes"), over tcp with CURVE
 * (or ipc). The node's control requests go as "$control" asks to its
 * gateway, which answers them as the control endpoint would; only keys
 * of the node's cluster file get in.
 *
 * Keys come from the environment, as a node's do: TROUPE_KEY (our secret
 * key file), the node's public key from TROUPE_SERVER_KEY or from the
 * line of TROUPE_CLUSTER that names the endpoint; plain text with
 * TROUPE_INSECURE_PLAINTEXT=1. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "tools/tool.h"
#include "transport/envelope.h"
#include "transport/zsock.h"
#include "troupe.h"

#define S_TAG_SHIFT 44

/* A troupe frame: header, tag, NUL, payload (already msgpack). */
static void
s_frame(msgpack_sbuffer *sb, const char *tag, uint8_t flags, uint64_t sender,
        uint64_t target, uint64_t corr, uint64_t left_ns, const void *payload,
        size_t plen)
{
    uint8_t h[TR__ENV_HDR];
    tr__env_t env = {.flags = flags, .sender = sender, .target = target,
                     .corr = corr, .deadline_ns = left_ns};
    tr__env_write(h, &env, strlen(tag));
    msgpack_sbuffer_write(sb, (const char *)h, sizeof h);
    msgpack_sbuffer_write(sb, tag, strlen(tag) + 1);
    if (plen > 0)
        msgpack_sbuffer_write(sb, payload, plen);
}

/* The node's public key: TROUPE_SERVER_KEY, or the cluster file's line
 * for this endpoint. */
static bool
s_server_key(const char *endpoint, char *key)
{
    const char *k = getenv("TROUPE_SERVER_KEY");
    if (k != NULL && strlen(k) == 40) {
        memcpy(key, k, 41);
        return true;
    }
    const char *path = getenv("TROUPE_CLUSTER");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f == NULL)
        return false;
    char line[512], name[80], z[64], ep[256];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        if (line[strspn(line, " \t")] != '#' &&
            sscanf(line, "%79s %63s %255s", name, z, ep) == 3 &&
            strcmp(ep, endpoint) == 0 && strlen(z) == 40) {
            memcpy(key, z, 41);
            found = true;
        }
    fclose(f);
    return found;
}

static bool
s_secret_key(char *sec)
{
    const char *path = getenv("TROUPE_KEY");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f == NULL)
        return false;
    char line[128] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    ok = ok && strlen(line) == 40;
    if (ok)
        memcpy(sec, line, 41);
    memset(line, 0, sizeof line);
    return ok;
}

/* The next [box, frame] into c->frame; the box byte into *box. */
static int
s_recv(tt_conn_t *c, char *box)
{
    zmq_msg_t b;
    zmq_msg_init(&b);
    if (zmq_msg_recv(&b, c->sock, 0) < 0) {
        zmq_msg_close(&b);
        return -1;
    }
    *box = 0;
    if (zmq_msg_size(&b) == 1)
        *box = *(const char *)zmq_msg_data(&b);
    bool more = zmq_msg_more(&b);
    zmq_msg_close(&b);
    if (!more)
        return 1; /* not ours: skip it */
    if (c->has_frame)
        zmq_msg_close(&c->frame);
    zmq_msg_init(&c->frame);
    c->has_frame = true;
    if (zmq_msg_recv(&c->frame, c->sock, 0) < 0)
        return -1;
    while (zmq_msg_more(&c->frame)) { /* nothing we send has more */
        zmq_msg_t junk;
        zmq_msg_init(&junk);
        int got = zmq_msg_recv(&junk, c->sock, 0);
        bool m = got >= 0 && zmq_msg_more(&junk);
        zmq_msg_close(&junk);
        if (!m)
            return 1;
    }
    return zmq_msg_size(&c->frame) >= TR__ENV_HDR + 2 ? 0 : 1;
}

static int
s_send2(tt_conn_t *c, char box, const msgpack_sbuffer *sb)
{
    if (zmq_send(c->sock, &box, 1, ZMQ_SNDMORE) != 1 ||
        zmq_send(c->sock, sb->data, sb->size, 0) < 0)
        return -1;
    return 0;
}

int
tt_remote_open(tt_conn_t *c, const char *endpoint)
{
    c->remote = true;
    snprintf(c->label, sizeof c->label, "node at %s", endpoint);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    c->ctx = zmq_ctx_new();
    c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
    if (c->sock == NULL) {
        tt_err("%s: %s", c->label, zmq_strerror(zmq_errno()));
        return TT_EXIT_FAIL;
    }
    uint32_t tag = 0;
    uint64_t nonce = 0;
    if (getrandom(&tag, sizeof tag, 0) != sizeof tag ||
        getrandom(&nonce, sizeof nonce, 0) != sizeof nonce)
        tag = (uint32_t)getpid() ^ (uint32_t)time(NULL), nonce = tag;
    tag = (tag & ((1u << 20) - 1)) | 2;
    nonce |= 1;
    c->me = (uint64_t)tag << S_TAG_SHIFT | 1;
    char name[64];
    snprintf(name, sizeof name, "troupe-cli-%ld-%u", (long)getpid(), tag);
    /* The node at the other end may be anybody's: what it sends is
     * bounded as a node bounds what it reads (64 MiB here). */
    if (tr__sock_limits(c->sock, TR__MAX_MSG_PROCESS, 0) != 0) {
        tt_err("%s: %s", c->label, zmq_strerror(zmq_errno()));
        return TT_EXIT_FAIL;
    }
    zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &c->timeout_ms,
                   sizeof c->timeout_ms);
    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &c->timeout_ms,
                   sizeof c->timeout_ms);
    zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, name, strlen(name));
    const char *plain = getenv("TROUPE_INSECURE_PLAINTEXT");
    if (plain == NULL || strcmp(plain, "1") != 0) {
        char server[41], sec[41], pub[41];
        if (!s_server_key(endpoint, server)) {
            tt_err("%s: no key for it: set TROUPE_SERVER_KEY, or "
                   "TROUPE_CLUSTER to a cluster file naming %s (or "
                   "TROUPE_INSECURE_PLAINTEXT=1 for a plain-text node)",
                   c->label, endpoint);
            return TT_EXIT_USAGE;
        }
        if (!s_secret_key(sec) || zmq_curve_public(pub, sec) != 0) {
            tt_err("%s: TROUPE_KEY must name our secret key file (troupe "
                   "keygen), whose public key the node's cluster file has",
                   c->label);
            return TT_EXIT_USAGE;
        }
        zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, server, 40);
        zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, sec, 40);
        memset(sec, 0, sizeof sec);
    }
    if (zmq_connect(c->sock, endpoint) != 0) {
        tt_err("%s: %s", c->label, zmq_strerror(zmq_errno()));
        return TT_EXIT_USAGE;
    }
    /* $hello as a client (no endpoint of our own), its $welcome back */
    msgpack_sbuffer sb, pl;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&pl);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &pl, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_str(&pk, strlen(name));
    msgpack_pack_str_body(&pk, name, strlen(name));
    msgpack_pack_uint64(&pk, tag);
    msgpack_pack_str(&pk, 0);
    msgpack_pack_uint64(&pk, (uint64_t)tag << S_TAG_SHIFT | 2);
    msgpack_pack_uint64(&pk, nonce);
    s_frame(&sb, "$hello", 0, 0, 0, 0, 0, pl.data, pl.size);
    int rc = s_send2(c, 'C', &sb);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&pl);
    while (rc == 0) {
        char box;
        int got = s_recv(c, &box);
        if (got < 0)
            break;
        const uint8_t *d = zmq_msg_data(&c->frame);
        size_t len = zmq_msg_size(&c->frame);
        if (got != 0 || box != 'C' || len < TR__ENV_HDR + 9 ||
            memcmp(d + TR__ENV_HDR, "$welcome", 9) != 0)
            continue;
        /* version, name, tag, endpoint, gateway, nonce, ... */
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = TR__ENV_HDR + d[3] + 1;
        uint64_t v[6] = {0};
        int i = 0;
        for (; i < 6; i++) {
            if (msgpack_unpack_next(&u, (const char *)d, len, &off) !=
                MSGPACK_UNPACK_SUCCESS)
                break;
            if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                v[i] = u.data.via.u64;
            else if (i == 1 && u.data.type == MSGPACK_OBJECT_STR)
                snprintf(c->label, sizeof c->label, "node %.*s at %s",
                         (int)u.data.via.str.size, u.data.via.str.ptr,
                         endpoint);
        }
        msgpack_unpacked_destroy(&u);
        if (i == 6 && v[5] == nonce) {
            c->gw = v[4];
            return 0;
        }
    }
    tt_err("%s did not answer (not a troupe node, a key it does not admit, "
           "or it is gone)", c->label);
    return TT_EXIT_FAIL;
}

int
tt_remote_request(tt_conn_t *c, const char *req, size_t len,
                  const char **ans, size_t *alen)
{
    msgpack_sbuffer sb, pl;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&pl);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &pl, msgpack_sbuffer_write);
    msgpack_pack_bin(&pk, len);
    msgpack_pack_bin_body(&pk, req, len);
    uint64_t corr = ++c->corr;
    s_frame(&sb, "$control", 1 /* REQUEST */, c->me, c->gw, corr,
            (uint64_t)c->timeout_ms * 1000000u, pl.data, pl.size);
    int rc = s_send2(c, 'M', &sb);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&pl);
    while (rc == 0) {
        char box;
        int got = s_recv(c, &box);
        if (got < 0)
            return -1;
        const uint8_t *d = zmq_msg_data(&c->frame);
        size_t flen = zmq_msg_size(&c->frame);
        if (got != 0 || box != 'I' || !(d[2] & 2) ||
            tr__get64(d + 24) != corr)
            continue; /* pings and the like */
        if (d[2] & 4) {
            int32_t code = (int32_t)tr__get32(d + 4);
            tt_err("%s refused the request: %s", c->label,
                   tr_strerror(code));
            return -2;
        }
        size_t off = TR__ENV_HDR + d[3] + 1;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        bool ok = msgpack_unpack_next(&u, (const char *)d, flen, &off) ==
                      MSGPACK_UNPACK_SUCCESS &&
                  u.data.type == MSGPACK_OBJECT_BIN;
        if (ok) { /* points into c->frame, kept until the next request */
            *ans = u.data.via.bin.ptr;
            *alen = u.data.via.bin.size;
        }
        msgpack_unpacked_destroy(&u);
        return ok ? 0 : -2;
    }
    return -1;
}

void
tt_remote_close(tt_conn_t *c)
{
    if (c->sock != NULL && c->gw != 0) {
        int linger = 200; /* so that the $bye goes */
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        s_frame(&sb, "$bye", 0, 0, 0, 0, 0, NULL, 0);
        (void)s_send2(c, 'C', &sb);
        msgpack_sbuffer_destroy(&sb);
    }
}
