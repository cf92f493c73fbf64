/*
 * troupe.h - the one public header of troupe, a message-passing actor
 * framework over ZeroMQ and msgpack.
 *
 * An actor is private state plus a behaviour (init / handle / terminate
 * callbacks) plus a bounded mailbox. Actors share nothing: they talk only by
 * messages, each a tag (a short string, like an Erlang atom) and one msgpack
 * payload. Each actor runs on its own OS thread (TR_THREAD); process actors
 * (TR_PROCESS) come with supervision.
 *
 * Conventions (docs/design.md explains the why):
 *  - Functions return 0 or a negative TR_E* code; tr_strerror() explains it.
 *  - Objects are opaque and created through out-parameters, which are set
 *    only on success. Destroy functions take T ** and null the pointer.
 *  - Functions that send take tr_msg_t ** and take ownership on success
 *    only (they null the caller's pointer); on failure the caller still owns
 *    the message. A handler borrows the message it is given.
 *  - Option structs: zero means "default", NULL means all defaults.
 *  - Every function may be called from any thread unless it says otherwise.
 *    A node may be used by many threads at once; sockets are never shared
 *    between threads (each thread gets its own, cached).
 */
#ifndef TROUPE_H
#define TROUPE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TR_VERSION_MAJOR 0
#define TR_VERSION_MINOR 1
#define TR_VERSION_PATCH 0

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

typedef struct tr_node tr_node_t;     /* one runtime: context + registry */
typedef struct tr_actor tr_actor_t;   /* an actor, as seen by its callbacks */
typedef struct tr_msg tr_msg_t;       /* tag + msgpack payload */
typedef struct tr_future tr_future_t; /* the pending answer to an ask */

/* Actor id: unique within a node, never reused. 0 means "none". */
typedef uint64_t tr_id_t;

/* Timeouts, in milliseconds. */
#define TR_DEFAULT 0  /* the node's default (for ask: inherit, see tr_ask) */
#define TR_FOREVER -1 /* no deadline */

/* Longest actor name, behaviour name and tag, in bytes, without the NUL. */
#define TR_NAME_MAX 63
#define TR_TAG_MAX 63

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* One list makes the codes and their texts (like libuv's UV_ERRNO_MAP). */
#define TR_ERRNO_MAP(XX)                                                    \
    XX(EINVAL, -1, "invalid argument")                                      \
    XX(ENOMEM, -2, "out of memory")                                         \
    XX(ENOENT, -3, "no such actor, name or behaviour")                      \
    XX(EEXIST, -4, "name already registered")                               \
    XX(EAGAIN, -5, "mailbox full, try again")                               \
    XX(ETIMEDOUT, -6, "timed out")                                          \
    XX(ECLOSED, -7, "node is closed or shutting down")                      \
    XX(ENAMETOOLONG, -8, "name or tag too long")                            \
    XX(ETYPE, -9, "payload value has another type")                         \
    XX(ETRUNC, -10, "payload truncated or no more values")                  \
    XX(EPROTO, -11, "malformed message")                                    \
    XX(EVERSION, -12, "unsupported protocol version")                       \
    XX(EDEAD, -13, "actor died before replying")                            \
    XX(ECANCELED, -14, "canceled: the waiting actor is stopping")           \
    XX(EPERM, -15, "not permitted (wrong thread, or files others can write)") \
    XX(ERANGE, -16, "value out of range or buffer too small")               \
    XX(EUNHANDLED, -17, "message not handled (unknown tag)")                \
    XX(ESHUTDOWN, -18, "actor was stopped")                                 \
    XX(ENOTSUP, -19, "not supported")                                       \
    XX(ESYS, -20, "system or ZeroMQ error (see the log)")                   \
    XX(EFAILED, -21, "actor failed")                                        \
    XX(EINTENSITY, -22, "supervisor gave up: too many restarts")            \
    XX(ERESTARTING, -23, "actor is restarting")                             \
    XX(EKILLED, -24, "actor was killed")                                    \
    XX(ECRASHED, -25, "process actor crashed")                              \
    XX(EHUNG, -26, "process actor stopped answering heartbeats")           \
    XX(EWORKERDIED, -27, "the task's worker died (every try)")              \
    XX(EBUSY, -28, "task is running already")                               \
    XX(EMSGSIZE, -29, "message larger than the node allows")               \
    XX(ENOCONN, -30, "node not connected (down, unknown or refused)")      \
    XX(EQUARANTINED, -31, "message quarantined: it crashed its actor "      \
                          "too often")

enum {
    TR_OK = 0,
#define TR__ERRNO_ENUM(name, value, text) TR_##name = value,
    TR_ERRNO_MAP(TR__ERRNO_ENUM)
#undef TR__ERRNO_ENUM
};

/* The text of a TR_E* code; never NULL ("Unknown error #n" otherwise).
 * Exit reasons are TR_E* codes too: 0 is a normal exit, TR_ESHUTDOWN a
 * stop on request. */
const char *tr_strerror(int rc);

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

typedef enum {
    TR_LOG_NONE = 0,
    TR_LOG_ERROR = 1,
    TR_LOG_WARN = 2, /* the default */
    TR_LOG_INFO = 3,
    TR_LOG_DEBUG = 4,
} tr_log_level_t;

/* A sink receives whole lines (no newline), one call at a time: calls are
 * serialised, so lines from different threads never interleave. */
typedef void (*tr_log_fn)(void *arg, int level, const char *line);

/* Replace the sink (NULL restores the default: stderr). Process-wide. */
void tr_log_set_sink(tr_log_fn fn, void *arg);

/* Set the level (process-wide). The TROUPE_LOG environment variable
 * (error, warn, info, debug, none), when set, wins over this and over node
 * options, so logging can be turned up without rebuilding. */
void tr_log_set_level(int level);
int tr_log_level(void);

/* Log one line; it names the calling actor (id and name) when there is one.
 * module: a short word ("app", "runtime", ...). */
void tr_log(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

/* Create an empty message with a tag of 1..TR_TAG_MAX bytes. Tags that
 * start with '$' are reserved for system messages.
 * Errors: TR_EINVAL (NULL, empty or '$' tag), TR_ENAMETOOLONG, TR_ENOMEM. */
int tr_msg_create(tr_msg_t **out, const char *tag);

/* Free a message; *msg is NULL after. NULL or *msg == NULL: no-op. */
void tr_msg_destroy(tr_msg_t **msg);

/* Copy a message (e.g. to keep one a handler only borrows, or to reply to
 * it later). The copy can be appended to. Errors: TR_EINVAL, TR_ENOMEM. */
int tr_msg_dup(const tr_msg_t *msg, tr_msg_t **out);

/* The tag; valid as long as the message. */
const char *tr_msg_tag(const tr_msg_t *msg);

/* True when the message's tag equals tag. */
bool tr_msg_is(const tr_msg_t *msg, const char *tag);

/* The sending actor (or thread) id; 0 for a message not received. */
tr_id_t tr_msg_sender(const tr_msg_t *msg);

/* True when the message is an ask that expects a tr_reply. */
bool tr_msg_is_request(const tr_msg_t *msg);

/* Milliseconds left before the sender's deadline (0 once passed), or
 * TR_FOREVER when the message carries no deadline. */
int64_t tr_msg_deadline_left_ms(const tr_msg_t *msg);

/* The raw msgpack payload (zero or more values back to back). */
const void *tr_msg_payload(const tr_msg_t *msg, size_t *size);

/* Append one value to the payload. Containers: tr_msg_add_array(m, n) is
 * followed by n values, tr_msg_add_map(m, n) by n key/value pairs.
 * Strings are UTF-8 (not checked); tr_msg_add_str takes a NUL-terminated
 * string, tr_msg_add_strn a length. Errors: TR_EINVAL (NULL, or a received
 * message: dup it first), TR_ENOMEM. */
int tr_msg_add_nil(tr_msg_t *msg);
int tr_msg_add_bool(tr_msg_t *msg, bool v);
int tr_msg_add_int(tr_msg_t *msg, int64_t v);
int tr_msg_add_uint(tr_msg_t *msg, uint64_t v);
int tr_msg_add_double(tr_msg_t *msg, double v);
int tr_msg_add_str(tr_msg_t *msg, const char *s);
int tr_msg_add_strn(tr_msg_t *msg, const char *s, size_t len);
int tr_msg_add_bin(tr_msg_t *msg, const void *data, size_t len);
int tr_msg_add_array(tr_msg_t *msg, uint32_t n);
int tr_msg_add_map(tr_msg_t *msg, uint32_t n);
/* Append values already encoded as msgpack (e.g. another message's
 * payload): data must hold whole values. Errors: TR_EINVAL, TR_ETRUNC or
 * TR_EPROTO (not whole msgpack values; nothing appended), TR_ERANGE
 * (containers nested deeper than 64 levels), TR_ENOMEM. */
int tr_msg_add_raw(tr_msg_t *msg, const void *data, size_t len);

/* Reading a payload: a cursor over the message's values, one call per
 * value. It never allocates and never reads past the payload.
 *  - TR_ETYPE: the next value has another type; the cursor does not move,
 *    so the caller may try another type (tr_read_type tells which).
 *  - TR_ETRUNC: no value left, or the value is cut short.
 *  - TR_EPROTO: bytes that are not msgpack.
 *  - TR_ERANGE: an integer does not fit, or a buffer is too small.
 * TR_ETRUNC and TR_EPROTO are sticky: every later read returns them too.
 * The reader points into the message: keep the message alive meanwhile. */
typedef struct tr_reader {
    const uint8_t *p; /* private */
    size_t len;       /* private */
    size_t pos;       /* private */
    int err;          /* private */
} tr_reader_t;

typedef enum {
    TR_TYPE_END = 0, /* no value left */
    TR_TYPE_NIL,
    TR_TYPE_BOOL,
    TR_TYPE_INT, /* any integer, signed or not */
    TR_TYPE_DOUBLE,
    TR_TYPE_STR,
    TR_TYPE_BIN,
    TR_TYPE_ARRAY,
    TR_TYPE_MAP,
    TR_TYPE_EXT,
    TR_TYPE_INVALID, /* malformed */
} tr_type_t;

void tr_reader_init(tr_reader_t *r, const tr_msg_t *msg);
/* A reader over raw msgpack bytes (not a message). */
void tr_reader_init_bytes(tr_reader_t *r, const void *data, size_t len);

tr_type_t tr_read_type(const tr_reader_t *r);
int tr_read_nil(tr_reader_t *r);
int tr_read_bool(tr_reader_t *r, bool *v);
int tr_read_int(tr_reader_t *r, int64_t *v);   /* TR_ERANGE past INT64 */
int tr_read_uint(tr_reader_t *r, uint64_t *v); /* TR_ERANGE if negative */
int tr_read_double(tr_reader_t *r, double *v); /* float 32 or 64 */
/* A string in place: *s points into the message, NOT NUL-terminated. */
int tr_read_str(tr_reader_t *r, const char **s, size_t *len);
/* A string copied into buf with a NUL; TR_ERANGE (cursor unmoved) if it
 * does not fit in cap bytes. */
int tr_read_str_copy(tr_reader_t *r, char *buf, size_t cap);
int tr_read_bin(tr_reader_t *r, const void **data, size_t *len);
int tr_read_array(tr_reader_t *r, uint32_t *n);
int tr_read_map(tr_reader_t *r, uint32_t *n);
/* Skip one whole value, containers included (TR_ERANGE, cursor unmoved:
 * nested deeper than 64 levels). */
int tr_read_skip(tr_reader_t *r);
/* True when every value has been read. */
bool tr_read_done(const tr_reader_t *r);

/* ------------------------------------------------------------------ */
/* Behaviours                                                          */
/* ------------------------------------------------------------------ */

/* Callbacks run on the actor's own thread, one at a time. state points to
 * behaviour.state_size zeroed bytes owned by the runtime (NULL if 0).
 *  - init: optional; args is the spawn's argument message (an empty message
 *    tagged "$args" when none was given). Non-zero fails the spawn with it.
 *  - handle: required; msg is borrowed for the call. Return 0 to go on;
 *    TR_EUNHANDLED to reject a tag it does not know (logged and counted;
 *    an asker gets TR_EUNHANDLED; the actor goes on); any other negative
 *    code stops the actor abnormally with that reason.
 *  - terminate: optional; called once, with the exit reason, before the
 *    state is freed. It may still send and wait on asks.
 *  - flush: optional; called after each run of messages handled (all that
 *    was waiting, or 64 of them while more keep coming), before the actor
 *    reads or waits again. An actor that gathers work from many messages
 *    sends it on here in one go (a broker filling its workers' batches).
 *    Its return value is handle's.
 * tr_exit inside init fails the spawn with its reason (TR_EFAILED for 0). */
typedef int (*tr_init_fn)(tr_actor_t *self, void *state, const tr_msg_t *args);
typedef int (*tr_handle_fn)(tr_actor_t *self, void *state, const tr_msg_t *msg);
typedef void (*tr_terminate_fn)(tr_actor_t *self, void *state, int reason);
typedef int (*tr_flush_fn)(tr_actor_t *self, void *state);

typedef struct tr_behaviour {
    const char *name; /* 1..TR_NAME_MAX bytes, unique in the program */
    size_t state_size;
    tr_init_fn init;
    tr_handle_fn handle;
    tr_terminate_fn terminate;
    tr_flush_fn flush;
} tr_behaviour_t;

/* Register a behaviour (process-wide; the struct and name are copied).
 * Errors: TR_EINVAL (no name or handle), TR_ENAMETOOLONG, TR_EEXIST,
 * TR_ENOMEM. */
int tr_behaviour_register(const tr_behaviour_t *b);

/* Define and register a behaviour before main() runs, so that a process
 * started from this program can find it by name:
 *     TR_BEHAVIOUR(counter, .state_size = sizeof(struct counter),
 *                  .handle = counter_handle);
 * The name is the identifier as a string ("counter"). A duplicate name
 * aborts the program at start with a message (a build error in spirit). */
#define TR_BEHAVIOUR(ident, ...)                                            \
    static const tr_behaviour_t tr__behaviour_##ident = {                   \
        .name = #ident, __VA_ARGS__};                                       \
    __attribute__((constructor)) static void tr__register_##ident(void)     \
    {                                                                       \
        tr__behaviour_register_static(&tr__behaviour_##ident);              \
    }
void tr__behaviour_register_static(const tr_behaviour_t *b);

/* ------------------------------------------------------------------ */
/* Nodes                                                               */
/* ------------------------------------------------------------------ */

/* Call first thing in main (before anything else reads argv or starts
 * threads): in a program started as a process actor's child it runs that
 * actor and exits the process when the actor ends (it never returns);
 * otherwise it returns 0 at once. A child dies with its parent node. */
int tr_init(int *argc, char ***argv);

typedef struct tr_node_opts {
    const char *name;        /* for logs; default "node" */
    int mailbox_hwm;         /* 1000: messages each sender may have queued
                              * toward one actor (ZeroMQ queues per
                              * connection; docs/design.md) */
    int send_timeout_ms;     /* tr_tell's wait on a full mailbox; 5000 */
    int ask_timeout_ms;      /* tr_ask's default deadline; 5000 */
    int shutdown_timeout_ms; /* tr_node_destroy's deadline; 5000 */
    int log_level;           /* TR_LOG_*; 0 keeps the current level */
    int io_threads;          /* ZeroMQ I/O threads; 1 */
    int max_sockets;         /* ZeroMQ socket limit; 16384 */
    int max_message_bytes;   /* a message's size (header, tag, payload) at
                              * most: a send of a larger one fails with
                              * TR_EMSGSIZE, and a peer process that sends
                              * one is cut off (ZMQ_MAXMSGSIZE); 64 MiB */
    bool no_control;         /* serve no control endpoint (docs/control.md:
                              * what `troupe ps` and friends read) */
    const char *trace;       /* record a trace into this file (as
                              * TROUPE_TRACE, which it overrides) */
    const char *chaos;       /* inject faults (as TROUPE_CHAOS, which it
                              * overrides): "seed=N,kill=P,stop=P,
                              * stop_ms=MS,dup=P,delay=P,delay_ms=MS,
                              * every=MS" (docs/reliability.md) */
    int quarantine_after;    /* a message that crashed its actor's (kept)
                              * name this many times in a row is dropped as
                              * a dead letter, with a crash capsule, instead
                              * of handled again (asks to it fail with
                              * TR_EQUARANTINED); 0: TROUPE_QUARANTINE or
                              * 3; negative: never (docs/control.md) */

    /* Many nodes (docs/nodes.md). Each also read from the environment
     * (TROUPE_LISTEN, TROUPE_SEEDS, TROUPE_KEY, TROUPE_CLUSTER,
     * TROUPE_INSECURE_PLAINTEXT=1, TROUPE_DOWN_AFTER_MS) when not set
     * here. */
    const char *listen;   /* serve other nodes: "tcp://ADDR:PORT" (PORT 0
                           * or *: any free one, see tr_node_endpoint) */
    const char *seeds;    /* nodes to join, comma-separated: endpoints or
                           * names from the cluster file */
    const char *key_file; /* this node's CURVE secret key (`troupe
                           * keygen`'s node.key, mode 0600) */
    const char *cluster_file; /* the nodes that may connect, one a line:
                               * "NAME PUBLIC-KEY [ENDPOINT]" */
    bool insecure_plaintext;  /* tcp without CURVE: anyone who reaches
                               * the port can send (only when asked) */
    int down_after_ms;   /* a node silent this long is down; 3000 */
} tr_node_opts_t;

/* Create a node. opts may be NULL. Errors: TR_EINVAL (a negative field; the
 * log names it), TR_EPERM (the node's runtime directory, or the directory
 * it goes in, is not private: another user owns it or its group or others
 * can write to it; or key_file or cluster_file is open to others: the log
 * names the file and what is wrong, and nothing is left behind),
 * TR_ENOMEM, TR_ESYS. */
int tr_node_create(tr_node_t **out, const tr_node_opts_t *opts);

/* Stop every actor in reverse start order (each runs terminate with reason
 * TR_ESHUTDOWN), close every socket and free the node; *node is NULL after.
 * It returns within shutdown_timeout_ms (plus a short grace): when an actor
 * does not stop in time, it logs who did not stop, leaves the node's memory
 * to that thread (so it never touches freed memory) and returns
 * TR_ETIMEDOUT. Must not be called from an actor of this node (TR_EPERM),
 * nor while other threads still use the node. NULL or *node == NULL: 0. */
int tr_node_destroy(tr_node_t **node);

/* The node's name. */
const char *tr_node_name(const tr_node_t *node);

/* The tcp endpoint other nodes reach this one at (the port resolved).
 * Errors: TR_ENOENT (the node does not listen), TR_ERANGE (cap). */
int tr_node_endpoint(const tr_node_t *node, char *buf, size_t cap);

/* Wait up to timeout_ms (TR_FOREVER allowed) until the node called peer
 * is connected. Errors: TR_ETIMEDOUT, TR_ENOCONN (this node is not
 * distributed), TR_EINVAL. */
int tr_node_await(tr_node_t *node, const char *peer, int timeout_ms);

/* Join another node at run time (as the seeds option does): an endpoint
 * or a name from the cluster file. Returns at once; tr_node_await tells
 * when it is connected. Errors: TR_ENOCONN (not distributed), TR_EINVAL
 * (no key known for it). */
int tr_node_connect(tr_node_t *node, const char *seed);

typedef struct tr_node_peer {
    char name[64];
    char endpoint[128];
    bool up;
} tr_node_peer_t;

/* The nodes this one knows, up or down: at most cap into out, *n gets how
 * many there are. Errors: TR_ENOCONN (not distributed), TR_EINVAL. */
int tr_node_peers(tr_node_t *node, tr_node_peer_t *out, size_t cap,
                  size_t *n);

typedef struct tr_node_stats {
    uint64_t spawned;      /* actors started */
    uint64_t alive;        /* actors running now */
    uint64_t exited;       /* actors ended normally or on request */
    uint64_t failed;       /* actors ended abnormally */
    uint64_t dead_letters; /* messages to actors that had ended */
    uint64_t late_replies; /* replies that came after their ask settled,
                            * counted when the asking thread next reads
                            * its inbox (waits on a future, or its actor
                            * loop runs) */
    uint64_t unhandled;    /* messages a handler rejected (TR_EUNHANDLED) */
    uint64_t expired;      /* requests dropped: their deadline had passed */
    uint64_t bad_frames;   /* malformed frames received and dropped */
    uint64_t oversize;     /* sends refused: larger than max_message_bytes
                            * (TR_EMSGSIZE) */
    uint64_t dropped_connections; /* connections to this node's tcp/ipc
                            * endpoints that ended without a $bye: ZeroMQ
                            * cut them (a message over max_message_bytes,
                            * bytes that are not ZeroMQ's, a handshake
                            * that failed) or the peer went away
                            * (docs/nodes.md) */
} tr_node_stats_t;

/* A snapshot of the node's counters. */
void tr_node_stats(tr_node_t *node, tr_node_stats_t *stats);

/* ------------------------------------------------------------------ */
/* Actors                                                              */
/* ------------------------------------------------------------------ */

typedef enum {
    TR_THREAD = 0,  /* own OS thread in this process */
    TR_PROCESS = 1, /* own OS process (see tr_init) */
} tr_mode_t;

typedef struct tr_spawn_opts {
    const char *name;  /* register under this name; NULL: anonymous */
    tr_mode_t mode;    /* TR_THREAD by default */
    int mailbox_hwm;   /* 0: the node's default */
    const tr_msg_t *args; /* given to init; borrowed: still yours after */
    /* Link the new actor to the calling actor before its init runs (like
     * Erlang's spawn_link), and make the caller its parent: node destroy
     * then leaves it to the parent to stop. Only from an actor. */
    bool link;
    /* The name outlives this actor: when it ends, the name stays reserved
     * and sends by name wait (up to their deadline, then TR_ERESTARTING)
     * for the next actor spawned under it with keep_name, until
     * tr_name_release. Supervisors use it so clients by name keep
     * working across restarts. */
    bool keep_name;
    /* TR_PROCESS: the program to run (default: this one, re-executed,
     * /proc/self/exe); it must call tr_init at the top of main and
     * register the behaviour. */
    const char *executable;
    /* TR_PROCESS: ping the actor this often (0: never); three missed
     * answers and it is killed (reason TR_EHUNG). Its loop answers, so a
     * handler busy for longer than that counts as hung. */
    int heartbeat_ms;
} tr_spawn_opts_t;

/* Start an actor of a registered behaviour. An actor with a name that the
 * TROUPE_PLACE environment variable mentions ("NAME=thread|process|node
 * b|c", docs/nodes.md) runs where it says, whatever opts->mode asks.
 * Returns once init has run, with
 * init's error if it failed (then the actor is gone). *id is set on success
 * (id may be NULL). Errors: TR_EINVAL, TR_ENOENT (no such behaviour),
 * TR_EEXIST (name taken), TR_ENAMETOOLONG, TR_ENOTSUP, TR_ECLOSED,
 * TR_ENOMEM, TR_ESYS, or init's code. */
int tr_spawn(tr_node_t *node, const char *behaviour,
             const tr_spawn_opts_t *opts, tr_id_t *id);

/* Start n anonymous actors of a behaviour (opts->name must be NULL; each
 * init sees the same args). ids (may be NULL) receives n ids. On error the
 * ones already started are stopped again. */
int tr_spawn_n(tr_node_t *node, const char *behaviour,
               const tr_spawn_opts_t *opts, int n, tr_id_t *ids);

/* Ask an actor to stop (its terminate gets TR_ESHUTDOWN) and wait up to
 * timeout_ms (TR_DEFAULT: the node's shutdown timeout) for it to end. The
 * stop request never waits behind a full mailbox; messages still queued are
 * dropped as dead letters (asks among them fail with TR_EDEAD).
 * Errors: TR_ENOENT (not running), TR_ETIMEDOUT, TR_EPERM (an actor
 * stopping itself: use tr_exit). */
int tr_stop(tr_node_t *node, tr_id_t id, int timeout_ms);

/* Wait up to timeout_ms (TR_FOREVER allowed) for an actor to end, like
 * Thread.join(); *reason (may be NULL) gets its exit reason. Works for an
 * actor that already ended, for the last 1024 ends. Errors: TR_ENOENT
 * (never existed or ended long ago), TR_ETIMEDOUT, TR_EPERM (itself). */
int tr_join(tr_node_t *node, tr_id_t id, int timeout_ms, int *reason);

/* Look a registered name up; "name@node" asks that node (up to the
 * node's ask timeout). Errors: TR_ENOENT, TR_ERESTARTING (a kept name
 * between two actors), TR_EINVAL, TR_ENAMETOOLONG, TR_ENOCONN. */
int tr_whereis(tr_node_t *node, const char *name, tr_id_t *id);

/* Start an actor of a registered behaviour on the node called on (as
 * tr_spawn there; opts->link and opts->executable are refused with
 * TR_ENOTSUP). Errors: those of tr_spawn, TR_ENOCONN, TR_ETIMEDOUT. */
int tr_spawn_on(tr_node_t *node, const char *on, const char *behaviour,
                const tr_spawn_opts_t *opts, tr_id_t *id);

/* The name of the node actor id lives on (this node's own name for its
 * actors). Errors: TR_ENOENT (no known node), TR_ERANGE (cap). */
int tr_id_node(tr_node_t *node, tr_id_t id, char *buf, size_t cap);

/* Give up a name kept with keep_name while no actor holds it: waiting
 * senders then fail with TR_ENOENT. Errors: TR_ENOENT (not kept and
 * free), TR_EEXIST (an actor holds it: the name is no longer kept and
 * goes when that actor ends). A kept name whose first actor fails in init
 * is not kept at all. */
int tr_name_release(tr_node_t *node, const char *name);

/* End an actor at once, without terminate: SIGKILL for a process actor
 * (reason TR_EKILLED). A thread actor cannot be killed safely: TR_ENOTSUP
 * (ask it with tr_stop). Errors: TR_ENOENT, TR_ENOTSUP. */
int tr_kill(tr_node_t *node, tr_id_t id);

/* Inside callbacks: who am I. */
tr_id_t tr_self(const tr_actor_t *self);
const char *tr_actor_name(const tr_actor_t *self); /* NULL if anonymous */
tr_node_t *tr_actor_node(const tr_actor_t *self);
/* The actor that spawned this one with .link (its supervisor), or 0. */
tr_id_t tr_actor_parent(const tr_actor_t *self);

/* Input besides the mailbox: an actor may watch ZeroMQ sockets and file
 * descriptors of its own (a gateway's STREAM socket, a pipe). When one has
 * input, fn runs on the actor's thread between messages; for a ZeroMQ
 * socket it should read what is there (ZMQ_DONTWAIT) and is called again
 * while more is (a few messages a call keep the mailbox served). A
 * non-zero return fails the actor as a handler's does. Give socket (and
 * fd -1) or fd (and socket NULL). From the actor's own callbacks; the
 * actor closes what it opened (in terminate, say). Up to 16 an actor.
 * Errors: TR_EINVAL, TR_EPERM (another thread), TR_EEXIST (watched
 * already), TR_ERANGE (16 watched), TR_ENOENT (unwatch: not watched). */
typedef int (*tr_io_fn)(tr_actor_t *self, void *state, void *socket, int fd);
int tr_actor_watch_io(tr_actor_t *self, void *socket, int fd, tr_io_fn fn);
int tr_actor_unwatch_io(tr_actor_t *self, void *socket, int fd);

/* The node's ZeroMQ context, for sockets an actor makes itself (threads
 * of this process only; set ZMQ_LINGER to 0 and close them before the
 * actor ends). */
void *tr_node_zmq_context(tr_node_t *node);

/* Stop this actor once the running callback returns, with reason (0 is a
 * normal exit; a negative TR_E* code is abnormal). Only from the actor's own
 * callbacks. */
void tr_exit(tr_actor_t *self, int reason);

/* ------------------------------------------------------------------ */
/* Monitors and links (from an actor's own callbacks)                  */
/* ------------------------------------------------------------------ */

/* Monitor target: when it ends, a "$down" message comes to this actor's
 * handle, at once if target has already ended (reason TR_ENOENT). One
 * DOWN per target however often it is monitored. Errors: TR_EPERM (not
 * from the actor's thread), TR_EINVAL. */
int tr_monitor(tr_actor_t *self, tr_id_t target);

/* Stop monitoring: a DOWN that comes later is not delivered. */
int tr_demonitor(tr_actor_t *self, tr_id_t target);

/* Link this actor and other: when either ends with a reason other than 0,
 * the other ends too, with that reason, unless it traps exits; then it
 * gets an "$exit" message instead (also for reason 0). Linking to an
 * actor that has ended acts as if it ended now with TR_ENOENT. */
int tr_link(tr_actor_t *self, tr_id_t other);
int tr_unlink(tr_actor_t *self, tr_id_t other);

/* Turn exit signals from links into "$exit" messages (Erlang's
 * trap_exit). */
void tr_trap_exits(tr_actor_t *self, bool trap);

/* For a "$down" or "$exit" message: who ended, and its exit reason (0
 * normal, TR_ESHUTDOWN stopped, TR_EKILLED, TR_ECRASHED, ...).
 * Errors: TR_EINVAL (another message). */
int tr_msg_exit(const tr_msg_t *msg, tr_id_t *who, int *reason);

/* ------------------------------------------------------------------ */
/* Supervisors                                                         */
/* ------------------------------------------------------------------ */

/* A supervisor starts children from specs and restarts them (Erlang/OTP):
 *  - restart types: PERMANENT always, TRANSIENT only after an abnormal end
 *    (not 0 nor TR_ESHUTDOWN), TEMPORARY never;
 *  - strategies: ONE_FOR_ONE restarts the child that ended; ONE_FOR_ALL
 *    stops the others (newest first) and restarts all; REST_FOR_ONE does
 *    that for the children started after it; SIMPLE_ONE_FOR_ONE has only
 *    children started later from its one spec (tr_sup_start_child);
 *  - intensity: more than max_restarts restarts within period_ms and the
 *    supervisor stops its children (newest first) and ends with
 *    TR_EINTENSITY, so that its own supervisor decides;
 *  - shutdown: a child is asked to stop and given shutdown_ms, then killed
 *    (process actors; a thread actor that will not stop is reported and
 *    left);
 *  - backoff: with backoff_min_ms, restarts wait min, 2 x min, ... up to
 *    backoff_max_ms (plus or minus backoff_jitter percent); the child's
 *    name is kept meanwhile, so senders by name wait.
 * A supervisor is an actor: tr_stop stops it and its tree. Every node has
 * a root supervisor (ONE_FOR_ONE) that supervisors start under by default.
 */
typedef enum {
    TR_PERMANENT = 0,
    TR_TRANSIENT = 1,
    TR_TEMPORARY = 2,
} tr_restart_t;

typedef enum {
    TR_ONE_FOR_ONE = 0,
    TR_ONE_FOR_ALL = 1,
    TR_REST_FOR_ONE = 2,
    TR_SIMPLE_ONE_FOR_ONE = 3,
} tr_strategy_t;

typedef struct tr_child_spec {
    const char *id;        /* unique among its supervisor's children */
    const char *behaviour; /* registered behaviour to spawn */
    tr_spawn_opts_t spawn; /* name (kept across restarts), mode, args, ... */
    tr_restart_t restart;
    int shutdown_ms;       /* 0: 5000; TR_FOREVER: wait (supervisors) */
    /* Where it may run: node names in order of preference, comma-
     * separated ("b,c"; this node's own name allowed); NULL: here. Each
     * (re)start takes the first node that is up, so a child whose node
     * dies is restarted on a survivor. A child on another node is
     * monitored, not linked (docs/nodes.md); stopping it is a request
     * that is not waited for. */
    const char *nodes;
} tr_child_spec_t;

typedef struct tr_sup_opts {
    const char *name;      /* register the supervisor under it; optional */
    tr_strategy_t strategy;
    int max_restarts;      /* 0: 1 (OTP's default); negative: none */
    int period_ms;         /* 0: 5000 */
    int backoff_min_ms;    /* 0: restart at once */
    int backoff_max_ms;    /* 0: 30 x backoff_min_ms */
    int backoff_jitter;    /* percent, 0..100 */
    tr_id_t parent;        /* supervisor to start under; 0: the root */
} tr_sup_opts_t;

/* Start a supervisor under opts->parent with children (started in order;
 * if one fails, the others are stopped and its error returned). For
 * SIMPLE_ONE_FOR_ONE, children holds exactly the one template spec.
 * *id (may be NULL) is the supervisor's actor id.
 * Errors: TR_EINVAL, TR_EEXIST (duplicate child id or name), a child's
 * spawn error, TR_ECLOSED. */
int tr_sup_start(tr_node_t *node, const tr_sup_opts_t *opts,
                 const tr_child_spec_t *children, int n, tr_id_t *id);

/* Add and start a child. For SIMPLE_ONE_FOR_ONE, spec may be NULL: the
 * template is used, with args (may be NULL) as its spawn args. *child
 * (may be NULL) gets the child's actor id. */
int tr_sup_start_child(tr_node_t *node, tr_id_t sup,
                       const tr_child_spec_t *spec, const tr_msg_t *args,
                       tr_id_t *child);

/* Stop a child (by spec id, or by actor id for SIMPLE_ONE_FOR_ONE with
 * child_id NULL) and forget it. Errors: TR_ENOENT. */
int tr_sup_terminate_child(tr_node_t *node, tr_id_t sup,
                           const char *child_id, tr_id_t actor);

/* The supervisor's children: up to max (spec id may be NULL for dynamic
 * children, actor 0 while restarting). Returns how many, or an error. */
typedef struct tr_sup_child {
    char id[TR_NAME_MAX + 1];
    tr_id_t actor;
    int restarts;
} tr_sup_child_t;
int tr_sup_which_children(tr_node_t *node, tr_id_t sup, tr_sup_child_t *out,
                          int max);

/* The node's root supervisor. */
tr_id_t tr_node_root(tr_node_t *node);

/* ------------------------------------------------------------------ */
/* tell / ask / reply                                                  */
/* ------------------------------------------------------------------ */

/* Fire-and-forget send, by registered name or by id; takes *msg on success
 * (nulls it). A full mailbox makes it wait up to the node's send timeout
 * (or the deadline of the request being handled, if sooner).
 * Errors: TR_ENOENT (no such actor, or it ended), TR_ETIMEDOUT (mailbox
 * stayed full), TR_ECANCELED (the calling actor is being stopped),
 * TR_EINVAL, TR_ECLOSED, TR_ESYS. */
int tr_tell(tr_node_t *node, const char *name, tr_msg_t **msg);
int tr_tell_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg);

/* Like tr_tell but never waits: a full mailbox gives TR_EAGAIN. A sender
 * held back this way gets room again in bursts (ZeroMQ signals it once the
 * actor has read about half of what that sender queued). */
int tr_try_tell(tr_node_t *node, const char *name, tr_msg_t **msg);
int tr_try_tell_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg);

/* Send a request; *fut settles with the reply, or with TR_ETIMEDOUT at the
 * deadline, or with TR_EDEAD when the target ends first, or with the code
 * the replier gave to tr_reply_error. Every ask settles.
 * timeout_ms: the deadline, carried in the message; TR_DEFAULT inherits
 * what is left of the deadline of the request being handled (inside a
 * handler), else the node's ask timeout; TR_FOREVER: no deadline.
 * The future belongs to the calling thread: wait on it from that thread.
 * Errors as tr_tell (a full mailbox waits up to the deadline). */
int tr_ask(tr_node_t *node, const char *name, tr_msg_t **msg, int timeout_ms,
           tr_future_t **fut);
int tr_ask_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg, int timeout_ms,
              tr_future_t **fut);

/* ask + wait + take the reply (like gen_server:call); reply may be NULL to
 * drop it. *msg is taken once it was sent, whatever the outcome. Errors:
 * those of tr_ask and tr_future_get. */
int tr_call(tr_node_t *node, const char *name, tr_msg_t **msg, int timeout_ms,
            tr_msg_t **reply);
int tr_call_id(tr_node_t *node, tr_id_t to, tr_msg_t **msg, int timeout_ms,
               tr_msg_t **reply);

/* Answer a request (a message with tr_msg_is_request) now or later (keep a
 * tr_msg_dup of the request to answer later). Takes *reply on success. If
 * the asker is gone or gave up, the reply is dropped and counted, and this
 * still returns 0. Only from an actor callback.
 * Errors: TR_EINVAL (not a request), TR_EPERM, TR_ESYS. */
int tr_reply(tr_actor_t *self, const tr_msg_t *request, tr_msg_t **reply);

/* Answer a request with an error code (negative): the asker's future
 * settles with it. */
int tr_reply_error(tr_actor_t *self, const tr_msg_t *request, int code);

/* ------------------------------------------------------------------ */
/* Futures                                                             */
/* ------------------------------------------------------------------ */

/* Wait up to timeout_ms (0 polls; TR_FOREVER until settled, which an ask
 * with a deadline always is) for the future to settle. Returns 0 once
 * settled, whatever the outcome; TR_ETIMEDOUT if still pending;
 * TR_ECANCELED if the calling actor is being stopped; TR_EPERM from
 * another thread than the one that asked. */
int tr_future_wait(tr_future_t *fut, int timeout_ms);

/* True once settled (polls without blocking). */
bool tr_future_done(tr_future_t *fut);

/* Wait like tr_future_wait, then give the outcome: 0 and *reply (taken by
 * the caller; reply may be NULL to drop it), or the ask's error
 * (TR_ETIMEDOUT, TR_EDEAD, a replier's code), or the wait's error. A second
 * get after the reply was taken gives TR_ENOENT. */
int tr_future_get(tr_future_t *fut, int timeout_ms, tr_msg_t **reply);

/* When the future settled with TR_EDEAD: the target's exit reason (with
 * a pool's TR_EWORKERDIED: how the task's last worker ended). */
int tr_future_exit_reason(const tr_future_t *fut);

/* Free a future; a reply that comes later is dropped and counted. From the
 * thread that asked. NULL or *fp == NULL: no-op. */
void tr_future_destroy(tr_future_t **fp);

/* Wait for several futures of the calling thread (concurrent.futures.wait):
 *  - tr_future_wait_all: until every one has settled (0) or timeout_ms
 *    passed (TR_ETIMEDOUT);
 *  - tr_future_wait_any: until at least one has; *index (may be NULL) is
 *    the index of a settled one (of many, a recently settled one first:
 *    a loop over a large set costs O(1) a call, not O(n)).
 * NULL entries are skipped (and never chosen). Errors: those of
 * tr_future_wait; TR_EINVAL (no future at all). */
int tr_future_wait_all(tr_future_t *const *futs, size_t n, int timeout_ms);
int tr_future_wait_any(tr_future_t *const *futs, size_t n, int timeout_ms,
                       size_t *index);

/* as_completed: wait for the next settled future among futs[0..*n), move
 * it to futs[*n - 1], decrement *n and give it in *done. Loop while *n > 0
 * to take every future once, in the order they settle. Errors: those of
 * tr_future_wait_any (nothing moved). */
int tr_future_next_done(tr_future_t **futs, size_t *n, int timeout_ms,
                        tr_future_t **done);

/* Call fn(arg, fut) once the future has settled (add_done_callback): at
 * once if it already has, else from the thread that asked, the next time
 * it reads its inbox (while it waits on any future, or in its actor
 * loop), at its deadline at the latest. fn may take the outcome
 * (tr_future_get with timeout 0) and may destroy this future, unless the
 * future is being waited on (tr_future_wait*, next_done). One callback
 * per future.
 * Errors: TR_EINVAL, TR_EEXIST (one is set), TR_EPERM (another thread). */
typedef void (*tr_future_cb)(void *arg, tr_future_t *fut);
int tr_future_then(tr_future_t *fut, tr_future_cb fn, void *arg);

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

/* Deliver *msg to this actor after delay_ms (tr_timer_after) or every
 * interval_ms (tr_timer_every, > 0). The message comes through handle with
 * the actor itself as sender. Takes *msg on success. *timer (may be NULL)
 * identifies it for tr_timer_cancel. Timers die with their actor. Only from
 * the actor's own callbacks. Errors: TR_EINVAL, TR_EPERM, TR_ENOMEM. */
int tr_timer_after(tr_actor_t *self, int delay_ms, tr_msg_t **msg,
                   uint64_t *timer);
int tr_timer_every(tr_actor_t *self, int interval_ms, tr_msg_t **msg,
                   uint64_t *timer);

/* Cancel a timer. Errors: TR_ENOENT (fired already, or unknown). */
int tr_timer_cancel(tr_actor_t *self, uint64_t timer);

/* ------------------------------------------------------------------ */
/* Pools: tasks on N workers (the executor)                            */
/* ------------------------------------------------------------------ */

/* A task function runs in a pool worker (a thread or a process) with the
 * task's arguments and sets *result (left NULL: the task's future gets an
 * empty "ok" message). It returns 0, or a negative TR_E* code with which
 * the task's future fails. It must not keep args. */
typedef int (*tr_task_fn)(const tr_msg_t *args, tr_msg_t **result);

/* Define and register a task function before main() runs, so that process
 * workers of this program find it by name:
 *     TR_TASK(count_primes, count_primes_fn);
 * The name is the identifier as a string ("count_primes"). A duplicate
 * name aborts the program at start with a message. */
#define TR_TASK(ident, fn)                                                  \
    __attribute__((constructor)) static void tr__register_task_##ident(void) \
    {                                                                       \
        tr__task_register_static(#ident, fn);                               \
    }
void tr__task_register_static(const char *name, tr_task_fn fn);

/* Register a task function at run time (thread pools only: a process
 * worker runs the program from its start). Errors: TR_EINVAL,
 * TR_ENAMETOOLONG, TR_EEXIST, TR_ENOMEM. */
int tr_task_register(const char *name, tr_task_fn fn);

/* An items task: what each chunk of tr_pool_map_items runs, in a pool
 * worker. in holds n items of in_size bytes each, out has room for n
 * results of out_size bytes each (both start on a 16-byte boundary; the
 * sizes are those given to tr_pool_map_items, so a function can check
 * them). Returns 0, or a negative TR_E* code with which all n items fail.
 * It must not keep in or out. */
typedef int (*tr_items_fn)(const void *in, size_t in_size, void *out,
                           size_t out_size, size_t n);

/* Define and register an items task before main() runs (as TR_TASK). */
#define TR_ITEMS_TASK(ident, fn)                                            \
    __attribute__((constructor)) static void tr__register_items_##ident(    \
        void)                                                               \
    {                                                                       \
        tr__items_task_register_static(#ident, fn);                         \
    }
void tr__items_task_register_static(const char *name, tr_items_fn fn);

/* Register an items task at run time (thread pools only, as
 * tr_task_register). Task and items task names share one namespace. */
int tr_items_task_register(const char *name, tr_items_fn fn);

typedef struct tr_pool tr_pool_t; /* a handle; any thread may use it */

typedef enum {
    TR_POOL_THREADS = 0, /* workers are thread actors */
    TR_POOL_PROCESSES,   /* workers are process actors (crash-proof) */
} tr_pool_mode_t;

typedef struct tr_pool_opts {
    const char *name;     /* the pool actor's registered name; NULL: none */
    int workers;          /* 1..1024; 0: the number of CPUs */
    tr_pool_mode_t mode;
    int max_retries;      /* re-dispatches of a task whose worker died;
                           * 0: the default, 2; negative: none */
    int task_timeout_ms;  /* default per-task deadline; 0: none */
    const char *executable; /* process workers: another program's */
    /* Workers on other nodes (docs/nodes.md): node names in order of
     * preference, "b,c"; each worker starts on the first that is up and
     * is restarted on a survivor when its node dies (its task then goes
     * to another worker, as for any death). The task must be registered
     * in the program those nodes run. NULL: workers here. */
    const char *nodes;
} tr_pool_opts_t;

/* Start a pool: a pool actor with a simple_one_for_one supervisor of its
 * workers. Workers get a task only when idle (credit-based load
 * balancing: one slow task never holds a queue of others; only when 4
 * tasks a worker or more wait does an idle worker get a share of them,
 * up to 64, in one message). A worker that dies is replaced; its task goes to another
 * worker up to max_retries times, then fails alone with TR_EWORKERDIED
 * (tr_future_exit_reason tells how the last worker ended); tasks it had
 * been given in one batch are each tried again alone first, without
 * counting (any of them may have killed it). The pool never becomes
 * broken.
 * Errors: TR_EINVAL, TR_EEXIST (name), a worker's spawn error, TR_ENOMEM,
 * TR_ECLOSED. */
int tr_pool_start(tr_node_t *node, const tr_pool_opts_t *opts,
                  tr_pool_t **out);

/* The pool actor's id (to monitor it, say). */
tr_id_t tr_pool_id(const tr_pool_t *pool);

/* Submit a task: the registered task function named task, with *args (may
 * be NULL: no arguments; taken on success). *fut settles with the task's
 * result message, or with its error: the function's code, TR_ENOENT (no
 * such task function), TR_ETIMEDOUT (a try ran past timeout_ms, counted
 * from when a worker took it: TR_DEFAULT is the pool's task_timeout_ms,
 * TR_FOREVER none; a process worker past it is killed and replaced),
 * TR_EWORKERDIED, TR_ECANCELED (tr_pool_cancel, or a shutdown that
 * cancels), TR_ECLOSED (the pool was shutting down: no new tasks),
 * TR_ESHUTDOWN (the pool stopped first), TR_EDEAD (the pool ended).
 * The future belongs to the calling thread, as an ask's does.
 * Errors: TR_EINVAL, TR_ENAMETOOLONG, TR_ENOENT (the pool has ended),
 * TR_ECLOSED (the node is closing). */
int tr_pool_submit(tr_pool_t *pool, const char *task, tr_msg_t **args,
                   int timeout_ms, tr_future_t **fut);

/* Cancel a task that is still queued (Future.cancel()): its future
 * settles with TR_ECANCELED. Errors: TR_EBUSY (running), TR_ENOENT (done,
 * or not a task of this pool). From the thread that submitted it. */
int tr_pool_cancel(tr_pool_t *pool, tr_future_t *fut);

/* The same without waiting (for an actor that must not block): if the
 * task is still queued, its future settles with TR_ECANCELED later; a
 * running or finished task is not affected. Errors: TR_EINVAL, TR_ENOENT
 * (settled already, or not this pool's), TR_EAGAIN (the pool's mailbox is
 * full). */
int tr_pool_cancel_async(tr_pool_t *pool, tr_future_t *fut);

/* Change the number of workers (1..1024). Busy workers beyond the new
 * number finish their task first. */
int tr_pool_resize(tr_pool_t *pool, int workers);

typedef struct tr_pool_stats {
    int workers;           /* running now */
    int idle;              /* of them, waiting for a task */
    uint64_t queued;       /* tasks waiting for a worker */
    uint64_t running;
    uint64_t done;         /* settled: succeeded or failed */
    uint64_t failed;
    uint64_t retried;      /* re-dispatches after a worker death */
    uint64_t worker_deaths;
} tr_pool_stats_t;
int tr_pool_stats(tr_pool_t *pool, tr_pool_stats_t *st);

/* map: run task on every item an input gives, chunk items per task, and
 * hand each result to out, in input order (or as they finish, with
 * .unordered). It streams: at most .window tasks are in flight and at
 * most that many chunks wait to be handed out in order, so an input of
 * any length takes bounded memory. Runs on the calling thread and returns
 * when every item has a result (0), or with the first error of next, of
 * out, or of submitting (the tasks already in flight are still waited
 * for, and their results dropped). A task that fails gives its items'
 * results as that error code (rc of out), not as an error of the map.
 *  - next(arg, &item): 0 and an item (taken), 1 at the end, or an error;
 *  - out(arg, index, rc, result): index counts items from 0; result is
 *    borrowed for the call (NULL when rc != 0); a non-zero return stops
 *    the map with that code. */
typedef int (*tr_map_next_fn)(void *arg, tr_msg_t **item);
typedef int (*tr_map_out_fn)(void *arg, uint64_t index, int rc,
                             const tr_msg_t *result);

typedef struct tr_map_opts {
    int chunk;        /* items per task; 0: 1 */
    int window;       /* tasks in flight; 0: 16 x the pool's workers */
    bool unordered;   /* results as tasks finish (imap_unordered) */
    int timeout_ms;   /* per task, as tr_pool_submit's */
    uint64_t total;   /* items expected, for progress; 0: unknown */
    /* called after each task's results were handed out */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    /* a progress bar on stderr when it is a terminal (off otherwise) */
    bool progress_bar;
} tr_map_opts_t;

int tr_pool_map(tr_pool_t *pool, const char *task, tr_map_next_fn next,
                void *next_arg, tr_map_out_fn out, void *out_arg,
                const tr_map_opts_t *opts);

/* map over an array: in[0..n) (borrowed) to out[0..n) (results, the
 * caller's to destroy; NULL where the item failed) and rcs[0..n) (0 or
 * the item's error; may be NULL). Returns 0 when the map ran (check rcs),
 * or the map's error. */
int tr_pool_map_array(tr_pool_t *pool, const char *task,
                      tr_msg_t *const *in, size_t n, tr_msg_t **out,
                      int *rcs, const tr_map_opts_t *opts);

/* map over a plain array, in chunks: items task task runs on in[0..n)
 * (n items of in_size bytes) and fills out[0..n) (n results of out_size
 * bytes; out may be NULL when out_size is 0). The fast way to process a
 * large array of numbers or structs: a chunk travels as one block of
 * bytes, with no message per item. opts (may be NULL): .chunk is items
 * per task (0: n / (4 x workers), at most 1 MiB of input or output a
 * chunk); .window chunks in flight (0: 4 x workers); .timeout_ms,
 * .total, .progress and .progress_bar as tr_pool_map's (progress counts
 * items, chunks finishing in any order); .unordered is ignored. Chunks
 * that fail leave their results untouched and set rcs[i] (may be NULL,
 * else 0 for each item that succeeded). Returns 0 when every chunk ran
 * (without rcs: when every one succeeded; else the first failure), or the
 * map's error (TR_EINVAL: in_size 0, a NULL array, n too large). */
int tr_pool_map_items(tr_pool_t *pool, const char *task, const void *in,
                      size_t in_size, void *out, size_t out_size, size_t n,
                      int *rcs, const tr_map_opts_t *opts);

/* Shut the pool down within timeout_ms (TR_DEFAULT: the node's shutdown
 * timeout): no new tasks; with cancel_pending, queued tasks fail with
 * TR_ECANCELED, else they still run; running tasks finish. Then the
 * workers and the pool stop and *pool is freed (NULL after). Tasks still
 * there at the deadline fail with TR_ESHUTDOWN (process workers running
 * them are killed; a thread worker stuck in a task is left, after 100 ms,
 * and reported) and TR_ETIMEDOUT is returned. */
int tr_pool_shutdown(tr_pool_t **pool, bool cancel_pending, int timeout_ms);

/* ------------------------------------------------------------------ */
/* Pipelines: a source, stages (each a pool) and a sink                */
/* ------------------------------------------------------------------ */

/* A pipeline moves items (messages) from producers through stages to a
 * sink. Each stage is a pool of workers (threads or processes) running
 * one stage function; items travel between stages in batches, and a
 * stage gets work only while the next one has room (credit-based flow:
 * a slow stage slows the producers, memory stays bounded, nothing is
 * dropped). A worker that dies is replaced and its items are delivered
 * again; the pipeline accepts each batch's output once and the sink
 * drops duplicate items by id, so every item arrives exactly once.
 * docs/pipelines.md explains how.
 *
 * An item's index is its place in the input: producer p's i-th item has
 * index i x producers + p. Items a stage emits inherit the index of the
 * item they came from; items a stage emits at end of stream (finish)
 * have index TR_PIPE_NO_INDEX. */
#define TR_PIPE_NO_INDEX UINT64_MAX

typedef struct tr_pipe_ctx tr_pipe_ctx_t; /* a stage's way out */

/* A stage function: called in a worker for each item (borrowed for the
 * call); it emits zero or more items with tr_pipe_emit*. state is the
 * worker's state of this stage (state_size zeroed bytes; NULL if 0).
 * Returns 0, or a negative TR_E* code: the item then reaches the sink as
 * that error (what it emitted before is kept). It must be deterministic
 * in what it emits for an item (an item may run again after a death). */
typedef int (*tr_stage_fn)(tr_pipe_ctx_t *ctx, void *state,
                           const tr_msg_t *item);
/* At end of stream, once the stage's partition has seen all its input:
 * emit what the state holds (counts, say). The state is freed after. */
typedef int (*tr_stage_finish_fn)(tr_pipe_ctx_t *ctx, void *state);

typedef struct tr_stage_def {
    tr_stage_fn fn;            /* required */
    tr_stage_finish_fn finish; /* optional */
    size_t state_size;         /* per partition; 0: none */
} tr_stage_def_t;

/* Define and register a stage function before main() runs (as TR_TASK),
 * so that process workers find it by name:
 *     TR_STAGE(tokenize, .fn = tokenize_fn);
 * A stage with a finish or a state is stateful: it is partitioned (each
 * worker owns one partition of the keys, see tr_pipe_emit_key) and a
 * partition whose worker dies is rebuilt by running its input again. */
#define TR_STAGE(ident, ...)                                                \
    static const tr_stage_def_t tr__stage_##ident = {__VA_ARGS__};          \
    __attribute__((constructor)) static void tr__register_stage_##ident(    \
        void)                                                               \
    {                                                                       \
        tr__stage_register_static(#ident, &tr__stage_##ident);              \
    }
void tr__stage_register_static(const char *name, const tr_stage_def_t *d);

/* Register a stage at run time (thread stages only, as
 * tr_task_register). A stage may not take a task's name.
 * Errors: TR_EINVAL (no fn), TR_ENAMETOOLONG, TR_EEXIST, TR_ENOMEM. */
int tr_stage_register(const char *name, const tr_stage_def_t *def);

/* Emit an item to the next stage (or the sink); takes *item on success.
 * With a key, the item goes to the next stage's partition that owns the
 * key (the same key always to the same partition); without one, to any.
 * Only from a stage function or finish, with its ctx.
 * Errors: TR_EINVAL, TR_ENOMEM. */
int tr_pipe_emit(tr_pipe_ctx_t *ctx, tr_msg_t **item);
int tr_pipe_emit_key(tr_pipe_ctx_t *ctx, const void *key, size_t len,
                     tr_msg_t **item);

/* Where a stage runs. */
typedef enum {
    TR_PLACE_THREAD = 0, /* thread workers in this node */
    TR_PLACE_PROCESS,    /* process workers of this node */
    TR_PLACE_NODE,       /* thread workers on a named node, or on the
                          * first of "b|c" that is up (docs/nodes.md) */
} tr_place_kind_t;

typedef struct tr_stage_opts {
    const char *name;   /* for placement and logs; NULL: the stage's */
    const char *stage;  /* a TR_STAGE, or a TR_TASK (item -> one result;
                         * a NULL result drops the item) */
    int workers;        /* 1..1024; 0: 1. For a partitioned stage, the
                         * number of partitions */
    tr_place_kind_t place;
    const char *node;   /* TR_PLACE_NODE: the node's name */
    bool keyed;         /* partitioned (implied by a stateful stage):
                         * items emitted with a key reach the partition
                         * owning it */
} tr_stage_opts_t;

typedef struct tr_pipeline_opts {
    const char *name;             /* the pipeline actor's name; NULL */
    const tr_stage_opts_t *stages; /* copied */
    int nstages;                   /* 1..64 */
    int producers;    /* 1..1024; 0: 1 */
    bool ordered;     /* the sink hands items out in index order */
    int batch;        /* items per batch on the wire; 0: 256 */
    int window;       /* batches in flight per worker; 0: 8 */
    int max_retries;  /* re-deliveries of a batch whose worker died,
                       * before it is split in two and each half tried
                       * again (an item alone past them fails with
                       * TR_EWORKERDIED); 0: 10; negative: none */
    /* Placement, "STAGE=PLACE[,STAGE=PLACE...]" with PLACE one of
     * thread[:N], process[:N], node NAME[:N] (N workers); it overrides
     * the stages' options, and the TROUPE_PLACE environment variable
     * overrides it ("@FILE" reads the text from a file), so where each
     * stage runs is chosen at launch without rebuilding. */
    const char *place;
} tr_pipeline_opts_t;

typedef struct tr_pipeline tr_pipeline_t;

/* Start a pipeline: its stages' pools and the pipeline actor that joins
 * them. Errors: TR_EINVAL (no stages or more than 64, a stage without a
 * stage name, two stages of one name, a bad number, a bad placement
 * string: the log says which), TR_ENOENT (no stage or task of that
 * name), TR_ENOCONN (a stage placed on nodes none of which is up), a
 * pool's errors. */
int tr_pipeline_start(tr_node_t *node, const tr_pipeline_opts_t *opts,
                      tr_pipeline_t **out);

/* Producer p (0..producers-1) puts an item (taken on success). Items
 * travel in batches; this blocks while the first stage has no room
 * (back-pressure), so the sink must be read by another thread (or use
 * tr_pipeline_run). One thread at a time per producer.
 * Errors: TR_EINVAL, TR_ECLOSED (p has ended), TR_ENOMEM, the send's
 * errors. */
int tr_pipeline_put(tr_pipeline_t *pipe, int producer, tr_msg_t **item);

/* Send what producer p has batched now rather than when the batch is
 * full (for a producer that pauses: items wait in its batch until
 * then). May block as put does. Errors: TR_EINVAL, TR_ECLOSED. */
int tr_pipeline_flush(tr_pipeline_t *pipe, int producer);

/* End of stream for producer p: what is batched is sent, then its end.
 * The sink ends once every producer has ended and every item is out.
 * From the thread that put. Errors: TR_EINVAL, TR_ECLOSED (twice). */
int tr_pipeline_end(tr_pipeline_t *pipe, int producer);

/* The sink: the next item that came out of the last stage (in index
 * order with .ordered, else as they come). 0: *item (taken; NULL when
 * *rc != 0: the item failed in a stage with that code, or its batch was
 * lost past max_retries with TR_EWORKERDIED), *index (may be NULL) its
 * index; 1: the stream has ended; TR_ETIMEDOUT: nothing within
 * timeout_ms. One thread at a time. */
int tr_pipeline_next(tr_pipeline_t *pipe, tr_msg_t **item, uint64_t *index,
                     int *rc, int timeout_ms);

/* Run producer 0 from next and the sink into out on the calling thread
 * (as tr_pool_map's callbacks: next gives 0 and an item, or 1 at the
 * end; out gets each result, borrowed, with its index and rc). Other
 * producers, if any, are fed by other threads. Returns 0 at the end of
 * the stream, or the first error of next, out or the pipeline. */
int tr_pipeline_run(tr_pipeline_t *pipe, tr_map_next_fn next, void *next_arg,
                    tr_map_out_fn out, void *out_arg);

typedef struct tr_pipeline_stats {
    uint64_t in;            /* items the producers put (accepted) */
    uint64_t out;           /* items that reached the sink */
    uint64_t in_flight;     /* items inside now, queued or running */
    uint64_t max_in_flight; /* the most there ever were at once */
    uint64_t held;          /* puts held back by back-pressure */
    uint64_t redelivered;   /* batches run again (their worker died) */
    uint64_t replayed;      /* batches run again to rebuild a partition */
    uint64_t duplicates;    /* items the sink dropped as already seen */
    uint64_t worker_deaths; /* over all stages */
} tr_pipeline_stats_t;
int tr_pipeline_stats(tr_pipeline_t *pipe, tr_pipeline_stats_t *st);

/* Stop the pipeline actor and the stages' pools within timeout_ms
 * (TR_DEFAULT: the node's shutdown timeout) and free it (*pipe NULL
 * after). Items still inside are dropped. From the thread that read the
 * sink (its pull is that thread's), after producers on other threads
 * have ended. Errors: TR_EINVAL, TR_ETIMEDOUT (the pipeline actor did
 * not stop: its memory is left to it). */
int tr_pipeline_stop(tr_pipeline_t **pipe, int timeout_ms);

/* ------------------------------------------------------------------ */
/* HTTP gateway: HTTP/1.1 in front of actors and pools                 */
/* ------------------------------------------------------------------ */

/* A gateway is an actor that serves HTTP/1.1 on a tcp port (a ZeroMQ
 * STREAM socket, requests parsed by http-parser). Each request whose
 * method and path match a route becomes an "http" message to the route's
 * actor (an ask) or a task of its pool; the answer becomes the response,
 * in request order on each connection (keep-alive and pipelining work).
 * Statuses the gateway makes itself: 400 malformed request, 404 no route,
 * 413 body too large, 431 head too large, 408 head not complete in
 * time, 503 (with Retry-After) no worker took the task in time or the
 * gateway is full or draining, 504 the handler did not answer in time,
 * 500 the handler failed or its worker died. */
typedef struct tr_http_route {
    const char *method; /* "GET", ...; NULL: any */
    const char *prefix; /* the path starts with it ("/api/v1/users") */
    const char *actor;  /* ask this actor by name ... */
    tr_pool_t *pool;    /* ... or run task on this pool (not both) */
    const char *task;
    int timeout_ms;     /* answer within; 0: 10 s */
} tr_http_route_t;

typedef struct tr_http_opts {
    const char *name;       /* the gateway actor's name; NULL: none */
    const char *endpoint;   /* "tcp://127.0.0.1:8080" (port * or 0:
                             * any free one, see tr_http_port) */
    const tr_http_route_t *routes; /* first match wins; copied */
    int nroutes;
    int max_connections;    /* 0: 1024; more are closed at once */
    size_t max_head_bytes;  /* request line + headers; 0: 8 KiB */
    size_t max_body_bytes;  /* 0: 1 MiB */
    int head_timeout_ms;    /* a request's head must arrive within; 0: 10 s */
    int idle_timeout_ms;    /* keep-alive: idle connections close; 0: 60 s */
} tr_http_opts_t;

typedef struct tr_http tr_http_t;

/* Start a gateway (a thread actor of node). Errors: TR_EINVAL (no
 * endpoint or routes, a route with neither or both of actor and pool),
 * TR_EADDRINUSE-like bind errors (TR_ESYS), TR_EEXIST (name), TR_ENOMEM. */
int tr_http_start(tr_node_t *node, const tr_http_opts_t *opts,
                  tr_http_t **out);
int tr_http_port(const tr_http_t *gw); /* the tcp port it listens on */
tr_id_t tr_http_id(const tr_http_t *gw);

/* Graceful stop: new connections are closed at once, idle ones too, and
 * requests in flight are answered (with "Connection: close"); then the
 * gateway ends and *gw is freed. Past timeout_ms (TR_DEFAULT: the node's
 * shutdown timeout) what is left gets 503 and TR_ETIMEDOUT is returned. */
int tr_http_stop(tr_http_t **gw, int timeout_ms);

/* A handler's view of an "http" request (strings copied, NUL-ended; the
 * body points into the message). The query is what follows '?'. */
#define TR_HTTP_PATH_MAX 2048
typedef struct tr_http_req {
    char method[16];
    char path[TR_HTTP_PATH_MAX + 1];
    char query[TR_HTTP_PATH_MAX + 1];
    const void *body;
    size_t body_len;
} tr_http_req_t;

/* Read an "http" request. Errors: TR_EINVAL (not one), TR_EPROTO. */
int tr_http_req_read(const tr_msg_t *msg, tr_http_req_t *req);
/* A header's value (name in any case) into buf. TR_ENOENT, TR_ERANGE. */
int tr_http_req_header(const tr_msg_t *msg, const char *name, char *buf,
                       size_t cap);
/* A query parameter's value, %-decoded ('+' is a space), into buf.
 * TR_ENOENT, TR_ERANGE, TR_EINVAL. */
int tr_http_query_get(const char *query, const char *key, char *buf,
                      size_t cap);
/* The response: from an actor, answer req; from a pool's task function,
 * set *result. content_type NULL: "text/plain". */
int tr_http_reply(tr_actor_t *self, const tr_msg_t *req, int status,
                  const char *content_type, const void *body, size_t len);
int tr_http_response(tr_msg_t **result, int status, const char *content_type,
                     const void *body, size_t len);

/* ------------------------------------------------------------------ */
/* Pub/sub: topics with bounded, counted fan-out                       */
/* ------------------------------------------------------------------ */

/* A topic is a name (1..TR_TAG_MAX bytes, no '@', not starting with '$')
 * declared on one node. Actors of any node subscribe to it ("name", or
 * "name@node" for another node's), exactly or by prefix (as ZeroMQ SUB
 * matches: every topic of that node whose name starts with the pattern,
 * topics declared later included). A publish sends each matching
 * subscription its own ordinary message, straight into the subscriber's
 * mailbox: the tag chosen at subscribe time (default: the topic's name)
 * and the published message's payload, from the publishing thread.
 *
 * A slow subscriber never blocks a publisher: its queue is its mailbox
 * (bounded by its mailbox_hwm for each publishing thread, as ZeroMQ bounds
 * each PUB-to-SUB pipe), and what finds it full is dropped, counted
 * (tr_sub_stats: published = delivered + dropped, per subscription) and
 * logged at WARN at most once a second per subscription. This is the one
 * place where troupe drops on purpose. A reliable topic waits for room
 * instead, up to its timeout, and then fails the publish with
 * TR_ETIMEDOUT. Messages of one publishing thread arrive in order.
 * A subscription ends with tr_unsubscribe or when its subscriber ends (the
 * node that keeps it monitors it).
 *
 * Another node's topic ("name@a" given to node b): b keeps the
 * subscription, subscribes at a once for all its subscriptions of that
 * pattern, and fans out what a forwards, by the same rules: one copy of
 * a message crosses the wire, and a slow subscriber drops on b, counted
 * on b (tr_sub_stats with node b). A reliable topic makes b's relay wait
 * as well (and the link with it), so back-pressure reaches the publisher.
 * If a's service ends or a goes down, b subscribes there again (every
 * 0.5 s) once it can; what is published meanwhile does not reach b.
 * docs/pubsub.md says why, and what it costs. */
typedef struct tr_topic tr_topic_t; /* a handle; any thread may use it */

typedef struct tr_topic_opts {
    /* Wait for room in a full mailbox instead of dropping (back-pressure).
     * A publish then waits up to timeout_ms in all, and gives
     * TR_ETIMEDOUT. */
    bool reliable;
    int timeout_ms; /* reliable: 0: the node's send timeout */
} tr_topic_opts_t;

/* Declare a topic on node (opts may be NULL). Not from a process actor's
 * child (TR_ENOTSUP). Errors: TR_EINVAL (NULL, empty, '$...' or '@' in
 * the name, a negative timeout), TR_ENAMETOOLONG, TR_EEXIST (declared
 * already), TR_ENOMEM, TR_ECLOSED. */
int tr_topic_create(tr_node_t *node, const char *name,
                    const tr_topic_opts_t *opts, tr_topic_t **out);

/* Withdraw the topic and free the handle (*topic NULL after; NULL is a
 * no-op), once no other thread publishes with it (as for any destroy).
 * Publishes by name in flight finish. Its subscriptions stay (they are by
 * name) and match a topic declared again under that name. May be called
 * after the node was destroyed (it only frees the handle then). */
void tr_topic_destroy(tr_topic_t **topic);

/* Publish *msg's payload (its tag is not sent) to every subscription of
 * the topic. Takes *msg on 0; on an error it stays the caller's. Returns
 * 0 also when subscribers dropped it (see tr_sub_stats). Errors: TR_EINVAL
 * (NULL, a received message), TR_ETIMEDOUT (reliable: a subscriber stayed
 * full: the others got it; that one counts it dropped), TR_ECLOSED (the
 * node, or its pub/sub service, is gone), TR_ENOMEM, TR_ECANCELED (the
 * calling actor is stopping; reliable only). */
int tr_publish(tr_topic_t *topic, tr_msg_t **msg);

/* Publish by name, from anywhere: a process actor's child, or a node
 * other than the topic's ("name@node"). Sent to the topic's node, which
 * publishes it (a reliable topic's timeout is not reported back: its
 * node logs it). Takes *msg on 0. Errors: TR_EINVAL, TR_ENAMETOOLONG,
 * TR_ENOENT (no such topic here; for another node: no topics there),
 * TR_ENOCONN, TR_ETIMEDOUT (that node's mailbox stayed full). */
int tr_publish_to(tr_node_t *node, const char *topic, tr_msg_t **msg);

typedef struct tr_sub_opts {
    const char *tag; /* tag of delivered messages; NULL: the topic's name */
    bool prefix;     /* topic is a prefix (ZeroMQ's matching), not a name */
} tr_sub_opts_t;

/* Subscribe actor subscriber (of any node, thread or process) to topic
 * ("name" or "name@node"), opts may be NULL. Each subscription delivers
 * its own copy: an actor subscribed twice to matching patterns gets two.
 * Errors: TR_EINVAL (NULL, 0 subscriber, bad name or tag), TR_ENAMETOOLONG,
 * TR_ENOENT (an exact name that is not a topic there), TR_EEXIST (the
 * same subscriber, pattern and kind), TR_ENOCONN, TR_ETIMEDOUT. */
int tr_subscribe(tr_node_t *node, tr_id_t subscriber, const char *topic,
                 const tr_sub_opts_t *opts);

/* End a subscription (topic and prefix as given to tr_subscribe; opts may
 * be NULL). Messages already in the mailbox stay. Errors: TR_ENOENT (no
 * such subscription), and those of tr_subscribe. */
int tr_unsubscribe(tr_node_t *node, tr_id_t subscriber, const char *topic,
                   const tr_sub_opts_t *opts);

typedef struct tr_sub_stats {
    uint64_t published; /* publishes that matched the subscription */
    uint64_t delivered; /* of them, put into the subscriber's mailbox */
    uint64_t dropped;   /* of them, not: it was full (or had ended) */
} tr_sub_stats_t;

/* A subscription's counters (topic and opts as given to tr_subscribe).
 * Errors: TR_ENOENT, and those of tr_subscribe. */
int tr_sub_stats(tr_node_t *node, tr_id_t subscriber, const char *topic,
                 const tr_sub_opts_t *opts, tr_sub_stats_t *st);

typedef struct tr_topic_stats {
    uint64_t published;   /* tr_publish calls that went out */
    uint64_t subscribers; /* matching subscriptions now */
    uint64_t delivered;   /* copies put into mailboxes */
    uint64_t dropped;     /* copies dropped */
} tr_topic_stats_t;

/* The topic's counters. Errors: TR_EINVAL. */
int tr_topic_stats(tr_topic_t *topic, tr_topic_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_H */
