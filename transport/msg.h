/* transport/msg.h - the message object behind tr_msg_t: a frame buffer
 * (header, tag, payload) that is built in place, so that sending is one
 * copy into ZeroMQ and receiving is none (the frame stays in its zmq_msg_t).
 */
#ifndef TR_TRANSPORT_MSG_H
#define TR_TRANSPORT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zmq.h>

#include "transport/envelope.h"
#include "troupe.h"

/* Small messages live in the struct itself: no second allocation. */
#define TR__MSG_INLINE 192

/* A struct keeps the last heap buffer it had, up to this size, for the
 * next message built in it: back in its own thread's pool, so a buffer a
 * receiver releases is not freed on the receiver's thread and malloc'd
 * again on the sender's (profiled: glibc's arenas made that pair the
 * broker's costliest call). */
#define TR__MSG_SPARE_MAX 16384

/* How many arrays and maps, one inside another, tr_read_skip (and so
 * tr_msg_add_raw) will walk. A container deeper than this (the outermost
 * is level 1), even an empty one, is refused with TR_ERANGE: the cursor
 * does not move and the error is not sticky. Deeper data can still be
 * read by hand with tr_read_array / tr_read_map, which keep no depth.
 * troupe's own messages nest one level (a child spec); 64 leaves users room
 * and costs skip 512 bytes of stack. The build sets it: meson's option
 * max_nesting (meson setup -Dmax_nesting=n). */
#ifndef TR__MSG_MAX_DEPTH
#define TR__MSG_MAX_DEPTH 64
#endif

typedef enum {
    TR__MSG_BUILT = 0, /* buf is inline_buf or malloc'd; can be appended */
    TR__MSG_RECEIVED,  /* buf is inside zm; read-only */
} tr__msg_kind_t;

struct tr_msg {
    tr__env_t env;    /* header fields; written into buf at send time */
    uint8_t *buf;     /* the frame: header, tag, NUL, payload */
    size_t len;       /* bytes used in buf */
    size_t cap;       /* bytes available in buf (BUILT) */
    size_t taglen;
    tr__msg_kind_t kind;
    bool heap;        /* buf was malloc'd (BUILT) */
    bool on_heap;     /* the struct came from a pool (else a view) */
    bool abandoning;  /* its zmq_msg_t is being closed after a failed send */
    bool borrowed;    /* a view of a frame inside another (a batch's) */
    uint8_t *spare;   /* a free heap buffer kept for reuse, or NULL */
    size_t spare_cap;
    struct tr__pool *pool;      /* the pool it belongs to */
    struct tr_msg *pool_next;   /* in the pool's free lists */
    zmq_msg_t zm;     /* RECEIVED: owns the frame */
    struct tr_msg *lent; /* a view: the message a handed frame brought
                          * (tr__msg_zmq_hand), held like zm */
    /* A receipt (tr__msg_zmq_show): the shown messages it gives back,
     * newest first, linked by pool_next (they are out of their pool), the
     * oldest, and whether they can go back in one exchange (one pool) or
     * must be released one by one. NULL in a pool. */
    struct tr_msg *chain, *chain_last;
    bool chain_mixed;
    /* An open batch (tr__msg_zmq_hand_open): asked for by the sender
     * (open), the word it appends with once handed (open_word, 0: it was
     * not handed open), and the word itself, generation x 4 + state,
     * which the reader seals. */
    bool open;
    uint64_t open_word;
    _Atomic uint64_t seal;
    uint8_t inline_buf[TR__MSG_INLINE];
};

/* Room for len more payload bytes at the end of a built message, which
 * the caller fills: where they go (msg->len already counts them), or NULL
 * when out of memory. */
uint8_t *tr__msg_append(tr_msg_t *msg, size_t len);

/* msgpack heads, written by hand (the smallest form, as msgpack-c packs
 * them) at p, which has room for 9 bytes; each returns how many it wrote.
 * tr__mp_head: a marker byte, then n big-endian bytes of v. */
static inline size_t
tr__mp_head(uint8_t *p, uint8_t marker, uint64_t v, size_t n)
{
    p[0] = marker;
    for (size_t i = 0; i < n; i++)
        p[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return 1 + n;
}

static inline size_t
tr__mp_uint(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        p[0] = (uint8_t)v;
        return 1;
    }
    if (v <= UINT8_MAX)
        return tr__mp_head(p, 0xcc, v, 1);
    if (v <= UINT16_MAX)
        return tr__mp_head(p, 0xcd, v, 2);
    if (v <= UINT32_MAX)
        return tr__mp_head(p, 0xce, v, 4);
    return tr__mp_head(p, 0xcf, v, 8);
}

static inline size_t
tr__mp_int(uint8_t *p, int64_t v)
{
    if (v >= 0)
        return tr__mp_uint(p, (uint64_t)v);
    if (v >= -32) {
        p[0] = (uint8_t)(0xe0 | (uint8_t)(v + 32));
        return 1;
    }
    uint64_t u = (uint64_t)v; /* two's complement: the low bytes */
    if (v >= INT8_MIN)
        return tr__mp_head(p, 0xd0, u, 1);
    if (v >= INT16_MIN)
        return tr__mp_head(p, 0xd1, u, 2);
    if (v >= INT32_MIN)
        return tr__mp_head(p, 0xd2, u, 4);
    return tr__mp_head(p, 0xd3, u, 8);
}

/* A str, bin, array or map head: fix (fixbase | n, when n < fixmax), or
 * one of the sized markers (m8 for up to 255, none when 0). */
static inline size_t
tr__mp_len(uint8_t *p, uint32_t n, uint8_t fixbase, uint32_t fixmax,
          uint8_t m8, uint8_t m16, uint8_t m32)
{
    if (n < fixmax) {
        p[0] = (uint8_t)(fixbase | n);
        return 1;
    }
    if (m8 != 0 && n <= UINT8_MAX)
        return tr__mp_head(p, m8, n, 1);
    if (n <= UINT16_MAX)
        return tr__mp_head(p, m16, n, 2);
    return tr__mp_head(p, m32, n, 4);
}

/* The head of a str of n bytes, and of a bin. */
static inline size_t
tr__mp_str(uint8_t *p, uint32_t n)
{
    return tr__mp_len(p, n, 0xa0, 32, 0xd9, 0xda, 0xdb);
}

static inline size_t
tr__mp_bin(uint8_t *p, uint32_t n)
{
    return tr__mp_len(p, n, 0, 0, 0xc4, 0xc5, 0xc6);
}

/* A whole str of n bytes (no NUL: msgpack counts them); p has room for
 * 5 + n bytes. */
static inline size_t
tr__mp_put_str(uint8_t *p, const char *s, uint32_t n)
{
    size_t h = tr__mp_str(p, n);
    memcpy(p + h, s, n);
    return h + n;
}

/* Create a message whose tag may be a system one ('$...'). */
int tr__msg_create_sys(tr_msg_t **out, const char *tag);

/* Append payload bytes that are whole msgpack values already, without
 * walking them (tr_msg_add_raw does): for bytes that came out of a
 * message troupe built, such as a pipeline's items in their batch.
 * Errors: TR_EINVAL, TR_ENOMEM. */
int tr__msg_add_trusted(tr_msg_t *msg, const void *data, size_t len);

/* The frame to send: writes the header from msg->env into buf first. */
const uint8_t *tr__msg_frame(tr_msg_t *msg, size_t *len);

/* Sending without a copy: zm is made to point at msg's frame (header
 * written first). After a successful zmq_msg_send the message belongs to
 * ZeroMQ, which gives it back to its pool when the receiver is done: the
 * caller forgets it (no tr_msg_destroy). A message whose sends all failed
 * is taken back with tr__msg_zmq_abandon and is the caller's again.
 * Errors: TR_ENOMEM. */
int tr__msg_zmq_lend(tr_msg_t *msg, zmq_msg_t *zm);
void tr__msg_zmq_abandon(tr_msg_t *msg, zmq_msg_t *zm);

/* Sending to a reader in this process (inproc) that reads with
 * tr__msg_view_recv: zm is made a small frame that carries msg's address
 * (with this process's random key, so that nothing from outside can pass
 * for one), and the message itself goes over: no ZeroMQ allocation, no
 * free callback, no copy. The header is written first, so the reader
 * parses the frame as it would a copy. After a successful send the reader
 * owns msg; after failed sends the caller still does (abandon as above).
 * No error: the frame fits inside zm. */
void tr__msg_zmq_hand(tr_msg_t *msg, zmq_msg_t *zm);

/* Hand msg over as an open batch: until its reader takes it out of the
 * queue, the sender may still append to it, between tr__msg_open_begin
 * and tr__msg_open_end (within its capacity: the buffer must not move);
 * the reader seals it first (waiting out an append in progress) and reads
 * it as it is then. So what is appended goes no later than a message sent
 * then would, and a reader that is behind gets many things in one
 * message. Sets msg->open_word, which begin and end take: a struct that
 * was sealed, or given back and used again, has another word, so a begin
 * with an old word fails. */
void tr__msg_zmq_hand_open(tr_msg_t *msg, zmq_msg_t *zm);
bool tr__msg_open_begin(tr_msg_t *msg, uint64_t word);
void tr__msg_open_end(tr_msg_t *msg, uint64_t word);

/* Sending over a connection whose messages ZeroMQ takes in order (ipc):
 * zm is made to show msg's frame (header written first) by reference,
 * with no free callback, so that ZeroMQ allocates nothing for it. After a
 * successful send the caller keeps msg, unchanged, on a chain of shown
 * messages (linked by pool_next, newest first), until ZeroMQ is done with
 * a later message on the same socket: a receipt, which releases the
 * chain. A receipt is a lent message whose chain fields are set before
 * tr__msg_zmq_lend (clear chain again after a failed send), or, when no
 * message comes to carry it, an empty frame from tr__msg_zmq_receipt
 * (readers skip empty frames). A failed show needs no abandon. */
void tr__msg_zmq_show(tr_msg_t *msg, zmq_msg_t *zm);
int tr__msg_zmq_receipt(zmq_msg_t *zm, tr_msg_t *chain, tr_msg_t **carrier);

/* Release every message of a chain of shown ones, linked by pool_next
 * (ZeroMQ is done with them, or its context ended). */
void tr__msg_chain_release(tr_msg_t *chain);

/* Turn a stack tr_msg_t into a view of a received frame: moves *zm into
 * view (zm is left empty) and parses it. On error the view holds nothing
 * (it is closed). Errors: TR_EPROTO, TR_EVERSION. */
int tr__msg_view_init(tr_msg_t *view, zmq_msg_t *zm);

/* Receiving in a loop: open a stack view once, then each view_recv takes
 * the next frame from sock (releasing the previous one) and parses it;
 * without block it never waits, with block it waits up to the socket's
 * ZMQ_RCVTIMEO. Errors: TR_EAGAIN (nothing there / timed out),
 * TR_EPROTO/TR_EVERSION (a bad frame, dropped: the view is empty),
 * TR_ECLOSED, TR_ESYS. Close the view when done. */
void tr__msg_view_open(tr_msg_t *view);
int tr__msg_view_recv(tr_msg_t *view, void *sock, bool block);

/* A view of one frame inside the frame another view holds (a batch's
 * part): sub reads frame[0..len) in place and owns nothing; it lives no
 * longer than the view it came from. Errors as tr__msg_view_recv's
 * parse: TR_EPROTO, TR_EVERSION (sub left empty). */
int tr__msg_sub_view(tr_msg_t *sub, const uint8_t *frame, size_t len);

/* Release what a view holds. */
void tr__msg_view_close(tr_msg_t *view);

/* A heap message that takes over the view's frame (no copy; a borrowed
 * one is copied); the view is left empty. Errors: TR_ENOMEM (view
 * unchanged). */
int tr__msg_adopt(tr_msg_t *view, tr_msg_t **out);

#endif
