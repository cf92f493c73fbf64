/* tests/test_codec.c - the envelope, messages and the payload reader: round
 * trips, exact error codes, every rejection of a bad frame, and hostile
 * input (truncation at each byte, count bombs, deep nesting, random bytes)
 * and the decoder's limits (nesting depth; no allocation driven by a
 * length field). Inputs the fuzzers of fuzz/ found are kept here too.
 * msgpack-c's own packer and unpacker serve as the reference encoding.
 * No ZeroMQ context: zmq_msg_t works without one. */
#include <check.h>
#include <float.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <zmq.h>

#include "transport/clock.h"
#include "transport/envelope.h"
#include "transport/msg.h"
#include "support.h"
#include "troupe.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Hot loops check with TS_CHECK (tests/support.h): ck_assert costs a
 * write to the runner per call. */

/* A reader over a malloc'd copy of exactly len bytes, so that ASan and
 * valgrind see any read past the end. Free *copy after. */
static void
s_reader_copy(tr_reader_t *r, const void *data, size_t len, uint8_t **copy)
{
    *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(*copy);
    if (len > 0)
        memcpy(*copy, data, len);
    tr_reader_init_bytes(r, *copy, len);
}

/* Read every value by its type until the end; 0 when all were read. */
static int
s_drain(tr_reader_t *r)
{
    int rc = 0;
    while (rc == 0 && !tr_read_done(r)) {
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        const char *s;
        const void *p;
        size_t n;
        uint32_t c;
        switch (tr_read_type(r)) {
        case TR_TYPE_NIL:
            rc = tr_read_nil(r);
            break;
        case TR_TYPE_BOOL:
            rc = tr_read_bool(r, &b);
            break;
        case TR_TYPE_INT:
            if ((rc = tr_read_int(r, &i)) == TR_ERANGE)
                rc = tr_read_uint(r, &u);
            break;
        case TR_TYPE_DOUBLE:
            rc = tr_read_double(r, &d);
            break;
        case TR_TYPE_STR:
            rc = tr_read_str(r, &s, &n);
            break;
        case TR_TYPE_BIN:
            rc = tr_read_bin(r, &p, &n);
            break;
        case TR_TYPE_ARRAY:
            rc = tr_read_array(r, &c);
            break;
        case TR_TYPE_MAP:
            rc = tr_read_map(r, &c);
            break;
        default: /* ext, invalid, end */
            rc = tr_read_skip(r);
            break;
        }
    }
    return rc;
}

/* A frame with a valid header and tag in buf (>= TR__ENV_MIN + 64 bytes);
 * returns its length. */
static size_t
s_frame(uint8_t *buf, const char *tag)
{
    tr__env_t env = {.flags = TR__F_REQUEST, .sender = 7};
    size_t n = strlen(tag);
    tr__env_write(buf, &env, n);
    memcpy(buf + TR__ENV_HDR, tag, n + 1);
    return TR__ENV_HDR + n + 1;
}

static int
s_parse(const uint8_t *frame, size_t len)
{
    tr__env_t env;
    const char *tag;
    size_t taglen, plen;
    const uint8_t *payload;
    return tr__env_parse(frame, len, &env, &tag, &taglen, &payload, &plen);
}

/* ------------------------------------------------------------------ */
/* Envelope                                                            */
/* ------------------------------------------------------------------ */

START_TEST(env_round_trip_keeps_every_field_at_extremes)
{
    static const tr__env_t cases[] = {
        {0, 0, 0, 0, 0, 0},
        {TR__F_KNOWN, INT32_MIN, UINT64_MAX, UINT64_MAX, UINT64_MAX,
         UINT64_MAX},
        {TR__F_REPLY | TR__F_ERROR, INT32_MAX, 1, 2, 3, 4},
        {TR__F_SYSTEM, -1, 0x0123456789abcdefu, 0xfedcba9876543210u,
         (uint64_t)INT64_MAX + 1, 1},
    };
    static const char *tags[] = {
        "x", "ping",
        "123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t t = 0; t < 3; t++) {
            uint8_t buf[TR__ENV_HDR + TR_TAG_MAX + 8];
            size_t n = strlen(tags[t]);
            tr__env_write(buf, &cases[c], n);
            memcpy(buf + TR__ENV_HDR, tags[t], n + 1);
            buf[TR__ENV_HDR + n + 1] = 0xc0; /* a one-byte payload */
            size_t len = TR__ENV_HDR + n + 2;

            tr__env_t env;
            const char *tag;
            size_t taglen, plen;
            const uint8_t *payload;
            ck_assert_int_eq(tr__env_parse(buf, len, &env, &tag, &taglen,
                                           &payload, &plen), 0);
            ck_assert_uint_eq(env.flags, cases[c].flags);
            ck_assert_int_eq(env.code, cases[c].code);
            ck_assert_uint_eq(env.sender, cases[c].sender);
            ck_assert_uint_eq(env.target, cases[c].target);
            ck_assert_uint_eq(env.corr, cases[c].corr);
            ck_assert_uint_eq(env.deadline_ns, cases[c].deadline_ns);
            ck_assert_str_eq(tag, tags[t]);
            ck_assert_ptr_eq(tag, (const char *)buf + TR__ENV_HDR);
            ck_assert_uint_eq(taglen, n);
            ck_assert_ptr_eq(payload, buf + len - 1);
            ck_assert_uint_eq(plen, 1);
        }
    }
}
END_TEST

START_TEST(env_header_is_little_endian_at_documented_offsets)
{
    tr__env_t env = {
        .flags = TR__F_REQUEST | TR__F_SYSTEM,
        .code = -2, /* 0xfffffffe */
        .sender = 0x0807060504030201u,
        .target = 0x1817161514131211u,
        .corr = 0x2827262524232221u,
        .deadline_ns = 0x3837363534333231u,
    };
    uint8_t h[TR__ENV_HDR];
    memset(h, 0xaa, sizeof h);
    tr__env_write(h, &env, 5);

    static const uint8_t want[TR__ENV_HDR] = {
        0x54, 0x01, 0x09, 0x05, 0xfe, 0xff, 0xff, 0xff,
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
        0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38,
    };
    for (size_t i = 0; i < TR__ENV_HDR; i++)
        ck_assert_msg(h[i] == want[i], "byte %zu: 0x%02x, want 0x%02x", i,
                      h[i], want[i]);
}
END_TEST

START_TEST(env_parse_accepts_frame_without_payload)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "a");
    ck_assert_uint_eq(len, TR__ENV_MIN);
    tr__env_t env;
    const char *tag;
    size_t taglen, plen = 99;
    const uint8_t *payload;
    ck_assert_int_eq(tr__env_parse(buf, len, &env, &tag, &taglen, &payload,
                                   &plen), 0);
    ck_assert_uint_eq(plen, 0);
    ck_assert_ptr_eq(payload, buf + len);
    ck_assert_uint_eq(env.sender, 7);
}
END_TEST

START_TEST(env_parse_rejects_short_frames)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "a");
    for (size_t n = 0; n < len; n++)
        ck_assert_int_eq(s_parse(buf, n), TR_EPROTO);
    ck_assert_int_eq(s_parse(NULL, 0), TR_EPROTO);
}
END_TEST

START_TEST(env_parse_rejects_bad_magic)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "ping");
    buf[0] = 0x55;
    ck_assert_int_eq(s_parse(buf, len), TR_EPROTO);
}
END_TEST

START_TEST(env_parse_gives_eversion_for_another_version)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "ping");
    buf[1] = 2;
    ck_assert_int_eq(s_parse(buf, len), TR_EVERSION);
    buf[1] = 0;
    ck_assert_int_eq(s_parse(buf, len), TR_EVERSION);
    /* Even when short: a later version may have another header size. */
    ck_assert_int_eq(s_parse(buf, 2), TR_EVERSION);
}
END_TEST

START_TEST(env_parse_rejects_unknown_flag_bits)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "ping");
    for (int bit = 5; bit < 8; bit++) {
        buf[2] = (uint8_t)(TR__F_REQUEST | 1 << bit);
        ck_assert_int_eq(s_parse(buf, len), TR_EPROTO);
    }
    buf[2] = TR__F_KNOWN;
    ck_assert_int_eq(s_parse(buf, len), 0);
}
END_TEST

START_TEST(env_parse_rejects_tag_length_zero)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "ping");
    buf[3] = 0;
    ck_assert_int_eq(s_parse(buf, len), TR_EPROTO);
}
END_TEST

START_TEST(env_parse_rejects_tag_length_above_63)
{
    uint8_t buf[TR__ENV_HDR + 80];
    memset(buf, 'a', sizeof buf);
    s_frame(buf, "a");
    buf[3] = 64;
    buf[TR__ENV_HDR + 64] = 0;
    ck_assert_int_eq(s_parse(buf, sizeof buf), TR_EPROTO);
    buf[3] = 255;
    ck_assert_int_eq(s_parse(buf, sizeof buf), TR_EPROTO);
}
END_TEST

START_TEST(env_parse_rejects_tag_longer_than_frame)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "ping");
    ck_assert_int_eq(s_parse(buf, len - 1), TR_EPROTO); /* NUL cut off */
    ck_assert_int_eq(s_parse(buf, len - 2), TR_EPROTO); /* tag cut */
    buf[3] = 10;
    ck_assert_int_eq(s_parse(buf, len), TR_EPROTO);
}
END_TEST

START_TEST(env_parse_rejects_nul_inside_tag)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "ping");
    buf[TR__ENV_HDR + 2] = 0;
    ck_assert_int_eq(s_parse(buf, len), TR_EPROTO);
}
END_TEST

START_TEST(env_parse_rejects_missing_nul_after_tag)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "ping");
    buf[TR__ENV_HDR + 4] = 'x';
    ck_assert_int_eq(s_parse(buf, len), TR_EPROTO);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Building messages                                                   */
/* ------------------------------------------------------------------ */

START_TEST(create_accepts_63_byte_tag_and_rejects_64)
{
    char tag[TR_TAG_MAX + 2];
    memset(tag, 'a', sizeof tag);
    tag[TR_TAG_MAX] = '\0';
    tr_msg_t *m = ts_msg(tag);
    ck_assert_str_eq(tr_msg_tag(m), tag);
    tr_msg_destroy(&m);

    tag[TR_TAG_MAX] = 'a';
    tag[TR_TAG_MAX + 1] = '\0';
    ck_assert_int_eq(tr_msg_create(&m, tag), TR_ENAMETOOLONG);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(create_rejects_null_empty_and_system_tags)
{
    tr_msg_t *m = NULL;
    ck_assert_int_eq(tr_msg_create(&m, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_msg_create(&m, ""), TR_EINVAL);
    ck_assert_int_eq(tr_msg_create(&m, "$x"), TR_EINVAL);
    ck_assert_int_eq(tr_msg_create(&m, "$stop"), TR_EINVAL);
    ck_assert_int_eq(tr_msg_create(NULL, "ok"), TR_EINVAL);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(create_sys_allows_dollar_tags)
{
    tr_msg_t *m = NULL;
    ck_assert_int_eq(tr__msg_create_sys(&m, "$stop"), 0);
    ck_assert_str_eq(tr_msg_tag(m), "$stop");
    ck_assert(tr_msg_is(m, "$stop"));
    tr_msg_destroy(&m);
    ck_assert_int_eq(tr__msg_create_sys(&m, ""), TR_EINVAL);
    ck_assert_int_eq(tr__msg_create_sys(&m, NULL), TR_EINVAL);
}
END_TEST

START_TEST(new_message_is_empty_unsent_and_without_deadline)
{
    tr_msg_t *m = ts_msg("ping");
    size_t size = 99;
    const uint8_t *p = tr_msg_payload(m, &size);
    ck_assert_uint_eq(size, 0);
    ck_assert_ptr_eq(p, (const uint8_t *)tr_msg_tag(m) + 5);
    ck_assert(tr_msg_is(m, "ping"));
    ck_assert(!tr_msg_is(m, "pin"));
    ck_assert(!tr_msg_is(m, NULL));
    ck_assert_uint_eq(tr_msg_sender(m), 0);
    ck_assert(!tr_msg_is_request(m));
    ck_assert_int_eq(tr_msg_deadline_left_ms(m), TR_FOREVER);
    ck_assert(!m->heap);
    ck_assert(m->on_heap);
    tr_msg_destroy(&m);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(deadline_left_counts_down_to_zero)
{
    tr_msg_t *m = ts_msg("ping");
    m->env.deadline_ns = tr__now_ns() + 10 * 1000000000ull;
    int64_t left = tr_msg_deadline_left_ms(m);
    ck_assert_int_gt(left, 9000);
    ck_assert_int_le(left, 10000);
    m->env.deadline_ns = 1; /* long past */
    ck_assert_int_eq(tr_msg_deadline_left_ms(m), 0);
    m->env.flags = TR__F_REQUEST;
    ck_assert(tr_msg_is_request(m));
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(destroy_ignores_null)
{
    tr_msg_t *m = NULL;
    tr_msg_destroy(NULL);
    tr_msg_destroy(&m);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(add_rejects_null_arguments)
{
    tr_msg_t *m = ts_msg("t");
    ck_assert_int_eq(tr_msg_add_nil(NULL), TR_EINVAL);
    ck_assert_int_eq(tr_msg_add_int(NULL, 1), TR_EINVAL);
    ck_assert_int_eq(tr_msg_add_str(m, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_msg_add_strn(m, NULL, 3), TR_EINVAL);
    ck_assert_int_eq(tr_msg_add_bin(m, NULL, 3), TR_EINVAL);
    size_t size;
    tr_msg_payload(m, &size);
    ck_assert_uint_eq(size, 0);
    /* Zero bytes from nowhere are an empty string / bin. */
    ck_assert_int_eq(tr_msg_add_strn(m, NULL, 0), 0);
    ck_assert_int_eq(tr_msg_add_bin(m, NULL, 0), 0);
    const uint8_t *p = tr_msg_payload(m, &size);
    ck_assert_uint_eq(size, 3);
    ck_assert_uint_eq(p[0], 0xa0);
    ck_assert_uint_eq(p[1], 0xc4);
    ck_assert_uint_eq(p[2], 0x00);
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(add_rejects_strings_too_long_for_msgpack_unchanged)
{
    if (sizeof(size_t) <= 4)
        return;
    tr_msg_t *m = ts_msg("t");
    ck_assert_int_eq(tr_msg_add_int(m, 5), 0);
    /* Never read: the length is refused first. */
    size_t big = (size_t)UINT32_MAX + 1;
    ck_assert_int_eq(tr_msg_add_strn(m, "x", big), TR_EINVAL);
    ck_assert_int_eq(tr_msg_add_bin(m, "x", big), TR_EINVAL);
    size_t size;
    tr_msg_payload(m, &size);
    ck_assert_uint_eq(size, 1);
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(dup_is_appendable_and_independent)
{
    tr_msg_t *m = ts_msg("orig");
    m->env.sender = 42;
    m->env.flags = TR__F_REQUEST;
    m->env.corr = 9;
    ck_assert_int_eq(tr_msg_add_int(m, 1), 0);

    tr_msg_t *d = NULL;
    ck_assert_int_eq(tr_msg_dup(m, &d), 0);
    ck_assert_ptr_ne(d, m);
    ck_assert_ptr_ne(d->buf, m->buf);
    ck_assert_str_eq(tr_msg_tag(d), "orig");
    ck_assert_uint_eq(tr_msg_sender(d), 42);
    ck_assert(tr_msg_is_request(d));
    ck_assert_uint_eq(d->env.corr, 9);
    ck_assert_int_eq(tr_msg_add_str(d, "more"), 0);

    size_t ms, ds;
    tr_msg_payload(m, &ms);
    tr_msg_payload(d, &ds);
    ck_assert_uint_eq(ms, 1);
    ck_assert_uint_eq(ds, 6);
    tr_msg_destroy(&m); /* the copy outlives the original */

    tr_reader_t r;
    int64_t i;
    char s[8];
    tr_reader_init(&r, d);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(tr_read_str_copy(&r, s, sizeof s), 0);
    ck_assert_str_eq(s, "more");
    ck_assert(tr_read_done(&r));
    tr_msg_destroy(&d);

    ck_assert_int_eq(tr_msg_dup(NULL, &d), TR_EINVAL);
}
END_TEST

START_TEST(message_grown_past_inline_buffer_reads_back_intact)
{
    tr_msg_t *m = ts_msg("big");
    ck_assert_int_eq(tr_msg_add_array(m, 10000), 0);
    for (int64_t i = 0; i < 10000; i++)
        TS_CHECK(tr_msg_add_int(m, i * 1000003 - 5000000000) == 0);
    ck_assert(m->heap);
    ck_assert_str_eq(tr_msg_tag(m), "big");

    /* A heap copy too. */
    tr_msg_t *d = NULL;
    ck_assert_int_eq(tr_msg_dup(m, &d), 0);
    ck_assert_int_eq(tr_msg_add_nil(d), 0);

    tr_msg_t *ms[] = {m, d};
    for (int k = 0; k < 2; k++) {
        tr_reader_t r;
        uint32_t n;
        tr_reader_init(&r, ms[k]);
        ck_assert_int_eq(tr_read_array(&r, &n), 0);
        ck_assert_uint_eq(n, 10000);
        for (int64_t i = 0; i < 10000; i++) {
            int64_t v = 0;
            TS_CHECK(tr_read_int(&r, &v) == 0);
            TS_CHECK(v == i * 1000003 - 5000000000);
        }
        if (k == 1)
            ck_assert_int_eq(tr_read_nil(&r), 0);
        ck_assert(tr_read_done(&r));
    }
    tr_msg_destroy(&m);
    tr_msg_destroy(&d);
}
END_TEST

START_TEST(frame_carries_env_tag_and_payload)
{
    tr_msg_t *m = ts_msg("work");
    m->env = (tr__env_t){TR__F_REPLY | TR__F_ERROR, TR_EDEAD, 3, 4, 5, 6};
    ck_assert_int_eq(tr_msg_add_str(m, "payload"), 0);
    size_t len;
    const uint8_t *f = tr__msg_frame(m, &len);
    ck_assert_uint_eq(len, TR__ENV_HDR + 5 + 8);

    tr__env_t env;
    const char *tag;
    size_t taglen, plen;
    const uint8_t *payload;
    ck_assert_int_eq(tr__env_parse(f, len, &env, &tag, &taglen, &payload,
                                   &plen), 0);
    ck_assert_uint_eq(env.flags, TR__F_REPLY | TR__F_ERROR);
    ck_assert_int_eq(env.code, TR_EDEAD);
    ck_assert_uint_eq(env.sender, 3);
    ck_assert_uint_eq(env.target, 4);
    ck_assert_uint_eq(env.corr, 5);
    ck_assert_uint_eq(env.deadline_ns, 6);
    ck_assert_str_eq(tag, "work");
    ck_assert_uint_eq(plen, 8);
    ck_assert_uint_eq(payload[0], 0xa7);
    ck_assert_int_eq(memcmp(payload + 1, "payload", 7), 0);
    tr_msg_destroy(&m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Received messages                                                   */
/* ------------------------------------------------------------------ */

static void
s_zmsg_of(zmq_msg_t *zm, const void *data, size_t len)
{
    ck_assert_int_eq(zmq_msg_init_size(zm, len), 0);
    memcpy(zmq_msg_data(zm), data, len);
}

START_TEST(view_reads_a_real_zmq_frame_and_adopt_takes_it)
{
    tr_msg_t *m = ts_msg("hello");
    m->env.sender = 77;
    m->env.flags = TR__F_REQUEST;
    ck_assert_int_eq(tr_msg_add_int(m, -5), 0);
    ck_assert_int_eq(tr_msg_add_str(m, "world"), 0);
    size_t len;
    const uint8_t *f = tr__msg_frame(m, &len);

    zmq_msg_t zm;
    s_zmsg_of(&zm, f, len);
    tr_msg_destroy(&m);

    tr_msg_t view;
    ck_assert_int_eq(tr__msg_view_init(&view, &zm), 0);
    ck_assert_uint_eq(zmq_msg_size(&zm), 0); /* moved out */
    zmq_msg_close(&zm);
    ck_assert_int_eq(view.kind, TR__MSG_RECEIVED);
    ck_assert(!view.on_heap);
    ck_assert_str_eq(tr_msg_tag(&view), "hello");
    ck_assert_uint_eq(tr_msg_sender(&view), 77);
    ck_assert(tr_msg_is_request(&view));
    ck_assert_int_eq(tr_msg_add_int(&view, 1), TR_EINVAL);

    tr_reader_t r;
    int64_t i;
    const char *s;
    size_t n;
    tr_reader_init(&r, &view);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, -5);
    ck_assert_int_eq(tr_read_str(&r, &s, &n), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(memcmp(s, "world", 5), 0);

    tr_msg_t *a = NULL;
    ck_assert_int_eq(tr__msg_adopt(&view, &a), 0);
    tr__msg_view_close(&view); /* empty now: harmless */
    tr__msg_view_close(&view);
    ck_assert(a->on_heap);
    ck_assert_int_eq(a->kind, TR__MSG_RECEIVED);
    ck_assert_ptr_eq(a->buf, zmq_msg_data(&a->zm));
    ck_assert_str_eq(tr_msg_tag(a), "hello");
    ck_assert_uint_eq(tr_msg_sender(a), 77);
    ck_assert_int_eq(tr_msg_add_nil(a), TR_EINVAL);
    tr_reader_init(&r, a);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, -5);

    /* A received message dup'd can be appended to. */
    tr_msg_t *d = NULL;
    ck_assert_int_eq(tr_msg_dup(a, &d), 0);
    ck_assert_int_eq(d->kind, TR__MSG_BUILT);
    ck_assert_int_eq(tr_msg_add_nil(d), 0);
    ck_assert_uint_eq(tr_msg_sender(d), 77);
    tr_msg_destroy(&a);
    ck_assert_ptr_null(a);
    tr_reader_init(&r, d);
    ck_assert_int_eq(tr_read_skip(&r), 0);
    ck_assert_int_eq(tr_read_skip(&r), 0);
    ck_assert_int_eq(tr_read_nil(&r), 0);
    ck_assert(tr_read_done(&r));
    tr_msg_destroy(&d);
}
END_TEST

START_TEST(view_close_releases_the_frame)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "x");
    zmq_msg_t zm;
    s_zmsg_of(&zm, buf, len);
    tr_msg_t view;
    ck_assert_int_eq(tr__msg_view_init(&view, &zm), 0);
    tr__msg_view_close(&view); /* valgrind checks nothing leaks */
    tr__msg_view_close(&view);
}
END_TEST

START_TEST(view_init_rejects_malformed_frames_and_holds_nothing)
{
    uint8_t buf[128];
    size_t len = s_frame(buf, "ping");
    tr_msg_t view;
    zmq_msg_t zm;

    buf[TR__ENV_HDR + 4] = 'x'; /* no NUL after the tag */
    s_zmsg_of(&zm, buf, len);
    ck_assert_int_eq(tr__msg_view_init(&view, &zm), TR_EPROTO);
    ck_assert_ptr_null(view.buf);
    tr__msg_view_close(&view);
    zmq_msg_close(&zm);

    buf[TR__ENV_HDR + 4] = 0;
    buf[1] = 9;
    s_zmsg_of(&zm, buf, len);
    ck_assert_int_eq(tr__msg_view_init(&view, &zm), TR_EVERSION);
    tr__msg_view_close(&view);
    zmq_msg_close(&zm);

    s_zmsg_of(&zm, buf, 0);
    ck_assert_int_eq(tr__msg_view_init(&view, &zm), TR_EPROTO);
    tr__msg_view_close(&view);
    zmq_msg_close(&zm);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Payload round trips                                                 */
/* ------------------------------------------------------------------ */

START_TEST(nil_and_bool_round_trip)
{
    tr_msg_t *m = ts_msg("t");
    ck_assert_int_eq(tr_msg_add_nil(m), 0);
    ck_assert_int_eq(tr_msg_add_bool(m, true), 0);
    ck_assert_int_eq(tr_msg_add_bool(m, false), 0);
    size_t size;
    const uint8_t *p = tr_msg_payload(m, &size);
    ck_assert_uint_eq(size, 3);
    ck_assert_uint_eq(p[0], 0xc0);
    ck_assert_uint_eq(p[1], 0xc3);
    ck_assert_uint_eq(p[2], 0xc2);

    tr_reader_t r;
    bool b;
    tr_reader_init(&r, m);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_NIL);
    ck_assert_int_eq(tr_read_nil(&r), 0);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_BOOL);
    ck_assert_int_eq(tr_read_bool(&r, &b), 0);
    ck_assert(b);
    ck_assert_int_eq(tr_read_bool(&r, &b), 0);
    ck_assert(!b);
    ck_assert(tr_read_done(&r));
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_END);
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(int_round_trips_at_every_encoding_boundary)
{
    static const int64_t v[] = {
        INT64_MIN, (int64_t)INT32_MIN - 1, INT32_MIN, -32769, -32768,
        -129, -128, -33, -32, -1, 0, 1, 127, 128, 255, 256, 65535, 65536,
        INT32_MAX, (int64_t)UINT32_MAX, (int64_t)UINT32_MAX + 1, INT64_MAX,
    };
    /* The compact encoding's size for each (msgpack-c picks the smallest). */
    static const size_t sz[] = {9, 9, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1,
                                2, 2, 3, 3, 5, 5, 5, 9, 9};
    size_t nv = sizeof v / sizeof v[0];
    tr_msg_t *m = ts_msg("t");
    for (size_t i = 0; i < nv; i++) {
        size_t before, after;
        tr_msg_payload(m, &before);
        ck_assert_int_eq(tr_msg_add_int(m, v[i]), 0);
        tr_msg_payload(m, &after);
        ck_assert_msg(after - before == sz[i], "%lld took %zu bytes",
                      (long long)v[i], after - before);
    }
    tr_reader_t r;
    tr_reader_init(&r, m);
    for (size_t i = 0; i < nv; i++) {
        int64_t got;
        ck_assert_int_eq(tr_read_type(&r), TR_TYPE_INT);
        ck_assert_int_eq(tr_read_int(&r, &got), 0);
        ck_assert_int_eq(got, v[i]);
    }
    ck_assert(tr_read_done(&r));
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(uint_round_trips_up_to_uint64_max)
{
    static const uint64_t v[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
        (uint64_t)UINT32_MAX + 1, INT64_MAX, (uint64_t)INT64_MAX + 1,
        UINT64_MAX,
    };
    size_t nv = sizeof v / sizeof v[0];
    tr_msg_t *m = ts_msg("t");
    for (size_t i = 0; i < nv; i++)
        ck_assert_int_eq(tr_msg_add_uint(m, v[i]), 0);
    tr_reader_t r;
    tr_reader_init(&r, m);
    for (size_t i = 0; i < nv; i++) {
        uint64_t got;
        ck_assert_int_eq(tr_read_uint(&r, &got), 0);
        ck_assert_uint_eq(got, v[i]);
    }
    ck_assert(tr_read_done(&r));
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(read_int_gives_erange_above_int64_max_without_moving)
{
    tr_msg_t *m = ts_msg("t");
    ck_assert_int_eq(tr_msg_add_uint(m, (uint64_t)INT64_MAX + 1), 0);
    tr_reader_t r;
    int64_t i = 5;
    uint64_t u;
    tr_reader_init(&r, m);
    ck_assert_int_eq(tr_read_int(&r, &i), TR_ERANGE);
    ck_assert_int_eq(i, 5);
    ck_assert_int_eq(tr_read_int(&r, &i), TR_ERANGE); /* not sticky */
    ck_assert_int_eq(tr_read_uint(&r, &u), 0);
    ck_assert_uint_eq(u, (uint64_t)INT64_MAX + 1);
    ck_assert(tr_read_done(&r));
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(read_uint_gives_erange_for_negative_without_moving)
{
    static const int64_t v[] = {-1, -32, -33, -200, -40000, INT64_MIN};
    tr_msg_t *m = ts_msg("t");
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(tr_msg_add_int(m, v[i]), 0);
    tr_reader_t r;
    tr_reader_init(&r, m);
    for (size_t i = 0; i < 6; i++) {
        uint64_t u = 5;
        int64_t got;
        ck_assert_int_eq(tr_read_uint(&r, &u), TR_ERANGE);
        ck_assert_uint_eq(u, 5);
        ck_assert_int_eq(tr_read_int(&r, &got), 0);
        ck_assert_int_eq(got, v[i]);
    }
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(read_int_accepts_every_integer_encoding)
{
    static const uint8_t b[] = {
        0x05,                   /* fixint 5 */
        0xe0,                   /* fixint -32 */
        0xff,                   /* fixint -1 */
        0xcc, 0xff,             /* uint8 255 */
        0xcd, 0x01, 0x00,       /* uint16 256 */
        0xce, 0x00, 0x01, 0x00, 0x00, /* uint32 65536 */
        0xcf, 0, 0, 0, 1, 0, 0, 0, 0, /* uint64 2^32 */
        0xd0, 0x80,             /* int8 -128 */
        0xd0, 0x05,             /* int8 5 (non-minimal) */
        0xd1, 0x80, 0x00,       /* int16 -32768 */
        0xd2, 0x80, 0, 0, 0,    /* int32 INT32_MIN */
        0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0, /* int64 INT64_MIN */
        0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* MAX */
        0xd2, 0xff, 0xff, 0xff, 0xfe, /* int32 -2 */
    };
    static const int64_t want[] = {
        5, -32, -1, 255, 256, 65536, 4294967296, -128, 5, -32768,
        INT32_MIN, INT64_MIN, INT64_MAX, -2,
    };
    tr_reader_t r;
    tr_reader_init_bytes(&r, b, sizeof b);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t got;
        ck_assert_int_eq(tr_read_int(&r, &got), 0);
        ck_assert_int_eq(got, want[i]);
    }
    ck_assert(tr_read_done(&r));

    /* The non-negative ones through read_uint too (int8 5 included). */
    uint64_t u;
    tr_reader_init_bytes(&r, b + 24, 2);
    ck_assert_int_eq(tr_read_uint(&r, &u), 0);
    ck_assert_uint_eq(u, 5);
}
END_TEST

START_TEST(double_round_trips_and_float32_reads)
{
    static const double v[] = {0.0, -0.0, 1.5, -2.25, DBL_MAX, DBL_MIN,
                               -DBL_MAX, 1e-310, INFINITY, -INFINITY};
    size_t nv = sizeof v / sizeof v[0];
    tr_msg_t *m = ts_msg("t");
    for (size_t i = 0; i < nv; i++)
        ck_assert_int_eq(tr_msg_add_double(m, v[i]), 0);
    ck_assert_int_eq(tr_msg_add_double(m, NAN), 0);
    tr_reader_t r;
    tr_reader_init(&r, m);
    for (size_t i = 0; i < nv; i++) {
        double d;
        ck_assert_int_eq(tr_read_type(&r), TR_TYPE_DOUBLE);
        ck_assert_int_eq(tr_read_double(&r, &d), 0);
        ck_assert_int_eq(memcmp(&d, &v[i], sizeof d), 0); /* -0.0 too */
    }
    double d;
    ck_assert_int_eq(tr_read_double(&r, &d), 0);
    ck_assert(isnan(d));
    ck_assert(tr_read_done(&r));
    tr_msg_destroy(&m);

    static const uint8_t f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00, /* 1.5f */
                                  0xca, 0xc1, 0x20, 0x00, 0x00}; /* -10 */
    tr_reader_init_bytes(&r, f32, sizeof f32);
    ck_assert_int_eq(tr_read_double(&r, &d), 0);
    ck_assert(d == 1.5);
    ck_assert_int_eq(tr_read_double(&r, &d), 0);
    ck_assert(d == -10.0);
}
END_TEST

START_TEST(str_and_bin_round_trip_at_length_boundaries)
{
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    static const uint8_t str_hdr[] = {0xa0, 0xa1, 0xbf, 0xd9,
                                      0xd9, 0xda, 0xda, 0xdb};
    static const uint8_t bin_hdr[] = {0xc4, 0xc4, 0xc4, 0xc4,
                                      0xc4, 0xc5, 0xc5, 0xc6};
    char *data = malloc(65536);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < 65536; i++)
        data[i] = (char)('a' + i % 26);

    for (size_t k = 0; k < 8; k++) {
        size_t n = lens[k];
        tr_msg_t *m = ts_msg("t");
        ck_assert_int_eq(tr_msg_add_strn(m, data, n), 0);
        size_t size;
        const uint8_t *p = tr_msg_payload(m, &size);
        ck_assert_uint_eq(p[0], str_hdr[k]);
        ck_assert_int_eq(tr_msg_add_bin(m, data, n), 0);
        p = tr_msg_payload(m, &size);
        ck_assert_uint_eq(p[size / 2], bin_hdr[k]);

        tr_reader_t r;
        const char *s;
        const void *b;
        size_t got;
        tr_reader_init(&r, m);
        ck_assert_int_eq(tr_read_type(&r), TR_TYPE_STR);
        ck_assert_int_eq(tr_read_str(&r, &s, &got), 0);
        ck_assert_uint_eq(got, n);
        ck_assert_int_eq(memcmp(s, data, n), 0);
        ck_assert_int_eq(tr_read_type(&r), TR_TYPE_BIN);
        ck_assert_int_eq(tr_read_bin(&r, &b, &got), 0);
        ck_assert_uint_eq(got, n);
        ck_assert_int_eq(memcmp(b, data, n), 0);
        ck_assert(tr_read_done(&r));
        tr_msg_destroy(&m);
    }
    free(data);
}
END_TEST

START_TEST(add_str_takes_a_c_string)
{
    tr_msg_t *m = ts_msg("t");
    ck_assert_int_eq(tr_msg_add_str(m, "héllo"), 0);
    ck_assert_int_eq(tr_msg_add_str(m, ""), 0);
    tr_reader_t r;
    char buf[16];
    tr_reader_init(&r, m);
    ck_assert_int_eq(tr_read_str_copy(&r, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "héllo");
    ck_assert_int_eq(tr_read_str_copy(&r, buf, 1), 0);
    ck_assert_str_eq(buf, "");
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(nested_arrays_and_maps_round_trip)
{
    /* {"a": [1, [2, {}], nil], "b": {"c": true}} then 7 */
    tr_msg_t *m = ts_msg("t");
    ck_assert_int_eq(tr_msg_add_map(m, 2), 0);
    ck_assert_int_eq(tr_msg_add_str(m, "a"), 0);
    ck_assert_int_eq(tr_msg_add_array(m, 3), 0);
    ck_assert_int_eq(tr_msg_add_int(m, 1), 0);
    ck_assert_int_eq(tr_msg_add_array(m, 2), 0);
    ck_assert_int_eq(tr_msg_add_int(m, 2), 0);
    ck_assert_int_eq(tr_msg_add_map(m, 0), 0);
    ck_assert_int_eq(tr_msg_add_nil(m), 0);
    ck_assert_int_eq(tr_msg_add_str(m, "b"), 0);
    ck_assert_int_eq(tr_msg_add_map(m, 1), 0);
    ck_assert_int_eq(tr_msg_add_str(m, "c"), 0);
    ck_assert_int_eq(tr_msg_add_bool(m, true), 0);
    ck_assert_int_eq(tr_msg_add_int(m, 7), 0);

    tr_reader_t r;
    uint32_t n;
    int64_t i;
    bool b;
    char k[4];
    tr_reader_init(&r, m);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_MAP);
    ck_assert_int_eq(tr_read_map(&r, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(tr_read_str_copy(&r, k, sizeof k), 0);
    ck_assert_str_eq(k, "a");
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_ARRAY);
    ck_assert_int_eq(tr_read_array(&r, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(tr_read_array(&r, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 2);
    ck_assert_int_eq(tr_read_map(&r, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(tr_read_nil(&r), 0);
    ck_assert_int_eq(tr_read_str_copy(&r, k, sizeof k), 0);
    ck_assert_str_eq(k, "b");
    ck_assert_int_eq(tr_read_map(&r, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(tr_read_str_copy(&r, k, sizeof k), 0);
    ck_assert_str_eq(k, "c");
    ck_assert_int_eq(tr_read_bool(&r, &b), 0);
    ck_assert(b);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 7);
    ck_assert(tr_read_done(&r));

    /* Skip takes the whole map in one step. */
    tr_reader_init(&r, m);
    ck_assert_int_eq(tr_read_skip(&r), 0);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 7);
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(array_and_map_headers_at_count_boundaries)
{
    static const uint32_t counts[] = {0, 15, 16, 65535, 65536};
    static const uint8_t arr_hdr[] = {0x90, 0x9f, 0xdc, 0xdc, 0xdd};
    static const uint8_t map_hdr[] = {0x80, 0x8f, 0xde, 0xde, 0xdf};
    for (size_t k = 0; k < 5; k++) {
        for (int is_map = 0; is_map < 2; is_map++) {
            tr_msg_t *m = ts_msg("t");
            uint32_t c = counts[k];
            ck_assert_int_eq(is_map ? tr_msg_add_map(m, c)
                                    : tr_msg_add_array(m, c), 0);
            for (uint32_t i = 0; i < (is_map ? 2 * c : c); i++)
                TS_CHECK(tr_msg_add_nil(m) == 0);
            size_t size;
            const uint8_t *p = tr_msg_payload(m, &size);
            ck_assert_uint_eq(p[0], is_map ? map_hdr[k] : arr_hdr[k]);

            tr_reader_t r;
            uint32_t n = 0;
            tr_reader_init(&r, m);
            ck_assert_int_eq(is_map ? tr_read_map(&r, &n)
                                    : tr_read_array(&r, &n), 0);
            ck_assert_uint_eq(n, c);
            ck_assert_int_eq(tr_read_skip(&r), c ? 0 : TR_ETRUNC);
            tr_reader_init(&r, m);
            ck_assert_int_eq(tr_read_skip(&r), 0);
            ck_assert(tr_read_done(&r));
            tr_msg_destroy(&m);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Reader errors                                                       */
/* ------------------------------------------------------------------ */

START_TEST(read_int_rejects_string_without_moving)
{
    tr_msg_t *m = ts_msg("t");
    ck_assert_int_eq(tr_msg_add_str(m, "x"), 0);
    tr_reader_t r;
    int64_t i = 3;
    const char *s;
    size_t n;
    tr_reader_init(&r, m);
    ck_assert_int_eq(tr_read_int(&r, &i), TR_ETYPE);
    ck_assert_int_eq(i, 3);
    ck_assert_int_eq(tr_read_int(&r, &i), TR_ETYPE);
    ck_assert_int_eq(tr_read_str(&r, &s, &n), 0); /* ETYPE is not sticky */
    ck_assert_uint_eq(n, 1);
    tr_msg_destroy(&m);
}
END_TEST

/* Call reader k of the ten typed readers; *type gets the type it wants. */
static int
s_read_as(tr_reader_t *r, int k, tr_type_t *type)
{
    static const tr_type_t types[] = {
        TR_TYPE_NIL, TR_TYPE_BOOL,  TR_TYPE_INT,   TR_TYPE_INT,
        TR_TYPE_DOUBLE, TR_TYPE_STR, TR_TYPE_STR, TR_TYPE_BIN,
        TR_TYPE_ARRAY, TR_TYPE_MAP};
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const void *p;
    size_t n;
    uint32_t c;
    char buf[4];
    *type = types[k];
    switch (k) {
    case 0: return tr_read_nil(r);
    case 1: return tr_read_bool(r, &b);
    case 2: return tr_read_int(r, &i);
    case 3: return tr_read_uint(r, &u);
    case 4: return tr_read_double(r, &d);
    case 5: return tr_read_str(r, &s, &n);
    case 6: return tr_read_str_copy(r, buf, sizeof buf);
    case 7: return tr_read_bin(r, &p, &n);
    case 8: return tr_read_array(r, &c);
    default: return tr_read_map(r, &c);
    }
}

START_TEST(every_reader_rejects_every_other_type_without_moving)
{
    static const tr_type_t types[] = {TR_TYPE_NIL, TR_TYPE_BOOL,
                                      TR_TYPE_INT, TR_TYPE_DOUBLE,
                                      TR_TYPE_STR, TR_TYPE_BIN,
                                      TR_TYPE_ARRAY, TR_TYPE_MAP};
    tr_msg_t *m = ts_msg("t");
    tr_msg_add_nil(m);
    tr_msg_add_bool(m, true);
    tr_msg_add_int(m, 1);
    tr_msg_add_double(m, 1.0);
    tr_msg_add_str(m, "s");
    tr_msg_add_bin(m, "b", 1);
    tr_msg_add_array(m, 0);
    tr_msg_add_map(m, 0);
    for (int v = 0; v < 8; v++) {
        for (int k = 0; k < 10; k++) {
            tr_reader_t r;
            tr_type_t want;
            tr_reader_init(&r, m);
            for (int j = 0; j < v; j++)
                ck_assert_int_eq(tr_read_skip(&r), 0);
            ck_assert_int_eq(tr_read_type(&r), types[v]);
            size_t pos = r.pos;
            int rc = s_read_as(&r, k, &want);
            if (want == types[v]) {
                ck_assert_int_eq(rc, 0);
                ck_assert_uint_gt(r.pos, pos);
            } else {
                ck_assert_msg(rc == TR_ETYPE, "value %d reader %d: %d", v,
                              k, rc);
                ck_assert_uint_eq(r.pos, pos);
                ck_assert_int_eq(r.err, 0);
            }
        }
    }
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(reading_past_the_end_is_etrunc_and_sticky)
{
    tr_msg_t *m = ts_msg("t");
    tr_msg_add_int(m, 1);
    tr_reader_t r;
    int64_t i;
    tr_reader_init(&r, m);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert(tr_read_done(&r));
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_END);
    ck_assert_int_eq(tr_read_int(&r, &i), TR_ETRUNC);
    ck_assert_int_eq(tr_read_nil(&r), TR_ETRUNC);
    ck_assert_int_eq(tr_read_skip(&r), TR_ETRUNC);
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(truncated_value_is_etrunc_and_sticky)
{
    /* A uint16 with one of its two bytes. */
    static const uint8_t b[] = {0xcd, 0x01};
    tr_reader_t r;
    uint8_t *copy;
    int64_t i;
    s_reader_copy(&r, b, sizeof b, &copy);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_INVALID);
    ck_assert_int_eq(tr_read_str(&r, &(const char *){0}, &(size_t){0}),
                     TR_ETRUNC);
    ck_assert_int_eq(tr_read_int(&r, &i), TR_ETRUNC);
    ck_assert_int_eq(tr_read_skip(&r), TR_ETRUNC);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_INVALID);
    free(copy);

    /* A string whose body is cut short. */
    static const uint8_t s[] = {0xa5, 'a', 'b'};
    s_reader_copy(&r, s, sizeof s, &copy);
    ck_assert_int_eq(tr_read_str(&r, &(const char *){0}, &(size_t){0}),
                     TR_ETRUNC);
    free(copy);
}
END_TEST

START_TEST(byte_0xc1_is_eproto_and_sticky)
{
    static const uint8_t b[] = {0xc1, 0x01};
    tr_reader_t r;
    int64_t i;
    tr_reader_init_bytes(&r, b, sizeof b);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_INVALID);
    ck_assert_int_eq(tr_read_int(&r, &i), TR_EPROTO);
    ck_assert_int_eq(tr_read_nil(&r), TR_EPROTO);
    ck_assert_int_eq(tr_read_skip(&r), TR_EPROTO);
    ck_assert(!tr_read_done(&r));

    /* Inside a container, skip finds it too. */
    static const uint8_t nested[] = {0x92, 0x01, 0xc1};
    tr_reader_init_bytes(&r, nested, sizeof nested);
    ck_assert_int_eq(tr_read_skip(&r), TR_EPROTO);
    ck_assert_int_eq(tr_read_skip(&r), TR_EPROTO);
}
END_TEST

START_TEST(array32_count_bomb_is_etrunc)
{
    static const uint8_t arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
    tr_reader_t r;
    uint8_t *copy;
    uint32_t n = 0;
    s_reader_copy(&r, arr, sizeof arr, &copy);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_INVALID);
    ck_assert_int_eq(tr_read_array(&r, &n), TR_ETRUNC);
    ck_assert_uint_eq(n, 0);
    free(copy);

    s_reader_copy(&r, arr, sizeof arr, &copy);
    ck_assert_int_eq(tr_read_skip(&r), TR_ETRUNC);
    free(copy);

    /* Exactly one byte per element left is allowed. */
    static const uint8_t ok[] = {0xdd, 0, 0, 0, 3, 1, 2, 3};
    tr_reader_init_bytes(&r, ok, sizeof ok);
    ck_assert_int_eq(tr_read_array(&r, &n), 0);
    ck_assert_uint_eq(n, 3);
}
END_TEST

START_TEST(map_count_needs_two_bytes_per_entry)
{
    static const uint8_t bomb[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2};
    static const uint8_t short_map[] = {0xdf, 0, 0, 0, 2, 1, 2, 3};
    static const uint8_t ok[] = {0xde, 0, 2, 1, 2, 3, 4};
    tr_reader_t r;
    uint32_t n;
    tr_reader_init_bytes(&r, bomb, sizeof bomb);
    ck_assert_int_eq(tr_read_map(&r, &n), TR_ETRUNC);
    tr_reader_init_bytes(&r, short_map, sizeof short_map);
    ck_assert_int_eq(tr_read_map(&r, &n), TR_ETRUNC);
    tr_reader_init_bytes(&r, ok, sizeof ok);
    ck_assert_int_eq(tr_read_map(&r, &n), 0);
    ck_assert_uint_eq(n, 2);
    tr_reader_init_bytes(&r, ok, sizeof ok);
    ck_assert_int_eq(tr_read_skip(&r), 0);
    ck_assert(tr_read_done(&r));
}
END_TEST

START_TEST(skip_refuses_100000_nested_arrays_without_recursing)
{
    size_t depth = 100000;
    uint8_t *b = malloc(depth + 1);
    ck_assert_ptr_nonnull(b);
    memset(b, 0x91, depth); /* fixarray(1), nested */
    b[depth] = 0x2a;
    tr_reader_t r;
    tr_reader_init_bytes(&r, b, depth + 1);
    ck_assert_int_eq(tr_read_skip(&r), TR_ERANGE); /* past the limit */
    ck_assert_uint_eq(r.pos, 0);

    /* Read by hand, level by level, it is all there: the reader itself
     * keeps no depth and no stack. */
    uint32_t n;
    for (size_t i = 0; i < depth; i++)
        TS_CHECK(tr_read_array(&r, &n) == 0 && n == 1);
    int64_t v;
    ck_assert_int_eq(tr_read_int(&r, &v), 0);
    ck_assert_int_eq(v, 42);
    ck_assert(tr_read_done(&r));
    free(b);
}
END_TEST

START_TEST(str_copy_too_small_is_erange_and_cursor_unmoved)
{
    tr_msg_t *m = ts_msg("t");
    tr_msg_add_str(m, "hello");
    tr_reader_t r;
    char buf[6] = "zzzzz";
    tr_reader_init(&r, m);
    ck_assert_int_eq(tr_read_str_copy(&r, buf, 5), TR_ERANGE);
    ck_assert_str_eq(buf, "zzzzz");
    ck_assert_int_eq(tr_read_str_copy(&r, NULL, 0), TR_ERANGE);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_STR);
    ck_assert_int_eq(tr_read_str_copy(&r, buf, 6), 0);
    ck_assert_str_eq(buf, "hello");
    ck_assert(tr_read_done(&r));
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(read_type_peeks_without_moving)
{
    tr_msg_t *m = ts_msg("t");
    tr_msg_add_int(m, 300);
    tr_reader_t r;
    tr_reader_init(&r, m);
    ck_assert(!tr_read_done(&r));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tr_read_type(&r), TR_TYPE_INT);
    uint64_t u;
    ck_assert_int_eq(tr_read_uint(&r, &u), 0);
    ck_assert_uint_eq(u, 300);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_END);
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(reader_over_null_message_reads_nothing)
{
    tr_reader_t r;
    int64_t i;
    tr_reader_init(&r, NULL);
    ck_assert(tr_read_done(&r));
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_END);
    ck_assert_int_eq(tr_read_int(&r, &i), TR_ETRUNC);

    tr_reader_init_bytes(&r, NULL, 10);
    ck_assert(tr_read_done(&r));
    ck_assert_int_eq(tr_read_skip(&r), TR_ETRUNC);
}
END_TEST

START_TEST(ext_values_are_typed_ext_and_skippable)
{
    static const uint8_t b[] = {
        0xd4, 0x01, 0xaa,                      /* fixext 1 */
        0xd5, 0x01, 1, 2,                      /* fixext 2 */
        0xd6, 0x01, 1, 2, 3, 4,                /* fixext 4 */
        0xd7, 0xff, 1, 2, 3, 4, 5, 6, 7, 8,    /* fixext 8 (timestamp) */
        0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        0xc7, 0x02, 0x05, 1, 2,                /* ext 8 */
        0xc8, 0x00, 0x01, 0x05, 1,             /* ext 16 */
        0xc9, 0x00, 0x00, 0x00, 0x00, 0x05,    /* ext 32, empty */
        0x07,
    };
    tr_reader_t r;
    tr_reader_init_bytes(&r, b, sizeof b);
    for (int k = 0; k < 8; k++) {
        int64_t i;
        ck_assert_int_eq(tr_read_type(&r), TR_TYPE_EXT);
        ck_assert_int_eq(tr_read_int(&r, &i), TR_ETYPE);
        ck_assert_int_eq(tr_read_skip(&r), 0);
    }
    int64_t i;
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 7);
    ck_assert(tr_read_done(&r));

    /* Each cut short. */
    static const uint8_t cut[][4] = {{0xd6, 0x01, 1, 2},
                                     {0xc7, 0x05, 0x01, 1},
                                     {0xc8, 0x00, 0x05, 0x01}};
    for (int k = 0; k < 3; k++) {
        uint8_t *copy;
        s_reader_copy(&r, cut[k], 4, &copy);
        ck_assert_int_eq(tr_read_skip(&r), TR_ETRUNC);
        free(copy);
    }
}
END_TEST

/* The sample payload for the truncation test and its exact reading. */
static void
s_sample(tr_msg_t *m)
{
    char s40[41];
    memset(s40, 's', 40);
    s40[40] = '\0';
    ck_assert_int_eq(tr_msg_add_int(m, -1), 0);
    ck_assert_int_eq(tr_msg_add_int(m, 300), 0);
    ck_assert_int_eq(tr_msg_add_uint(m, UINT64_MAX), 0);
    ck_assert_int_eq(tr_msg_add_double(m, 2.5), 0);
    ck_assert_int_eq(tr_msg_add_str(m, "hello"), 0);
    ck_assert_int_eq(tr_msg_add_str(m, s40), 0);
    ck_assert_int_eq(tr_msg_add_bin(m, "\x00\x01\x02", 3), 0);
    ck_assert_int_eq(tr_msg_add_array(m, 2), 0);
    ck_assert_int_eq(tr_msg_add_nil(m), 0);
    ck_assert_int_eq(tr_msg_add_bool(m, true), 0);
    ck_assert_int_eq(tr_msg_add_map(m, 1), 0);
    ck_assert_int_eq(tr_msg_add_str(m, "k"), 0);
    ck_assert_int_eq(tr_msg_add_int(m, -70000), 0);
    ck_assert_int_eq(tr_msg_add_bool(m, false), 0);
    ck_assert_int_eq(tr_msg_add_int(m, INT64_MIN), 0);
}

/* First non-zero code, or 0 when the sample read back whole. */
static int
s_read_sample(tr_reader_t *r)
{
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const void *p;
    size_t n;
    uint32_t c;
    bool b;
    char buf[64];
    int rc;
#define S_TRY(call)                                                         \
    if ((rc = (call)) != 0)                                                 \
        return rc;
    S_TRY(tr_read_int(r, &i));
    S_TRY(tr_read_int(r, &i));
    S_TRY(tr_read_uint(r, &u));
    S_TRY(tr_read_double(r, &d));
    S_TRY(tr_read_str(r, &s, &n));
    S_TRY(tr_read_str_copy(r, buf, sizeof buf));
    S_TRY(tr_read_bin(r, &p, &n));
    S_TRY(tr_read_array(r, &c));
    S_TRY(tr_read_nil(r));
    S_TRY(tr_read_bool(r, &b));
    S_TRY(tr_read_map(r, &c));
    S_TRY(tr_read_str(r, &s, &n));
    S_TRY(tr_read_int(r, &i));
    S_TRY(tr_read_bool(r, &b));
    S_TRY(tr_read_int(r, &i));
#undef S_TRY
    return tr_read_done(r) ? 0 : -1000;
}

START_TEST(truncation_at_every_byte_is_etrunc_and_never_overreads)
{
    tr_msg_t *m = ts_msg("t");
    s_sample(m);
    size_t size;
    const uint8_t *p = tr_msg_payload(m, &size);

    tr_reader_t r;
    uint8_t *copy;
    s_reader_copy(&r, p, size, &copy);
    ck_assert_int_eq(s_read_sample(&r), 0);
    free(copy);

    for (size_t cut = 0; cut < size; cut++) {
        s_reader_copy(&r, p, cut, &copy);
        ck_assert_msg(s_read_sample(&r) == TR_ETRUNC, "cut at %zu", cut);
        ck_assert_int_eq(tr_read_nil(&r), TR_ETRUNC); /* sticky */
        free(copy);

        /* By type, and by skipping: no crash, only ETRUNC or nothing. */
        s_reader_copy(&r, p, cut, &copy);
        int rc = s_drain(&r);
        ck_assert(rc == 0 || rc == TR_ETRUNC);
        free(copy);

        s_reader_copy(&r, p, cut, &copy);
        while (!tr_read_done(&r) && (rc = tr_read_skip(&r)) == 0)
            ;
        ck_assert(rc == 0 || rc == TR_ETRUNC);
        free(copy);
    }
    tr_msg_destroy(&m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* msgpack-c as the reference                                          */
/* ------------------------------------------------------------------ */

/* Our packer writes what msgpack-c's writes, byte for byte: every kind
 * of value, lengths at and around each size class, random integers of
 * every width. */
START_TEST(we_pack_byte_for_byte_what_msgpack_c_packs)
{
    static char body[70000];
    uint64_t seed = 42;
    const size_t lens[] = {0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536};
    for (int it = 0; it < 20000; it++) {
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        tr_msg_t *m = NULL;
        ck_assert_int_eq(tr_msg_create(&m, "t"), 0);
        uint64_t r = ts_rand(&seed) >> (ts_rand(&seed) % 64);
        size_t n = it < 40 ? lens[it % 10] : (size_t)(ts_rand(&seed) % 300);
        uint32_t c = (uint32_t)(r & 0x3ffff);
        switch (it % 8) {
        case 0:
            msgpack_pack_int64(&pk, (int64_t)r);
            ck_assert_int_eq(tr_msg_add_int(m, (int64_t)r), 0);
            break;
        case 1:
            msgpack_pack_int64(&pk, -(int64_t)(r >> 1));
            ck_assert_int_eq(tr_msg_add_int(m, -(int64_t)(r >> 1)), 0);
            break;
        case 2:
            msgpack_pack_uint64(&pk, r);
            ck_assert_int_eq(tr_msg_add_uint(m, r), 0);
            break;
        case 3:
            msgpack_pack_str(&pk, n);
            msgpack_pack_str_body(&pk, body, n);
            ck_assert_int_eq(tr_msg_add_strn(m, body, n), 0);
            break;
        case 4:
            msgpack_pack_bin(&pk, n);
            msgpack_pack_bin_body(&pk, body, n);
            ck_assert_int_eq(tr_msg_add_bin(m, body, n), 0);
            break;
        case 5:
            msgpack_pack_array(&pk, it < 40 ? (uint32_t)n : c);
            ck_assert_int_eq(tr_msg_add_array(m, it < 40 ? (uint32_t)n : c),
                             0);
            break;
        case 6:
            msgpack_pack_map(&pk, c);
            ck_assert_int_eq(tr_msg_add_map(m, c), 0);
            break;
        default:
            msgpack_pack_double(&pk, (double)r / 7);
            msgpack_pack_nil(&pk);
            msgpack_pack_true(&pk);
            ck_assert_int_eq(tr_msg_add_double(m, (double)r / 7), 0);
            ck_assert_int_eq(tr_msg_add_nil(m), 0);
            ck_assert_int_eq(tr_msg_add_bool(m, true), 0);
            break;
        }
        size_t len;
        const void *p = tr_msg_payload(m, &len);
        ck_assert_msg(len == sb.size && memcmp(p, sb.data, len) == 0,
                      "value %d differs (r=%llu n=%zu)", it,
                      (unsigned long long)r, n);
        tr_msg_destroy(&m);
        msgpack_sbuffer_destroy(&sb);
    }
}
END_TEST

/* A struct keeps its last heap buffer for the next message built in it:
 * what the next message holds is its own, whatever size it grows to. */
START_TEST(a_reused_buffer_holds_only_the_new_message)
{
    static uint8_t big[40000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    const size_t sizes[] = {1000, 300, 5000, 100, 20000, 16000, 2000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        tr_msg_t *m = NULL, *d = NULL;
        ck_assert_int_eq(tr_msg_create(&m, "grow"), 0);
        ck_assert_int_eq(tr_msg_add_bin(m, big + k, sizes[k]), 0);
        ck_assert_int_eq(tr_msg_add_int(m, (int64_t)k), 0);
        ck_assert_int_eq(tr_msg_dup(m, &d), 0);
        tr_msg_t *both[2] = {m, d};
        for (int i = 0; i < 2; i++) {
            tr_reader_t r;
            const void *b;
            size_t len;
            int64_t v;
            tr_reader_init(&r, both[i]);
            ck_assert_int_eq(tr_read_bin(&r, &b, &len), 0);
            ck_assert_uint_eq(len, sizes[k]);
            ck_assert_int_eq(memcmp(b, big + k, len), 0);
            ck_assert_int_eq(tr_read_int(&r, &v), 0);
            ck_assert_int_eq(v, (int64_t)k);
            ck_assert(tr_read_done(&r));
        }
        tr_msg_destroy(&d);
        tr_msg_destroy(&m);
    }
}
END_TEST

START_TEST(msgpack_c_unpacks_what_we_encode)
{
    tr_msg_t *m = ts_msg("t");
    s_sample(m);
    size_t size;
    const char *p = tr_msg_payload(m, &size);

    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
#define S_NEXT(want_type)                                                   \
    ck_assert_int_eq(msgpack_unpack_next(&u, p, size, &off),                \
                     MSGPACK_UNPACK_SUCCESS);                               \
    ck_assert_int_eq(u.data.type, want_type)
    msgpack_object o;
    S_NEXT(MSGPACK_OBJECT_NEGATIVE_INTEGER);
    ck_assert_int_eq(u.data.via.i64, -1);
    S_NEXT(MSGPACK_OBJECT_POSITIVE_INTEGER);
    ck_assert_uint_eq(u.data.via.u64, 300);
    S_NEXT(MSGPACK_OBJECT_POSITIVE_INTEGER);
    ck_assert_uint_eq(u.data.via.u64, UINT64_MAX);
    S_NEXT(MSGPACK_OBJECT_FLOAT64);
    ck_assert(u.data.via.f64 == 2.5);
    S_NEXT(MSGPACK_OBJECT_STR);
    ck_assert_uint_eq(u.data.via.str.size, 5);
    ck_assert_int_eq(memcmp(u.data.via.str.ptr, "hello", 5), 0);
    S_NEXT(MSGPACK_OBJECT_STR);
    ck_assert_uint_eq(u.data.via.str.size, 40);
    S_NEXT(MSGPACK_OBJECT_BIN);
    ck_assert_uint_eq(u.data.via.bin.size, 3);
    ck_assert_int_eq(memcmp(u.data.via.bin.ptr, "\x00\x01\x02", 3), 0);
    S_NEXT(MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_eq(u.data.via.array.size, 2);
    ck_assert_int_eq(u.data.via.array.ptr[0].type, MSGPACK_OBJECT_NIL);
    o = u.data.via.array.ptr[1];
    ck_assert_int_eq(o.type, MSGPACK_OBJECT_BOOLEAN);
    ck_assert(o.via.boolean);
    S_NEXT(MSGPACK_OBJECT_MAP);
    ck_assert_uint_eq(u.data.via.map.size, 1);
    o = u.data.via.map.ptr[0].key;
    ck_assert_int_eq(o.type, MSGPACK_OBJECT_STR);
    ck_assert_int_eq(memcmp(o.via.str.ptr, "k", 1), 0);
    o = u.data.via.map.ptr[0].val;
    ck_assert_int_eq(o.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    ck_assert_int_eq(o.via.i64, -70000);
    S_NEXT(MSGPACK_OBJECT_BOOLEAN);
    ck_assert(!u.data.via.boolean);
    S_NEXT(MSGPACK_OBJECT_NEGATIVE_INTEGER);
    ck_assert_int_eq(u.data.via.i64, INT64_MIN);
#undef S_NEXT
    ck_assert_uint_eq(off, size);
    ck_assert_int_eq(msgpack_unpack_next(&u, p, size, &off),
                     MSGPACK_UNPACK_CONTINUE);
    msgpack_unpacked_destroy(&u);
    tr_msg_destroy(&m);
}
END_TEST

START_TEST(we_read_what_msgpack_c_packs)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_fix_int8(&pk, -3);
    msgpack_pack_fix_int16(&pk, 1000);
    msgpack_pack_fix_int32(&pk, -100000);
    msgpack_pack_fix_int64(&pk, INT64_MIN);
    msgpack_pack_fix_uint8(&pk, 7);
    msgpack_pack_fix_uint16(&pk, 65535);
    msgpack_pack_fix_uint32(&pk, UINT32_MAX);
    msgpack_pack_fix_uint64(&pk, UINT64_MAX);
    msgpack_pack_float(&pk, 0.25f);
    msgpack_pack_double(&pk, -1e300);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "key", 3);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_true(&pk);
    msgpack_pack_nil(&pk);
    msgpack_pack_bin(&pk, 2);
    msgpack_pack_bin_body(&pk, "\xff\x00", 2);
    msgpack_pack_ext(&pk, 3, 9);
    msgpack_pack_ext_body(&pk, "abc", 3);
    msgpack_pack_int(&pk, 42);

    tr_reader_t r;
    int64_t i;
    uint64_t u;
    double d;
    uint32_t n;
    bool b;
    char k[8];
    const void *bin;
    size_t blen;
    tr_reader_init_bytes(&r, sb.data, sb.size);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, -3);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 1000);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, -100000);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, INT64_MIN);
    ck_assert_int_eq(tr_read_uint(&r, &u), 0);
    ck_assert_uint_eq(u, 7);
    ck_assert_int_eq(tr_read_uint(&r, &u), 0);
    ck_assert_uint_eq(u, 65535);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, UINT32_MAX);
    ck_assert_int_eq(tr_read_uint(&r, &u), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(tr_read_double(&r, &d), 0);
    ck_assert(d == 0.25);
    ck_assert_int_eq(tr_read_double(&r, &d), 0);
    ck_assert(d == -1e300);
    ck_assert_int_eq(tr_read_map(&r, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(tr_read_str_copy(&r, k, sizeof k), 0);
    ck_assert_str_eq(k, "key");
    ck_assert_int_eq(tr_read_array(&r, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(tr_read_bool(&r, &b), 0);
    ck_assert(b);
    ck_assert_int_eq(tr_read_nil(&r), 0);
    ck_assert_int_eq(tr_read_bin(&r, &bin, &blen), 0);
    ck_assert_uint_eq(blen, 2);
    ck_assert_int_eq(memcmp(bin, "\xff\x00", 2), 0);
    ck_assert_int_eq(tr_read_type(&r), TR_TYPE_EXT);
    ck_assert_int_eq(tr_read_skip(&r), 0);
    ck_assert_int_eq(tr_read_int(&r, &i), 0);
    ck_assert_int_eq(i, 42);
    ck_assert(tr_read_done(&r));
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Limits: nesting depth, and no allocation from length fields         */
/* ------------------------------------------------------------------ */

/* Into b: n containers of one element, one inside another (fixarray(1),
 * or fixmap(1) with a nil key), then the byte last. Returns the length. */
static size_t
s_nested(uint8_t *b, size_t n, bool maps, uint8_t last)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (maps) {
            b[len++] = 0x81;
            b[len++] = 0xc0;
        } else {
            b[len++] = 0x91;
        }
    }
    b[len++] = last;
    return len;
}

START_TEST(skip_takes_nesting_up_to_the_limit_and_refuses_one_more)
{
    uint8_t b[2 * TR__MSG_MAX_DEPTH + 8];
    tr_reader_t r;
    uint32_t n;
    for (int maps = 0; maps < 2; maps++) {
        /* TR__MSG_MAX_DEPTH containers around a scalar: taken. */
        size_t len = s_nested(b, TR__MSG_MAX_DEPTH, maps, 0x2a);
        tr_reader_init_bytes(&r, b, len);
        ck_assert_int_eq(tr_read_skip(&r), 0);
        ck_assert(tr_read_done(&r));

        /* One container more, even an empty one: refused with TR_ERANGE,
         * the cursor unmoved and the reader still usable (not sticky). */
        uint8_t empty = maps ? 0x80 : 0x90;
        len = s_nested(b, TR__MSG_MAX_DEPTH, maps, empty);
        tr_reader_init_bytes(&r, b, len);
        ck_assert_int_eq(tr_read_skip(&r), TR_ERANGE);
        ck_assert_uint_eq(r.pos, 0);
        ck_assert_int_eq(tr_read_skip(&r), TR_ERANGE);
        ck_assert_int_eq(tr_read_type(&r), maps ? TR_TYPE_MAP : TR_TYPE_ARRAY);
        ck_assert_int_eq(maps ? tr_read_map(&r, &n) : tr_read_array(&r, &n),
                         0);
        ck_assert_uint_eq(n, 1);
        /* One level in, it is within the limit again. */
        if (maps)
            ck_assert_int_eq(tr_read_nil(&r), 0);
        ck_assert_int_eq(tr_read_skip(&r), 0);
        ck_assert(tr_read_done(&r));
    }

    /* Depth is how deep, not how many: two chains of TR__MSG_MAX_DEPTH - 1
     * side by side in one array are taken; the depth falls back when a
     * container ends. */
    uint8_t two[4 * TR__MSG_MAX_DEPTH];
    size_t len = 0;
    two[len++] = 0x92;
    len += s_nested(two + len, TR__MSG_MAX_DEPTH - 1, false, 0x01);
    len += s_nested(two + len, TR__MSG_MAX_DEPTH - 1, true, 0x02);
    two[len++] = 0x03; /* a second top-level value */
    tr_reader_init_bytes(&r, two, len);
    ck_assert_int_eq(tr_read_skip(&r), 0);
    ck_assert_int_eq(tr_read_skip(&r), 0);
    ck_assert(tr_read_done(&r));
    /* ... and one more level in the second chain is refused. */
    len = 0;
    two[len++] = 0x92;
    len += s_nested(two + len, TR__MSG_MAX_DEPTH - 1, false, 0x01);
    len += s_nested(two + len, TR__MSG_MAX_DEPTH, true, 0x02);
    tr_reader_init_bytes(&r, two, len);
    ck_assert_int_eq(tr_read_skip(&r), TR_ERANGE);
    ck_assert_uint_eq(r.pos, 0);

    /* A count bomb that deep is still TR_ETRUNC: the head is read first. */
    len = s_nested(b, TR__MSG_MAX_DEPTH, false, 0xdd);
    tr_reader_init_bytes(&r, b, len);
    ck_assert_int_eq(tr_read_skip(&r), TR_ETRUNC);
}
END_TEST

START_TEST(add_raw_refuses_a_payload_nested_past_the_limit)
{
    uint8_t b[TR__MSG_MAX_DEPTH + 2];
    tr_msg_t *m = ts_msg("t");
    size_t before, after;
    tr_msg_payload(m, &before);

    size_t len = s_nested(b, TR__MSG_MAX_DEPTH + 1, false, 0x2a);
    ck_assert_int_eq(tr_msg_add_raw(m, b, len), TR_ERANGE);
    tr_msg_payload(m, &after);
    ck_assert_uint_eq(after, before); /* nothing appended */

    len = s_nested(b, TR__MSG_MAX_DEPTH, false, 0x2a);
    ck_assert_int_eq(tr_msg_add_raw(m, b, len), 0);
    const void *p = tr_msg_payload(m, &after);
    ck_assert_uint_eq(after, len);
    ck_assert_int_eq(memcmp(p, b, len), 0);
    tr_msg_destroy(&m);
}
END_TEST

/* Bytes malloc'd between s_meter_start and s_meter_stop. Under
 * AddressSanitizer every allocation is counted through its allocator hooks
 * (freed or not); otherwise what glibc has in use grew by (mallinfo2), so
 * an allocation freed in between goes unseen there. */
#if defined(__SANITIZE_ADDRESS__)
#define S_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_ASAN 1
#endif
#endif

#ifdef S_ASAN
/* The sanitizer runtime's, declared here: gcc ships no header for it. */
int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t),
    void (*free_hook)(const volatile void *));
static bool s_metering;
static size_t s_metered;

static void
s_malloc_hook(const volatile void *p, size_t n)
{
    (void)p;
    if (s_metering)
        s_metered += n;
}

static void
s_free_hook(const volatile void *p)
{
    (void)p;
}

static void
s_meter_start(void)
{
    static bool installed;
    if (!installed)
        ck_assert_int_ne(__sanitizer_install_malloc_and_free_hooks(
                             s_malloc_hook, s_free_hook), 0);
    installed = true;
    s_metered = 0;
    s_metering = true;
}

static size_t
s_meter_stop(void)
{
    s_metering = false;
    return s_metered;
}
#else
static size_t s_in_use;

static void
s_meter_start(void)
{
    s_in_use = mallinfo2().uordblks;
}

static size_t
s_meter_stop(void)
{
    size_t now = mallinfo2().uordblks;
    return now > s_in_use ? now - s_in_use : 0;
}
#endif

START_TEST(decoding_never_allocates_whatever_the_length_fields_say)
{
    /* Each claims up to 4 GiB in a frame of a few dozen bytes. */
    static const struct {
        uint8_t b[8];
        size_t len;
    } bombs[] = {
        {{0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}, 8}, /* array32 */
        {{0xdf, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}, 8}, /* map32 */
        {{0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b'}, 7}, /* str32 */
        {{0xc6, 0xff, 0xff, 0xff, 0xff, 1}, 6},        /* bin32 */
        {{0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'x'}, 7},   /* ext32 */
        {{0xdc, 0xff, 0xff, 1}, 4},                    /* array16 */
        {{0xda, 0xff, 0xff, 'a'}, 4},                  /* str16 */
        {{0x91, 0x92, 0xdd, 0x7f, 0xff, 0xff, 0xff, 1}, 8}, /* nested */
    };
    for (size_t k = 0; k < sizeof bombs / sizeof bombs[0]; k++) {
        uint8_t frame[128];
        size_t len = s_frame(frame, "bomb");
        memcpy(frame + len, bombs[k].b, bombs[k].len);
        len += bombs[k].len;
        zmq_msg_t zm;
        s_zmsg_of(&zm, frame, len);

        tr_msg_t view;
        tr_reader_t r;
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        const char *str;
        const void *p;
        size_t n;
        uint32_t c;
        char small[8];
        s_meter_start();
        int rc = tr__msg_view_init(&view, &zm);
        tr_reader_init(&r, &view);
        tr_type_t ty = tr_read_type(&r);
        int rcs[12];
        int nrc = 0;
        rcs[nrc++] = tr_read_array(&r, &c);
        tr_reader_init(&r, &view); /* fresh: the error is sticky */
        rcs[nrc++] = tr_read_map(&r, &c);
        tr_reader_init(&r, &view);
        rcs[nrc++] = tr_read_str(&r, &str, &n);
        tr_reader_init(&r, &view);
        rcs[nrc++] = tr_read_str_copy(&r, small, sizeof small);
        tr_reader_init(&r, &view);
        rcs[nrc++] = tr_read_bin(&r, &p, &n);
        tr_reader_init(&r, &view);
        rcs[nrc++] = tr_read_skip(&r);
        tr_reader_init(&r, &view);
        rcs[nrc++] = tr_read_nil(&r);
        rcs[nrc++] = tr_read_bool(&r, &b);
        rcs[nrc++] = tr_read_int(&r, &i);
        rcs[nrc++] = tr_read_uint(&r, &u);
        rcs[nrc++] = tr_read_double(&r, &d);
        size_t grew = s_meter_stop();
        ck_assert_msg(grew == 0, "bomb %zu: %zu bytes allocated", k, grew);
        ck_assert_int_eq(rc, 0); /* the envelope is fine */
        if (k < 7) {
            /* The outermost value is the bomb: every reader sees it. */
            ck_assert_int_eq(ty, TR_TYPE_INVALID);
            for (int j = 0; j < nrc; j++)
                ck_assert_msg(rcs[j] == TR_ETRUNC, "bomb %zu, read %d: %d", k,
                              j, rcs[j]);
        } else {
            /* Inside containers: found when skipped or reached. */
            ck_assert_int_eq(rcs[5], TR_ETRUNC);
        }

        /* Forwarding it (tr_msg_add_raw checks first) is refused before
         * anything is appended or allocated. */
        size_t plen;
        const void *payload = tr_msg_payload(&view, &plen);
        tr_msg_t *fwd = ts_msg("fwd");
        s_meter_start();
        rc = tr_msg_add_raw(fwd, payload, plen);
        grew = s_meter_stop();
        ck_assert_int_eq(rc, TR_ETRUNC);
        ck_assert_uint_eq(grew, 0);
        tr_msg_payload(fwd, &n);
        ck_assert_uint_eq(n, 0);
        tr_msg_destroy(&fwd);

        tr__msg_view_close(&view);
        zmq_msg_close(&zm);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Random input                                                        */
/* ------------------------------------------------------------------ */

/* The seed of ts_rand: the same sequence on every run. */
static uint64_t s_rng = 0x9e3779b97f4a7c15u;

START_TEST(random_frames_never_crash_the_parser_or_reader)
{
    size_t parsed = 0;
    for (int k = 0; k < 100000; k++) {
        size_t len = ts_rand(&s_rng) % 201;
        uint8_t *f = malloc(len ? len : 1);
        TS_CHECK(f != NULL);
        for (size_t i = 0; i < len; i++)
            f[i] = (uint8_t)ts_rand(&s_rng);
        /* Most frames get a plausible header, so the checks past magic
         * and version run too. */
        if (len >= TR__ENV_MIN && ts_rand(&s_rng) % 4 != 0) {
            size_t n = 1 + ts_rand(&s_rng) % 70;
            f[0] = TR__ENV_MAGIC;
            f[1] = TR__ENV_VERSION;
            f[2] &= ts_rand(&s_rng) % 2 ? 0x0f : 0xff;
            f[3] = (uint8_t)n;
            for (size_t i = 0; i < n && TR__ENV_HDR + i < len; i++)
                f[TR__ENV_HDR + i] |= 1;
            if (TR__ENV_HDR + n < len && ts_rand(&s_rng) % 2)
                f[TR__ENV_HDR + n] = 0;
        }

        tr__env_t env;
        const char *tag;
        size_t taglen, plen;
        const uint8_t *payload;
        int rc = tr__env_parse(f, len, &env, &tag, &taglen, &payload,
                               &plen);
        TS_CHECK(rc == 0 || rc == TR_EPROTO || rc == TR_EVERSION);
        if (rc == 0) {
            parsed++;
            TS_CHECK(strlen(tag) == taglen);
            TS_CHECK(payload + plen == f + len);
        }

        /* The whole frame as a payload, then the parsed payload. */
        tr_reader_t r;
        tr_reader_init_bytes(&r, f, len);
        while (!tr_read_done(&r) && (rc = tr_read_skip(&r)) == 0)
            ;
        TS_CHECK(rc == 0 || rc == TR_ETRUNC || rc == TR_EPROTO ||
                 rc == TR_ERANGE);
        tr_reader_init_bytes(&r, f, len);
        rc = s_drain(&r);
        TS_CHECK(rc == 0 || rc == TR_ETRUNC || rc == TR_EPROTO);
        free(f);
    }
    ck_assert_uint_gt(parsed, 1000);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *
s_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc;

    tc = tcase_create("envelope");
    tcase_add_test(tc, env_round_trip_keeps_every_field_at_extremes);
    tcase_add_test(tc, env_header_is_little_endian_at_documented_offsets);
    tcase_add_test(tc, env_parse_accepts_frame_without_payload);
    tcase_add_test(tc, env_parse_rejects_short_frames);
    tcase_add_test(tc, env_parse_rejects_bad_magic);
    tcase_add_test(tc, env_parse_gives_eversion_for_another_version);
    tcase_add_test(tc, env_parse_rejects_unknown_flag_bits);
    tcase_add_test(tc, env_parse_rejects_tag_length_zero);
    tcase_add_test(tc, env_parse_rejects_tag_length_above_63);
    tcase_add_test(tc, env_parse_rejects_tag_longer_than_frame);
    tcase_add_test(tc, env_parse_rejects_nul_inside_tag);
    tcase_add_test(tc, env_parse_rejects_missing_nul_after_tag);
    suite_add_tcase(s, tc);

    tc = tcase_create("message");
    tcase_add_test(tc, create_accepts_63_byte_tag_and_rejects_64);
    tcase_add_test(tc, create_rejects_null_empty_and_system_tags);
    tcase_add_test(tc, create_sys_allows_dollar_tags);
    tcase_add_test(tc, new_message_is_empty_unsent_and_without_deadline);
    tcase_add_test(tc, deadline_left_counts_down_to_zero);
    tcase_add_test(tc, destroy_ignores_null);
    tcase_add_test(tc, add_rejects_null_arguments);
    tcase_add_test(tc, add_rejects_strings_too_long_for_msgpack_unchanged);
    tcase_add_test(tc, dup_is_appendable_and_independent);
    tcase_add_test(tc, message_grown_past_inline_buffer_reads_back_intact);
    tcase_add_test(tc, frame_carries_env_tag_and_payload);
    tcase_add_test(tc, view_reads_a_real_zmq_frame_and_adopt_takes_it);
    tcase_add_test(tc, view_close_releases_the_frame);
    tcase_add_test(tc, view_init_rejects_malformed_frames_and_holds_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("payload");
    tcase_add_test(tc, nil_and_bool_round_trip);
    tcase_add_test(tc, int_round_trips_at_every_encoding_boundary);
    tcase_add_test(tc, uint_round_trips_up_to_uint64_max);
    tcase_add_test(tc, read_int_gives_erange_above_int64_max_without_moving);
    tcase_add_test(tc, read_uint_gives_erange_for_negative_without_moving);
    tcase_add_test(tc, read_int_accepts_every_integer_encoding);
    tcase_add_test(tc, double_round_trips_and_float32_reads);
    tcase_add_test(tc, str_and_bin_round_trip_at_length_boundaries);
    tcase_add_test(tc, add_str_takes_a_c_string);
    tcase_add_test(tc, nested_arrays_and_maps_round_trip);
    tcase_add_test(tc, array_and_map_headers_at_count_boundaries);
    suite_add_tcase(s, tc);

    tc = tcase_create("reader_errors");
    tcase_add_test(tc, read_int_rejects_string_without_moving);
    tcase_add_test(tc, every_reader_rejects_every_other_type_without_moving);
    tcase_add_test(tc, reading_past_the_end_is_etrunc_and_sticky);
    tcase_add_test(tc, truncated_value_is_etrunc_and_sticky);
    tcase_add_test(tc, byte_0xc1_is_eproto_and_sticky);
    tcase_add_test(tc, array32_count_bomb_is_etrunc);
    tcase_add_test(tc, map_count_needs_two_bytes_per_entry);
    tcase_add_test(tc, skip_refuses_100000_nested_arrays_without_recursing);
    tcase_add_test(tc, str_copy_too_small_is_erange_and_cursor_unmoved);
    tcase_add_test(tc, read_type_peeks_without_moving);
    tcase_add_test(tc, reader_over_null_message_reads_nothing);
    tcase_add_test(tc, ext_values_are_typed_ext_and_skippable);
    tcase_add_test(tc, truncation_at_every_byte_is_etrunc_and_never_overreads);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_test(tc, skip_takes_nesting_up_to_the_limit_and_refuses_one_more);
    tcase_add_test(tc, add_raw_refuses_a_payload_nested_past_the_limit);
    tcase_add_test(tc, decoding_never_allocates_whatever_the_length_fields_say);
    suite_add_tcase(s, tc);

    tc = tcase_create("reference");
    tcase_add_test(tc, we_pack_byte_for_byte_what_msgpack_c_packs);
    tcase_add_test(tc, a_reused_buffer_holds_only_the_new_message);
    tcase_add_test(tc, msgpack_c_unpacks_what_we_encode);
    tcase_add_test(tc, we_read_what_msgpack_c_packs);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    /* A backstop only: it takes well under a second without valgrind. */
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, random_frames_never_crash_the_parser_or_reader);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return ts_run_suite(s_suite());
}
