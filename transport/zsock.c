/* transport/zsock.c - ZeroMQ socket helpers. */
#define TR__ZSOCK_C /* tr__sock_open is defined here: no analyzer model */
#include "transport/zsock.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>

#include "transport/clock.h"
#include "transport/log.h"

int
tr__zerr(int err, const char *what)
{
    switch (err) {
    case EAGAIN:
        return TR_EAGAIN;
    case ETERM:
        return TR_ECLOSED;
    case ENOMEM:
        return TR_ENOMEM;
    case EHOSTUNREACH:
        return TR_ENOENT;
    case EINVAL:
        return TR_EINVAL;
    default:
        TR__LOG(TR_LOG_ERROR, "transport", "%s: %s", what ? what : "zmq",
                zmq_strerror(err));
        return TR_ESYS;
    }
}

/* ZMQ_MAXMSGSIZE of every socket: the largest of the nodes' limits. */
static _Atomic int64_t s_max_msg = 64 << 20;

void
tr__sock_raise_max_msg(int64_t bytes)
{
    int64_t cur = atomic_load(&s_max_msg);
    while (bytes > cur && !atomic_compare_exchange_weak(&s_max_msg, &cur,
                                                        bytes))
        ;
}

int
tr__sock_limits(void *sock, int64_t max_msg, int linger_ms)
{
    if (max_msg == TR__MAX_MSG_PROCESS)
        max_msg = atomic_load(&s_max_msg);
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max_msg, sizeof max_msg) != 0 ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms) != 0)
        return tr__zerr(zmq_errno(), "zmq_setsockopt");
    return 0;
}

void *
tr__sock_open(void *ctx, int type, int sndhwm, int rcvhwm, int *rc)
{
    void *s = zmq_socket(ctx, type);
    if (s == NULL) {
        *rc = tr__zerr(zmq_errno(), "zmq_socket");
        return NULL;
    }
    int linger = (type == ZMQ_PULL) ? 0 : TR__SEND_LINGER_MS;
    if (zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) != 0 ||
        zmq_setsockopt(s, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) != 0) {
        *rc = tr__zerr(zmq_errno(), "zmq_setsockopt");
        zmq_close(s);
        return NULL;
    }
    if ((*rc = tr__sock_limits(s, TR__MAX_MSG_PROCESS, linger)) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

void
tr__sock_close(void **sock)
{
    if (sock != NULL && *sock != NULL) {
        zmq_close(*sock);
        *sock = NULL;
    }
}

int
tr__sock_send(void *sock, const void *buf, size_t len, bool dontwait)
{
    for (;;) {
        if (zmq_send(sock, buf, len, dontwait ? ZMQ_DONTWAIT : 0) >= 0)
            return 0;
        int err = zmq_errno();
        if (err == EINTR)
            continue;
        return tr__zerr(err, "zmq_send");
    }
}

int
tr__zmsg_send(zmq_msg_t *zm, void *sock, int flags)
{
    for (;;) {
        if (zmq_msg_send(zm, sock, flags) >= 0)
            return 0;
        int err = zmq_errno();
        if (err == EINTR)
            continue;
        return tr__zerr(err, "zmq_msg_send");
    }
}

int
tr__sock_fd(void *sock, int *fd)
{
    size_t len = sizeof *fd;
    if (zmq_getsockopt(sock, ZMQ_FD, fd, &len) != 0)
        return tr__zerr(zmq_errno(), "ZMQ_FD");
    return 0;
}

int
tr__wait_fds(struct pollfd *fds, int n, long timeout_ms)
{
    uint64_t until = timeout_ms < 0 ? 0 : tr__deadline_after_ms(timeout_ms);
    for (;;) {
        for (int i = 0; i < n; i++)
            fds[i].events = POLLIN, fds[i].revents = 0;
        int ms = timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
        int r = poll(fds, (nfds_t)n, ms);
        if (r >= 0)
            return r;
        if (errno != EINTR) {
            TR__LOG(TR_LOG_ERROR, "transport", "poll: %s", strerror(errno));
            return TR_ESYS;
        }
        if (until != 0)
            timeout_ms = (long)tr__ms_left(until);
    }
}
