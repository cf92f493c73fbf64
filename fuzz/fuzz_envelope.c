/* fuzz/fuzz_envelope.c - libFuzzer harness for what a received frame goes
 * through: tr__env_parse on the raw bytes, then the same bytes as a
 * zmq_msg_t turned into a tr_msg_t view (tr__msg_view_init), read with
 * the public accessors and a payload reader, duplicated, written back out
 * (tr__msg_frame) and adopted onto the heap (tr__msg_adopt), the path
 * runtime/ takes for a message it keeps.
 *
 * Beyond "no crash, no overread" (ASan), every input checks that:
 *  - only TR_EPROTO and TR_EVERSION are refusals, and the two paths agree;
 *  - a parsed header written back gives the same 40 bytes (nothing read
 *    is lost or invented), the tag is in place and NUL-terminated, the
 *    payload runs to the end of the frame;
 *  - parsing, viewing and reading allocate nothing, and a dup or an adopt
 *    no more than one struct plus the frame (no length field decides an
 *    allocation). */
#include "fuzz/fuzz.h"

#include <string.h>

#include <zmq.h>

#include "transport/envelope.h"
#include "transport/msg.h"
#include "troupe.h"

/* A dup or adopt may also make the calling thread's struct pool. */
#define FZ_STRUCT_ROOM (2 * sizeof(tr_msg_t) + 256)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_meter_install();
    return 0;
}

/* Skip every value of the payload: 0 or a reader refusal, no allocation. */
static int
s_skip_all(tr_reader_t *r)
{
    int rc = 0;
    while (rc == 0 && !tr_read_done(r))
        rc = tr_read_skip(r);
    FZ_CHECK(rc == 0 || rc == TR_ETRUNC || rc == TR_EPROTO ||
             rc == TR_ERANGE);
    return rc;
}

static void
s_check_view(const uint8_t *data, size_t size, tr_msg_t *view,
             const tr__env_t *env, size_t taglen, size_t plen)
{
    FZ_CHECK(view->len == size && view->taglen == taglen);
    FZ_CHECK(view->env.sender == env->sender &&
             view->env.flags == env->flags && view->env.code == env->code);
    const char *tag = tr_msg_tag(view);
    FZ_CHECK(strlen(tag) == taglen && memcmp(tag, data + 40, taglen) == 0);
    FZ_CHECK(tr_msg_is(view, tag));
    FZ_CHECK(tr_msg_sender(view) == env->sender);
    FZ_CHECK(tr_msg_is_request(view) ==
             ((env->flags & TR__F_REQUEST) != 0));
    size_t n;
    const void *p = tr_msg_payload(view, &n);
    FZ_CHECK(n == plen && memcmp(p, data + size - plen, plen) == 0);

    /* Reading the payload in place allocates nothing. */
    tr_reader_t r;
    fz_meter_start();
    tr_reader_init(&r, view);
    int rc = s_skip_all(&r);
    FZ_CHECK(fz_meter_stop() == 0);

    /* A dup holds the same frame and can be appended to. */
    tr_msg_t *dup = NULL;
    fz_meter_start();
    int drc = tr_msg_dup(view, &dup);
    FZ_CHECK(fz_meter_stop() <= size + FZ_STRUCT_ROOM);
    FZ_CHECK(drc == 0);
    FZ_CHECK(strcmp(tr_msg_tag(dup), tag) == 0);
    const void *dp = tr_msg_payload(dup, &n);
    FZ_CHECK(n == plen && memcmp(dp, p, plen) == 0);
    tr_reader_init(&r, dup);
    FZ_CHECK(s_skip_all(&r) == rc);
    FZ_CHECK(tr_msg_add_nil(dup) == 0);
    tr_msg_payload(dup, &n);
    FZ_CHECK(n == plen + 1);
    tr_msg_destroy(&dup);
    FZ_CHECK(dup == NULL);

    /* Forwarding rewrites the header from env: the same bytes. */
    size_t flen;
    const uint8_t *f = tr__msg_frame(view, &flen);
    FZ_CHECK(flen == size && memcmp(f, data, size) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tr__env_t env;
    const char *tag = NULL;
    const uint8_t *payload = NULL;
    size_t taglen = 0, plen = 0;

    fz_meter_start();
    int rc = tr__env_parse(data, size, &env, &tag, &taglen, &payload, &plen);
    FZ_CHECK(fz_meter_stop() == 0);
    FZ_CHECK(rc == 0 || rc == TR_EPROTO || rc == TR_EVERSION);
    if (rc == TR_EVERSION)
        FZ_CHECK(size >= 2 && data[0] == TR__ENV_MAGIC &&
                 data[1] != TR__ENV_VERSION);
    if (rc == 0) {
        FZ_CHECK(size >= TR__ENV_MIN && data[0] == TR__ENV_MAGIC &&
                 data[1] == TR__ENV_VERSION);
        FZ_CHECK((env.flags & ~TR__F_KNOWN) == 0);
        FZ_CHECK(taglen >= 1 && taglen <= TR_TAG_MAX);
        FZ_CHECK((const uint8_t *)tag == data + TR__ENV_HDR);
        FZ_CHECK(memchr(tag, '\0', taglen) == NULL && tag[taglen] == '\0');
        FZ_CHECK(payload == data + TR__ENV_HDR + taglen + 1);
        FZ_CHECK(payload + plen == data + size);
        uint8_t hdr[TR__ENV_HDR];
        tr__env_write(hdr, &env, taglen);
        FZ_CHECK(memcmp(hdr, data, TR__ENV_HDR) == 0);
    }

    /* The same bytes as ZeroMQ hands them to a receiver. */
    zmq_msg_t zm;
    FZ_CHECK(zmq_msg_init_size(&zm, size) == 0);
    if (size > 0)
        memcpy(zmq_msg_data(&zm), data, size);
    tr_msg_t view;
    fz_meter_start();
    int vrc = tr__msg_view_init(&view, &zm);
    FZ_CHECK(fz_meter_stop() == 0);
    FZ_CHECK(vrc == rc);
    if (vrc != 0) {
        FZ_CHECK(view.buf == NULL && view.len == 0); /* holds nothing */
    } else {
        s_check_view(data, size, &view, &env, taglen, plen);
        /* Kept past the handler: the frame moves, nothing is copied. */
        tr_msg_t *kept = NULL;
        fz_meter_start();
        int arc = tr__msg_adopt(&view, &kept);
        FZ_CHECK(fz_meter_stop() <= FZ_STRUCT_ROOM);
        FZ_CHECK(arc == 0 && view.buf == NULL);
        size_t n;
        const void *p = tr_msg_payload(kept, &n);
        FZ_CHECK(n == plen && memcmp(p, data + size - plen, plen) == 0);
        FZ_CHECK(strlen(tr_msg_tag(kept)) == taglen);
        tr_msg_destroy(&kept);
    }
    tr__msg_view_close(&view); /* empty either way: a no-op */
    zmq_msg_close(&zm);        /* moved out: empty too */
    return 0;
}
