/* transport/log.h - the logger's internal side: a cheap level check before
 * formatting, and a per-thread label ("counter#5") that runtime sets on
 * actor threads so every line names its actor. */
#ifndef TR_TRANSPORT_LOG_H
#define TR_TRANSPORT_LOG_H

#include <stdatomic.h>

#include "troupe.h"

extern _Atomic int tr__log_level_now;

/* Log only when the level is on: arguments are not evaluated otherwise. */
#define TR__LOG(level, module, ...)                                         \
    do {                                                                    \
        if ((level) <= atomic_load_explicit(&tr__log_level_now,             \
                                            memory_order_relaxed))          \
            tr_log((level), (module), __VA_ARGS__);                         \
    } while (0)

/* Log a refused call (WARN) and return rc: bad input always gets both a
 * code and a line that says what was wrong. */
int tr__refuse(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#if defined(__clang_analyzer__) && !defined(TR__LOG_C)
/* For clang-tidy's static analyzer, which reads one file at a time and so
 * cannot know that this returns rc: without it, every "return
 * tr__refuse(TR_EINVAL, ...)" is a path that returns 0 with nothing
 * done, and the caller's use of an out-parameter is reported. */
#define tr__refuse(rc, ...) (tr__refuse((rc), __VA_ARGS__), (rc))
#endif

/* Label of the calling thread in log lines; NULL clears it. Copied. */
void tr__log_set_thread_label(const char *label);

/* Apply TROUPE_LOG if set; called by tr_node_create and at first use. */
void tr__log_init_env(void);

/* Parse a level name ("warn"); -1 if unknown. */
int tr__log_level_parse(const char *s);

#endif
