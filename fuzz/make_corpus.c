/* fuzz/make_corpus.c - writes the seed corpora of fuzz/corpus/ with the real
 * encoder: payloads built with tr_msg_add_* (and msgpack-c's packer for
 * the float32 and ext encodings troupe never writes), and whole frames
 * written by tr__msg_frame as a sender would put them on the wire. A few
 * hand-made hostile inputs (count and length bombs, the never-used byte,
 * nesting one past the limit) start the fuzzer at the edges.
 *
 *   build-fuzz/fuzz/make_corpus fuzz/corpus
 *
 * writes DIR/reader/<name> (payloads), DIR/envelope/<name> (frames) and
 * DIR/http/<name> (what a client sends the HTTP gateway, behind the two
 * bytes of fuzz/fuzz_http.c that say how it is read and answered);
 * the same files on every run, so regenerating shows no diff unless the
 * encoder changed. Not a test: exits 1 on the first error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <msgpack.h>

#include "transport/envelope.h"
#include "transport/msg.h"
#include "troupe.h"

static const char *s_dir;

static void
s_die(const char *what)
{
    fprintf(stderr, "make_corpus: %s\n", what);
    exit(1);
}

static void
s_ok(int rc)
{
    if (rc != 0)
        s_die(tr_strerror(rc));
}

static void
s_write(const char *sub, const char *name, const void *data, size_t len)
{
    char path[512];
    mkdir(s_dir, 0755); /* EEXIST is fine; fopen says if it is not */
    snprintf(path, sizeof path, "%s/%s", s_dir, sub);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", s_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        s_die(path);
}

/* A message's payload as a reader seed, and its frame as an envelope
 * seed; the message is destroyed. */
static void
s_emit(const char *name, tr_msg_t *m)
{
    size_t plen, flen;
    const void *p = tr_msg_payload(m, &plen);
    if (plen > 0)
        s_write("reader", name, p, plen);
    const uint8_t *f = tr__msg_frame(m, &flen);
    s_write("envelope", name, f, flen);
    tr_msg_destroy(&m);
}

static tr_msg_t *
s_msg(const char *tag)
{
    tr_msg_t *m;
    s_ok(tr__msg_create_sys(&m, tag));
    return m;
}

/* ------------------------------------------------------------------ */
/* Payloads                                                            */
/* ------------------------------------------------------------------ */

static void
s_scalars(void)
{
    tr_msg_t *m = s_msg("scalars");
    s_ok(tr_msg_add_nil(m));
    s_ok(tr_msg_add_bool(m, true));
    s_ok(tr_msg_add_bool(m, false));
    s_emit("scalars", m);

    /* Each integer encoding at its edges. */
    static const int64_t ints[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296,
        INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN,
        (int64_t)INT32_MIN - 1, INT64_MIN};
    m = s_msg("ints");
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        s_ok(tr_msg_add_int(m, ints[i]));
    s_ok(tr_msg_add_uint(m, (uint64_t)INT64_MAX + 1));
    s_ok(tr_msg_add_uint(m, UINT64_MAX));
    s_emit("ints", m);

    m = s_msg("doubles");
    static const double ds[] = {0.0, -0.0, 1.5, -2.25, 1e308, 5e-324};
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
        s_ok(tr_msg_add_double(m, ds[i]));
    s_ok(tr_msg_add_double(m, INFINITY));
    s_ok(tr_msg_add_double(m, NAN));
    s_emit("doubles", m);
}

static void
s_strings(void)
{
    char s[300];
    memset(s, 'a', sizeof s);
    static const size_t lens[] = {0, 1, 7, 8, 9, 31, 32, 255, 256};
    tr_msg_t *m = s_msg("strs");
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        s_ok(tr_msg_add_strn(m, s, lens[i]));
    s_emit("strs", m);

    m = s_msg("short-strs");
    s_ok(tr_msg_add_str(m, ""));
    s_ok(tr_msg_add_str(m, "hello"));
    s_ok(tr_msg_add_str(m, "12345678"));
    s_ok(tr_msg_add_strn(m, "a\0b", 3)); /* NUL inside: allowed */
    s_emit("short-strs", m);

    m = s_msg("bins");
    static const size_t blens[] = {0, 1, 255, 256};
    for (size_t i = 0; i < sizeof blens / sizeof blens[0]; i++)
        s_ok(tr_msg_add_bin(m, s, blens[i]));
    s_emit("bins", m);
}

static void
s_containers(void)
{
    tr_msg_t *m = s_msg("nested");
    s_ok(tr_msg_add_array(m, 0));
    s_ok(tr_msg_add_map(m, 0));
    s_ok(tr_msg_add_array(m, 2)); /* [1, [2, [3]]] */
    s_ok(tr_msg_add_int(m, 1));
    s_ok(tr_msg_add_array(m, 2));
    s_ok(tr_msg_add_int(m, 2));
    s_ok(tr_msg_add_array(m, 1));
    s_ok(tr_msg_add_int(m, 3));
    s_ok(tr_msg_add_map(m, 2)); /* {"a": 1, "b": [true, nil]} */
    s_ok(tr_msg_add_str(m, "a"));
    s_ok(tr_msg_add_int(m, 1));
    s_ok(tr_msg_add_str(m, "b"));
    s_ok(tr_msg_add_array(m, 2));
    s_ok(tr_msg_add_bool(m, true));
    s_ok(tr_msg_add_nil(m));
    s_emit("nested", m);

    /* 16 elements: the first array16 and map16. */
    m = s_msg("wide");
    s_ok(tr_msg_add_array(m, 16));
    for (int i = 0; i < 16; i++)
        s_ok(tr_msg_add_int(m, i));
    s_ok(tr_msg_add_map(m, 16));
    for (int i = 0; i < 16; i++) {
        s_ok(tr_msg_add_int(m, i));
        s_ok(tr_msg_add_double(m, i / 2.0));
    }
    s_emit("wide", m);

    /* As deep as tr_read_skip takes, and one level more. */
    m = s_msg("deep-max");
    for (int i = 0; i < TR__MSG_MAX_DEPTH; i++)
        s_ok(tr_msg_add_array(m, 1));
    s_ok(tr_msg_add_int(m, 42));
    s_emit("deep-max", m);
    m = s_msg("deep-past-max");
    for (int i = 0; i < TR__MSG_MAX_DEPTH; i++) { /* {nil: {nil: ...}} */
        s_ok(tr_msg_add_map(m, 1));
        s_ok(tr_msg_add_nil(m));
    }
    s_ok(tr_msg_add_array(m, 0));
    s_emit("deep-past-max", m);
}

/* What runtime/ sends: a supervisor child spec, a pool batch of results,
 * a system message's two integers. */
static void
s_runtime_shapes(void)
{
    tr_msg_t *m = s_msg("$spec");
    s_ok(tr_msg_add_array(m, 11));
    s_ok(tr_msg_add_str(m, "worker-1"));
    s_ok(tr_msg_add_str(m, "counter"));
    s_ok(tr_msg_add_nil(m));
    for (int i = 0; i < 5; i++)
        s_ok(tr_msg_add_int(m, i == 3 ? 5000 : i));
    s_ok(tr_msg_add_nil(m));
    s_ok(tr_msg_add_str(m, "$args"));
    s_ok(tr_msg_add_bin(m, "\x92\x01\xa1x", 4));
    s_emit("runtime-spec", m);

    m = s_msg("$results");
    for (int i = 0; i < 3; i++) {
        s_ok(tr_msg_add_int(m, i == 1 ? TR_EWORKERDIED : 0));
        s_ok(tr_msg_add_str(m, "$result"));
        s_ok(tr_msg_add_bin(m, "\x2a", i == 1 ? 0 : 1));
    }
    s_emit("runtime-results", m);

    m = s_msg("$stop");
    m->env.flags = TR__F_SYSTEM;
    m->env.code = TR__SYS_STOP;
    s_ok(tr_msg_add_int(m, TR_ESHUTDOWN));
    s_ok(tr_msg_add_int(m, 0));
    s_emit("system-stop", m);
}

/* float32 and ext: msgpack-c writes them, troupe only reads them. */
static void
s_foreign(void)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_float(&pk, -0.0f);
    msgpack_pack_float(&pk, 3.4e38f);
    static const size_t elens[] = {1, 2, 4, 8, 16, 3, 256};
    char body[256];
    memset(body, 'e', sizeof body);
    for (size_t i = 0; i < sizeof elens / sizeof elens[0]; i++) {
        msgpack_pack_ext(&pk, elens[i], (int8_t)i);
        msgpack_pack_ext_body(&pk, body, elens[i]);
    }
    msgpack_pack_array(&pk, 2);
    msgpack_pack_ext(&pk, 1, -1);
    msgpack_pack_ext_body(&pk, "x", 1);
    msgpack_pack_float(&pk, 2.0f);
    s_write("reader", "msgpack-c-float-ext", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* Inputs no encoder writes. Each is refused: the harnesses check how. */
static void
s_hostile(void)
{
    static const struct {
        const char *name;
        uint8_t bytes[8];
        size_t len;
    } h[] = {
        {"bomb-array32", {0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}, 8},
        {"bomb-map32", {0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2}, 7},
        {"bomb-str32", {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 6},
        {"bomb-bin32", {0xc6, 0x80, 0, 0, 0, 'a'}, 6},
        {"bomb-ext32", {0xc9, 0xff, 0xff, 0xff, 0xf0, 1, 'a'}, 7},
        {"never-used-c1", {0x92, 0x01, 0xc1}, 3},
        {"cut-str8", {0xd9, 0x05, 'a', 'b'}, 4},
        {"cut-float64", {0xcb, 0x40, 0x09}, 3},
    };
    for (size_t i = 0; i < sizeof h / sizeof h[0]; i++)
        s_write("reader", h[i].name, h[i].bytes, h[i].len);
}

/* ------------------------------------------------------------------ */
/* Frames                                                              */
/* ------------------------------------------------------------------ */

static void
s_frames(void)
{
    tr_msg_t *m = s_msg("ping"); /* a tell: no payload */
    m->env.sender = 3;
    m->env.target = 4;
    s_emit("tell-ping", m);

    m = s_msg("get");
    m->env.flags = TR__F_REQUEST;
    m->env.sender = 0x0102030405060708u;
    m->env.target = 9;
    m->env.corr = 77;
    m->env.deadline_ns = 123456789012345u;
    s_ok(tr_msg_add_str(m, "key"));
    s_emit("ask-get", m);

    m = s_msg("total");
    m->env.flags = TR__F_REPLY;
    m->env.corr = 77;
    s_ok(tr_msg_add_int(m, 42));
    s_emit("reply-total", m);

    m = s_msg("$error");
    m->env.flags = TR__F_REPLY | TR__F_ERROR;
    m->env.code = TR_ETIMEDOUT;
    m->env.corr = UINT64_MAX;
    s_emit("reply-error", m);

    m = s_msg("$down");
    m->env.flags = TR__F_SYSTEM;
    m->env.code = TR__SYS_DOWN;
    s_ok(tr_msg_add_uint(m, 12));
    s_ok(tr_msg_add_int(m, TR_ECRASHED));
    s_emit("system-down", m);

    char tag[TR_TAG_MAX + 1];
    memset(tag, 't', TR_TAG_MAX);
    tag[TR_TAG_MAX] = '\0';
    m = s_msg(tag);
    m->env.flags = TR__F_REQUEST | TR__F_REPLY | TR__F_ERROR | TR__F_SYSTEM;
    m->env.code = INT32_MIN;
    s_emit("tag-63", m);

    /* Refused frames: another version, a tag with no NUL after it. */
    uint8_t f[TR__ENV_MIN + 4];
    tr__env_t env = {.sender = 1};
    tr__env_write(f, &env, 2);
    memcpy(f + TR__ENV_HDR, "ok\0\xc0", 4);
    f[1] = TR__ENV_VERSION + 1;
    s_write("envelope", "bad-version", f, TR__ENV_HDR + 4);
    f[1] = TR__ENV_VERSION;
    f[TR__ENV_HDR + 2] = 'k';
    s_write("envelope", "bad-no-nul", f, TR__ENV_HDR + 4);
}

/* ------------------------------------------------------------------ */
/* HTTP requests (fuzz/fuzz_http.c)                                     */
/* ------------------------------------------------------------------ */

/* fuzz_http's first byte: how the bytes are cut into reads (cut: 0 the
 * whole, 1..7 pieces of 1, 2, 3, 5, 8, 13, 64 bytes), when answers come
 * (when: 0 after each read, 1 at once, 2 during the next ask, 3 at the
 * end), newest first, the peer going away, a drain. */
static uint8_t
s_mode(int cut, int when, bool reverse, bool peer_goes, bool drain)
{
    return (uint8_t)(cut | when << 3 | reverse << 5 | peer_goes << 6 |
                     drain << 7);
}

/* Its second byte: head limit 64 << (l & 7), body limit 16 << (l >> 3). */
#define S_ROOMY 0x3f /* 8 KiB of head, 2 KiB of body */

static void
s_http_seed(const char *name, uint8_t mode, uint8_t limits, const char *req,
            size_t len)
{
    uint8_t buf[16384];
    if (len + 2 > sizeof buf)
        s_die("http seed too long");
    buf[0] = mode;
    buf[1] = limits;
    memcpy(buf + 2, req, len);
    s_write("http", name, buf, len + 2);
}

#define S_HTTP(name, mode, limits, req)                                     \
    s_http_seed(name, mode, limits, req, sizeof req - 1)

static void
s_http(void)
{
    S_HTTP("get", s_mode(0, 0, false, false, false), S_ROOMY,
           "GET /a/x?q=1 HTTP/1.1\r\nHost: h\r\nX-Test: t\r\n\r\n");
    /* every answer a handler may give (fuzz_http.c, s_plan), and the
     * gateway's own 404 and 503, pipelined in one read */
    static const char pipelined[] =
        "GET /a?0 HTTP/1.1\r\n\r\nGET /a?1 HTTP/1.1\r\n\r\n"
        "GET /a?2 HTTP/1.1\r\n\r\nGET /a?3 HTTP/1.1\r\n\r\n"
        "POST /p?4 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        "GET /a?5 HTTP/1.1\r\n\r\nGET /a?6 HTTP/1.1\r\n\r\n"
        "GET /a?7 HTTP/1.1\r\n\r\nGET /nowhere HTTP/1.1\r\n\r\n"
        "GET /gone HTTP/1.1\r\n\r\nPOST /a HTTP/1.1\r\n"
        "Content-Length: 0\r\n\r\n";
    S_HTTP("pipelined", s_mode(0, 0, true, false, false), S_ROOMY, pipelined);
    S_HTTP("pipelined-bytewise", s_mode(1, 2, false, false, false), S_ROOMY,
           pipelined);
    S_HTTP("pipelined-at-once", s_mode(5, 1, false, false, false), S_ROOMY,
           pipelined);
    S_HTTP("pipelined-drained", s_mode(6, 3, true, false, true), S_ROOMY,
           pipelined);
    S_HTTP("pipelined-peer-goes", s_mode(7, 3, false, true, false), S_ROOMY,
           pipelined);
    S_HTTP("chunked", s_mode(3, 0, false, false, false), S_ROOMY,
           "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           "3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\n"
           "X-Trailer: y\r\nZ: w\r\n\r\nGET /a HTTP/1.1\r\n\r\n");
    S_HTTP("chunked-too-large", s_mode(0, 0, false, false, false), 0x00,
           "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
           "20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n");
    S_HTTP("body-too-large", s_mode(0, 0, false, false, false), 0x00,
           "POST /p HTTP/1.1\r\nContent-Length: 5000\r\n\r\nabc");
    S_HTTP("http10", s_mode(0, 1, false, false, false), S_ROOMY,
           "GET /a HTTP/1.0\r\n\r\nGET /a HTTP/1.0\r\n\r\n");
    S_HTTP("close-then-more", s_mode(2, 0, false, false, false), S_ROOMY,
           "GET /a HTTP/1.1\r\nConnection: close\r\n\r\n"
           "GET /a HTTP/1.1\r\n\r\n");
    S_HTTP("keep-alive-10", s_mode(0, 0, false, false, false), S_ROOMY,
           "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
           "GET /a?1 HTTP/1.0\r\n\r\n");
    S_HTTP("empty-values", s_mode(0, 0, false, false, false), S_ROOMY,
           "GET /a HTTP/1.1\r\nX:\r\nY: \r\nZ:  v \r\n"
           "Folded: a\r\n b\r\n\r\n");
    S_HTTP("absolute-url", s_mode(0, 0, false, false, false), S_ROOMY,
           "GET http://user@host:8080/a/b?c=d#frag HTTP/1.1\r\n\r\n"
           "OPTIONS * HTTP/1.1\r\n\r\n");
    S_HTTP("bad-url", s_mode(0, 0, false, false, false), S_ROOMY,
           "GET http://[::1 HTTP/1.1\r\n\r\n");
    S_HTTP("connect", s_mode(0, 0, false, false, false), S_ROOMY,
           "CONNECT host:443 HTTP/1.1\r\n\r\nrest");
    S_HTTP("upgrade", s_mode(0, 0, false, false, false), S_ROOMY,
           "GET /a HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: ws\r\n"
           "\r\n\x81\x05hello");
    S_HTTP("smuggle", s_mode(0, 0, false, false, false), S_ROOMY,
           "POST /p HTTP/1.1\r\nContent-Length: 4\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
           "POST /p HTTP/1.1\r\nContent-Length: 1\r\n"
           "Content-Length: 2\r\n\r\nab");
    S_HTTP("garbage", s_mode(0, 0, false, false, false), S_ROOMY,
           "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n");
    S_HTTP("nul-in-head", s_mode(0, 0, false, false, false), S_ROOMY,
           "GET /a HTTP/1.1\r\nX: a\0b\r\n\r\n");

    /* a head over the limit, and over http-parser's own (80 KiB) */
    char big[12000];
    int n = snprintf(big, sizeof big, "GET /a HTTP/1.1\r\nX-Big: ");
    memset(big + n, 'b', sizeof big - (size_t)n);
    memcpy(big + sizeof big - 4, "\r\n\r\n", 4);
    s_http_seed("head-too-large", s_mode(4, 0, false, false, false), S_ROOMY,
                big, sizeof big);
    s_http_seed("head-small-limit", s_mode(0, 0, false, false, false), 0x00,
                big, 200);
    /* a path over TR_HTTP_PATH_MAX, then a query over it */
    n = snprintf(big, sizeof big, "GET /a/");
    memset(big + n, 'p', TR_HTTP_PATH_MAX + 1);
    n += TR_HTTP_PATH_MAX + 1;
    n += snprintf(big + n, sizeof big - (size_t)n, " HTTP/1.1\r\n\r\n");
    s_http_seed("path-too-long", s_mode(0, 0, false, false, false), S_ROOMY,
                big, (size_t)n);
    n = snprintf(big, sizeof big, "GET /a?");
    memset(big + n, 'q', TR_HTTP_PATH_MAX + 1);
    n += TR_HTTP_PATH_MAX + 1;
    n += snprintf(big + n, sizeof big - (size_t)n, " HTTP/1.1\r\n\r\n");
    s_http_seed("query-too-long", s_mode(0, 0, false, false, false), S_ROOMY,
                big, (size_t)n);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR (fuzz/corpus)\n");
        return 2;
    }
    s_dir = argv[1];
    s_scalars();
    s_strings();
    s_containers();
    s_runtime_shapes();
    s_foreign();
    s_hostile();
    s_frames();
    s_http();
    return 0;
}
