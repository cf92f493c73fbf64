/* fuzz/fuzz_reader.c - libFuzzer harness for the payload reader (tr_read_*)
 * and the payload writer behind it (tr_msg_add_*). The input is a payload:
 * msgpack values back to back, as tr_reader_init_bytes takes them.
 *
 * Each input is read four ways, which must agree:
 *  1. a walk that reads every value with the reader of its type, descends
 *     into arrays and maps (up to TR__MSG_MAX_DEPTH, as tr_read_skip does),
 *     first tries a reader of another type (TR_ETYPE, cursor unmoved),
 *     copies strings into small buffers (TR_ERANGE, cursor unmoved, when
 *     they do not fit), and records what it read in a trace;
 *  2. tr_read_skip, value by value: the same end or the same error code;
 *  3. tr_msg_add_raw of the whole input: accepted exactly when 1 and 2
 *     accept it, and then the payload is the input, byte for byte;
 *  4. a drain by tr_read_type, under the allocation meter: no byte
 *     malloc'd, whatever the length fields say.
 * What the walk accepts is then checked two more ways:
 *  - against msgpack-c's unpacker, the reference decoder: the same values
 *    (a round trip alone would not see a value misread the same way by
 *    both passes, such as a signed int16 taken as unsigned);
 *  - by a round trip: written again with tr_msg_add_* (ext values with
 *    tr_msg_add_raw), it must read back to the same trace, and writing that
 *    again gives the same bytes (the writer's choice of encodings is
 *    settled after one pass). */
#include "fuzz/fuzz.h"

#include <math.h>
#include <string.h>

#include <msgpack.h>

#include "transport/msg.h"
#include "troupe.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_meter_install();
    return 0;
}

/* ------------------------------------------------------------------ */
/* The trace: what a walk read, comparable between walks               */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} s_trace_t;

static void
s_put(s_trace_t *t, const void *data, size_t n)
{
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n)
            cap *= 2;
        t->p = realloc(t->p, cap);
        FZ_CHECK(t->p != NULL);
        t->cap = cap;
    }
    if (n > 0)
        memcpy(t->p + t->len, data, n);
    t->len += n;
}

static void
s_put_kind(s_trace_t *t, char kind, uint64_t v)
{
    s_put(t, &kind, 1);
    s_put(t, &v, sizeof v);
}

/* ------------------------------------------------------------------ */
/* The walk                                                            */
/* ------------------------------------------------------------------ */

/* One reader of each kind, to call on a value of another type. */
static int
s_read_as(tr_reader_t *r, unsigned which)
{
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    const void *p;
    size_t n;
    uint32_t c;
    char buf[4];
    switch (which % 10) {
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

/* Which s_read_as kinds read a value of type ty. */
static bool
s_reads(unsigned which, tr_type_t ty)
{
    switch (which % 10) {
    case 0: return ty == TR_TYPE_NIL;
    case 1: return ty == TR_TYPE_BOOL;
    case 2: case 3: return ty == TR_TYPE_INT;
    case 4: return ty == TR_TYPE_DOUBLE;
    case 5: case 6: return ty == TR_TYPE_STR;
    case 7: return ty == TR_TYPE_BIN;
    case 8: return ty == TR_TYPE_ARRAY;
    default: return ty == TR_TYPE_MAP;
    }
}

/* Where an ext value's body starts, by its marker (0: not an ext). */
static size_t
s_ext_body(uint8_t marker)
{
    switch (marker) {
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return 2;
    case 0xc7: return 3;
    case 0xc8: return 4;
    case 0xc9: return 6;
    default: return 0;
    }
}

static void
s_put_ext(s_trace_t *t, int8_t type, const void *body, size_t n)
{
    s_put_kind(t, 'e', n);
    s_put(t, &type, 1);
    s_put(t, body, n);
}

static uint64_t
s_double_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    /* Every NaN is one: a float32 NaN may change payload on its way to a
     * double, and NaN != NaN. -0.0 keeps its bits. */
    return isnan(d) ? 0x7ff8000000000000u : bits;
}

typedef struct {
    s_trace_t trace;
    tr_msg_t *out; /* the values written again */
    unsigned salt; /* picks the wrong reader and the copy buffer size */
    unsigned levels; /* the most containers one inside another */
} s_walk_t;

static int s_walk(tr_reader_t *r, s_walk_t *w, unsigned depth);

static int
s_walk_str(tr_reader_t *r, s_walk_t *w)
{
    /* In place first, on a copy of the cursor, then copied into a buffer
     * of 0..8 bytes. */
    tr_reader_t c = *r;
    const char *s;
    size_t n;
    FZ_CHECK(tr_read_str(&c, &s, &n) == 0);
    FZ_CHECK(s >= (const char *)r->p && s + n <= (const char *)r->p + r->len);
    char buf[9];
    size_t cap = w->salt++ % 9;
    memset(buf, 'x', sizeof buf);
    int rc = tr_read_str_copy(r, cap > 0 ? buf : NULL, cap);
    if (n < cap) {
        FZ_CHECK(rc == 0 && r->pos == c.pos);
        FZ_CHECK(memcmp(buf, s, n) == 0 && buf[n] == '\0');
    } else {
        FZ_CHECK(rc == TR_ERANGE && r->pos < c.pos && r->err == 0);
        FZ_CHECK(cap == 0 || buf[0] == 'x'); /* untouched */
        *r = c;
    }
    s_put_kind(&w->trace, 's', n);
    s_put(&w->trace, s, n);
    return tr_msg_add_strn(w->out, s, n);
}

static int
s_walk_int(tr_reader_t *r, s_walk_t *w)
{
    tr_reader_t c = *r;
    int64_t i;
    uint64_t u;
    int rc = tr_read_int(r, &i);
    int urc = tr_read_uint(&c, &u);
    if (rc == TR_ERANGE) { /* above INT64_MAX */
        FZ_CHECK(r->pos < c.pos && r->err == 0);
        FZ_CHECK(urc == 0 && u > (uint64_t)INT64_MAX);
        *r = c;
        s_put_kind(&w->trace, 'u', u);
        return tr_msg_add_uint(w->out, u);
    }
    FZ_CHECK(rc == 0);
    if (i < 0)
        FZ_CHECK(urc == TR_ERANGE && c.pos < r->pos);
    else
        FZ_CHECK(urc == 0 && u == (uint64_t)i && c.pos == r->pos);
    s_put_kind(&w->trace, 'i', (uint64_t)i);
    return tr_msg_add_int(w->out, i);
}

static int
s_walk_container(tr_reader_t *r, s_walk_t *w, unsigned depth, bool map)
{
    uint32_t n;
    tr_reader_t c = *r;
    int rc = map ? tr_read_map(&c, &n) : tr_read_array(&c, &n);
    /* tr_read_skip refuses a container this deep once its head is read
     * (a forged count is TR_ETRUNC first): so does the walk, whose
     * recursion stays bounded. */
    if (rc == 0 && depth >= TR__MSG_MAX_DEPTH)
        return TR_ERANGE;
    *r = c;
    if (rc != 0)
        return rc;
    if (depth + 1 > w->levels)
        w->levels = depth + 1;
    s_put_kind(&w->trace, map ? 'm' : 'a', n);
    if ((rc = map ? tr_msg_add_map(w->out, n) : tr_msg_add_array(w->out, n)))
        return rc;
    uint64_t values = map ? 2 * (uint64_t)n : n;
    for (uint64_t k = 0; k < values; k++)
        if ((rc = s_walk(r, w, depth + 1)) != 0)
            return rc;
    return 0;
}

/* Walk one value, depth containers deep. */
static int
s_walk(tr_reader_t *r, s_walk_t *w, unsigned depth)
{
    tr_type_t ty = tr_read_type(r);
    size_t pos = r->pos;
    if (ty == TR_TYPE_END || ty == TR_TYPE_INVALID) {
        /* Cut short or not msgpack: every reader says so, for good. */
        int rc = s_read_as(r, w->salt++);
        FZ_CHECK(rc == TR_ETRUNC || rc == TR_EPROTO);
        FZ_CHECK(ty != TR_TYPE_END || rc == TR_ETRUNC);
        FZ_CHECK(tr_read_skip(r) == rc && tr_read_type(r) ==
                 TR_TYPE_INVALID && r->pos == pos);
        return rc;
    }

    /* A reader of another type: TR_ETYPE, and nothing moved. */
    unsigned wrong = w->salt++;
    if (!s_reads(wrong, ty)) {
        FZ_CHECK(s_read_as(r, wrong) == TR_ETYPE);
        FZ_CHECK(r->pos == pos && r->err == 0 && tr_read_type(r) == ty);
    }

    bool b;
    double d;
    const void *p;
    size_t n;
    int rc;
    switch (ty) {
    case TR_TYPE_NIL:
        FZ_CHECK(tr_read_nil(r) == 0);
        s_put_kind(&w->trace, 'n', 0);
        return tr_msg_add_nil(w->out);
    case TR_TYPE_BOOL:
        FZ_CHECK(tr_read_bool(r, &b) == 0);
        s_put_kind(&w->trace, 'b', b);
        return tr_msg_add_bool(w->out, b);
    case TR_TYPE_INT:
        return s_walk_int(r, w);
    case TR_TYPE_DOUBLE:
        FZ_CHECK(tr_read_double(r, &d) == 0);
        s_put_kind(&w->trace, 'd', s_double_bits(d));
        return tr_msg_add_double(w->out, d);
    case TR_TYPE_STR:
        return s_walk_str(r, w);
    case TR_TYPE_BIN:
        FZ_CHECK(tr_read_bin(r, &p, &n) == 0);
        FZ_CHECK((const uint8_t *)p >= r->p &&
                 (const uint8_t *)p + n <= r->p + r->len);
        s_put_kind(&w->trace, 'x', n);
        s_put(&w->trace, p, n);
        return tr_msg_add_bin(w->out, p, n);
    case TR_TYPE_ARRAY:
        return s_walk_container(r, w, depth, false);
    case TR_TYPE_MAP:
        return s_walk_container(r, w, depth, true);
    case TR_TYPE_EXT: {
        /* No reader of its own: skipped whole, written back raw. */
        if ((rc = tr_read_skip(r)) != 0)
            return rc;
        const uint8_t *v = r->p + pos;
        size_t vlen = r->pos - pos;
        size_t off = s_ext_body(v[0]); /* the type byte is just before */
        FZ_CHECK(off > 0 && off <= vlen);
        s_put_ext(&w->trace, (int8_t)v[off - 1], v + off, vlen - off);
        return tr_msg_add_raw(w->out, v, vlen);
    }
    default:
        FZ_CHECK(!"tr_read_type gave an unknown type");
        return TR_EPROTO;
    }
}

/* Walk a whole payload, checking each top-level value against tr_read_skip
 * from the same place. 0 when every value was read. */
static int
s_walk_all(const uint8_t *data, size_t size, s_walk_t *w)
{
    tr_reader_t r;
    tr_reader_init_bytes(&r, data, size);
    while (!tr_read_done(&r)) {
        tr_reader_t c = r;
        int src = tr_read_skip(&c);
        int rc = s_walk(&r, w, 0);
        FZ_CHECK(rc == src);
        if (rc != 0) {
            FZ_CHECK(rc == TR_ETRUNC || rc == TR_EPROTO || rc == TR_ERANGE);
            return rc;
        }
        FZ_CHECK(r.pos == c.pos && r.pos <= size);
    }
    FZ_CHECK(r.pos == size && tr_read_type(&r) == TR_TYPE_END);
    return 0;
}

/* ------------------------------------------------------------------ */
/* The reference: msgpack-c                                            */
/* ------------------------------------------------------------------ */

/* The trace of one object unpacked by msgpack-c, as s_walk writes it. */
static void
s_ref_trace(s_trace_t *t, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        s_put_kind(t, 'n', 0);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        s_put_kind(t, 'b', o->via.boolean);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        s_put_kind(t, o->via.u64 > (uint64_t)INT64_MAX ? 'u' : 'i',
                   o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        s_put_kind(t, 'i', (uint64_t)o->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        s_put_kind(t, 'd', s_double_bits(o->via.f64));
        break;
    case MSGPACK_OBJECT_STR:
        s_put_kind(t, 's', o->via.str.size);
        s_put(t, o->via.str.ptr, o->via.str.size);
        break;
    case MSGPACK_OBJECT_BIN:
        s_put_kind(t, 'x', o->via.bin.size);
        s_put(t, o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_EXT:
        s_put_ext(t, o->via.ext.type, o->via.ext.ptr, o->via.ext.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        s_put_kind(t, 'a', o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            s_ref_trace(t, &o->via.array.ptr[i]);
        break;
    case MSGPACK_OBJECT_MAP:
        s_put_kind(t, 'm', o->via.map.size);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            s_ref_trace(t, &o->via.map.ptr[i].key);
            s_ref_trace(t, &o->via.map.ptr[i].val);
        }
        break;
    default:
        FZ_CHECK(!"msgpack-c gave an unknown type");
    }
}

/* A payload the walk accepted, unpacked by msgpack-c: the same trace.
 * msgpack-c takes at most MSGPACK_EMBED_STACK_SIZE (32) containers one
 * inside another, fewer than we do: deeper payloads are not compared. */
static void
s_check_reference(const uint8_t *data, size_t size, const s_walk_t *w)
{
    if (w->levels >= 32)
        return;
    s_trace_t t = {0};
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    while (off < size) {
        msgpack_unpack_return ret =
            msgpack_unpack_next(&u, (const char *)data, size, &off);
        FZ_CHECK(ret == MSGPACK_UNPACK_SUCCESS);
        s_ref_trace(&t, &u.data);
    }
    msgpack_unpacked_destroy(&u);
    FZ_CHECK(t.len == w->trace.len &&
             (t.len == 0 || memcmp(t.p, w->trace.p, t.len) == 0));
    free(t.p);
}

/* ------------------------------------------------------------------ */
/* Allocation                                                          */
/* ------------------------------------------------------------------ */

/* Read every value by its type, as a handler that does not know the
 * payload would. Nothing may be allocated, whatever the length fields. */
static int
s_drain(const uint8_t *data, size_t size)
{
    tr_reader_t r;
    tr_reader_init_bytes(&r, data, size);
    int rc = 0;
    fz_meter_start();
    while (rc == 0 && !tr_read_done(&r)) {
        tr_type_t ty = tr_read_type(&r);
        for (unsigned k = 0; k < 10; k++)
            if (s_reads(k, ty) && (rc = s_read_as(&r, k)) != TR_ERANGE)
                break;
        if (ty == TR_TYPE_EXT || ty == TR_TYPE_END || ty == TR_TYPE_INVALID)
            rc = tr_read_skip(&r);
    }
    FZ_CHECK(fz_meter_stop() == 0);
    return rc;
}

/* ------------------------------------------------------------------ */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_walk_t w = {.salt = size > 0 ? data[0] : 0};
    FZ_CHECK(tr_msg_create(&w.out, "t") == 0);
    int rc = s_walk_all(data, size, &w);

    /* tr_msg_add_raw validates with tr_read_skip: the same verdict, and
     * nothing appended (nor allocated) when it refuses. */
    tr_msg_t *raw;
    size_t n;
    FZ_CHECK(tr_msg_create(&raw, "raw") == 0);
    size_t cap = raw->cap;
    fz_meter_start();
    int rrc = tr_msg_add_raw(raw, data, size);
    size_t grew = fz_meter_stop();
    FZ_CHECK(rrc == rc);
    const void *p = tr_msg_payload(raw, &n);
    if (rrc == 0) {
        FZ_CHECK(n == size && (size == 0 || memcmp(p, data, size) == 0));
        FZ_CHECK(grew <= 2 * (TR__ENV_HDR + 4 + size)); /* doubling */
    } else {
        FZ_CHECK(n == 0 && grew == 0 && raw->cap == cap);
    }
    tr_msg_destroy(&raw);

    /* A drain by type reads the same heads in the same order, but knows
     * no containers: it cannot see one cut short, nor one too deep. So it
     * may accept what the walk refuses, never the other way round. */
    int drc = s_drain(data, size);
    FZ_CHECK(drc == 0 || rc != 0);

    if (rc == 0) {
        s_check_reference(data, size, &w);

        /* Round trip: read again what we wrote, from an exact copy. */
        const void *p1 = tr_msg_payload(w.out, &n);
        uint8_t *enc = fz_copy(p1, n);
        size_t enclen = n;
        s_walk_t w2 = {.salt = w.salt};
        FZ_CHECK(tr_msg_create(&w2.out, "t") == 0);
        FZ_CHECK(s_walk_all(enc, enclen, &w2) == 0);
        FZ_CHECK(w2.trace.len == w.trace.len &&
                 (w.trace.len == 0 ||
                  memcmp(w2.trace.p, w.trace.p, w.trace.len) == 0));
        const void *p2 = tr_msg_payload(w2.out, &n);
        FZ_CHECK(n == enclen && (n == 0 || memcmp(p2, enc, n) == 0));
        tr_msg_destroy(&w2.out);
        free(w2.trace.p);
        free(enc);
    }
    tr_msg_destroy(&w.out);
    free(w.trace.p);
    return 0;
}
