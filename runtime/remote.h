/* runtime/remote.h - many nodes over tcp (docs/nodes.md).
 *
 * A distributed node gives every id its tag (20 random bits, fixed for
 * the node's life) in the top bits, so an id tells which node it lives
 * on. Its gateway, a thread with a record of its own, is where every
 * message for another node's actor goes (senders connect to the
 * gateway's mailbox or inbox instead of the actor's); the gateway sends
 * it over tcp to that node's gateway, which hands it to the actor as it
 * is, sender kept. */
#ifndef TR_RUNTIME_REMOTE_H
#define TR_RUNTIME_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/node.h"
#include "runtime/registry.h"
#include "troupe.h"

struct tr__port;

#define TR__TAG_SHIFT 44
#define TR__TAG_BITS 20

static inline uint32_t
tr__id_tag(tr_id_t id)
{
    return (uint32_t)(id >> TR__TAG_SHIFT);
}

/* Read the options (and the environment); when the node is to be
 * distributed, set node->tag and node->next_id. Called before any id is
 * made. Errors: TR_EINVAL (bad option, logged), TR_EPERM (a key file
 * others can read), TR_ENOMEM. *out is NULL for a node that stays alone. */
int tr__remote_prepare(tr_node_t *node, tr__remote_t **out);

/* Bind, start the gateway thread and say hello to the seeds. */
int tr__remote_start(tr__remote_t *r);

/* Start the actor that runs spawns asked for by other nodes (once the
 * node is made). */
int tr__remote_spawner(tr__remote_t *r);

/* The gateway's id. */
tr_id_t tr__remote_rec_id(const tr__remote_t *r);

/* Stop the gateway (after the node's actors ended, before ports close). */
void tr__remote_stop(tr__remote_t **r);

/* True when id lives on another node. */
static inline bool
tr__id_foreign(const tr_node_t *node, tr_id_t id)
{
    return node->remote != NULL && tr__id_tag(id) != node->tag;
}

/* A new reference to the gateway's record: where senders send what goes
 * to another node. NULL when the node is not distributed. */
tr__rec_t *tr__remote_rec(tr_node_t *node);

/* Watch foreign actor target for port: a DOWN comes when it ends or its
 * node goes (reason TR_ENOCONN). */
int tr__remote_watch(struct tr__port *port, tr_id_t target);

/* Resolve "name@node" (at points after the '@'). */
int tr__remote_whereis(tr_node_t *node, const char *name, size_t namelen,
                       const char *at, int64_t timeout_ms, tr_id_t *id);

#endif
