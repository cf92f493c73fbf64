/* transport/msg.h - the message object behind tr_msg_t: a frame buffer
 * (header, tag, payload) that is built in place, so that sending is one
 * copy into ZeroMQ and receiving is none (the frame stays in its zmq_msg_t).
 */
#ifndef TR_TRANSPORT_MSG_H
#define TR_TRANSPORT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "transport/envelope.h"
#include "troupe.h"

/* Small messages live in the struct itself: no second allocation. */
#define TR__MSG_INLINE 192

/* How many arrays and maps, one inside another, tr_read_skip (and so
 * tr_msg_add_raw) will walk. A container deeper than this (the outermost
 * is level 1), even an empty one, is refused with TR_ERANGE: the cursor
 * does not move and the error is not sticky. Deeper data can still be
 * read by hand with tr_read_array / tr_read_map, which keep no depth.
 * troupe's own messages nest one level (a child spec); 64 leaves users room
 * and costs skip 512 bytes of stack. Build with -DTR__MSG_MAX_DEPTH=n to
 * change it. */
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
    struct tr__pool *pool;      /* the pool it belongs to */
    struct tr_msg *pool_next;   /* in the pool's free lists */
    zmq_msg_t zm;     /* RECEIVED: owns the frame */
    uint8_t inline_buf[TR__MSG_INLINE];
};

/* Room for len more payload bytes at the end of a built message, which
 * the caller fills: where they go (msg->len already counts them), or NULL
 * when out of memory. */
uint8_t *tr__msg_append(tr_msg_t *msg, size_t len);

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
