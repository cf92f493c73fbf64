/* bench/bench_envelope.c - what an envelope costs on raw ZeroMQ, in one run.
 *
 * Checks the figures behind troupe's frame format (docs/protocol.md, "Why a
 * fixed binary header"): a msgpack-encoded header costs about a third of
 * inproc throughput, the fixed 40-byte header nothing measurable, and each
 * extra frame 100-300 ns. No actors here: every comparison is PUSH->PULL
 * over inproc between two threads (default HWM), 64-byte payloads, msgs/s.
 * The baseline sends the bare 64-byte payload; each variant wraps it in one
 * envelope, built by the sender and decoded and checked by the receiver, so
 * that neither side can skip the work:
 *
 *  envelope_binary     40-byte header (tr__env_write) + tag "data" + NUL +
 *                      payload in one frame; received with tr__env_parse
 *  envelope_msgpack    the same fields as a msgpack array (msgpack-c packer)
 *                      + tag + NUL + payload in one frame; received with
 *                      msgpack_unpack_next into one reused msgpack_unpacked
 *  envelope_multipart  binary header + tag as frame 1 (ZMQ_SNDMORE), the
 *                      payload as frame 2; received as two frames
 *
 * Baseline and variant alternate rounds, as in bench_core; each prints
 *   BENCH <name> troupe=<v>msg/s baseline=<v>msg/s ratio=<troupe/baseline>
 *   # <name>: +<n> ns per message
 * where the second line is 1e9/variant - 1e9/baseline, from the medians.
 *
 * Reading the figures: zmq_send copies a frame into malloc(40 + size), and
 * the receiving thread frees it. Up to an 80-byte frame that block is in
 * glibc's fastbins (freed without a lock); the enveloped frames (~89 and
 * 109 bytes) are not, and a free from the other thread then takes the
 * sender's arena lock. Measured, that is most of what the one-frame
 * variants cost here: run with GLIBC_TUNABLES=glibc.malloc.mxfast=160 to
 * see the envelope work alone.
 *
 * Usage: bench_envelope [--quick] [name...]  (unknown names: no output)
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <zmq.h>

#include "bench_util.h"
#include "transport/envelope.h"

#define PAYLOAD 64
#define TAG "data"
#define TAGLEN (sizeof TAG - 1)
#define FRAME_MAX 256 /* the largest frame any variant builds, and more */

/* The fields every envelope carries: those of an ask (every field set, so
 * that no encoding gets a free ride on zeros). Ids are small, as the node
 * hands them out; corr counts up from 1, the deadline is a monotonic time
 * in nanoseconds. */
#define SENDER 3
#define TARGET 7

static long s_msgs = 1000000; /* per round */
static int s_rounds = 5;
static uint64_t s_deadline;   /* set once: the clock is not what we measure */
static int s_endpoint;        /* a fresh inproc endpoint per round */

/* A frame that fails its check means the benchmark is wrong, not slow. */
static void
s_bad(const char *variant, long i, const char *why)
{
    fprintf(stderr, "bench_envelope: %s: message %ld: %s\n", variant, i, why);
    exit(1);
}

static tr__env_t
s_env(long i)
{
    return (tr__env_t){.flags = TR__F_REQUEST,
                       .code = 0,
                       .sender = SENDER,
                       .target = TARGET,
                       .corr = (uint64_t)i + 1,
                       .deadline_ns = s_deadline};
}

/* The checks every receiver makes on the fields it decoded. */
static bool
s_env_ok(const tr__env_t *e, long i)
{
    return e->flags == TR__F_REQUEST && e->code == 0 && e->sender == SENDER &&
           e->target == TARGET && e->corr == (uint64_t)i + 1 &&
           e->deadline_ns == s_deadline;
}

/* ------------------------------------------------------------------ */
/* Variants: what the sender does per message, what the receiver does  */

typedef struct variant {
    const char *name;
    /* Build message i and send it on push. buf is the sender's own
     * FRAME_MAX bytes, prepared once by init (may be NULL). */
    void (*send)(void *push, uint8_t *buf, long i);
    /* Receive message i from pull and check it; zm is one reused zmq_msg_t
     * per frame (two), mp a reused msgpack_unpacked. */
    void (*recv)(void *pull, zmq_msg_t zm[2], msgpack_unpacked *mp, long i);
    void (*init)(uint8_t *buf);
} variant_t;

static const uint8_t s_payload[PAYLOAD];

/* baseline: the bare payload. */
static void
s_bare_send(void *push, uint8_t *buf, long i)
{
    (void)buf, (void)i;
    bu_zcheck(zmq_send(push, s_payload, PAYLOAD, 0) == PAYLOAD, "send");
}

static void
s_bare_recv(void *pull, zmq_msg_t zm[2], msgpack_unpacked *mp, long i)
{
    (void)mp;
    bu_zcheck(zmq_msg_recv(&zm[0], pull, 0) >= 0, "recv");
    if (zmq_msg_size(&zm[0]) != PAYLOAD)
        s_bad("baseline", i, "wrong size");
}

/* envelope_binary: as troupe does it. The tag and payload sit after the
 * header room from the start (tr_msg_create copies the tag there, the
 * packer appends the payload); at send time only the header is written. */
static void
s_binary_init(uint8_t *buf)
{
    memcpy(buf + TR__ENV_HDR, TAG, TAGLEN + 1);
    memcpy(buf + TR__ENV_HDR + TAGLEN + 1, s_payload, PAYLOAD);
}

static void
s_binary_send(void *push, uint8_t *buf, long i)
{
    const size_t len = TR__ENV_HDR + TAGLEN + 1 + PAYLOAD;
    tr__env_t env = s_env(i);
    tr__env_write(buf, &env, TAGLEN);
    bu_zcheck(zmq_send(push, buf, len, 0) == (int)len, "send");
}

/* Parse a header + tag frame and check it; *plen gets the payload size. */
static void
s_binary_check(const char *variant, zmq_msg_t *zm, long i, size_t *plen)
{
    tr__env_t env;
    const char *tag;
    size_t taglen;
    const uint8_t *payload;
    int rc = tr__env_parse(zmq_msg_data(zm), zmq_msg_size(zm), &env, &tag,
                           &taglen, &payload, plen);
    if (rc != 0)
        s_bad(variant, i, tr_strerror(rc));
    if (!s_env_ok(&env, i) || taglen != TAGLEN || memcmp(tag, TAG, TAGLEN))
        s_bad(variant, i, "wrong header");
}

static void
s_binary_recv(void *pull, zmq_msg_t zm[2], msgpack_unpacked *mp, long i)
{
    (void)mp;
    size_t plen;
    bu_zcheck(zmq_msg_recv(&zm[0], pull, 0) >= 0, "recv");
    s_binary_check("envelope_binary", &zm[0], i, &plen);
    if (plen != PAYLOAD)
        s_bad("envelope_binary", i, "wrong payload size");
}

/* envelope_msgpack: the header's length depends on its values, so it is
 * packed first and the tag and payload copied after it. The packer writes
 * into a fixed buffer (no allocation on the send side). */
typedef struct {
    uint8_t *p;
    size_t len, cap;
} fixbuf_t;

static int
s_fixbuf_write(void *data, const char *buf, size_t len)
{
    fixbuf_t *b = data;
    if (len > b->cap - b->len)
        return -1;
    memcpy(b->p + b->len, buf, len);
    b->len += len;
    return 0;
}

static void
s_msgpack_send(void *push, uint8_t *buf, long i)
{
    tr__env_t env = s_env(i);
    fixbuf_t b = {buf, 0, FRAME_MAX - TAGLEN - 1 - PAYLOAD};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, s_fixbuf_write);
    if (msgpack_pack_array(&pk, 7) != 0 ||
        msgpack_pack_uint8(&pk, TR__ENV_VERSION) != 0 ||
        msgpack_pack_uint8(&pk, env.flags) != 0 ||
        msgpack_pack_uint64(&pk, env.sender) != 0 ||
        msgpack_pack_uint64(&pk, env.target) != 0 ||
        msgpack_pack_uint64(&pk, env.corr) != 0 ||
        msgpack_pack_uint64(&pk, env.deadline_ns) != 0 ||
        msgpack_pack_int32(&pk, env.code) != 0)
        s_bad("envelope_msgpack", i, "header does not fit");
    memcpy(buf + b.len, TAG, TAGLEN + 1);
    memcpy(buf + b.len + TAGLEN + 1, s_payload, PAYLOAD);
    size_t len = b.len + TAGLEN + 1 + PAYLOAD;
    bu_zcheck(zmq_send(push, buf, len, 0) == (int)len, "send");
}

/* An unsigned msgpack integer, or false. */
static bool
s_mp_uint(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

/* The checks of tr__env_parse, on a msgpack header: array of 7, version,
 * known flags, each id an unsigned integer, code an int32, then a tag of
 * 1..TR_TAG_MAX bytes and its NUL inside the frame. */
static void
s_msgpack_recv(void *pull, zmq_msg_t zm[2], msgpack_unpacked *mp, long i)
{
    const char *v = "envelope_msgpack";
    bu_zcheck(zmq_msg_recv(&zm[0], pull, 0) >= 0, "recv");
    const char *frame = zmq_msg_data(&zm[0]);
    size_t len = zmq_msg_size(&zm[0]), off = 0;
    if (msgpack_unpack_next(mp, frame, len, &off) != MSGPACK_UNPACK_SUCCESS)
        s_bad(v, i, "header does not decode");
    const msgpack_object *o = &mp->data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 7)
        s_bad(v, i, "header is not an array of 7");
    const msgpack_object *f = o->via.array.ptr;
    uint64_t version, flags;
    tr__env_t env;
    if (!s_mp_uint(&f[0], &version) || version != TR__ENV_VERSION)
        s_bad(v, i, "wrong version");
    if (!s_mp_uint(&f[1], &flags) || (flags & ~(uint64_t)TR__F_KNOWN) != 0)
        s_bad(v, i, "bad flags");
    env.flags = (uint8_t)flags;
    if (!s_mp_uint(&f[2], &env.sender) || !s_mp_uint(&f[3], &env.target) ||
        !s_mp_uint(&f[4], &env.corr) || !s_mp_uint(&f[5], &env.deadline_ns))
        s_bad(v, i, "bad id");
    if (f[6].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        f[6].via.u64 <= INT32_MAX)
        env.code = (int32_t)f[6].via.u64;
    else if (f[6].type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
             f[6].via.i64 >= INT32_MIN)
        env.code = (int32_t)f[6].via.i64;
    else
        s_bad(v, i, "bad code");
    const char *tag = frame + off;
    size_t taglen = len - off < TR_TAG_MAX + 1 ? len - off : TR_TAG_MAX + 1;
    taglen = strnlen(tag, taglen);
    if (taglen == 0 || taglen > TR_TAG_MAX || taglen + 1 > len - off)
        s_bad(v, i, "bad tag");
    size_t plen = len - off - taglen - 1;
    if (!s_env_ok(&env, i) || taglen != TAGLEN || memcmp(tag, TAG, TAGLEN) ||
        plen != PAYLOAD)
        s_bad(v, i, "wrong header");
}

/* envelope_multipart: header + tag in frame 1, payload in frame 2, each
 * already in place as for envelope_binary. */
static void
s_multipart_init(uint8_t *buf)
{
    memcpy(buf + TR__ENV_HDR, TAG, TAGLEN + 1);
}

static void
s_multipart_send(void *push, uint8_t *buf, long i)
{
    const size_t len = TR__ENV_HDR + TAGLEN + 1;
    tr__env_t env = s_env(i);
    tr__env_write(buf, &env, TAGLEN);
    bu_zcheck(zmq_send(push, buf, len, ZMQ_SNDMORE) == (int)len, "send");
    bu_zcheck(zmq_send(push, s_payload, PAYLOAD, 0) == PAYLOAD, "send");
}

static void
s_multipart_recv(void *pull, zmq_msg_t zm[2], msgpack_unpacked *mp, long i)
{
    (void)mp;
    const char *v = "envelope_multipart";
    size_t plen;
    bu_zcheck(zmq_msg_recv(&zm[0], pull, 0) >= 0, "recv");
    if (!zmq_msg_more(&zm[0]))
        s_bad(v, i, "no second frame");
    s_binary_check(v, &zm[0], i, &plen);
    bu_zcheck(zmq_msg_recv(&zm[1], pull, 0) >= 0, "recv");
    if (plen != 0 || zmq_msg_more(&zm[1]) || zmq_msg_size(&zm[1]) != PAYLOAD)
        s_bad(v, i, "wrong frames");
}

static const variant_t s_baseline = {"baseline", s_bare_send, s_bare_recv,
                                     NULL};
static const variant_t s_variants[] = {
    {"envelope_binary", s_binary_send, s_binary_recv, s_binary_init},
    {"envelope_msgpack", s_msgpack_send, s_msgpack_recv, NULL},
    {"envelope_multipart", s_multipart_send, s_multipart_recv,
     s_multipart_init},
};

/* ------------------------------------------------------------------ */
/* One round                                                            */

typedef struct {
    void *ctx;
    const variant_t *v;
    const char *endpoint;
} sink_arg_t;

static void *
s_sink(void *arg)
{
    sink_arg_t *a = arg;
    void *pull = zmq_socket(a->ctx, ZMQ_PULL);
    bu_zcheck(pull != NULL, "socket");
    bu_zcheck(zmq_connect(pull, a->endpoint) == 0, "connect");
    zmq_msg_t zm[2];
    zmq_msg_init(&zm[0]);
    zmq_msg_init(&zm[1]);
    msgpack_unpacked mp;
    msgpack_unpacked_init(&mp);
    for (long i = 0; i < s_msgs; i++)
        a->v->recv(pull, zm, &mp, i);
    msgpack_unpacked_destroy(&mp);
    zmq_msg_close(&zm[1]);
    zmq_msg_close(&zm[0]);
    zmq_close(pull);
    return NULL;
}

/* msgs/s: this thread sends, a second one receives; timed from the first
 * send until the receiver has checked the last message. */
static double
s_throughput(void *ctx, const variant_t *v)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://bench-envelope-%d",
             s_endpoint++);
    uint8_t buf[FRAME_MAX] = {0};
    if (v->init)
        v->init(buf);
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    bu_zcheck(push != NULL, "socket");
    bu_zcheck(zmq_bind(push, endpoint) == 0, "bind");
    sink_arg_t a = {ctx, v, endpoint};
    pthread_t t;
    if (pthread_create(&t, NULL, s_sink, &a) != 0) {
        fprintf(stderr, "bench_envelope: pthread_create failed\n");
        exit(1);
    }
    double t0 = bu_now();
    for (long i = 0; i < s_msgs; i++)
        v->send(push, buf, i);
    pthread_join(t, NULL);
    double dt = bu_now() - t0;
    zmq_close(push);
    return (double)s_msgs / dt;
}

/* ------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            s_msgs = 200000;
            s_rounds = 3;
        }
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s_deadline = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec +
                 5000000000u; /* the default ask timeout: 5 s from now */

    double var[16], raw[16];
    for (size_t k = 0; k < sizeof s_variants / sizeof s_variants[0]; k++) {
        const variant_t *v = &s_variants[k];
        if (!bu_wanted(argc, argv, v->name))
            continue;
        void *ctx = zmq_ctx_new();
        bu_zcheck(ctx != NULL, "zmq_ctx_new");
        for (int r = 0; r < s_rounds; r++) {
            raw[r] = s_throughput(ctx, &s_baseline);
            var[r] = s_throughput(ctx, v);
        }
        zmq_ctx_term(ctx);
        double t = bu_median(var, s_rounds), b = bu_median(raw, s_rounds);
        printf("BENCH %s troupe=%.0fmsg/s baseline=%.0fmsg/s ratio=%.2f\n",
               v->name, t, b, t / b);
        printf("# %s: %+.0f ns per message\n", v->name, 1e9 / t - 1e9 / b);
        fflush(stdout);
    }
    return 0;
}
