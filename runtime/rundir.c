/* runtime/rundir.c - the node's private runtime directory, where its ipc
 * endpoints live.
 *
 * Layout: <base>/<pid>-<start>-<n>/, base being $XDG_RUNTIME_DIR/troupe
 * (when that directory is ours, as the XDG spec wants it) or else
 * /tmp/troupe-<uid>. The base and the node's directory are made mode
 * 0700; an existing one that another user can write to is refused
 * (TR_EPERM): one owned by another user, or with group or other write
 * permission. Anyone who can write there could put a socket where an
 * actor's endpoint is looked for and stand in for it. What is above the
 * base is not ours to judge: /tmp is world-writable, but sticky, so
 * nobody else can remove or rename what we made in it. <n> tells apart
 * the nodes of one process (each numbers its actors from 1). <start> is
 * the process start time from /proc, so a directory whose process is
 * gone, or whose pid was reused by another process, is recognised as
 * stale and removed by the next node that starts. A node removes its own
 * directory when it is destroyed. */
#include "runtime/rundir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/log.h"

/* Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. 0
 * when the process does not exist. */
unsigned long long
tr__pid_start_time(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: skip to
     * the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    unsigned long long start = 0;
    /* After ") ": field 3 (state) ... field 22 is the 20th from there. */
    int field = 3;
    for (p += 2; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (field == 22)
        start = strtoull(p, NULL, 10);
    return start;
}

/* Whether st, a directory's, is one only we can write to; if not, the log
 * says which directory and why. */
static bool
s_is_private(const char *dir, const struct stat *st)
{
    if (st->st_uid != geteuid()) {
        TR__LOG(TR_LOG_ERROR, "runtime", "runtime directory %s belongs to "
                "uid %u, not to this user (uid %u): that user can write to "
                "it and stand in for actors there: refused (remove it, or "
                "set XDG_RUNTIME_DIR to a directory of yours)", dir,
                (unsigned)st->st_uid, (unsigned)geteuid());
        return false;
    }
    if ((st->st_mode & 022) != 0) {
        TR__LOG(TR_LOG_ERROR, "runtime", "runtime directory %s has mode "
                "%04o: %s can write to it and stand in for actors there: "
                "refused (chmod 700 %s)", dir,
                (unsigned)(st->st_mode & 07777),
                (st->st_mode & 022) == 022 ? "its group and other users"
                : (st->st_mode & 020)      ? "its group"
                                           : "other users",
                dir);
        return false;
    }
    return true;
}

/* Make dir (mode 0700) or accept it if it is ours and nobody else can
 * write into it. */
static int
s_private_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        TR__LOG(TR_LOG_ERROR, "runtime", "mkdir %s: %s", dir,
                strerror(errno));
        return TR_ESYS;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        TR__LOG(TR_LOG_ERROR, "runtime", "%s is not a directory", dir);
        return TR_ESYS;
    }
    return s_is_private(dir, &st) ? 0 : TR_EPERM;
}

/* Remove a node directory and what is in it: ipc socket files, small
 * state files, and the capsules/ directory of crash capsules (one level
 * down, no more: nothing else makes directories there). */
static void
s_remove_at(int at, const char *dir, int depth)
{
    int fd = openat(at, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d != NULL) {
        /* unlinkat: names relative to the directory, no path to build. */
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno == EISDIR &&
                depth > 0) /* capsules/ (runtime/capsule.c) */
                s_remove_at(dirfd(d), e->d_name, depth - 1);
        }
        closedir(d);
    } else if (fd >= 0) {
        close(fd);
    }
    unlinkat(at, dir, AT_REMOVEDIR);
}

static void
s_remove_tree(const char *dir)
{
    s_remove_at(AT_FDCWD, dir, 1);
}

/* Remove the directories of nodes that are gone. */
static void
s_clean_stale(const char *base)
{
    DIR *d = opendir(base);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[TR__RUNDIR_MAX];
    while ((e = readdir(d)) != NULL) {
        long pid;
        unsigned long long start;
        unsigned n;
        char tail;
        if (sscanf(e->d_name, "%ld-%llu-%u%c", &pid, &start, &n, &tail) != 3)
            continue;
        if (tr__pid_start_time(pid) == start)
            continue; /* still running */
        if (snprintf(path, sizeof path, "%s/%s", base, e->d_name) >=
            (int)sizeof path)
            continue;
        TR__LOG(TR_LOG_INFO, "runtime", "removing stale %s", path);
        s_remove_tree(path);
    }
    closedir(d);
}

/* The base directory's path into base: $XDG_RUNTIME_DIR/troupe when that
 * is a directory of ours we can write to (root under sudo -E may have
 * another user's), else /tmp/troupe-<uid>. */
static int
s_base(char *base, size_t cap)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    int n;
    if (xdg != NULL && *xdg == '/' && stat(xdg, &st) == 0 &&
        S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
        access(xdg, W_OK) == 0)
        n = snprintf(base, cap, "%s/troupe", xdg);
    else
        n = snprintf(base, cap, "/tmp/troupe-%u", (unsigned)geteuid());
    return n < 0 || (size_t)n >= cap ? TR_ENAMETOOLONG : 0;
}

int
tr__rundir_check(void)
{
    char base[TR__RUNDIR_MAX];
    struct stat st;
    int rc = s_base(base, sizeof base);
    if (rc != 0 || lstat(base, &st) != 0)
        return 0; /* nothing there yet: made private when needed */
    if (!S_ISDIR(st.st_mode)) {
        TR__LOG(TR_LOG_ERROR, "runtime", "%s is not a directory", base);
        return TR_ESYS;
    }
    return s_is_private(base, &st) ? 0 : TR_EPERM;
}

int
tr__rundir_create(char *out, size_t cap)
{
    char base[TR__RUNDIR_MAX];
    int n, rc = s_base(base, sizeof base);
    if (rc != 0)
        return rc;
    rc = s_private_dir(base);
    if (rc != 0)
        return rc;
    s_clean_stale(base);
    static _Atomic unsigned next;
    long pid = (long)getpid();
    n = snprintf(out, cap, "%s/%ld-%llu-%u", base, pid,
                 tr__pid_start_time(pid), atomic_fetch_add(&next, 1));
    if (n < 0 || (size_t)n >= cap)
        return TR_ENAMETOOLONG;
    return s_private_dir(out);
}

void
tr__rundir_remove(const char *dir)
{
    if (dir != NULL && dir[0] != '\0')
        s_remove_tree(dir);
}
