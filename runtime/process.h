/* runtime/process.h - process actors: spawning, the reaper, the node
 * service children talk to, and the child's side (tr_init). */
#ifndef TR_RUNTIME_PROCESS_H
#define TR_RUNTIME_PROCESS_H

#include "runtime/node.h"
#include "runtime/port.h"
#include "troupe.h"

struct tr_actor;

/* The node's runtime directory, made on first use. 0, or the error of
 * tr__rundir_create (TR_EPERM: an unsafe base directory). */
int tr__node_rundir(tr_node_t *node, const char **dir);

/* The ipc endpoint of id's mailbox or inbox in the node's directory.
 * TR_ESYS when there is no directory. */
int tr__endpoint_ipc(tr_node_t *node, char *buf, size_t cap, tr_id_t id,
                     tr__box_t box);

/* Start a process actor for rec (registered already): launch the program
 * with the child's environment and hand it to the reaper. init's result
 * arrives later (rec->init_done). */
int tr__proc_start(tr_node_t *node, tr__rec_t *rec,
                   const tr_spawn_opts_t *opts, const tr_msg_t *args);

/* Kill a process actor with SIGKILL, to be reported with reason.
 * TR_ENOENT if id is not a running process actor of this node. */
int tr__proc_kill(tr_node_t *node, tr_id_t id, int reason);

/* A PONG from id reached some port of this node. */
void tr__proc_pong(tr_node_t *node, tr_id_t id);

/* Node destroy: after actors were asked to stop, kill the processes
 * still running and stop the reaper once every child was reaped (within
 * deadline_ns). */
void tr__procs_shutdown(tr_node_t *node, uint64_t deadline_ns);

/* True while tr_init builds a child's node (any other node made in a
 * child means its main skipped tr_init). */
extern bool tr__in_child_init;

/* In a child: the actor's own hooks around init and exit. */
int tr__child_hello(struct tr_actor *a, tr_msg_t **args);
void tr__child_started(struct tr_actor *a, int rc);
void tr__child_exiting(struct tr_actor *a, int reason);

/* In a child: look up an actor of the parent's node by id or name (one of
 * them), making a local record for it. TR_ENOENT, TR_ERESTARTING. */
int tr__child_lookup(tr_node_t *node, tr__port_t *port, tr_id_t id,
                     const char *name, tr__rec_t **out);

/* In a child: link (or unlink) this actor and other in the parent's node.
 * 0, or 1 when an unlink found a link; TR_ENOENT if other has ended. */
int tr__child_link(struct tr_actor *a, tr_id_t other, bool link);

/* In a child: have DOWN of a remote target sent to watcher. */
int tr__child_watch(tr_node_t *node, tr__port_t *port, tr_id_t target);

#endif
