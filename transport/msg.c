/* transport/msg.c - messages: a frame built in place (header room, tag,
 * NUL, payload) so that sending is one copy into ZeroMQ, and a view of a
 * received frame that stays inside its zmq_msg_t (no copy at all).
 * Payloads are written and read by our own msgpack code: the writer packs
 * straight into the frame (msgpack-c's packer cost a callback and a memcpy
 * call per value), the pull decoder never allocates (msgpack_unpack needs
 * a zone per message) and never reads past the payload. Knows no sockets and no actors. */
#include "transport/msg.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "transport/clock.h"
#include "transport/log.h"
#include "transport/pool.h"

/* Structs come from the calling thread's pool (transport/pool.h). */
static tr_msg_t *
s_alloc(void)
{
    return tr__pool_get();
}

/* Keep a heap buffer as the struct's spare (the larger of two), or free
 * it. */
static void
s_keep_spare(tr_msg_t *m, uint8_t *buf, size_t cap)
{
    if (cap > TR__MSG_SPARE_MAX || (m->spare != NULL && m->spare_cap >= cap)) {
        free(buf);
        return;
    }
    free(m->spare);
    m->spare = buf;
    m->spare_cap = cap;
}

/* The spare buffer, if it holds need bytes: taken out of the struct. */
static uint8_t *
s_take_spare(tr_msg_t *m, size_t need, size_t *cap)
{
    uint8_t *b = m->spare;
    if (b == NULL || m->spare_cap < need)
        return NULL;
    *cap = m->spare_cap;
    m->spare = NULL;
    m->spare_cap = 0;
    return b;
}

/* Free what a struct holds and give it back to its pool. */
static void
s_release(tr_msg_t *m)
{
    if (m->kind == TR__MSG_RECEIVED)
        zmq_msg_close(&m->zm); /* (empty for a handed one) */
    if (m->heap) /* built here, or handed over (tr__msg_adopt) */
        s_keep_spare(m, m->buf, m->cap);
    tr__pool_put(m);
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

_Static_assert(TR__MSG_INLINE >= TR__ENV_HDR + TR_TAG_MAX + 1,
               "a new message's inline buffer holds any tag");

/* A pool's struct made a new built message of len bytes in its inline
 * buffer. */
static void
s_built_init(tr_msg_t *m, size_t len, size_t taglen)
{
    m->env = (tr__env_t){0};
    m->buf = m->inline_buf;
    m->len = len;
    m->cap = TR__MSG_INLINE;
    m->taglen = taglen;
    m->kind = TR__MSG_BUILT;
    m->heap = false;
    m->on_heap = true;
    m->abandoning = false;
    m->borrowed = false;
    m->open = false;
}

static int
s_create(tr_msg_t **out, const char *tag, bool sys)
{
    if (out == NULL || tag == NULL || tag[0] == '\0')
        return tr__refuse(TR_EINVAL, "tr_msg_create: NULL %s",
                          out == NULL ? "out" : "or empty tag");
    if (!sys && tag[0] == '$')
        return tr__refuse(TR_EINVAL, "tr_msg_create: tag '%.24s' starts "
                          "with '$' (reserved)", tag);
    tr_msg_t *m = s_alloc();
    if (m == NULL)
        return TR_ENOMEM;
    /* The tag measured and copied in one pass (its NUL too): the header
     * before it is written by tr__msg_frame at send time, and nothing
     * reads it before (a dup copies it as it is). */
    uint8_t *d = m->inline_buf + TR__ENV_HDR;
    size_t n = 0;
    while (n <= TR_TAG_MAX && (d[n] = (uint8_t)tag[n]) != '\0')
        n++;
    if (n > TR_TAG_MAX) {
        tr__pool_put(m);
        return tr__refuse(TR_ENAMETOOLONG, "tr_msg_create: tag "
                          "'%.24s...' is longer than %d bytes", tag,
                          TR_TAG_MAX);
    }
    s_built_init(m, TR__ENV_HDR + n + 1, n);
    *out = m;
    return 0;
}

int
tr_msg_create(tr_msg_t **out, const char *tag)
{
    return s_create(out, tag, false);
}

int
tr__msg_create_sys(tr_msg_t **out, const char *tag)
{
    return s_create(out, tag, true);
}

void
tr_msg_destroy(tr_msg_t **msg)
{
    if (msg == NULL || *msg == NULL)
        return;
    tr_msg_t *m = *msg;
    assert(m->on_heap); /* a view belongs to its caller's stack */
    s_release(m);
    *msg = NULL;
}

int
tr_msg_dup(const tr_msg_t *msg, tr_msg_t **out)
{
    if (msg == NULL || out == NULL || msg->buf == NULL)
        return TR_EINVAL;
    tr_msg_t *m = s_alloc();
    if (m == NULL)
        return TR_ENOMEM;
    s_built_init(m, msg->len, msg->taglen);
    m->heap = msg->len > TR__MSG_INLINE;
    if (m->heap && (m->buf = s_take_spare(m, msg->len, &m->cap)) == NULL) {
        if ((m->buf = malloc(msg->len)) == NULL)
            goto fail;
        m->cap = msg->len;
    }
    memcpy(m->buf, msg->buf, msg->len);
    m->env = msg->env;
    *out = m;
    return 0;
fail:
    tr__pool_put(m);
    return TR_ENOMEM;
}

const char *
tr_msg_tag(const tr_msg_t *msg)
{
    return (const char *)msg->buf + TR__ENV_HDR;
}

bool
tr_msg_is(const tr_msg_t *msg, const char *tag)
{
    const char *t = tr_msg_tag(msg);
    /* The first byte turns most others away without a call. */
    return tag != NULL && t[0] == tag[0] && strcmp(t, tag) == 0;
}

tr_id_t
tr_msg_sender(const tr_msg_t *msg)
{
    return msg->env.sender;
}

bool
tr_msg_is_request(const tr_msg_t *msg)
{
    return (msg->env.flags & TR__F_REQUEST) != 0;
}

int64_t
tr_msg_deadline_left_ms(const tr_msg_t *msg)
{
    if (msg->env.deadline_ns == 0)
        return TR_FOREVER;
    return tr__ms_left(msg->env.deadline_ns);
}

const void *
tr_msg_payload(const tr_msg_t *msg, size_t *size)
{
    size_t off = TR__ENV_HDR + msg->taglen + 1;
    if (msg->buf == NULL || msg->len < off) { /* a view after a failed read */
        if (size != NULL)
            *size = 0;
        return NULL;
    }
    if (size != NULL)
        *size = msg->len - off;
    return msg->buf + off;
}

/* Room for len more bytes at the end of the frame, doubling the buffer
 * as needed: where they go, or NULL (out of memory or too large). The
 * caller writes them and then adds len to m->len. */
static uint8_t *
s_room_slow(tr_msg_t *m, size_t len)
{
    if (len > SIZE_MAX / 2 - m->len)
        return NULL;
    size_t scap;
    uint8_t *sb = s_take_spare(m, m->len + len, &scap);
    if (sb != NULL) { /* a buffer this struct had before */
        memcpy(sb, m->buf, m->len);
        if (m->heap)
            s_keep_spare(m, m->buf, m->cap);
        m->buf = sb;
        m->cap = scap;
        m->heap = true;
        return m->buf + m->len;
    }
    size_t cap = m->cap * 2;
    while (cap < m->len + len)
        cap *= 2;
    uint8_t *nb = m->heap ? realloc(m->buf, cap) : malloc(cap);
    if (nb == NULL)
        return NULL;
    if (!m->heap)
        memcpy(nb, m->buf, m->len);
    m->buf = nb;
    m->cap = cap;
    m->heap = true;
    return m->buf + m->len;
}

static inline uint8_t *
s_room(tr_msg_t *m, size_t len)
{
    if (__builtin_expect(m->len + len <= m->cap, 1))
        return m->buf + m->len;
    return s_room_slow(m, len);
}

/* Append len bytes (a whole value, or a body after its head). */
static int
s_write(tr_msg_t *m, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    uint8_t *p = s_room(m, len);
    if (p == NULL)
        return TR_ENOMEM;
    memcpy(p, buf, len);
    m->len += len;
    return 0;
}

/* The messages one can append to. */
static inline bool
s_built(const tr_msg_t *msg)
{
    return msg != NULL && msg->kind == TR__MSG_BUILT;
}

/* Append one head that put writes (at most 9 bytes). */
#define S_APPEND_HEAD(msg, expr)                                           \
    do {                                                                   \
        uint8_t *p_ = s_room((msg), 9);                                    \
        if (p_ == NULL)                                                    \
            return TR_ENOMEM;                                              \
        (msg)->len += (expr);                                              \
    } while (0)

/* A head and its body in one go, so that a failed allocation leaves no
 * half-written value behind. */
static int
s_add_body(tr_msg_t *msg, uint32_t n, uint8_t fixbase, uint32_t fixmax,
           uint8_t m8, uint8_t m16, uint8_t m32, const void *body)
{
    uint8_t *p = s_room(msg, 5 + (size_t)n);
    if (p == NULL)
        return TR_ENOMEM;
    size_t h = tr__mp_len(p, n, fixbase, fixmax, m8, m16, m32);
    if (n > 0)
        memcpy(p + h, body, n);
    msg->len += h + n;
    return 0;
}

uint8_t *
tr__msg_append(tr_msg_t *msg, size_t len)
{
    uint8_t *p = s_built(msg) ? s_room(msg, len) : NULL;
    if (p != NULL)
        msg->len += len;
    return p;
}

int
tr__msg_add_trusted(tr_msg_t *msg, const void *data, size_t len)
{
    if (!s_built(msg) || (data == NULL && len))
        return TR_EINVAL;
    return s_write(msg, data, len);
}

int
tr_msg_add_raw(tr_msg_t *msg, const void *data, size_t len)
{
    if (!s_built(msg) || (data == NULL && len))
        return TR_EINVAL;
    tr_reader_t r;
    tr_reader_init_bytes(&r, data, len);
    while (!tr_read_done(&r)) {
        int rc = tr_read_skip(&r);
        if (rc != 0)
            return rc;
    }
    return s_write(msg, data, len);
}

int
tr_msg_add_nil(tr_msg_t *msg)
{
    static const uint8_t nil = 0xc0;
    return s_built(msg) ? s_write(msg, &nil, 1) : TR_EINVAL;
}

int
tr_msg_add_bool(tr_msg_t *msg, bool v)
{
    const uint8_t b = v ? 0xc3 : 0xc2;
    return s_built(msg) ? s_write(msg, &b, 1) : TR_EINVAL;
}

int
tr_msg_add_int(tr_msg_t *msg, int64_t v)
{
    if (!s_built(msg))
        return TR_EINVAL;
    S_APPEND_HEAD(msg, tr__mp_int(p_, v));
    return 0;
}

int
tr_msg_add_uint(tr_msg_t *msg, uint64_t v)
{
    if (!s_built(msg))
        return TR_EINVAL;
    S_APPEND_HEAD(msg, tr__mp_uint(p_, v));
    return 0;
}

int
tr_msg_add_double(tr_msg_t *msg, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (!s_built(msg))
        return TR_EINVAL;
    S_APPEND_HEAD(msg, tr__mp_head(p_, 0xcb, bits, 8));
    return 0;
}

int
tr_msg_add_str(tr_msg_t *msg, const char *s)
{
    if (s == NULL)
        return TR_EINVAL;
    return tr_msg_add_strn(msg, s, strlen(s));
}

int
tr_msg_add_strn(tr_msg_t *msg, const char *s, size_t len)
{
    /* msgpack lengths are 32-bit. */
    if ((s == NULL && len > 0) || len > UINT32_MAX || !s_built(msg))
        return TR_EINVAL;
    return s_add_body(msg, (uint32_t)len, 0xa0, 32, 0xd9, 0xda, 0xdb, s);
}

int
tr_msg_add_bin(tr_msg_t *msg, const void *data, size_t len)
{
    if ((data == NULL && len > 0) || len > UINT32_MAX || !s_built(msg))
        return TR_EINVAL;
    return s_add_body(msg, (uint32_t)len, 0, 0, 0xc4, 0xc5, 0xc6, data);
}

int
tr_msg_add_array(tr_msg_t *msg, uint32_t n)
{
    if (!s_built(msg))
        return TR_EINVAL;
    S_APPEND_HEAD(msg, tr__mp_len(p_, n, 0x90, 16, 0, 0xdc, 0xdd));
    return 0;
}

int
tr_msg_add_map(tr_msg_t *msg, uint32_t n)
{
    if (!s_built(msg))
        return TR_EINVAL;
    S_APPEND_HEAD(msg, tr__mp_len(p_, n, 0x80, 16, 0, 0xde, 0xdf));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

void
tr_reader_init(tr_reader_t *r, const tr_msg_t *msg)
{
    size_t len = 0;
    const void *p = msg != NULL ? tr_msg_payload(msg, &len) : NULL;
    tr_reader_init_bytes(r, p, len);
}

void
tr_reader_init_bytes(tr_reader_t *r, const void *data, size_t len)
{
    *r = (tr_reader_t){.p = data, .len = data != NULL ? len : 0};
}

/* One decoded value head: everything but the elements of a container. */
struct s_head {
    tr_type_t type;
    size_t size;  /* bytes of the value (containers: of the head only) */
    uint64_t n;   /* int >= 0: value; str/bin/ext: body bytes;
                     array/map: count; bool: 0 or 1 */
    int64_t i;    /* int < 0: value */
    bool is_neg;
    double d;
    const uint8_t *body; /* str/bin/ext: the body */
};

static uint64_t
s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Two's complement of an n-byte integer, without an implementation-defined
 * unsigned to signed conversion. */
static int64_t
s_signed(uint64_t x, size_t n)
{
    uint64_t sign = (uint64_t)1 << (8 * n - 1);
    if ((x & sign) == 0)
        return (int64_t)x;
    return -1 - (int64_t)(~x & (sign - 1));
}

/* Decode the head of the value at p (left bytes there), checking that the
 * whole value fits: its body, or for a container one byte per element (two
 * per map entry), so a forged count cannot make a caller loop for long.
 * Errors: TR_ETRUNC, TR_EPROTO. The one place that knows msgpack markers. */
static int
s_head(const uint8_t *p, size_t left, struct s_head *h)
{
    if (left == 0)
        return TR_ETRUNC;
    uint8_t b = p[0];
    size_t lenb = 0; /* bytes of the big-endian length/count/value field */
    size_t extra = 0; /* bytes between that field and the body (ext type) */
    *h = (struct s_head){.size = 1};

    if (b <= 0x7f || b >= 0xe0) {
        h->type = TR_TYPE_INT;
        h->is_neg = b >= 0xe0;
        h->i = s_signed(b, 1);
        h->n = b;
        return 0;
    }
    if (b <= 0x8f) {
        h->type = TR_TYPE_MAP;
        h->n = b & 0x0f;
    } else if (b <= 0x9f) {
        h->type = TR_TYPE_ARRAY;
        h->n = b & 0x0f;
    } else if (b <= 0xbf) {
        h->type = TR_TYPE_STR;
        h->n = b & 0x1f;
    } else {
        switch (b) {
        case 0xc0:
            h->type = TR_TYPE_NIL;
            return 0;
        case 0xc2:
        case 0xc3:
            h->type = TR_TYPE_BOOL;
            h->n = b & 1;
            return 0;
        case 0xc4: case 0xc5: case 0xc6:
            h->type = TR_TYPE_BIN;
            lenb = (size_t)1 << (b - 0xc4);
            break;
        case 0xc7: case 0xc8: case 0xc9:
            h->type = TR_TYPE_EXT;
            lenb = (size_t)1 << (b - 0xc7);
            extra = 1;
            break;
        case 0xca: case 0xcb:
            h->type = TR_TYPE_DOUBLE;
            lenb = b == 0xca ? 4 : 8;
            break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:
            h->type = TR_TYPE_INT;
            lenb = (size_t)1 << (b & 3);
            break;
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
            h->type = TR_TYPE_EXT;
            h->n = (uint64_t)1 << (b - 0xd4);
            extra = 1;
            break;
        case 0xd9: case 0xda: case 0xdb:
            h->type = TR_TYPE_STR;
            lenb = (size_t)1 << (b - 0xd9);
            break;
        case 0xdc: case 0xdd:
            h->type = TR_TYPE_ARRAY;
            lenb = b == 0xdc ? 2 : 4;
            break;
        case 0xde: case 0xdf:
            h->type = TR_TYPE_MAP;
            lenb = b == 0xde ? 2 : 4;
            break;
        default: /* 0xc1: never used */
            return TR_EPROTO;
        }
    }

    h->size = 1 + lenb + extra;
    if (h->size > left)
        return TR_ETRUNC;
    left -= h->size;
    if (lenb > 0) {
        uint64_t v = s_be(p + 1, lenb);
        if (h->type == TR_TYPE_DOUBLE) {
            if (lenb == 4) {
                float f;
                uint32_t u = (uint32_t)v;
                memcpy(&f, &u, sizeof f);
                h->d = f;
            } else {
                memcpy(&h->d, &v, sizeof h->d);
            }
            return 0;
        }
        if (h->type == TR_TYPE_INT) {
            h->n = v;
            if (b >= 0xd0) { /* int 8..64: signed */
                h->i = s_signed(v, lenb);
                h->is_neg = h->i < 0;
                h->n = (uint64_t)h->i; /* read only when not negative */
            }
            return 0;
        }
        h->n = v;
    }
    switch (h->type) {
    case TR_TYPE_ARRAY:
        return h->n > left ? TR_ETRUNC : 0;
    case TR_TYPE_MAP:
        return h->n > left / 2 ? TR_ETRUNC : 0;
    default: /* str, bin, ext */
        if (h->n > left)
            return TR_ETRUNC;
        h->body = p + h->size;
        h->size += (size_t)h->n;
        return 0;
    }
}

/* The next value's head if it has type want. TR_ETYPE leaves no trace; a
 * malformed value sets the sticky error. */
static int
s_next(tr_reader_t *r, tr_type_t want, struct s_head *h)
{
    if (r->err != 0)
        return r->err;
    int rc = s_head(r->p + r->pos, r->len - r->pos, h);
    if (rc != 0)
        return r->err = rc;
    return h->type == want ? 0 : TR_ETYPE;
}

tr_type_t
tr_read_type(const tr_reader_t *r)
{
    struct s_head h;
    if (r->err != 0)
        return TR_TYPE_INVALID;
    if (r->pos == r->len)
        return TR_TYPE_END;
    if (s_head(r->p + r->pos, r->len - r->pos, &h) != 0)
        return TR_TYPE_INVALID;
    return h.type;
}

int
tr_read_nil(tr_reader_t *r)
{
    struct s_head h;
    int rc = s_next(r, TR_TYPE_NIL, &h);
    if (rc == 0)
        r->pos += h.size;
    return rc;
}

int
tr_read_bool(tr_reader_t *r, bool *v)
{
    struct s_head h;
    int rc = s_next(r, TR_TYPE_BOOL, &h);
    if (rc != 0)
        return rc;
    *v = h.n != 0;
    r->pos += h.size;
    return 0;
}

int
tr_read_int(tr_reader_t *r, int64_t *v)
{
    /* The forms that fit 32 bits without the general decoder (profiled: a
     * pool reads three integers a task). Sign from the top bit without an
     * implementation-defined conversion. */
    if (r->err == 0 && r->pos < r->len) {
        const uint8_t *p = r->p + r->pos;
        size_t left = r->len - r->pos;
        switch (p[0]) {
        case 0xcc: /* uint 8, 16, 32: 1, 2, 4 bytes big-endian */
        case 0xcd:
        case 0xce:
        case 0xd0: /* int 8, 16, 32 */
        case 0xd1:
        case 0xd2: {
            size_t n = (size_t)1 << (p[0] & 3);
            if (left < n + 1)
                break;
            uint32_t x = 0;
            for (size_t i = 1; i <= n; i++)
                x = x << 8 | p[i];
            bool neg = p[0] >= 0xd0 && p[1] >= 0x80; /* signed, top bit */
            *v = neg ? (int64_t)x - ((int64_t)1 << (8 * n)) : (int64_t)x;
            r->pos += n + 1;
            return 0;
        }
        default:
            if (p[0] <= 0x7f) { /* positive fixint */
                *v = p[0];
                r->pos++;
                return 0;
            }
            if (p[0] >= 0xe0) { /* negative fixint */
                *v = (int64_t)p[0] - 0x100;
                r->pos++;
                return 0;
            }
        }
    }
    struct s_head h;
    int rc = s_next(r, TR_TYPE_INT, &h);
    if (rc != 0)
        return rc;
    if (!h.is_neg && h.n > INT64_MAX)
        return TR_ERANGE;
    *v = h.is_neg ? h.i : (int64_t)h.n;
    r->pos += h.size;
    return 0;
}

int
tr_read_uint(tr_reader_t *r, uint64_t *v)
{
    struct s_head h;
    int rc = s_next(r, TR_TYPE_INT, &h);
    if (rc != 0)
        return rc;
    if (h.is_neg)
        return TR_ERANGE;
    *v = h.n;
    r->pos += h.size;
    return 0;
}

int
tr_read_double(tr_reader_t *r, double *v)
{
    struct s_head h;
    int rc = s_next(r, TR_TYPE_DOUBLE, &h);
    if (rc != 0)
        return rc;
    *v = h.d;
    r->pos += h.size;
    return 0;
}

int
tr_read_str(tr_reader_t *r, const char **s, size_t *len)
{
    struct s_head h;
    int rc = s_next(r, TR_TYPE_STR, &h);
    if (rc != 0)
        return rc;
    *s = (const char *)h.body;
    *len = (size_t)h.n;
    r->pos += h.size;
    return 0;
}

int
tr_read_str_copy(tr_reader_t *r, char *buf, size_t cap)
{
    if (r->err == 0 && r->pos < r->len && (r->p[r->pos] & 0xe0) == 0xa0) {
        size_t n = r->p[r->pos] & 0x1f; /* a fixstr: the common case */
        if (n + 1 <= r->len - r->pos) {
            if (buf == NULL || n >= cap)
                return TR_ERANGE;
            memcpy(buf, r->p + r->pos + 1, n);
            buf[n] = '\0';
            r->pos += n + 1;
            return 0;
        }
    }
    struct s_head h;
    int rc = s_next(r, TR_TYPE_STR, &h);
    if (rc != 0)
        return rc;
    if (buf == NULL || h.n >= cap)
        return TR_ERANGE;
    memcpy(buf, h.body, (size_t)h.n);
    buf[h.n] = '\0';
    r->pos += h.size;
    return 0;
}

int
tr_read_bin(tr_reader_t *r, const void **data, size_t *len)
{
    if (r->err == 0 && r->len - r->pos >= 2 && r->p[r->pos] == 0xc4 &&
        (size_t)r->p[r->pos + 1] <= r->len - r->pos - 2) {
        *len = r->p[r->pos + 1]; /* a bin8: the common case */
        *data = r->p + r->pos + 2;
        r->pos += 2 + *len;
        return 0;
    }
    struct s_head h;
    int rc = s_next(r, TR_TYPE_BIN, &h);
    if (rc != 0)
        return rc;
    *data = h.body;
    *len = (size_t)h.n;
    r->pos += h.size;
    return 0;
}

int
tr_read_array(tr_reader_t *r, uint32_t *n)
{
    struct s_head h;
    int rc = s_next(r, TR_TYPE_ARRAY, &h);
    if (rc != 0)
        return rc;
    *n = (uint32_t)h.n;
    r->pos += h.size;
    return 0;
}

int
tr_read_map(tr_reader_t *r, uint32_t *n)
{
    struct s_head h;
    int rc = s_next(r, TR_TYPE_MAP, &h);
    if (rc != 0)
        return rc;
    *n = (uint32_t)h.n;
    r->pos += h.size;
    return 0;
}

_Static_assert(TR__MSG_MAX_DEPTH >= 1 && TR__MSG_MAX_DEPTH <= 4096,
               "TR__MSG_MAX_DEPTH: 1 to 4096 levels");

int
tr_read_skip(tr_reader_t *r)
{
    /* An explicit stack of the values still to skip at each open
     * container, not recursion: a payload of 100,000 nested arrays must not
     * overflow the stack. Past TR__MSG_MAX_DEPTH levels the value is
     * refused, so what we forward (tr_msg_add_raw) is never deeper than a
     * recursive reader on the other side can take. s_head bounds each count
     * by the bytes left, so a forged count cannot make this loop long. */
    if (r->err != 0)
        return r->err;
    uint64_t left[TR__MSG_MAX_DEPTH];
    size_t depth = 0;
    size_t pos = r->pos;
    for (;;) {
        struct s_head h;
        int rc = s_head(r->p + pos, r->len - pos, &h);
        if (rc != 0)
            return r->err = rc;
        pos += h.size;
        if (h.type == TR_TYPE_ARRAY || h.type == TR_TYPE_MAP) {
            /* Empty containers count too: the limit is on how deep a
             * value sits, whatever is inside it. */
            if (depth == TR__MSG_MAX_DEPTH)
                return TR_ERANGE; /* cursor unmoved; not sticky */
            uint64_t n = h.type == TR_TYPE_MAP ? 2 * h.n : h.n;
            if (n > 0) {
                left[depth++] = n;
                continue;
            }
        }
        /* One whole value done: it may complete its containers too. */
        while (depth > 0 && --left[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    r->pos = pos;
    return 0;
}

bool
tr_read_done(const tr_reader_t *r)
{
    return r->pos >= r->len;
}

/* ------------------------------------------------------------------ */
/* Frames and views                                                    */
/* ------------------------------------------------------------------ */

/* ZeroMQ calls this when the last holder of a lent frame closes it: the
 * receiving thread, an I/O thread, or our own abandon. */
static void
s_zmq_free(void *data, void *hint)
{
    (void)data;
    tr_msg_t *m = hint;
    if (m->abandoning) { /* abandoned: the caller keeps the message */
        m->abandoning = false;
        return;
    }
    /* A receipt: the shown messages sent before it are done with too,
     * back to their pool in one exchange when they can be (this runs in an
     * I/O thread, which would otherwise touch each one). */
    tr_msg_t *chain = m->chain;
    if (chain != NULL) {
        m->chain = NULL;
        if (m->chain_mixed)
            tr__msg_chain_release(chain);
        else
            tr__pool_put_list(chain, m->chain_last);
    }
    s_release(m);
}

void
tr__msg_chain_release(tr_msg_t *chain)
{
    for (tr_msg_t *next; chain != NULL; chain = next) {
        next = chain->pool_next;
        s_release(chain);
    }
}

void
tr__msg_zmq_show(tr_msg_t *msg, zmq_msg_t *zm)
{
    assert(msg->kind == TR__MSG_BUILT && msg->on_heap);
    tr__env_write(msg->buf, &msg->env, msg->taglen);
    zmq_msg_init_data(zm, msg->buf, msg->len, NULL, NULL); /* no alloc */
}

int
tr__msg_zmq_receipt(zmq_msg_t *zm, tr_msg_t *chain, tr_msg_t **carrier)
{
    tr_msg_t *m = s_alloc();
    if (m == NULL)
        return TR_ENOMEM;
    s_built_init(m, 0, 0);
    m->chain = chain;
    m->chain_mixed = true; /* rare: one by one */
    if (zmq_msg_init_data(zm, m->buf, 0, s_zmq_free, m) != 0) {
        m->chain = NULL;
        tr__pool_put(m);
        return TR_ENOMEM;
    }
    *carrier = m;
    return 0;
}

int
tr__msg_zmq_lend(tr_msg_t *msg, zmq_msg_t *zm)
{
    assert(msg->kind == TR__MSG_BUILT && msg->on_heap);
    tr__env_write(msg->buf, &msg->env, msg->taglen);
    if (zmq_msg_init_data(zm, msg->buf, msg->len, s_zmq_free, msg) != 0)
        return TR_ENOMEM;
    return 0;
}

void
tr__msg_zmq_abandon(tr_msg_t *msg, zmq_msg_t *zm)
{
    msg->abandoning = true;
    zmq_msg_close(zm); /* runs s_zmq_free, which sees abandoning; a handed
                        * frame runs nothing */
    msg->abandoning = false;
}

/* A handed frame: a mark no frame starts with ('T' does), this process's
 * key, the message's address, and its frame's address and length (so
 * that the reader goes straight to the frame, while the struct's line is
 * fetched alongside: profiled, the two cache misses one after the other
 * were a quarter of a thread pool's time); 29 bytes, shorter than any
 * frame (TR__ENV_MIN), so that whatever parses frames as bytes rejects
 * it, and short enough to live inside the zmq_msg_t. */
#define S_HAND_MARK 'P'
#define S_HAND_OPEN 'Q' /* an open batch: its length is read when sealed */
#define S_HAND_LEN 29

/* An open batch's states (the low two bits of its word). */
enum { S_OPEN = 1, S_BUSY = 2, S_SEALED = 3 };

static uint64_t s_hand_key;

__attribute__((constructor)) static void
s_hand_key_make(void)
{
    uint64_t k = 0;
    if (getrandom(&k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
            ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&k;
    }
    s_hand_key = k | 1; /* never 0 */
}

static void
s_hand(tr_msg_t *msg, zmq_msg_t *zm, uint8_t mark)
{
    assert(msg->kind == TR__MSG_BUILT && msg->on_heap);
    tr__env_write(msg->buf, &msg->env, msg->taglen);
    zmq_msg_init_size(zm, S_HAND_LEN); /* inside zm: cannot fail */
    uint8_t *d = zmq_msg_data(zm);
    uint32_t len = (uint32_t)msg->len; /* at most max_message_bytes, an int */
    d[0] = mark;
    memcpy(d + 1, &s_hand_key, 8);
    memcpy(d + 9, &msg, sizeof msg);
    memcpy(d + 17, &msg->buf, sizeof msg->buf);
    memcpy(d + 25, &len, 4);
}

void
tr__msg_zmq_hand(tr_msg_t *msg, zmq_msg_t *zm)
{
    s_hand(msg, zm, S_HAND_MARK);
}

void
tr__msg_zmq_hand_open(tr_msg_t *msg, zmq_msg_t *zm)
{
    /* A new generation: any word from an earlier use is stale now. */
    uint64_t gen = (atomic_load_explicit(&msg->seal, memory_order_relaxed) >>
                    2) + 1;
    msg->open_word = gen << 2 | S_OPEN;
    atomic_store_explicit(&msg->seal, msg->open_word, memory_order_release);
    s_hand(msg, zm, S_HAND_OPEN);
}

bool
tr__msg_open_begin(tr_msg_t *msg, uint64_t word)
{
    return atomic_compare_exchange_strong_explicit(
        &msg->seal, &word, (word & ~(uint64_t)3) | S_BUSY,
        memory_order_acquire, memory_order_relaxed);
}

void
tr__msg_open_end(tr_msg_t *msg, uint64_t word)
{
    atomic_store_explicit(&msg->seal, word, memory_order_release);
}

/* The reader's side: close an open batch to appends (after one in
 * progress ends) and read its length as it is now. */
static size_t
s_seal(tr_msg_t *m)
{
    uint64_t w = atomic_load_explicit(&m->seal, memory_order_acquire);
    for (;;) {
        uint64_t st = w & 3;
        if (st == S_OPEN &&
            atomic_compare_exchange_weak_explicit(
                &m->seal, &w, (w & ~(uint64_t)3) | S_SEALED,
                memory_order_acq_rel, memory_order_acquire))
            break;
        if (st == S_BUSY) { /* its sender is appending: a few stores */
            sched_yield();
            w = atomic_load_explicit(&m->seal, memory_order_acquire);
        } else if (st != S_OPEN) {
            break; /* not open (cannot happen: one reader) */
        }
    }
    return m->len;
}

/* The message a received frame hands over (and its frame, *buf, *len),
 * or NULL when it is not a handed frame of this process. */
static inline tr_msg_t *
s_handed(zmq_msg_t *zm, size_t flen, uint8_t **buf, size_t *len)
{
    const uint8_t *d;
    if (flen != S_HAND_LEN ||
        ((d = zmq_msg_data(zm))[0] != S_HAND_MARK && d[0] != S_HAND_OPEN) ||
        memcmp(d + 1, &s_hand_key, 8) != 0)
        return NULL;
    tr_msg_t *m;
    uint32_t n;
    memcpy(&m, d + 9, sizeof m);
    memcpy(buf, d + 17, sizeof *buf);
    if (d[0] == S_HAND_OPEN) {
        *len = s_seal(m);
        return m;
    }
    memcpy(&n, d + 25, 4);
    *len = n;
    __builtin_prefetch(m); /* its release reads it */
    return m;
}

const uint8_t *
tr__msg_frame(tr_msg_t *msg, size_t *len)
{
    tr__env_write(msg->buf, &msg->env, msg->taglen);
    *len = msg->len;
    return msg->buf;
}

/* A view that holds nothing but an empty zmq_msg_t, so that closing it
 * again is harmless. */
static void
s_view_empty(tr_msg_t *view)
{
    zmq_msg_init(&view->zm);
    view->lent = NULL; /* released or passed on before */
    view->buf = NULL;
    view->len = 0;
    view->taglen = 0;
    view->borrowed = false;
}

/* Give back the message a view holds from a handed frame, if any. */
static inline void
s_view_let_go(tr_msg_t *view)
{
    if (view->lent != NULL) {
        s_release(view->lent);
        view->lent = NULL;
    }
}

/* Parse the frame view->zm holds, of len bytes; with handed, the frame
 * of the message it handed over (which the view then holds). On error the
 * view is left empty. */
static int
s_view_parse(tr_msg_t *view, size_t len, bool handed)
{
    const char *tag;
    const uint8_t *payload;
    size_t plen;

    view->kind = TR__MSG_RECEIVED;
    view->heap = false;
    view->on_heap = false;
    view->borrowed = false;
    view->cap = 0;
    tr_msg_t *m = handed ? s_handed(&view->zm, len, &view->buf, &len) : NULL;
    if (m != NULL) {
        view->lent = m;
    } else {
        /* The frame is ours alone (never zmq_msg_copy'd), so buf may
         * point at it without const: tr__msg_frame can rewrite the header
         * to forward. */
        view->buf = zmq_msg_data(&view->zm);
    }
    view->len = len;
    int rc = tr__env_parse_inline(view->buf, view->len, &view->env, &tag,
                                  &view->taglen, &payload, &plen);
    if (rc != 0) {
        s_view_let_go(view);
        zmq_msg_close(&view->zm);
        s_view_empty(view);
    }
    return rc;
}

int
tr__msg_sub_view(tr_msg_t *sub, const uint8_t *frame, size_t len)
{
    const char *tag;
    const uint8_t *payload;
    size_t plen;
    tr__msg_view_open(sub);
    int rc = tr__env_parse(frame, len, &sub->env, &tag, &sub->taglen,
                           &payload, &plen);
    if (rc != 0)
        return rc;
    sub->buf = (uint8_t *)frame; /* read only: a view is never appended */
    sub->len = len;
    sub->borrowed = true;
    return 0;
}

int
tr__msg_view_init(tr_msg_t *view, zmq_msg_t *zm)
{
    zmq_msg_init(&view->zm);
    zmq_msg_move(&view->zm, zm);
    view->lent = NULL;
    /* From another node or process: never a handed frame. */
    return s_view_parse(view, zmq_msg_size(&view->zm), false);
}

void
tr__msg_view_open(tr_msg_t *view)
{
    view->kind = TR__MSG_RECEIVED;
    view->on_heap = false;
    s_view_empty(view);
}

int
tr__msg_view_recv(tr_msg_t *view, void *sock, bool block)
{
    /* zmq_msg_recv releases the frame the view held before: a loop over
     * one view pays no init, move or close per message. */
    s_view_let_go(view);
    for (;;) {
        /* What zmq_msg_recv returns is the size, but capped at INT_MAX:
         * zmq_msg_size only then. */
        int n = zmq_msg_recv(&view->zm, sock, block ? 0 : ZMQ_DONTWAIT);
        if (n == 0)
            continue; /* a receipt (tr__msg_zmq_receipt): nothing */
        if (n >= 0)
            return s_view_parse(view,
                                n < INT_MAX ? (size_t)n
                                            : zmq_msg_size(&view->zm),
                                true);
        switch (zmq_errno()) {
        case EINTR:
            continue;
        case EAGAIN:
            return TR_EAGAIN;
        case ETERM:
            return TR_ECLOSED;
        default:
            return TR_ESYS;
        }
    }
}

void
tr__msg_view_close(tr_msg_t *view)
{
    if (view->kind != TR__MSG_RECEIVED)
        return;
    s_view_let_go(view);
    zmq_msg_close(&view->zm);
    s_view_empty(view);
}

int
tr__msg_adopt(tr_msg_t *view, tr_msg_t **out)
{
    assert(view->kind == TR__MSG_RECEIVED && view->buf != NULL);
    if (view->borrowed) { /* the frame is another's: a copy of it */
        int rc = tr_msg_dup(view, out);
        if (rc == 0)
            s_view_empty(view);
        return rc;
    }
    tr_msg_t *m = view->lent;
    if (m != NULL) {
        /* Handed over: the message itself becomes the received one (its
         * buffer stays its own: heap and cap as they were). */
        m->env = view->env;
        m->kind = TR__MSG_RECEIVED;
        m->abandoning = false;
        m->borrowed = false;
        zmq_msg_init(&m->zm);
        view->lent = NULL;
        zmq_msg_close(&view->zm);
        s_view_empty(view);
        *out = m;
        return 0;
    }
    if ((m = s_alloc()) == NULL)
        return TR_ENOMEM;
    m->env = view->env;
    m->len = view->len;
    m->cap = 0;
    m->taglen = view->taglen;
    m->kind = TR__MSG_RECEIVED;
    m->heap = false;
    m->on_heap = true;
    m->abandoning = false;
    m->borrowed = false;
    zmq_msg_init(&m->zm);
    zmq_msg_move(&m->zm, &view->zm);
    /* Small frames live inside the zmq_msg_t itself, so the data moved. */
    m->buf = zmq_msg_data(&m->zm);
    s_view_empty(view);
    *out = m;
    return 0;
}
