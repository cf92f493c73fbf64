/* fuzz/make_corpus.c - writes the seed corpora of fuzz/corpus/ with the real
 * encoder: payloads built with tr_msg_add_* (and msgpack-c's packer for
 * the float32 and ext encodings troupe never writes), and whole frames
 * written by tr__msg_frame as a sender would put them on the wire. A few
 * hand-made hostile inputs (count and length bombs, the never-used byte,
 * nesting one past the limit) start the fuzzer at the edges.
 *
 *   build-fuzz/fuzz/make_corpus fuzz/corpus
 *
 * writes DIR/reader/<name> (payloads) and DIR/envelope/<name> (frames);
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
    return 0;
}
