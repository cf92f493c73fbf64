/* runtime/control.h - the node's control endpoint (docs/control.md). */
#ifndef TR_RUNTIME_CONTROL_H
#define TR_RUNTIME_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "troupe.h"

typedef struct tr__control tr__control_t;

/* Write <rundir>/node and serve ipc://<rundir>/control from a thread of
 * its own (node->rundir must exist). Errors: TR_ENOMEM, TR_ESYS. */
int tr__control_start(tr_node_t *node, tr__control_t **out);

/* Stop serving (first thing in node destroy); *c is NULL after. */
void tr__control_stop(tr__control_t **c);

/* A request: [command] or [command, id]. */
#define TR__CONTROL_MAX_REQUEST 65536
typedef struct tr__control_req {
    char cmd[16]; /* NUL-ended, no NUL inside */
    int nargs;    /* 0 or 1 */
    uint64_t id;  /* with nargs 1 */
} tr__control_req_t;

/* Read one request's bytes. Errors: TR_EPROTO (not one), TR_ERANGE (over
 * TR__CONTROL_MAX_REQUEST). Allocates nothing. */
int tr__control_parse(const void *data, size_t len, tr__control_req_t *req);

/* Answer one request (its msgpack bytes) as the endpoint would, from any
 * thread (the gateway answers other nodes' and clients' with it): *out
 * (malloc'd) gets the reply's bytes. Errors: TR_ENOMEM. */
int tr__control_answer(tr_node_t *node, const void *req, size_t len,
                       void **out, size_t *outlen);

/* Ask actor id to stop with reason, without waiting (from any thread). */
int tr__stop_async(tr_node_t *node, tr_id_t id, int reason);

#endif
