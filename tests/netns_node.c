/* tests/netns_node.c - one node of the multi-host tests (tests/test_netns.c),
 * run in a network namespace of its own: `netns_node NAME`, configured by
 * the environment (TROUPE_LISTEN, TROUPE_SEEDS, TROUPE_KEY,
 * TROUPE_CLUSTER, TROUPE_DOWN_AFTER_MS, ...).
 *
 * It runs an "echo" actor under the name "echo" and obeys commands, one a
 * line on stdin, answering one line each on stdout:
 *   await NODE     "up NODE" once NODE is connected (or "timeout NODE")
 *   call NODE      "call NODE ok" or "call NODE <error>" (echo@NODE, 2 s)
 *   watch NODE     "watching NODE" once echo@NODE is monitored; later,
 *                  when it ends or its node goes: "down NODE <error>"
 *   pipe N PLACE   N items through a pipeline whose one stage ("nsq", a
 *                  slow square) runs at PLACE (e.g. "node b|c:2"):
 *                  "pipe half" once half are put, then "pipe done
 *                  n=COUNT sum=SUM bad=WRONG"
 *   quit           ends the node, "bye"
 * Lines from the watcher can come at any time, so the driver matches
 * lines by their first word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "troupe.h"

static int
s_echo(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    (void)state;
    tr_msg_t *m;
    int rc = tr_msg_create(&m, "ok");
    if (rc == 0)
        rc = tr_reply(self, msg, &m);
    tr_msg_destroy(&m);
    return rc;
}
TR_BEHAVIOUR(echo, .handle = s_echo);

/* Watches ids told to it ("watch" [id, node name]); prints each DOWN. */
typedef struct {
    tr_id_t ids[16];
    char names[16][64];
    int n;
} s_watch_t;

static int
s_watcher(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_watch_t *w = state;
    if (tr_msg_is(msg, "$down")) {
        tr_id_t who;
        int reason;
        if (tr_msg_exit(msg, &who, &reason) != 0)
            return 0;
        for (int i = 0; i < w->n; i++)
            if (w->ids[i] == who) {
                printf("down %s %s\n", w->names[i], tr_strerror(reason));
                fflush(stdout);
            }
        return 0;
    }
    if (tr_msg_is(msg, "watch") && w->n < 16) {
        tr_reader_t r;
        uint64_t id = 0;
        tr_reader_init(&r, msg);
        if (tr_read_uint(&r, &id) != 0 ||
            tr_read_str_copy(&r, w->names[w->n], sizeof w->names[0]) != 0)
            return TR_EPROTO;
        w->ids[w->n++] = id;
        int rc = tr_monitor(self, id);
        tr_msg_t *m;
        if (tr_msg_create(&m, "ok") == 0 && tr_msg_add_int(m, rc) == 0)
            (void)tr_reply(self, msg, &m);
        tr_msg_destroy(&m);
        return 0;
    }
    return TR_EUNHANDLED;
}
TR_BEHAVIOUR(watcher, .state_size = sizeof(s_watch_t), .handle = s_watcher);

/* The pipeline's stage: v -> v * v, after ~200 us of work (so that a
 * run lasts long enough to lose a node in the middle of it). */
static int
s_nsq(const tr_msg_t *args, tr_msg_t **result)
{
    tr_reader_t r;
    int64_t v = 0;
    tr_reader_init(&r, args);
    if (tr_read_int(&r, &v) != 0)
        return TR_EPROTO;
    volatile uint64_t x = 0;
    for (int i = 0; i < 100000; i++)
        x += (uint64_t)i;
    int rc = tr_msg_create(result, "sq");
    return rc ? rc : tr_msg_add_int(*result, v * v);
}
TR_TASK(nsq, s_nsq);

typedef struct {
    int next, n;
    uint64_t got;
    int64_t sum;
    int bad;
} s_run_t;

static int
s_run_next(void *arg, tr_msg_t **item)
{
    s_run_t *r = arg;
    if (r->next == r->n)
        return 1;
    if (r->next == r->n / 2) {
        printf("pipe half\n");
        fflush(stdout);
    }
    int rc = tr_msg_create(item, "x");
    if (rc == 0 && (rc = tr_msg_add_int(*item, r->next)) != 0)
        tr_msg_destroy(item);
    r->next++;
    return rc;
}

static int
s_run_out(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    s_run_t *r = arg;
    tr_reader_t rd;
    int64_t v = -1;
    if (rc == 0) {
        tr_reader_init(&rd, result);
        (void)tr_read_int(&rd, &v);
    }
    if (rc != 0 || index != r->got || v != (int64_t)(index * index))
        r->bad++;
    r->sum += v;
    r->got++;
    return 0;
}

static void
s_pipe(tr_node_t *node, int n, const char *place)
{
    char spec[128];
    snprintf(spec, sizeof spec, "nsq=%s", place);
    tr_stage_opts_t st[] = {{.stage = "nsq"}};
    tr_pipeline_t *pipe = NULL;
    int rc = tr_pipeline_start(node, &(tr_pipeline_opts_t){
                                         .stages = st, .nstages = 1,
                                         .batch = 8, .ordered = true,
                                         .place = spec},
                               &pipe);
    if (rc != 0) {
        printf("pipe error %s\n", tr_strerror(rc));
        return;
    }
    s_run_t r = {.n = n};
    rc = tr_pipeline_run(pipe, s_run_next, &r, s_run_out, &r);
    (void)tr_pipeline_stop(&pipe, 5000);
    if (rc != 0)
        printf("pipe error %s\n", tr_strerror(rc));
    else
        printf("pipe done n=%llu sum=%lld bad=%d\n",
               (unsigned long long)r.got, (long long)r.sum, r.bad);
}

int
main(int argc, char **argv)
{
    if (tr_init(&argc, &argv) != 0 || argc != 2) {
        fprintf(stderr, "usage: netns_node NAME (configured by TROUPE_*)\n");
        return 2;
    }
    tr_node_t *node;
    int rc = tr_node_create(&node, &(tr_node_opts_t){.name = argv[1],
                                                     .no_control = true});
    if (rc != 0) {
        printf("error %s\n", tr_strerror(rc));
        return 1;
    }
    if (tr_spawn(node, "echo", &(tr_spawn_opts_t){.name = "echo"}, NULL) !=
            0 ||
        tr_spawn(node, "watcher", &(tr_spawn_opts_t){.name = "watcher"},
                 NULL) != 0) {
        printf("error spawn\n");
        return 1;
    }
    printf("ready %s\n", argv[1]);
    fflush(stdout);
    char line[256];
    while (fgets(line, sizeof line, stdin) != NULL) {
        char cmd[32] = "", arg[64] = "", name[160], place[64] = "";
        if (sscanf(line, "%31s %63s %63[^\n]", cmd, arg, place) < 1)
            continue;
        snprintf(name, sizeof name, "echo@%s", arg);
        if (strcmp(cmd, "quit") == 0)
            break;
        if (strcmp(cmd, "await") == 0) {
            rc = tr_node_await(node, arg, 20000);
            printf("%s %s\n", rc == 0 ? "up" : "timeout", arg);
        } else if (strcmp(cmd, "call") == 0) {
            tr_msg_t *m = NULL, *reply = NULL;
            rc = tr_msg_create(&m, "ping");
            if (rc == 0)
                rc = tr_call(node, name, &m, 2000, &reply);
            tr_msg_destroy(&m);
            tr_msg_destroy(&reply);
            printf("call %s %s\n", arg, rc == 0 ? "ok" : tr_strerror(rc));
        } else if (strcmp(cmd, "pipe") == 0) {
            s_pipe(node, atoi(arg), place);
        } else if (strcmp(cmd, "watch") == 0) {
            tr_id_t id = 0;
            tr_msg_t *m = NULL, *reply = NULL;
            rc = tr_whereis(node, name, &id);
            if (rc == 0 && (rc = tr_msg_create(&m, "watch")) == 0 &&
                (rc = tr_msg_add_uint(m, id)) == 0 &&
                (rc = tr_msg_add_str(m, arg)) == 0)
                rc = tr_call(node, "watcher", &m, 5000, &reply);
            tr_msg_destroy(&m);
            tr_msg_destroy(&reply);
            if (rc == 0)
                printf("watching %s\n", arg);
            else
                printf("watch %s failed %s\n", arg, tr_strerror(rc));
        } else {
            printf("unknown %s\n", cmd);
        }
        fflush(stdout);
    }
    rc = tr_node_destroy(&node);
    printf("bye\n");
    return rc == 0 ? 0 : 1;
}
