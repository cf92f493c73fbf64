/* transport/zsock.h - the few ZeroMQ socket operations troupe needs, with
 * libzmq errno mapped to TR_E* codes (never returned raw). */
#ifndef TR_TRANSPORT_ZSOCK_H
#define TR_TRANSPORT_ZSOCK_H

#include <stdbool.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "troupe.h"

/* How long a closed sending socket keeps trying to deliver what it still
 * holds. inproc pipes deliver what they hold regardless; this bounds ipc and
 * tcp so that closing a context never hangs. */
#define TR__SEND_LINGER_MS 1000

/* Map a libzmq errno to a TR_E* code (always < 0); unexpected ones are
 * logged. */
int tr__zerr(int err, const char *what);
#if defined(__clang_analyzer__) && !defined(TR__ZSOCK_C)
/* For clang-tidy's static analyzer, which reads one file at a time: the
 * code is never 0, so "rc = tr__zerr(...); goto fail" fails. */
static inline int
tr__zerr_model(int rc)
{
    if (rc >= 0)
        __builtin_unreachable();
    return rc;
}
#define tr__zerr(err, what) tr__zerr_model(tr__zerr(err, what))
#endif

/* ZMQ_MAXMSGSIZE for tr__sock_limits: the process's limit, the largest
 * max_message_bytes of its nodes (64 MiB at first; see
 * tr__sock_raise_max_msg). */
#define TR__MAX_MSG_PROCESS (-1)

/* ZMQ_MAXMSGSIZE of a socket that only ever carries a wake-up byte. */
#define TR__MAX_MSG_WAKE 64

/* Set a socket's ZMQ_MAXMSGSIZE (bytes, or TR__MAX_MSG_PROCESS) and
 * ZMQ_LINGER (ms). Every socket troupe opens gets both (docs/design.md):
 * the limit keeps a peer from making us allocate whatever size it
 * announces (ZeroMQ checks it where it decodes, on tcp and ipc; inproc
 * sockets get one all the same, so that none is left without), and the
 * linger keeps closing a context from waiting on a peer. 0 or a TR_E*
 * code. The troupe command calls it too (it links libtroupe). */
int tr__sock_limits(void *sock, int64_t max_msg, int linger_ms);

/* Open a socket of type (ZMQ_PUSH, ZMQ_PULL, ...) with its high-water marks
 * (0 = unbounded), the process's ZMQ_MAXMSGSIZE and a linger set. NULL on
 * error (*rc set). */
void *tr__sock_open(void *ctx, int type, int sndhwm, int rcvhwm, int *rc);
#if defined(__clang_analyzer__) && !defined(TR__ZSOCK_C)
/* For clang-tidy's static analyzer (one file at a time): NULL comes with
 * *rc < 0, so a caller's "goto fail; ... return rc" never returns 0. */
static inline void *
tr__sock_open_model(void *s, const int *rc)
{
    if (s == NULL && *rc >= 0)
        __builtin_unreachable();
    return s;
}
#define tr__sock_open(ctx, type, sndhwm, rcvhwm, rc)                        \
    tr__sock_open_model(tr__sock_open(ctx, type, sndhwm, rcvhwm, rc), rc)
#endif

/* Close a socket; NULL is a no-op. */
void tr__sock_close(void **sock);

/* Send one frame; dontwait: TR_EAGAIN at once when it would block.
 * Blocking sends honour the socket's ZMQ_SNDTIMEO (TR_EAGAIN when it
 * expires). */
int tr__sock_send(void *sock, const void *buf, size_t len, bool dontwait);

/* Send a prepared zmq_msg_t (one frame); on success ZeroMQ owns it, on
 * failure it is untouched. flags: ZMQ_DONTWAIT (TR_EAGAIN at once when it
 * would block), ZMQ_SNDMORE (a part: ZeroMQ delivers the parts together,
 * with the last one sent without it). */
int tr__zmsg_send(zmq_msg_t *zm, void *sock, int flags);

/* Sockets opened from now on refuse frames over bytes (ZMQ_MAXMSGSIZE)
 * if that is more than the present limit (64 MiB at first). */
void tr__sock_raise_max_msg(int64_t bytes);

/* The socket's ZMQ_FD: readable when the socket may have work (commands
 * or messages). Only valid to poll after an operation on the socket
 * returned EAGAIN: that resets it (libzmq's own blocking recv does the
 * same). Polling it directly is far cheaper than zmq_poll, which calls
 * getsockopt twice per socket per call (profiled: ~2,400 instructions for
 * two sockets, more than the message it waited for). */
int tr__sock_fd(void *sock, int *fd);

/* poll(2) on fds for POLLIN up to timeout_ms (-1: forever), retrying on
 * EINTR with the time left. Returns the number ready, 0, or TR_ESYS. */
int tr__wait_fds(struct pollfd *fds, int n, long timeout_ms);

#endif
