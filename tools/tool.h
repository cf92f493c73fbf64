/* tools/tool.h - what the files of the troupe command share: output
 * helpers (JSON and XML text, durations), the nodes of the runtime
 * directory and their control endpoint (docs/control.md), and each
 * command's entry point.
 *
 * The command is a program of its own: it reads nodes through their
 * control endpoint and trace files, so it can look at a node of any
 * build. Only the dashboard uses libtroupe's runtime, for its HTTP
 * gateway; the other commands call it for small things (tr__sock_limits,
 * so that their sockets are bounded as the runtime's are). Names shared
 * between its files start with tt_ ("troupe tool"); statics with s_. A
 * command returns the process's exit status: 0, 1 (the node or a file
 * failed us: a message is on stderr) or 2 (usage). */
#ifndef TR_TOOLS_TOOL_H
#define TR_TOOLS_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>
#include <zmq.h>

#define TT_EXIT_FAIL 1
#define TT_EXIT_USAGE 2
#define TT_HELP (-1) /* tt_args_parse: -h or --help was given */

/* How long a node has to answer one request (docs/control.md: a few ms). */
#define TT_TIMEOUT_MS 1000

/* ------------------------------------------------------------------ */
/* Output (tools/out.c)                                                */
/* ------------------------------------------------------------------ */

/* "troupe: " + the message + "\n" on stderr, after calling tt_err_hook
 * when set (top gives the terminal back first). */
extern void (*tt_err_hook)(void);
void tt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last message tt_err made on this thread; with tt_err_quiet set it
 * is only kept there (the dashboard puts it in its answers instead). */
extern _Thread_local bool tt_err_quiet;
extern _Thread_local char tt_err_last[512];

/* snprintf that says whether all of it fitted (paths built from what is
 * on disk may not: those are skipped, never cut). */
bool tt_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* s[0..len) as a JSON string, quotes included. Bytes that are not UTF-8
 * become U+FFFD, so that the output always parses. */
void tt_json_strn(FILE *f, const char *s, size_t len);
void tt_json_str(FILE *f, const char *s);

/* s[0..len) as XML character data or attribute text: & < > " ' escaped,
 * bytes that are not UTF-8 and control characters XML 1.0 forbids become
 * U+FFFD. */
void tt_xml_strn(FILE *f, const char *s, size_t len);
void tt_xml_str(FILE *f, const char *s);

/* A msgpack value as JSON (maps with keys that are not strings get them
 * as strings; bin as a hex string; ext and non-finite floats as null). */
void tt_json_obj(FILE *f, const msgpack_object *o);

/* A duration in ms as "850ms", "12.3s", "4m05s", "3h12m", "2d04h". */
void tt_fmt_ms(char *buf, size_t cap, int64_t ms);

/* Milliseconds, CLOCK_MONOTONIC and CLOCK_REALTIME (unix). */
int64_t tt_mono_ms(void);
int64_t tt_unix_ms(void);

/* Replace control characters with '?' in place: text for a terminal
 * must not carry escape sequences it was handed. */
void tt_clean(char *s);

/* Lookups in a msgpack map by string key: the value, or NULL. */
const msgpack_object *tt_get(const msgpack_object *map, const char *key);
/* The value as an int (def when missing or not an integer). */
int64_t tt_get_int(const msgpack_object *map, const char *key, int64_t def);
/* The value copied as a string into buf (def when missing or not one),
 * cut to fit and cleaned (tt_clean). */
const char *tt_get_str(const msgpack_object *map, const char *key, char *buf,
                       size_t cap, const char *def);
bool tt_get_bool(const msgpack_object *map, const char *key, bool def);

/* A text table: cells are copied; columns as wide as their widest cell
 * (counted in characters, not bytes); align holds 'l' or 'r' per column.
 * Printing cuts lines at width characters (0: no limit) and ends each
 * with eol. */
typedef struct tt_table {
    int ncols;
    const char *align;
    char **cells; /* row-major; row 0 is the heading */
    int nrows, cap;
} tt_table_t;

void tt_table_init(tt_table_t *t, int ncols, const char *align,
                   const char *const *head);
void tt_table_add(tt_table_t *t, const char *const *row);
void tt_table_print(const tt_table_t *t, FILE *f, int width,
                    const char *eol);
void tt_table_free(tt_table_t *t);

/* Command-line options, parsed for one command: allowed lists the long
 * options it takes, comma-separated ("json,all"). Options may come
 * before, between or after the positional arguments. Returns 0, TT_HELP
 * (-h, --help), or TT_EXIT_USAGE after printing what was wrong. */
typedef struct tt_args {
    bool json, all, force, once;
    int timeout_ms; /* --timeout MS: TT_TIMEOUT_MS by default */
    int delay_ms;   /* --delay MS: top's refresh, 1000 by default */
    int max;        /* --max N: the SVG's message cap (0: the default) */
    const char *perfetto, *svg; /* --perfetto OUT, --svg OUT */
    const char *sort;           /* --sort KEY (top) */
    int port;                   /* --port P (dashboard): -1 when not given */
    const char *bind;           /* --bind ADDR (dashboard) */
    bool gdb;                   /* --gdb (replay) */
    const char *pos[4];
    int npos;
} tt_args_t;

int tt_args_parse(int argc, char **argv, const char *allowed, tt_args_t *a);

/* tt_args_parse, then a check that there are min_pos..max_pos positional
 * arguments; on help or a usage error it prints the usage (tools/troupe.c)
 * and returns false with the exit status in *rc. */
bool tt_args(int argc, char **argv, const char *allowed, int min_pos,
             int max_pos, tt_args_t *a, int *rc);

/* ------------------------------------------------------------------ */
/* Nodes and their control endpoint (tools/node.c)                     */
/* ------------------------------------------------------------------ */

#define TT_PATH_MAX 512
#define TT_NAME_MAX 64

/* A node directory: <base>/<pid>-<start>-<n>. */
typedef struct tt_node {
    char dir[TT_PATH_MAX];
    long pid;
    unsigned long long start; /* process start time, clock ticks */
    unsigned n;
    bool stale;               /* the pid is gone or now another process */
    bool has_info;            /* the `node` file was read */
    char name[TT_NAME_MAX];   /* from the `node` file */
    int64_t started_ms;       /* unix ms, from the `node` file */
    bool remote;              /* dir is an endpoint (tcp://, ipc://):
                               * a node reached through its gateway */
} tt_node_t;

/* The runtime base directory, as the runtime picks it
 * (runtime/rundir.c): $XDG_RUNTIME_DIR/troupe when that is ours, else
 * /tmp/troupe-<uid>. */
void tt_base_dir(char *buf, size_t cap);

/* The start time of a process (field 22 of /proc/<pid>/stat), 0 when
 * there is no such process. */
unsigned long long tt_pid_start(long pid);

/* Every node directory under the base (stale ones too), sorted by pid
 * and number. *out is malloc'd (free it); returns how many, or -1 with
 * errno (ENOENT: no base directory, which means no nodes). */
int tt_nodes_list(tt_node_t **out);

/* Read dir's `node` file and check its pid into *node. */
void tt_node_load(tt_node_t *node, const char *dir);

/* Find the node that spec names: a directory path (has a '/'), a
 * directory name (<pid>-<start>-<n>), a pid, or a node name. Stale nodes
 * are not matched. Prints what is wrong and returns TT_EXIT_FAIL when no
 * node or several match. */
int tt_node_find(const char *spec, tt_node_t *out);

/* A connection to a node's control endpoint. */
typedef struct tt_conn {
    void *ctx;
    void *sock;
    char endpoint[TT_PATH_MAX + 8];
    char label[TT_PATH_MAX + 64]; /* for messages: name (pid N) */
    char path[TT_PATH_MAX + 16];  /* the control socket */
    long pid;
    int timeout_ms;
    msgpack_unpacked reply;
    zmq_msg_t frame; /* holds the reply's bytes */
    bool has_frame;
    bool remote;     /* through the node's gateway (tools/remote.c) */
    uint64_t me, gw, corr;
} tt_conn_t;

/* tools/remote.c: a node elsewhere, through its gateway. */
int tt_remote_open(tt_conn_t *c, const char *endpoint);
/* Send a control request's bytes, *ans gets the reply's (inside
 * c->frame). 0; -1 (no answer in time); -2 (refused or malformed). */
int tt_remote_request(tt_conn_t *c, const char *req, size_t len,
                      const char **ans, size_t *alen);
void tt_remote_close(tt_conn_t *c);

/* Connect to node's endpoint. Checks first that the node's process is
 * there and that something listens on the socket, so that a node that is
 * gone or refuses says so at once rather than after a timeout. Prints why
 * and returns TT_EXIT_FAIL on failure. */
int tt_conn_open(tt_conn_t *c, const tt_node_t *node, int timeout_ms);

/* Send a request (an array: cmd, then nargs ints) and wait for the reply
 * up to the connection's timeout. On 0, *reply is the reply map with
 * "ok" true (valid until the next request or close). Prints what went
 * wrong (no answer in time, a malformed reply, "ok": false and its
 * "error") and returns TT_EXIT_FAIL otherwise. After a timeout the
 * connection is made anew, so a late answer is never taken for the next
 * one. */
int tt_conn_request(tt_conn_t *c, const char *cmd, int nargs,
                    const int64_t *args, const msgpack_object **reply);

void tt_conn_close(tt_conn_t *c);

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

int tt_cmd_top(int argc, char **argv);   /* tools/top.c */
int tt_cmd_trace(int argc, char **argv); /* tools/trace.c */
int tt_cmd_dashboard(int argc, char **argv); /* tools/dashboard.c */
int tt_cmd_capsule(int argc, char **argv);   /* tools/capsule.c */
int tt_cmd_replay(int argc, char **argv);    /* tools/capsule.c */

/* A file the dashboard serves (tools/dashboard/, embedded at build time
 * by tools/dashboard/embed.py); the array ends with a NULL path. */
typedef struct tt_file {
    const char *path, *type;
    const unsigned char *data;
    size_t len;
} tt_file_t;
extern const tt_file_t tt_dash_files[];

#endif
