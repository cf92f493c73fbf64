/* runtime/capsule.h - crash capsules, quarantine and replay (docs/control.md,
 * "Crash capsules"). When an actor fails handling a message (its handler
 * returns an error, or a signal ends a process actor), a capsule file
 * holds the message (its frame's bytes), the last few it took before, the
 * reason and the restart count; `troupe capsule` prints it and `troupe
 * replay` hands the message again to the behaviour, alone, in a program
 * started with TROUPE_REPLAY. A message that crashed its actor's name N
 * times in a row (TROUPE_QUARANTINE, tr_node_opts.quarantine_after;
 * 3 by default) is quarantined: dropped as a dead letter, with a capsule,
 * instead of crashing the next incarnation.
 *
 * On the hot path an actor only notes the message it hands to its
 * handler (tr__capsule_note: a pointer, and tag, sender and size into a
 * ring of TR__SEEN) and tests one word for a quarantine. */
#ifndef TR_RUNTIME_CAPSULE_H
#define TR_RUNTIME_CAPSULE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "runtime/registry.h"
#include "transport/msg.h"
#include "troupe.h"

/* The last messages an actor took, for its capsule. */
#define TR__SEEN 8
#define TR__SEEN_TAG 16

typedef struct tr__seen {
    uint64_t sender;
    uint32_t size; /* the frame's bytes */
    char tag[TR__SEEN_TAG]; /* cut at 15 bytes, NUL-ended */
} tr__seen_t;

typedef struct tr__capsule_st {
    const tr_msg_t *cur; /* the message being handled, or NULL */
    unsigned nseen;      /* messages noted so far (the ring wraps) */
    uint64_t poison;     /* hash of a message to quarantine, 0: none */
    tr__seen_t seen[TR__SEEN];
} tr__capsule_st_t;

/* Before the handler runs: what it is given. Measured (callgrind, a
 * tell to a sink): a memcpy of the tag's length is a call that cost more
 * than all the rest; a copy of a constant 16 bytes is two moves. */
static inline void
tr__capsule_note(tr__capsule_st_t *c, const tr_msg_t *msg)
{
    tr__seen_t *s = &c->seen[c->nseen++ % TR__SEEN];
    const uint8_t *tag = msg->buf + TR__ENV_HDR;
    size_t n = msg->taglen < TR__SEEN_TAG - 1 ? msg->taglen
                                              : TR__SEEN_TAG - 1;
    s->sender = msg->env.sender;
    s->size = (uint32_t)msg->len;
    if (msg->len >= TR__ENV_HDR + TR__SEEN_TAG) {
        memcpy(s->tag, tag, TR__SEEN_TAG);
    } else { /* a short frame: no reading past its end */
        /* cppcheck-suppress knownConditionTrueFalse ; it takes taglen as 0 */
        for (size_t i = 0; i < n; i++)
            s->tag[i] = (char)tag[i];
    }
    s->tag[n] = '\0';
    c->cur = msg;
}

struct tr_actor;

/* At the start of an actor (its thread, before init): whether a message
 * of its name is to be quarantined; a child process reads what its
 * parent said (TROUPE_CRASHES) and catches crash signals. */
void tr__capsule_start(struct tr_actor *a);

/* msg would crash the actor again: true when it was quarantined (dropped
 * as a dead letter, its capsule written, an ask answered with
 * TR_EQUARANTINED). Only called when c->poison is set. */
bool tr__capsule_quarantine(struct tr_actor *a, const tr_msg_t *msg);

/* The handler failed with reason on msg: write the capsule and count the
 * crash against the message. */
void tr__capsule_crash(struct tr_actor *a, const tr_msg_t *msg, int reason);

/* The parent's reaper saw a child end: take over what its crash said
 * (the message's hash, for quarantine), and remove that note. */
void tr__capsule_child_ended(tr_node_t *node, tr__rec_t *rec);

/* The environment entry a child gets (TROUPE_CRASHES=...), into buf. */
void tr__capsule_child_env(tr_node_t *node, tr__rec_t *rec, char *buf,
                           size_t cap);

/* tr_init: a program started by `troupe replay` (TROUPE_REPLAY=capsule)
 * runs the capsule's behaviour and hands it the message; the exit
 * status says what happened (see runtime/capsule.c). */
int tr__capsule_replay_main(const char *path);

#endif
