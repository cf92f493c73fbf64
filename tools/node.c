/* tools/node.c - finding nodes and asking them (docs/control.md): the
 * runtime directory as the runtime lays it out (runtime/rundir.c), a
 * node named by pid, name or directory, and requests to its control
 * endpoint with a deadline on every one, so the command never hangs on a
 * node that is stuck or gone. */
#include "tools/tool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport/zsock.h"

void
tt_base_dir(char *buf, size_t cap)
{
    /* The same choice as tr__rundir_create, or we would look elsewhere. */
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (xdg != NULL && *xdg == '/' && stat(xdg, &st) == 0 &&
        S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
        access(xdg, W_OK) == 0)
        snprintf(buf, cap, "%s/troupe", xdg);
    else
        snprintf(buf, cap, "/tmp/troupe-%u", (unsigned)geteuid());
}

unsigned long long
tt_pid_start(long pid)
{
    char path[64], buf[1024];
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: count
     * fields from after the last ')'; field 22 is the start time. */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] == '\0' || p[2] == '\0')
        return 0;
    /* A zombie (field 3: Z, or X when dying) has ended: its node is gone
     * even though its pid is not yet free. */
    if (p[2] == 'Z' || p[2] == 'X')
        return 0;
    int field = 3;
    for (p += 2; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    return field == 22 ? strtoull(p, NULL, 10) : 0;
}

/* "<pid>-<start>-<n>" and nothing more. */
static bool
s_parse_dirname(const char *name, long *pid, unsigned long long *start,
                unsigned *n)
{
    char tail;
    return sscanf(name, "%ld-%llu-%u%c", pid, start, n, &tail) == 3 &&
           *pid > 0;
}

/* The `node` file: "<name> <pid> <started unix ms>". The name is all
 * before the last two fields, in case it ever holds a space. */
static bool
s_read_node_file(tt_node_t *node)
{
    char path[TT_PATH_MAX + 8], line[256];
    snprintf(path, sizeof path, "%s/node", node->dir);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    line[strcspn(line, "\n")] = '\0';
    char *last = strrchr(line, ' ');
    if (last == NULL)
        return false;
    *last = '\0';
    char *mid = strrchr(line, ' ');
    if (mid == NULL)
        return false;
    *mid = '\0';
    char *end;
    long pid = strtol(mid + 1, &end, 10);
    if (*end != '\0')
        return false;
    long long ms = strtoll(last + 1, &end, 10);
    if (*end != '\0')
        return false;
    size_t len = strlen(line);
    if (len >= sizeof node->name)
        len = sizeof node->name - 1;
    memcpy(node->name, line, len);
    node->name[len] = '\0';
    if (node->pid == 0)
        node->pid = pid;
    node->started_ms = ms;
    return true;
}

void
tt_node_load(tt_node_t *node, const char *dir)
{
    memset(node, 0, sizeof *node);
    snprintf(node->dir, sizeof node->dir, "%s", dir);
    const char *base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    bool named = s_parse_dirname(base, &node->pid, &node->start, &node->n);
    if (!named)
        node->pid = 0;
    node->has_info = s_read_node_file(node);
    if (named)
        node->stale = tt_pid_start(node->pid) != node->start;
    else /* a directory of another shape: all we can check is the pid */
        node->stale = node->pid <= 0 || tt_pid_start(node->pid) == 0;
}

static int
s_node_cmp(const void *a, const void *b)
{
    const tt_node_t *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return x->n < y->n ? -1 : x->n > y->n;
}

int
tt_nodes_list(tt_node_t **out)
{
    char base[TT_PATH_MAX - 64];
    tt_base_dir(base, sizeof base);
    *out = NULL;
    DIR *d = opendir(base);
    if (d == NULL)
        return -1;
    tt_node_t *nodes = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid;
        unsigned long long start;
        unsigned num;
        if (!s_parse_dirname(e->d_name, &pid, &start, &num))
            continue;
        if (n == cap) {
            int ncap = cap ? 2 * cap : 16;
            tt_node_t *more = realloc(nodes, (size_t)ncap * sizeof *more);
            if (more == NULL) {
                free(nodes);
                closedir(d);
                errno = ENOMEM;
                return -1;
            }
            nodes = more, cap = ncap;
        }
        char dir[TT_PATH_MAX];
        if (tt_fmt(dir, sizeof dir, "%s/%s", base, e->d_name))
            tt_node_load(&nodes[n++], dir);
    }
    closedir(d);
    if (n > 0)
        qsort(nodes, (size_t)n, sizeof *nodes, s_node_cmp);
    *out = nodes;
    return n;
}

static bool
s_all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static void
s_describe(const tt_node_t *node, char *buf, size_t cap)
{
    char name[TT_NAME_MAX];
    snprintf(name, sizeof name, "%s", node->has_info ? node->name : "?");
    tt_clean(name);
    snprintf(buf, cap, "'%s' (pid %ld)", name, node->pid);
}

int
tt_node_find(const char *spec, tt_node_t *out)
{
    char what[TT_PATH_MAX + 64];
    if (strncmp(spec, "tcp://", 6) == 0 || strncmp(spec, "ipc://", 6) == 0) {
        /* a node elsewhere: its gateway's endpoint (docs/tools.md) */
        memset(out, 0, sizeof *out);
        snprintf(out->dir, sizeof out->dir, "%s", spec);
        snprintf(out->name, sizeof out->name, "%s", spec);
        out->remote = true;
        return 0;
    }
    if (strchr(spec, '/') != NULL) {
        char dir[TT_PATH_MAX];
        snprintf(dir, sizeof dir, "%s", spec);
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
            dir[--len] = '\0';
        struct stat st;
        int e = stat(dir, &st) != 0 ? errno : 0;
        if (e != 0 || !S_ISDIR(st.st_mode)) {
            tt_err("%s: no node there (%s)", dir,
                   e != 0 ? strerror(e) : "not a directory");
            return TT_EXIT_FAIL;
        }
        tt_node_load(out, dir);
        if (out->stale) {
            s_describe(out, what, sizeof what);
            tt_err("node %s in %s is gone", what, dir);
            return TT_EXIT_FAIL;
        }
        return 0;
    }

    tt_node_t *nodes;
    int n = tt_nodes_list(&nodes);
    if (n < 0 && errno != ENOENT) {
        tt_err("cannot read the runtime directory: %s", strerror(errno));
        return TT_EXIT_FAIL;
    }
    long pid = 0;
    unsigned long long start;
    unsigned num;
    bool by_dir = s_parse_dirname(spec, &pid, &start, &num);
    bool by_pid = !by_dir && s_all_digits(spec);
    if (by_pid)
        pid = strtol(spec, NULL, 10);
    int found = 0, stale = 0, first = -1;
    for (int i = 0; i < n; i++) {
        const char *base = strrchr(nodes[i].dir, '/') + 1;
        bool match = by_dir   ? strcmp(base, spec) == 0
                     : by_pid ? nodes[i].pid == pid
                              : nodes[i].has_info &&
                                    strcmp(nodes[i].name, spec) == 0;
        if (!match)
            continue;
        if (nodes[i].stale) {
            stale++;
            continue;
        }
        if (found++ == 0)
            first = i;
    }
    int rc = 0;
    if (found == 1) {
        *out = nodes[first];
    } else if (found > 1) {
        tt_err("'%s' is ambiguous: %d nodes match; name one by its "
               "directory:", spec, found);
        for (int i = 0; i < n; i++) {
            const char *base = strrchr(nodes[i].dir, '/') + 1;
            bool match = by_dir   ? strcmp(base, spec) == 0
                         : by_pid ? nodes[i].pid == pid
                                  : nodes[i].has_info &&
                                        strcmp(nodes[i].name, spec) == 0;
            if (match && !nodes[i].stale) {
                s_describe(&nodes[i], what, sizeof what);
                fprintf(stderr, "  %s  %s\n", nodes[i].dir, what);
            }
        }
        rc = TT_EXIT_FAIL;
    } else if (stale > 0) {
        tt_err("node '%s' is gone (its process has ended)", spec);
        rc = TT_EXIT_FAIL;
    } else {
        tt_err("no node '%s' here (troupe ls lists the running ones)", spec);
        rc = TT_EXIT_FAIL;
    }
    free(nodes);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The control endpoint                                                */
/* ------------------------------------------------------------------ */

/* Is anyone listening on the unix socket at path? ECONNREFUSED says no
 * at once, where ZeroMQ would retry quietly until our deadline. 0: yes,
 * or we cannot tell (then the request's deadline decides). */
static int
s_probe(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return 0;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : errno;
    close(fd);
    return rc == ECONNREFUSED || rc == ENOENT || rc == EACCES ? rc : 0;
}

static int
s_socket(tt_conn_t *c)
{
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (c->sock == NULL)
        return -1;
    zmq_setsockopt(c->sock, ZMQ_RCVTIMEO, &c->timeout_ms,
                   sizeof c->timeout_ms);
    zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &c->timeout_ms,
                   sizeof c->timeout_ms);
    if (tr__sock_limits(c->sock, TR__MAX_MSG_PROCESS, 0) != 0 ||
        zmq_connect(c->sock, c->endpoint) != 0) {
        zmq_close(c->sock);
        c->sock = NULL;
        return -1;
    }
    return 0;
}

int
tt_conn_open(tt_conn_t *c, const tt_node_t *node, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    msgpack_unpacked_init(&c->reply);
    c->timeout_ms = timeout_ms;
    if (node->remote) {
        int rc = tt_remote_open(c, node->dir);
        if (rc != 0)
            tt_conn_close(c);
        return rc;
    }
    char who[TT_PATH_MAX], *path = c->path;
    c->pid = node->pid;
    s_describe(node, who, sizeof who);
    snprintf(c->label, sizeof c->label, "node %s", who);
    if (!tt_fmt(path, sizeof c->path, "%s/control", node->dir) ||
        !tt_fmt(c->endpoint, sizeof c->endpoint, "ipc://%s", path)) {
        tt_err("%s: path too long", node->dir);
        return TT_EXIT_FAIL;
    }

    struct stat st;
    if (stat(node->dir, &st) != 0) {
        tt_err("%s is gone (%s: %s)", c->label, node->dir, strerror(errno));
        return TT_EXIT_FAIL;
    }
    if (stat(path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        if (tt_pid_start(node->pid) == 0)
            tt_err("%s is gone", c->label);
        else
            tt_err("%s serves no control endpoint (no socket %s)", c->label,
                   path);
        return TT_EXIT_FAIL;
    }
    int why = s_probe(path);
    if (why != 0) {
        tt_err("%s refuses connections on %s: %s", c->label, path,
               why == ECONNREFUSED ? "nobody listens (is it ending?)"
                                   : strerror(why));
        return TT_EXIT_FAIL;
    }
    c->ctx = zmq_ctx_new();
    if (c->ctx == NULL || s_socket(c) != 0) {
        tt_err("%s: cannot connect to %s: %s", c->label, c->endpoint,
               zmq_strerror(zmq_errno()));
        tt_conn_close(c);
        return TT_EXIT_FAIL;
    }
    return 0;
}

/* The request's bytes: [cmd, args...]. */
static void
s_pack(msgpack_sbuffer *sb, const char *cmd, int nargs, const int64_t *args)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1 + (size_t)nargs);
    size_t len = strlen(cmd);
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, cmd, len);
    for (int i = 0; i < nargs; i++)
        msgpack_pack_int64(&pk, args[i]);
}

static int
s_send(tt_conn_t *c, const char *cmd, int nargs, const int64_t *args)
{
    msgpack_sbuffer sb;
    s_pack(&sb, cmd, nargs, args);
    int rc = zmq_send(c->sock, sb.data, sb.size, 0) < 0 ? -1 : 0;
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* Unpack a reply's bytes into c->reply and check it (as below). */
static int s_reply(tt_conn_t *c, const char *cmd, const char *data,
                   size_t len, const msgpack_object **reply);

static int
s_remote_request(tt_conn_t *c, const char *cmd, int nargs,
                 const int64_t *args, const msgpack_object **reply)
{
    msgpack_sbuffer sb;
    s_pack(&sb, cmd, nargs, args);
    const char *ans = NULL;
    size_t alen = 0;
    int rc = tt_remote_request(c, sb.data, sb.size, &ans, &alen);
    msgpack_sbuffer_destroy(&sb);
    if (rc == -1) {
        tt_err("%s did not answer '%s' within %d ms", c->label, cmd,
               c->timeout_ms);
        return TT_EXIT_FAIL;
    }
    if (rc != 0)
        return TT_EXIT_FAIL; /* said */
    return s_reply(c, cmd, ans, alen, reply);
}

/* Drop the socket and make another: whatever the old one still gets (a
 * late answer) goes with it. */
static int
s_reconnect(tt_conn_t *c)
{
    if (c->sock != NULL)
        zmq_close(c->sock);
    c->sock = NULL;
    return s_socket(c);
}

int
tt_conn_request(tt_conn_t *c, const char *cmd, int nargs,
                const int64_t *args, const msgpack_object **reply)
{
    if (c->remote)
        return s_remote_request(c, cmd, nargs, args, reply);
    if (c->has_frame) {
        zmq_msg_close(&c->frame);
        c->has_frame = false;
    }
    if (c->sock == NULL && s_reconnect(c) != 0) {
        tt_err("%s: cannot connect: %s", c->label, zmq_strerror(zmq_errno()));
        return TT_EXIT_FAIL;
    }
    if (s_send(c, cmd, nargs, args) != 0) {
        tt_err("%s did not take the '%s' request within %d ms", c->label,
               cmd, c->timeout_ms);
        s_reconnect(c);
        return TT_EXIT_FAIL;
    }
    /* The reply is one frame (docs/control.md). An empty frame before it
     * (a REQ-style delimiter) is skipped, in case a node sends one. */
    bool more = true;
    while (more) {
        if (c->has_frame)
            zmq_msg_close(&c->frame);
        zmq_msg_init(&c->frame);
        c->has_frame = true;
        if (zmq_msg_recv(&c->frame, c->sock, 0) < 0) {
            int e = zmq_errno();
            struct stat st;
            if (e == EAGAIN && (stat(c->path, &st) != 0 ||
                                tt_pid_start(c->pid) == 0))
                tt_err("%s is gone: it ended while we asked", c->label);
            else if (e == EAGAIN)
                tt_err("%s did not answer '%s' within %d ms", c->label, cmd,
                       c->timeout_ms);
            else
                tt_err("%s: receiving: %s", c->label, zmq_strerror(e));
            s_reconnect(c);
            return TT_EXIT_FAIL;
        }
        more = zmq_msg_more(&c->frame);
        if (more && zmq_msg_size(&c->frame) != 0) {
            tt_err("%s answered '%s' with several frames", c->label, cmd);
            s_reconnect(c);
            return TT_EXIT_FAIL;
        }
    }
    return s_reply(c, cmd, zmq_msg_data(&c->frame), zmq_msg_size(&c->frame),
                   reply);
}

static int
s_reply(tt_conn_t *c, const char *cmd, const char *data, size_t len,
        const msgpack_object **reply)
{
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&c->reply, data, len,
                                                   &off);
    const msgpack_object *o = &c->reply.data;
    if (ur != MSGPACK_UNPACK_SUCCESS || o->type != MSGPACK_OBJECT_MAP ||
        tt_get(o, "ok") == NULL) {
        tt_err("%s sent a malformed answer to '%s' (%zu bytes)", c->label,
               cmd, len);
        return TT_EXIT_FAIL;
    }
    if (!tt_get_bool(o, "ok", false)) {
        char text[256];
        tt_get_str(o, "error", text, sizeof text, "no reason given");
        tt_err("%s refused '%s': %s", c->label, cmd, text);
        return TT_EXIT_FAIL;
    }
    *reply = o;
    return 0;
}

void
tt_conn_close(tt_conn_t *c)
{
    if (c->remote)
        tt_remote_close(c);
    msgpack_unpacked_destroy(&c->reply);
    if (c->has_frame)
        zmq_msg_close(&c->frame);
    c->has_frame = false;
    if (c->sock != NULL)
        zmq_close(c->sock);
    c->sock = NULL;
    if (c->ctx != NULL)
        zmq_ctx_term(c->ctx);
    c->ctx = NULL;
}
