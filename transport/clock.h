/* transport/clock.h - monotonic time in nanoseconds and deadline helpers.
 * CLOCK_MONOTONIC is shared by every process on a host, so deadlines in the
 * envelope mean the same to a thread actor and to a process actor. */
#ifndef TR_TRANSPORT_CLOCK_H
#define TR_TRANSPORT_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
tr__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Deadline for a timeout in ms; 0 (none) for a negative timeout. */
static inline uint64_t
tr__deadline_after_ms(int64_t ms)
{
    if (ms < 0)
        return 0;
    return tr__now_ns() + (uint64_t)ms * 1000000u;
}

/* Milliseconds left until deadline, rounded up; -1 for none, 0 if passed. */
static inline int64_t
tr__ms_left(uint64_t deadline_ns)
{
    if (deadline_ns == 0)
        return -1;
    uint64_t now = tr__now_ns();
    if (now >= deadline_ns)
        return 0;
    return (int64_t)((deadline_ns - now + 999999u) / 1000000u);
}

/* The earlier of two deadlines, where 0 means none. */
static inline uint64_t
tr__deadline_min(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

#endif
