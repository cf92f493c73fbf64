/* transport/log.c - one small logger: levels, a replaceable sink, one line
 * per call. Lines are formatted into a buffer first and handed to the sink
 * under a mutex, so lines from different threads never interleave. Silent
 * below WARN by default; TROUPE_LOG overrides the level. */
#define TR__LOG_C /* tr__refuse is defined here: no analyzer model */
#include "transport/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

_Atomic int tr__log_level_now = TR_LOG_WARN;

static pthread_mutex_t s_sink_mu = PTHREAD_MUTEX_INITIALIZER;
static tr_log_fn s_sink;
static void *s_sink_arg;
static _Atomic int s_env_forced; /* TROUPE_LOG was set: it wins */
static pthread_once_t s_env_once = PTHREAD_ONCE_INIT;
static _Thread_local char s_label[TR_NAME_MAX + 24];

static const char *const s_names[] = {"none", "error", "warn", "info",
                                      "debug"};

int
tr__log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i <= TR_LOG_DEBUG; i++)
        if (strcasecmp(s, s_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return TR_LOG_WARN;
    return -1;
}

static const char *s_env_bad; /* an unusable TROUPE_LOG, to report */

static void
s_read_env(void)
{
    const char *v = getenv("TROUPE_LOG");
    if (v == NULL || *v == '\0')
        return;
    int level = tr__log_level_parse(v);
    if (level < 0) {
        s_env_bad = v;
        return;
    }
    atomic_store(&tr__log_level_now, level);
    atomic_store(&s_env_forced, 1);
}

void
tr__log_init_env(void)
{
    static _Atomic int reported;
    pthread_once(&s_env_once, s_read_env);
    /* Reported through the sink, once, outside the once-routine (which
     * tr_log itself enters). */
    if (s_env_bad != NULL && !atomic_exchange(&reported, 1))
        tr_log(TR_LOG_WARN, "log", "TROUPE_LOG=%s is not one of none, "
               "error, warn, info, debug; ignored", s_env_bad);
}

void
tr_log_set_level(int level)
{
    tr__log_init_env();
    if (atomic_load(&s_env_forced))
        return;
    if (level < TR_LOG_NONE)
        level = TR_LOG_NONE;
    if (level > TR_LOG_DEBUG)
        level = TR_LOG_DEBUG;
    atomic_store(&tr__log_level_now, level);
}

int
tr_log_level(void)
{
    tr__log_init_env();
    return atomic_load(&tr__log_level_now);
}

void
tr_log_set_sink(tr_log_fn fn, void *arg)
{
    pthread_mutex_lock(&s_sink_mu);
    s_sink = fn;
    s_sink_arg = arg;
    pthread_mutex_unlock(&s_sink_mu);
}

void
tr__log_set_thread_label(const char *label)
{
    if (label == NULL)
        s_label[0] = '\0';
    else
        snprintf(s_label, sizeof s_label, "%s", label);
}

void
tr_log(int level, const char *module, const char *fmt, ...)
{
    tr__log_init_env();
    if (level <= TR_LOG_NONE || level > atomic_load(&tr__log_level_now))
        return;

    char line[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "troupe %02d:%02d:%02d.%03ld %-5s %d %s%s%s: ",
                     tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec / 1000,
                     s_names[level], (int)getpid(), module ? module : "-",
                     s_label[0] ? " " : "", s_label);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }

    pthread_mutex_lock(&s_sink_mu);
    if (s_sink != NULL) {
        s_sink(s_sink_arg, level, line);
    } else {
        /* One write(2) per line: atomic against other processes' lines
         * on the same pipe too (a line is under PIPE_BUF). */
        size_t len = strlen(line);
        line[len < sizeof line - 1 ? len : sizeof line - 2] = '\n';
        len = len < sizeof line - 1 ? len + 1 : sizeof line - 1;
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
    }
    pthread_mutex_unlock(&s_sink_mu);
}

int
tr__refuse(int rc, const char *fmt, ...)
{
    if (TR_LOG_WARN > atomic_load_explicit(&tr__log_level_now,
                                           memory_order_relaxed))
        return rc;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    tr_log(TR_LOG_WARN, "api", "%s: %s", text, tr_strerror(rc));
    return rc;
}
