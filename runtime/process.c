/* runtime/process.c - process actors.
 *
 * Parent side: tr_spawn(.mode = TR_PROCESS) re-executes this program (or
 * the named executable) with the child's identity in its environment and
 * hands the pid to the node's reaper thread, which watches every child
 * through a pidfd and turns its end (exit, signal) into the same DOWN and
 * exit signals a thread actor's end sends. The node service, an internal
 * actor, answers the children: their init arguments ("hello"), init's
 * result ("started"), their exit reason ("exiting"), and lookups of the
 * parent's actors by id or name ("lookup"); it also pings children that
 * asked for heartbeats.
 *
 * Child side: tr_init at the top of main sees the environment, makes the
 * process die with its parent (PR_SET_PDEATHSIG, then checks the parent is
 * still the one that started it), builds a small node and runs the one
 * actor on the main thread. Its endpoints are ipc sockets in the parent's
 * runtime directory; the parent's actors bind theirs there on demand
 * (EXPOSE), so every message still goes straight from sender to receiver.
 */
#include "runtime/process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "runtime/actor.h"
#include "runtime/behaviour.h"
#include "runtime/capsule.h"
#include "runtime/future.h"
#include "runtime/trace.h"
#include "transport/clock.h"
#include "transport/log.h"
#include "transport/zsock.h"


bool tr__in_child_init;

/* How many heartbeats a child may miss before it counts as hung. */
#define TR__HEARTBEAT_MISSES 3

/* How long a child has to say hello (it runs tr_init and has the
 * behaviour) before it is killed. */
#define TR__HELLO_MS 10000

/* Exit codes of a child that could not run its actor. */
enum {
    TR__CHILD_ENV = 2,       /* incomplete environment */
    TR__CHILD_NOBEH = 3,     /* no such behaviour in the program */
    TR__CHILD_NODE = 4,      /* could not build its node */
    TR__CHILD_ORPHAN = 5,    /* its parent was already gone */
};

typedef struct tr__proc {
    tr_id_t id;
    pid_t pid;
    int pidfd;
    tr__rec_t *rec;          /* reference */
    tr_msg_t *args;          /* init args, until the child's hello */
    int heartbeat_ms;
    int hwm;                 /* its mailbox's high-water mark */
    _Atomic uint64_t last_pong;
    int kill_reason;         /* why we killed it (0: we did not) */
    int init_rc;             /* init's failure, as the child reported */
    bool started_ok;         /* init succeeded */
    bool said_hello;         /* it runs tr_init and found its behaviour */
    uint64_t hello_by;       /* when it is given up if it has not */
    bool reported;           /* the child said why it is exiting */
    int reported_reason;
} tr__proc_t;

/* A start the reaper thread makes for a spawner (see s_reaper). */
typedef struct tr__job {
    tr__proc_t *pr;
    const char *exe;
    char *const *argv;
    char *const *env;
    int err;                 /* posix_spawn's, once done */
    pid_t pid;               /* the child, once done */
    bool done;
    struct tr__job *next;
} tr__job_t;

typedef struct tr__procs {
    pthread_mutex_t mu;      /* the list and the fields below */
    pthread_cond_t cv;       /* a job was done */
    tr__proc_t **list;
    size_t n, cap;
    tr__job_t *jobs;         /* starts to make */
    pthread_t reaper;
    bool reaper_running;
    bool stopping;
    bool no_pidfd;           /* pidfd_open unsupported (valgrind): poll */
    int wakefd;              /* eventfd: the list changed, or a job */
    char self_exe[4096];     /* this program, for re-executing it */
} tr__procs_t;

/* ------------------------------------------------------------------ */
/* Runtime directory and endpoints                                      */

int
tr__node_rundir(tr_node_t *node, const char **dir)
{
    int rc = 0;
    pthread_mutex_lock(&node->rundir_mu);
    if (node->rundir[0] == '\0' &&
        (rc = tr__rundir_create(node->rundir, sizeof node->rundir)) != 0)
        node->rundir[0] = '\0';
    pthread_mutex_unlock(&node->rundir_mu);
    *dir = rc == 0 ? node->rundir : NULL;
    return rc;
}

int
tr__endpoint_ipc(tr_node_t *node, char *buf, size_t cap, tr_id_t id,
                 tr__box_t box)
{
    const char *dir;
    int rc = tr__node_rundir(node, &dir);
    if (rc != 0)
        return rc;
    int n = snprintf(buf, cap, "ipc://%s/%llx.%c", dir,
                     (unsigned long long)id, box == TR__BOX_INBOX ? 'i' : 'm');
    return n > 0 && (size_t)n < cap ? 0 : TR_ENAMETOOLONG;
}

/* Path of a file of id's in the directory (suffix "tag", "m", "i"). */
static void
s_path(tr_node_t *node, char *buf, size_t cap, tr_id_t id, const char *suffix)
{
    snprintf(buf, cap, "%s/%llx.%s", node->rundir, (unsigned long long)id,
             suffix);
}

/* ------------------------------------------------------------------ */
/* The table of children                                                */

static tr__procs_t *
s_procs(tr_node_t *node)
{
    pthread_mutex_lock(&node->rundir_mu);
    if (node->procs == NULL) {
        tr__procs_t *p = calloc(1, sizeof *p);
        if (p != NULL) {
            pthread_mutex_init(&p->mu, NULL);
            pthread_cond_init(&p->cv, NULL);
            /* The real path: under valgrind /proc/self/exe is valgrind. */
            ssize_t n = readlink("/proc/self/exe", p->self_exe,
                                 sizeof p->self_exe - 1);
            p->self_exe[n > 0 ? n : 0] = '\0';
            p->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (p->wakefd < 0) {
                pthread_mutex_destroy(&p->mu);
                free(p);
                p = NULL;
            }
        }
        node->procs = p;
    }
    pthread_mutex_unlock(&node->rundir_mu);
    return node->procs;
}

/* The child with id, or NULL; caller holds procs->mu. */
static tr__proc_t *
s_find(tr__procs_t *p, tr_id_t id, size_t *index)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->list[i]->id == id) {
            if (index != NULL)
                *index = i;
            return p->list[i];
        }
    }
    return NULL;
}

static void
s_wake(tr__procs_t *p)
{
    uint64_t one = 1;
    ssize_t w = write(p->wakefd, &one, sizeof one);
    (void)w;
}

/* What the child's exit status says, told apart from the reasons we
 * gave it ourselves. */
static int
s_reason(const tr__proc_t *pr, int status, int *sig, int *code)
{
    *sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (*sig != 0) {
        if (pr->kill_reason != 0)
            return pr->kill_reason;
        return *sig == SIGKILL ? TR_EKILLED : TR_ECRASHED;
    }
    if (!pr->started_ok && pr->init_rc != 0)
        return pr->init_rc;
    if (pr->reported)
        return pr->reported_reason;
    if (!pr->said_hello && *code == TR__CHILD_NOBEH)
        return TR_ENOENT; /* the program has no such behaviour */
    return *code == 0 ? 0 : TR_EFAILED;
}

/* The tag the child was handling, from its tag page ("" if none). */
static void
s_read_tag(tr_node_t *node, tr_id_t id, char *tag, size_t cap)
{
    char path[TR__RUNDIR_MAX + 32];
    s_path(node, path, sizeof path, id, "tag");
    tag[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, tag, cap - 1);
    close(fd);
    tag[n > 0 ? (size_t)n : 0] = '\0';
    tag[strnlen(tag, cap - 1)] = '\0';
}

static void
s_unlink_files(tr_node_t *node, tr_id_t id)
{
    static const char *const suffix[] = {"m", "i", "tag"};
    char path[TR__RUNDIR_MAX + 32];
    for (size_t i = 0; i < 3; i++) {
        s_path(node, path, sizeof path, id, suffix[i]);
        unlink(path);
    }
}

/* A child is gone: the same bookkeeping as a thread actor's end, done by
 * the reaper on its behalf, plus a crash report that says why. */
static void
s_ended(tr_node_t *node, tr__port_t *port, tr__proc_t *pr, int status)
{
    int sig, code;
    int reason = s_reason(pr, status, &sig, &code);
    tr__rec_t *rec = pr->rec;
    char tag[TR__TAG_PAGE + 1];
    s_read_tag(node, pr->id, tag, sizeof tag);
    char how[48] = "";
    if (sig != 0)
        snprintf(how, sizeof how, ", %s", strsignal(sig));
    else if (code > 0 && !pr->reported)
        snprintf(how, sizeof how, ", exit code %d", code);
    if (sig != 0 || (reason != 0 && reason != TR_ESHUTDOWN))
        TR__LOG(TR_LOG_WARN, "runtime", "process actor %s#%llx (pid %d) "
                "ended: %s%s%s%s%s", rec->name[0] ? rec->name
                                                 : rec->behaviour,
                (unsigned long long)pr->id, (int)pr->pid, tr_strerror(reason),
                how, tag[0] ? ", handling '" : "", tag, tag[0] ? "'" : "");
    if (tag[0] != '\0')
        tr__rec_note_tag(rec, tag);

    /* Its files go first: whoever learns of the end finds them gone. */
    s_unlink_files(node, pr->id);
    atomic_store(&rec->dead, 1);
    tr__capsule_child_ended(node, rec); /* before its successor starts */
    bool init_ok = pr->started_ok;
    tr__rec_note_reason(rec, reason);
    if (node->trace != NULL && init_ok) /* its own records died with it */
        tr__trace_add(node->trace, TR__TRACE_EXIT, rec->id, 0,
                      (uint32_t)reason, tr_strerror(reason));
    if (port != NULL)
        tr__ties_send(port, rec, reason, init_ok);
    tr__rec_finish(node, rec, reason, init_ok);
    if (init_ok)
        tr__stat_end(node, reason);
    else
        tr__rec_report_init(rec, reason ? reason : TR_EFAILED);
    tr__rec_set_ended(rec, reason);
}

static void
s_proc_free(tr__proc_t *pr)
{
    if (pr->pidfd >= 0)
        close(pr->pidfd);
    tr_msg_destroy(&pr->args);
    tr__rec_unref(&pr->rec);
    free(pr);
}

/* Make the starts spawners asked for. The reaper does it so that the
 * children's parent thread is the reaper, which lives as long as the
 * node: PR_SET_PDEATHSIG fires when the parent *thread* ends, and a
 * spawning actor may end long before its children should. */
static void
s_run_jobs(tr__procs_t *p)
{
    pthread_mutex_lock(&p->mu);
    tr__job_t *jobs = p->jobs;
    p->jobs = NULL;
    pthread_mutex_unlock(&p->mu);
    for (tr__job_t *j = jobs, *next; j != NULL; j = next) {
        next = j->next;
        pid_t pid = 0;
        j->err = posix_spawn(&pid, j->exe, NULL, NULL, j->argv, j->env);
        int pidfd = -1;
        if (j->err == 0) {
            pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
            if (pidfd < 0 && errno != ENOSYS) {
                j->err = errno; /* no pidfd: do not leave it unwatched */
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
            }
        }
        pthread_mutex_lock(&p->mu);
        if (j->err == 0) {
            j->pid = pid;
            j->pr->pid = pid;
            j->pr->pidfd = pidfd;
            if (j->pr->kill_reason != 0) /* killed while starting */
                kill(pid, SIGKILL);
            if (pidfd < 0)
                p->no_pidfd = true; /* found out: poll instead */
        }
        j->done = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Reap every child that has ended; with pidfds, only those whose pidfd
 * woke us (fd >= 0 in ready), else all (polling). */
static void
s_reap(tr_node_t *node, tr__port_t *port, const struct pollfd *fds, size_t n)
{
    tr__procs_t *p = node->procs;
    for (;;) {
        tr__proc_t *pr = NULL;
        int status = 0;
        pthread_mutex_lock(&p->mu);
        for (size_t k = 0; k < p->n && pr == NULL; k++) {
            tr__proc_t *c = p->list[k];
            if (c->pid <= 0)
                continue; /* not started yet */
            bool woke = c->pidfd < 0;
            for (size_t i = 1; i < n && !woke; i++)
                woke = fds[i].fd == c->pidfd && fds[i].revents;
            if (woke && waitpid(c->pid, &status, WNOHANG) == c->pid) {
                pr = c;
                p->list[k] = p->list[--p->n];
            }
        }
        pthread_mutex_unlock(&p->mu);
        if (pr == NULL)
            return;
        s_ended(node, port, pr, status);
        s_proc_free(pr);
    }
}

/* The reaper: one thread a node, waiting on every child's pidfd. */
static void *
s_reaper(void *arg)
{
    tr_node_t *node = arg;
    tr__procs_t *p = node->procs;
    tr__port_t *port = NULL;
    (void)tr__port_get(node, &port); /* to send DOWNs; NULL when closing */
    pthread_setname_np(pthread_self(), "troupe-reaper");
    struct pollfd *fds = NULL;
    size_t cap = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        if (p->stopping && p->n == 0 && p->jobs == NULL) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        size_t n = p->n + 1;
        if (n > cap) {
            struct pollfd *nf = realloc(fds, n * sizeof *nf);
            if (nf != NULL) {
                fds = nf;
                cap = n;
            }
        }
        if (fds == NULL) { /* out of memory: look again in a moment */
            pthread_mutex_unlock(&p->mu);
            (void)poll(NULL, 0, 20);
            continue;
        }
        n = n <= cap ? n : cap;
        fds[0] = (struct pollfd){.fd = p->wakefd, .events = POLLIN};
        for (size_t i = 1; i < n; i++)
            fds[i] = (struct pollfd){.fd = p->list[i - 1]->pidfd,
                                     .events = POLLIN};
        int wait_ms = p->no_pidfd ? 20 : -1;
        pthread_mutex_unlock(&p->mu);

        if (poll(fds, (nfds_t)n, wait_ms) < 0 && errno != EINTR)
            break;
        uint64_t drain;
        if (fds[0].revents)
            (void)!read(p->wakefd, &drain, sizeof drain);
        s_run_jobs(p);
        s_reap(node, port, fds, n);
    }
    free(fds);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The node service                                                     */

static int
s_reply_ok(tr_actor_t *self, const tr_msg_t *req, int64_t a, int64_t b)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "ok");
    if (rc == 0 && (rc = tr_msg_add_int(m, a)) == 0 &&
        (rc = tr_msg_add_int(m, b)) == 0)
        rc = tr_reply(self, req, &m);
    tr_msg_destroy(&m);
    return rc;
}

static int
s_svc_hello(tr_actor_t *self, const tr_msg_t *msg, int64_t id)
{
    tr_node_t *node = tr_actor_node(self);
    tr__procs_t *p = node->procs;
    pthread_mutex_lock(&p->mu);
    tr__proc_t *pr = s_find(p, (tr_id_t)id, NULL);
    tr_msg_t *args = pr ? pr->args : NULL;
    int hwm = pr ? pr->hwm : 0;
    if (pr != NULL) {
        pr->args = NULL; /* the child's now */
        pr->said_hello = true;
    }
    pthread_mutex_unlock(&p->mu);
    if (pr == NULL)
        return tr_reply_error(self, msg, TR_ENOENT);
    tr_msg_t *m = NULL;
    size_t plen = 0;
    const void *payload = args ? tr_msg_payload(args, &plen) : NULL;
    const tr_node_opts_t *o = &node->opts;
    int rc = tr_msg_create(&m, "args");
    if (rc == 0 && (rc = tr_msg_add_str(m, args ? tr_msg_tag(args)
                                                : "$args")) == 0 &&
        (rc = tr_msg_add_bin(m, payload, plen)) == 0 &&
        (rc = tr_msg_add_int(m, hwm)) == 0 &&
        (rc = tr_msg_add_int(m, o->send_timeout_ms)) == 0 &&
        (rc = tr_msg_add_int(m, o->ask_timeout_ms)) == 0 &&
        (rc = tr_msg_add_int(m, o->shutdown_timeout_ms)) == 0 &&
        (rc = tr_msg_add_int(m, tr_log_level())) == 0 &&
        /* other nodes' actors are reached through our gateway */
        (rc = tr_msg_add_int(m, node->tag)) == 0 &&
        (rc = tr_msg_add_int(m, (int64_t)node->gw)) == 0)
        rc = tr_reply(self, msg, &m);
    tr_msg_destroy(&m);
    tr_msg_destroy(&args);
    return rc;
}

/* started [id, rc] and exiting [id, reason]: what the child says of
 * itself. A failed init is reported to the spawner only once the child is
 * reaped, so that the name is free again when tr_spawn returns. */
static int
s_svc_status(tr_actor_t *self, const tr_msg_t *msg, int64_t id, int64_t v)
{
    tr_node_t *node = tr_actor_node(self);
    tr__procs_t *p = node->procs;
    bool started = tr_msg_is(msg, "started");
    tr__rec_t *rec = NULL;
    pthread_mutex_lock(&p->mu);
    tr__proc_t *pr = s_find(p, (tr_id_t)id, NULL);
    if (pr != NULL && started) {
        pr->started_ok = v == 0;
        pr->init_rc = (int)v;
        atomic_store(&pr->last_pong, tr__now_ns());
        if (v == 0) {
            rec = pr->rec;
            tr__rec_ref(rec);
        }
    } else if (pr != NULL) {
        pr->reported = true;
        pr->reported_reason = (int)v;
    }
    pthread_mutex_unlock(&p->mu);
    if (rec != NULL)
        tr__rec_report_init(rec, 0);
    tr__rec_unref(&rec);
    return s_reply_ok(self, msg, 0, 0);
}

/* lookup [id, name|nil]: an actor of this node for a child. The asking
 * port watches it from now on (so its local record learns of the end),
 * and an actor of this process binds ipc endpoints for it. */
static int
s_svc_lookup(tr_actor_t *self, const tr_msg_t *msg)
{
    tr_node_t *node = tr_actor_node(self);
    tr_reader_t r;
    int64_t id = 0;
    char name[TR_NAME_MAX + 1] = "";
    tr_reader_init(&r, msg);
    int rc = tr_read_int(&r, &id);
    if (rc == 0 && tr_read_type(&r) == TR_TYPE_STR)
        rc = tr_read_str_copy(&r, name, sizeof name);
    if (rc != 0)
        return tr_reply_error(self, msg, rc);
    tr__rec_t *rec = name[0] ? tr__reg_lookup(&node->reg, name)
                             : tr__reg_get(&node->reg, (tr_id_t)id);
    if (rec == NULL || atomic_load(&rec->dead)) {
        rc = rec && rec->keep_name && name[0] ? TR_ERESTARTING : TR_ENOENT;
        tr__rec_unref(&rec);
        return tr_reply_error(self, msg, rc);
    }
    if (tr__rec_monitor(rec, tr_msg_sender(msg)) != 0) {
        tr__rec_unref(&rec);
        return tr_reply_error(self, msg, TR_ENOENT);
    }
    if (rec->pid == 0 && !atomic_load(&rec->exposed))
        (void)tr__port_send_sys(self->port, rec->id, TR__SYS_EXPOSE, 0, 0);
    tr_msg_t *m = NULL;
    rc = tr_msg_create(&m, "found");
    if (rc == 0 && (rc = tr_msg_add_int(m, (int64_t)rec->id)) == 0 &&
        (rc = tr_msg_add_int(m, rec->pid > 0 ? rec->pid : (long)getpid())) ==
            0 &&
        (rc = tr_msg_add_int(m, rec->hwm)) == 0)
        rc = tr_reply(self, msg, &m);
    tr_msg_destroy(&m);
    tr__rec_unref(&rec);
    return rc;
}

/* monitor [target, watcher]: a child's port watches target. */
static int
s_svc_monitor(tr_actor_t *self, const tr_msg_t *msg, int64_t target,
              int64_t watcher)
{
    tr_node_t *node = tr_actor_node(self);
    tr__rec_t *rec = tr__reg_get(&node->reg, (tr_id_t)target);
    int rc = rec ? tr__rec_monitor(rec, (tr_id_t)watcher) : TR_ENOENT;
    tr__rec_unref(&rec);
    if (rc == TR_ENOENT)
        (void)tr__port_send_sys(self->port, (tr_id_t)watcher, TR__SYS_DOWN,
                                target, TR_ENOENT);
    return tr_msg_is_request(msg) ? s_reply_ok(self, msg, 0, 0) : 0;
}

/* link / unlink [a, b] for a child: links live with the records here. */
static int
s_svc_link(tr_actor_t *self, const tr_msg_t *msg, int64_t a, int64_t b)
{
    tr_node_t *node = tr_actor_node(self);
    tr__rec_t *ra = tr__reg_get(&node->reg, (tr_id_t)a);
    tr__rec_t *rb = tr__reg_get(&node->reg, (tr_id_t)b);
    int rc = 0;
    bool found = false;
    if (tr_msg_is(msg, "link")) {
        rc = ra && rb && rb->kind == TR__REC_ACTOR ? tr__rec_link(ra, rb)
                                                   : TR_ENOENT;
    } else {
        found = ra != NULL && tr__rec_unlink(ra, (tr_id_t)b);
        if (rb != NULL)
            found |= tr__rec_unlink(rb, (tr_id_t)a);
    }
    tr__rec_unref(&ra);
    tr__rec_unref(&rb);
    return rc ? tr_reply_error(self, msg, rc)
              : s_reply_ok(self, msg, found, 0);
}

/* Heartbeats: ping every child that asked for them, kill the silent. */
static int
s_svc_tick(tr_actor_t *self)
{
    tr_node_t *node = tr_actor_node(self);
    tr__procs_t *p = node->procs;
    uint64_t now = tr__now_ns();
    tr_id_t ping[64];
    size_t nping = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n; i++) {
        tr__proc_t *pr = p->list[i];
        if (!pr->said_hello && !pr->kill_reason && now > pr->hello_by) {
            /* Its main did not hand over to tr_init: it runs the program
             * instead of the actor. */
            TR__LOG(TR_LOG_ERROR, "runtime", "process actor %llx (pid %d) "
                    "did not start its behaviour within %d ms (does main "
                    "call tr_init first?): killing it",
                    (unsigned long long)pr->id, (int)pr->pid,
                    TR__HELLO_MS);
            pr->kill_reason = TR_ENOTSUP;
            kill(pr->pid, SIGKILL);
            continue;
        }
        if (pr->heartbeat_ms <= 0 || !pr->started_ok || pr->kill_reason)
            continue;
        uint64_t limit = (uint64_t)pr->heartbeat_ms * 1000000u *
                         TR__HEARTBEAT_MISSES;
        if (now - atomic_load(&pr->last_pong) > limit) {
            TR__LOG(TR_LOG_WARN, "runtime", "process actor %llx (pid %d) "
                    "missed %d heartbeats: killing it",
                    (unsigned long long)pr->id, (int)pr->pid,
                    TR__HEARTBEAT_MISSES);
            pr->kill_reason = TR_EHUNG;
            kill(pr->pid, SIGKILL);
        } else if (nping < 64) {
            ping[nping++] = pr->id;
        }
    }
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < nping; i++)
        (void)tr__port_send_sys(self->port, ping[i], TR__SYS_PING, 0, 0);
    return 0;
}

static int
s_svc_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    if (tr_msg_is(msg, "tick"))
        return s_svc_tick(self);
    if (tr_msg_is(msg, "lookup"))
        return s_svc_lookup(self, msg);
    tr_reader_t r;
    int64_t a = 0, b = 0;
    tr_reader_init(&r, msg);
    if (tr_read_int(&r, &a) != 0 ||
        (!tr_msg_is(msg, "hello") && tr_read_int(&r, &b) != 0))
        return tr_msg_is_request(msg) ? tr_reply_error(self, msg, TR_EPROTO)
                                      : 0;
    if (tr_msg_is(msg, "hello"))
        return s_svc_hello(self, msg, a);
    if (tr_msg_is(msg, "started") || tr_msg_is(msg, "exiting"))
        return s_svc_status(self, msg, a, b);
    if (tr_msg_is(msg, "monitor"))
        return s_svc_monitor(self, msg, a, b);
    if (tr_msg_is(msg, "link") || tr_msg_is(msg, "unlink"))
        return s_svc_link(self, msg, a, b);
    return TR_EUNHANDLED;
}

static int
s_svc_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)state, (void)args;
    /* The heartbeat clock; children set their own intervals, this is how
     * often the service looks (the smallest interval it supports). */
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "tick");
    if (rc == 0 && (rc = tr_timer_every(self, 50, &m, NULL)) != 0)
        tr_msg_destroy(&m);
    return rc;
}

TR_BEHAVIOUR(tr_node_service, .init = s_svc_init, .handle = s_svc_handle);

/* The service and the reaper, made with the first process actor. */
static int
s_ensure_service(tr_node_t *node)
{
    tr__procs_t *p = s_procs(node);
    if (p == NULL)
        return TR_ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&node->root_mu);
    if (node->service == 0) {
        tr_id_t id = 0;
        rc = tr_spawn(node, "tr_node_service", NULL, &id);
        if (rc == 0) {
            node->service = id;
            /* Children reach it over ipc. */
            rc = tr__port_send_sys_from(node, id, TR__SYS_EXPOSE);
        }
    }
    pthread_mutex_lock(&p->mu);
    if (rc == 0 && !p->reaper_running) {
        if (pthread_create(&p->reaper, NULL, s_reaper, node) == 0)
            p->reaper_running = true;
        else
            rc = TR_ESYS;
    }
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&node->root_mu);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Starting a child                                                     */

/* The child's environment: ours, minus any TROUPE_ identity of our own,
 * plus the child's. */
static char **
s_child_env(tr_node_t *node, tr__rec_t *rec, char (*own)[160], size_t nown)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + nown + 1, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, "TROUPE_CHILD=", 13) == 0 ||
            strncmp(e, "TROUPE_ID=", 10) == 0 ||
            strncmp(e, "TROUPE_SERVICE=", 15) == 0 ||
            strncmp(e, "TROUPE_RUNDIR=", 14) == 0 ||
            strncmp(e, "TROUPE_PARENT=", 14) == 0 ||
            strncmp(e, "TROUPE_NAME=", 12) == 0 ||
            strncmp(e, "TROUPE_LINEAGE=", 15) == 0 ||
            strncmp(e, "TROUPE_CRASHES=", 15) == 0)
            continue;
        env[k++] = (char *)e;
    }
    snprintf(own[0], sizeof own[0], "TROUPE_CHILD=%s", rec->behaviour);
    snprintf(own[1], sizeof own[1], "TROUPE_ID=%llu",
             (unsigned long long)rec->id);
    snprintf(own[2], sizeof own[2], "TROUPE_SERVICE=%llu",
             (unsigned long long)node->service);
    snprintf(own[3], sizeof own[3], "TROUPE_RUNDIR=%s", node->rundir);
    snprintf(own[4], sizeof own[4], "TROUPE_PARENT=%ld", (long)getpid());
    snprintf(own[5], sizeof own[5], "TROUPE_NAME=%s", rec->name);
    tr__capsule_child_env(node, rec, own[6], sizeof own[6]);
    /* its linked spawner (tr_actor_parent) and, restarted under a kept
     * name, the actor it replaces (its trace's RESTART record) */
    snprintf(own[7], sizeof own[7], "TROUPE_LINEAGE=%llu:%llu",
             (unsigned long long)rec->parent,
             (unsigned long long)rec->replaces);
    for (size_t i = 0; i < nown; i++)
        env[k++] = own[i];
    env[k] = NULL;
    return env;
}

int
tr__proc_start(tr_node_t *node, tr__rec_t *rec, const tr_spawn_opts_t *opts,
               const tr_msg_t *args)
{
    const char *dir;
    int rc = tr__node_rundir(node, &dir);
    if (rc == 0)
        rc = s_ensure_service(node);
    if (rc != 0)
        return rc;
    tr__procs_t *p = node->procs;
    tr__proc_t *pr = calloc(1, sizeof *pr);
    if (pr == NULL)
        return TR_ENOMEM;
    pr->id = rec->id;
    pr->pidfd = -1;
    pr->heartbeat_ms = opts->heartbeat_ms;
    pr->hwm = rec->hwm;
    pr->hello_by = tr__deadline_after_ms(TR__HELLO_MS);
    pr->rec = rec;
    tr__rec_ref(rec);
    if ((rc = tr_msg_dup(args, &pr->args)) != 0) {
        s_proc_free(pr);
        return rc;
    }

    char own[8][160];
    char **env = s_child_env(node, rec, own, 8);
    const char *exe = opts->executable ? opts->executable : p->self_exe;
    char *argv[] = {(char *)(opts->executable ? opts->executable
                                              : program_invocation_name),
                    NULL};
    if (env == NULL) {
        s_proc_free(pr);
        return TR_ENOMEM;
    }
    /* Listed before it runs: its hello may come before we return. */
    tr__job_t job = {.pr = pr, .exe = exe, .argv = argv, .env = env};
    pthread_mutex_lock(&p->mu);
    rc = tr__grow((void **)&p->list, p->n, &p->cap, sizeof *p->list, 8);
    if (rc == 0) {
        p->list[p->n++] = pr;
        job.next = p->jobs;
        p->jobs = &job;
        s_wake(p);
        while (!job.done)
            pthread_cond_wait(&p->cv, &p->mu);
        if (job.err != 0) {
            size_t i;
            if (s_find(p, pr->id, &i) != NULL)
                p->list[i] = p->list[--p->n];
        }
    }
    /* Once listed and started, pr is the reaper's: the child may have
     * died and been reaped (pr freed) before this thread woke up. */
    pid_t pid = job.pid;
    pthread_mutex_unlock(&p->mu);
    free(env);
    if (rc != 0 || job.err != 0) {
        if (job.err != 0)
            TR__LOG(TR_LOG_ERROR, "runtime", "cannot start %s for '%s': %s",
                    exe, rec->behaviour, strerror(job.err));
        s_proc_free(pr);
        return rc ? rc : job.err == ENOENT || job.err == EACCES ? TR_ENOENT
                                                                : TR_ESYS;
    }
    rec->pid = pid; /* informational: remote already (set by tr_spawn) */
    TR__LOG(TR_LOG_DEBUG, "runtime", "process actor %llx is pid %d",
            (unsigned long long)rec->id, (int)pid);
    return 0;
}

int
tr__proc_kill(tr_node_t *node, tr_id_t id, int reason)
{
    tr__procs_t *p = node->procs;
    if (p == NULL)
        return TR_ENOENT;
    pthread_mutex_lock(&p->mu);
    tr__proc_t *pr = s_find(p, id, NULL);
    if (pr != NULL) {
        if (pr->kill_reason == 0)
            pr->kill_reason = reason;
        /* Not started yet (pid 0 would be our own process group): the
         * reaper kills it as soon as it has started it. */
        if (pr->pid > 0)
            kill(pr->pid, SIGKILL);
        /* Nothing sent from now on will be read: senders by a kept name
         * wait for the next actor instead of reaching this one. */
        atomic_store(&pr->rec->dead, 1);
    }
    pthread_mutex_unlock(&p->mu);
    return pr ? 0 : TR_ENOENT;
}

void
tr__proc_pong(tr_node_t *node, tr_id_t id)
{
    tr__procs_t *p = node->procs;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    tr__proc_t *pr = s_find(p, id, NULL);
    if (pr != NULL)
        atomic_store(&pr->last_pong, tr__now_ns());
    pthread_mutex_unlock(&p->mu);
}

void
tr__procs_shutdown(tr_node_t *node, uint64_t deadline_ns)
{
    tr__procs_t *p = node->procs;
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    /* What did not stop when asked is killed: a process can be. */
    for (size_t i = 0; i < p->n; i++) {
        if (p->list[i]->kill_reason == 0)
            p->list[i]->kill_reason = TR_EKILLED;
        kill(p->list[i]->pid, SIGKILL);
    }
    p->stopping = true;
    bool running = p->reaper_running;
    pthread_mutex_unlock(&p->mu);
    s_wake(p);
    (void)deadline_ns; /* SIGKILL always ends a process: the join returns */
    if (running)
        pthread_join(p->reaper, NULL);
    for (size_t i = 0; i < p->n; i++)
        s_proc_free(p->list[i]);
    free(p->list);
    close(p->wakefd);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
    node->procs = NULL;
}

/* ------------------------------------------------------------------ */
/* The child's side                                                     */

/* Send tag [x, y] to the service; with answer, wait for its "ok [a, b]"
 * and give a. */
static int
s_tell_service(tr_actor_t *a, const char *tag, int64_t x, int64_t y,
               int64_t *answer)
{
    tr_msg_t *m = NULL, *reply = NULL;
    int rc = tr_msg_create(&m, tag);
    if (rc == 0 && (rc = tr_msg_add_int(m, x)) == 0 &&
        (rc = tr_msg_add_int(m, y)) == 0)
        rc = answer ? tr_call_id(a->node, a->node->service, &m, TR_DEFAULT,
                               &reply)
                    : tr_tell_id(a->node, a->node->service, &m);
    if (rc == 0 && answer != NULL) {
        tr_reader_t r;
        tr_reader_init(&r, reply);
        rc = tr_read_int(&r, answer);
    }
    tr_msg_destroy(&m);
    tr_msg_destroy(&reply);
    return rc;
}

/* The tag page: the parent reads the tag we were handling when we died. */
static void
s_tag_page(tr_actor_t *a)
{
    char path[TR__RUNDIR_MAX + 32];
    s_path(a->node, path, sizeof path, a->rec->id, "tag");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (ftruncate(fd, TR__TAG_PAGE) == 0) {
        void *p = mmap(NULL, TR__TAG_PAGE, PROT_READ | PROT_WRITE,
                       MAP_SHARED, fd, 0);
        if (p != MAP_FAILED)
            a->tagpage = p;
    }
    close(fd);
}

int
tr__child_hello(tr_actor_t *a, tr_msg_t **args)
{
    tr_msg_t *m = NULL, *reply = NULL;
    int rc = tr_msg_create(&m, "hello");
    if (rc == 0 && (rc = tr_msg_add_int(m, (int64_t)a->rec->id)) == 0)
        rc = tr_call_id(a->node, a->node->service, &m, TR_DEFAULT, &reply);
    tr_msg_destroy(&m);
    if (rc != 0)
        return rc;
    tr_reader_t r;
    char tag[TR_TAG_MAX + 1];
    const void *p;
    size_t plen;
    int64_t v[7];
    tr_reader_init(&r, reply);
    rc = tr_read_str_copy(&r, tag, sizeof tag);
    if (rc == 0)
        rc = tr_read_bin(&r, &p, &plen);
    for (int i = 0; i < 7 && rc == 0; i++)
        rc = tr_read_int(&r, &v[i]);
    if (rc == 0 && (rc = tr__msg_create_sys(args, tag)) == 0 &&
        (rc = tr_msg_add_raw(*args, p, plen)) != 0)
        tr_msg_destroy(args);
    if (rc == 0) {
        tr_node_opts_t *o = &a->node->opts;
        o->mailbox_hwm = (int)v[0];
        o->send_timeout_ms = (int)v[1];
        o->ask_timeout_ms = (int)v[2];
        o->shutdown_timeout_ms = (int)v[3];
        tr_log_set_level((int)v[4]);
        a->node->tag = (uint32_t)v[5];
        a->node->gw = (tr_id_t)v[6];
        a->hwm = o->mailbox_hwm;
        s_tag_page(a);
    }
    tr_msg_destroy(&reply);
    return rc;
}

int
tr__child_link(tr_actor_t *a, tr_id_t other, bool link)
{
    int64_t found = 0;
    int rc = s_tell_service(a, link ? "link" : "unlink", (int64_t)a->rec->id,
                            (int64_t)other, &found);
    return rc ? rc : found ? 1 : 0;
}

void
tr__child_started(tr_actor_t *a, int rc)
{
    int64_t ok;
    (void)s_tell_service(a, "started", (int64_t)a->rec->id, rc, &ok);
}

void
tr__child_exiting(tr_actor_t *a, int reason)
{
    if (a->tagpage != NULL)
        memset(a->tagpage, 0, TR__TAG_PAGE); /* not a crash */
    int64_t ok;
    (void)s_tell_service(a, "exiting", (int64_t)a->rec->id, reason, &ok);
}

int
tr__child_lookup(tr_node_t *node, tr__port_t *port, tr_id_t id,
                 const char *name, tr__rec_t **out)
{
    (void)port;
    tr_msg_t *m = NULL, *reply = NULL;
    int rc = tr_msg_create(&m, "lookup");
    if (rc == 0 && (rc = tr_msg_add_int(m, (int64_t)id)) == 0)
        rc = name ? tr_msg_add_str(m, name) : tr_msg_add_nil(m);
    if (rc == 0)
        rc = tr_call_id(node, node->service, &m, TR_DEFAULT, &reply);
    tr_msg_destroy(&m);
    int64_t got = 0, pid = 0, hwm = 0;
    if (rc == 0) {
        tr_reader_t r;
        tr_reader_init(&r, reply);
        if ((rc = tr_read_int(&r, &got)) == 0 &&
            (rc = tr_read_int(&r, &pid)) == 0)
            rc = tr_read_int(&r, &hwm);
    }
    tr_msg_destroy(&reply);
    if (rc != 0)
        return rc;
    /* A local record of the remote actor: its endpoints are ipc, and the
     * DOWN the service arranged removes it again. */
    tr__rec_t *rec = tr__reg_get(&node->reg, (tr_id_t)got);
    if (rec == NULL) {
        if ((rc = tr__rec_new(&rec, (tr_id_t)got, TR__REC_ACTOR, NULL)) != 0)
            return rc;
        rec->pid = pid ? pid : -1;
        rec->hwm = (int)hwm;
        rc = tr__reg_add(&node->reg, rec);
        if (rc != 0 && rc != TR_EEXIST) {
            tr__rec_unref(&rec);
            return rc;
        }
        if (rc == TR_EEXIST) { /* another thread made it meanwhile */
            tr__rec_unref(&rec);
            rec = tr__reg_get(&node->reg, (tr_id_t)got);
            if (rec == NULL)
                return TR_ENOENT;
        }
    }
    *out = rec;
    return 0;
}

int
tr__child_watch(tr_node_t *node, tr__port_t *port, tr_id_t target)
{
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "monitor");
    if (rc == 0 && (rc = tr_msg_add_int(m, (int64_t)target)) == 0 &&
        (rc = tr_msg_add_int(m, (int64_t)port->rec->id)) == 0)
        rc = tr_tell_id(node, node->service, &m);
    tr_msg_destroy(&m);
    return rc;
}

/* The child's node: its registry knows only itself and the service until
 * it looks others up. */
static tr_node_t *
s_child_node(tr_id_t service, long parent, const char *rundir)
{
    tr_node_t *node = NULL;
    tr__in_child_init = true;
    int rc = tr_node_create(&node, NULL);
    tr__in_child_init = false;
    if (rc != 0)
        return NULL;
    node->child = true;
    node->parent_pid = parent;
    node->service = service;
    snprintf(node->rundir, sizeof node->rundir, "%s", rundir);
    tr__rec_t *rec = NULL;
    if (tr__rec_new(&rec, service, TR__REC_ACTOR, NULL) != 0 ||
        (atomic_store(&rec->pid, parent), tr__reg_add(&node->reg, rec)) != 0) {
        tr__rec_unref(&rec);
        tr_node_destroy(&node);
        return NULL;
    }
    tr__rec_unref(&rec);
    return node;
}

static int
s_child_main(const char *behaviour)
{
    const char *id_s = getenv("TROUPE_ID"), *svc_s = getenv("TROUPE_SERVICE");
    const char *dir = getenv("TROUPE_RUNDIR"), *name = getenv("TROUPE_NAME");
    const char *parent_s = getenv("TROUPE_PARENT");
    const tr_behaviour_t *beh = tr__behaviour_find(behaviour);
    if (id_s == NULL || svc_s == NULL || dir == NULL || parent_s == NULL) {
        fprintf(stderr, "troupe: incomplete child environment\n");
        return TR__CHILD_ENV;
    }
    if (beh == NULL) {
        fprintf(stderr, "troupe: this program has no behaviour '%s'\n",
                behaviour);
        return TR__CHILD_NOBEH;
    }
    tr_node_t *node = s_child_node(strtoull(svc_s, NULL, 10),
                                   strtol(parent_s, NULL, 10), dir);
    if (node == NULL)
        return TR__CHILD_NODE;
    tr_actor_t *a = calloc(1, sizeof *a);
    tr__rec_t *rec = NULL;
    if (a == NULL ||
        tr__rec_new(&rec, strtoull(id_s, NULL, 10), TR__REC_ACTOR,
                    name && *name ? name : NULL) != 0 ||
        tr__reg_add(&node->reg, rec) != 0) {
        tr__rec_unref(&rec);
        free(a);
        tr_node_destroy(&node);
        return TR__CHILD_NODE;
    }
    snprintf(rec->behaviour, sizeof rec->behaviour, "%s", behaviour);
    unsigned long long parent = 0, replaces = 0;
    const char *lineage = getenv("TROUPE_LINEAGE");
    if (lineage != NULL &&
        sscanf(lineage, "%llu:%llu", &parent, &replaces) == 2) {
        rec->parent = (tr_id_t)parent;
        rec->replaces = (tr_id_t)replaces;
    }
    a->node = node;
    a->beh = beh;
    a->rec = rec; /* the reference this thread holds */
    a->process_child = true;
    a->hwm = node->opts.mailbox_hwm;
    tr__rec_ref(rec); /* the node list's, as s_register would */
    pthread_mutex_lock(&node->mu);
    int rc = tr__node_list_push((void ***)&node->actors, &node->nactors,
                                &node->capactors, rec);
    node->threads_live++;
    pthread_mutex_unlock(&node->mu);
    if (rc != 0) {
        tr__rec_unref(&rec);
        free(a);
        return TR__CHILD_NODE;
    }
    tr__actor_main(a); /* runs the actor here, on the main thread */
    /* The actor has ended: flush what it sent (linger), then leave. */
    tr_node_destroy(&node);
    return 0;
}

int
tr_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *replay = getenv("TROUPE_REPLAY");
    if (replay != NULL && getenv("TROUPE_CHILD") == NULL) /* troupe replay */
        exit(tr__capsule_replay_main(replay));
    const char *beh = getenv("TROUPE_CHILD");
    if (beh == NULL)
        return 0;
    /* Die with the parent, and make sure it is still the one that started
     * us: it may have died before prctl took effect. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Lines from several processes on one terminal stay whole and in
     * order only if each process writes them out as they come. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *parent = getenv("TROUPE_PARENT");
    if (parent == NULL || (long)getppid() != strtol(parent, NULL, 10))
        _exit(TR__CHILD_ORPHAN);
    exit(s_child_main(beh));
}
