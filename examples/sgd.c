/* examples/sgd.c - data-parallel training: workers own shards of the data,
 * a parameter actor averages their gradients, step by step.
 *
 * The Python it answers (the tutorial's machine-learning use):
 *
 *     model = nn.DataParallel(model)
 *     for epoch in range(epochs):
 *         for x, y in loader:
 *             optimizer.zero_grad()
 *             loss = criterion(model(x), y)
 *             loss.backward()
 *             optimizer.step()
 *
 * DataParallel copies the weights to every device, splits the batch, runs
 * the pieces side by side and adds the gradients up in one place. Here the
 * devices are worker actors (processes, or threads with --mode thread),
 * and the place is a "param" actor. The model is logistic regression on a
 * data set the program makes itself from a seed.
 *
 * The message flow (synchronous data parallelism):
 *
 *     main   --"epoch"-->  param                  (once per epoch)
 *     param  --"step" [batch, w]-->  worker-0 .. worker-N-1   (asks)
 *            each worker sums over ITS rows of the batch
 *     param <--"sums" [n, correct, loss, grad]--  every worker
 *     param: w -= lr * (sum of grads) / (sum of n); the next step
 *
 * Dividing the summed gradients by the summed row counts weights each
 * shard by its size, so N workers do the arithmetic of one, up to the
 * order of the additions: the final loss does not depend on N.
 *
 * Failure: the workers are children of a supervisor (ONE_FOR_ONE,
 * PERMANENT; a child's name is kept while it restarts). A worker that dies
 * in mid-step fails its ask with TR_EDEAD; param sends the same step's
 * weights again, by name, and that ask waits for the restarted worker,
 * which has rebuilt its shard from (seed, index) in init: no data is
 * sent, nothing is lost, and the step completes with every shard.
 * --kill-at STEP shows it: worker-0 SIGKILLs itself on receiving that step
 * (a thread worker, which a SIGKILL would take the whole program down
 * with, ends with an error instead).
 *
 * Why no lock: the weights belong to param alone; a worker gets a copy in
 * each step message and answers with sums of its own. Nothing is shared.
 *
 * Usage: sgd [--workers N] [--epochs N] [--mode process|thread]
 *            [--kill-at STEP] [--seed N] [--rows N] [--features N]
 *            [--batches N]
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "troupe.h"

#define LR 2.0 /* the learning rate */
#define MAX_WORKERS 64
#define MAX_FEATURES 256
#define STEP_TIMEOUT_MS 10000 /* a worker that takes longer is hung */
#define MAX_RESENDS 3         /* per worker and step */

/* Messages of a few ints: the spawn args. */
static int
s_add_ints(tr_msg_t *m, int n, const int64_t *v)
{
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = tr_msg_add_int(m, v[i]);
    return rc;
}

static int
s_read_ints(tr_reader_t *r, int n, int64_t *v)
{
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = tr_read_int(r, &v[i]);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The data set: any row can be made alone from (seed, row index)      */

/* splitmix64's mixer. Counter-based, so a worker makes its own rows, and
 * a restarted one the same rows again, without being sent any data. */
static uint64_t
s_mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15u;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
    return x ^ (x >> 31);
}

/* A uniform number in [0, 1) for (seed, key). */
static double
s_uniform(uint64_t seed, uint64_t key)
{
    return (double)(s_mix(s_mix(seed) ^ key) >> 11) * 0x1.0p-53;
}

/* Row i: f features in [-1, 1) and a label drawn from the true model
 * (weights in [-2, 2), a bias, the logistic function): noisy on purpose. */
static void
s_make_row(uint64_t seed, uint64_t i, int f, double *x, double *y)
{
    uint64_t key = i * (uint64_t)(f + 1), model = 1ull << 63;
    double z = 2 * s_uniform(seed, model + (uint64_t)f) - 1; /* the bias */
    for (int j = 0; j < f; j++) {
        x[j] = 2 * s_uniform(seed, key + (uint64_t)j) - 1;
        z += (4 * s_uniform(seed, model + (uint64_t)j) - 2) * x[j];
    }
    *y = s_uniform(seed, key + (uint64_t)f) < 1 / (1 + exp(-z));
}

/* ------------------------------------------------------------------ */
/* Worker: owns the rows [lo, hi) of the data set                       */

typedef struct {
    long lo, hi, f;
    bool thread;
    double *x, *y; /* (hi - lo) x f features, hi - lo labels */
} s_worker_t;

/* init ["shard" seed, index, workers, rows, features, thread]: make the
 * rows of shard index. The supervisor gives a restarted worker the same
 * args, so it makes the same rows again. */
static int
s_worker_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)self;
    s_worker_t *w = state;
    int64_t v[6];
    tr_reader_t r;
    tr_reader_init(&r, args);
    if (s_read_ints(&r, 6, v) != 0 || v[4] < 1 || v[4] > MAX_FEATURES)
        return TR_EINVAL;
    w->lo = (long)(v[3] * v[1] / v[2]);
    w->hi = (long)(v[3] * (v[1] + 1) / v[2]);
    w->f = (long)v[4];
    w->thread = v[5] != 0;
    w->x = malloc((size_t)(w->hi - w->lo) * (size_t)w->f * sizeof *w->x);
    w->y = malloc((size_t)(w->hi - w->lo) * sizeof *w->y);
    if (w->x == NULL || w->y == NULL) {
        free(w->x); /* no terminate after a failed init */
        free(w->y);
        return TR_ENOMEM;
    }
    for (long i = w->lo; i < w->hi; i++)
        s_make_row((uint64_t)v[0], (uint64_t)i, (int)w->f,
                   w->x + (i - w->lo) * w->f, w->y + (i - w->lo));
    return 0;
}

static void
s_worker_terminate(tr_actor_t *self, void *state, int reason)
{
    (void)self, (void)reason;
    s_worker_t *w = state;
    free(w->x);
    free(w->y);
}

/* The sums over this shard's rows of the batch (the rows i with
 * i % batches == batch; batch -1: every row) under weights wt. */
typedef struct {
    int64_t n, correct;
    double loss, g[MAX_FEATURES + 1]; /* g: the gradient, bias last */
} s_sums_t;

static void
s_worker_sums(const s_worker_t *w, const double *wt, long batch,
              long batches, s_sums_t *s)
{
    long f = w->f, first = w->lo, stride = 1;
    if (batch >= 0) { /* the batch's first row at or after lo */
        first = w->lo + (batch - w->lo % batches + batches) % batches;
        stride = batches;
    }
    for (long i = first; i < w->hi; i += stride) {
        const double *x = w->x + (i - w->lo) * f;
        double y = w->y[i - w->lo], z = wt[f]; /* wt[f]: the bias */
        for (long j = 0; j < f; j++)
            z += wt[j] * x[j];
        double p = 1 / (1 + exp(-z));
        s->n++;
        s->correct += (p >= 0.5) == (y == 1);
        s->loss += fmax(z, 0) - z * y + log1p(exp(-fabs(z))); /* -log p(y) */
        for (long j = 0; j < f; j++)
            s->g[j] += (p - y) * x[j];
        s->g[f] += p - y;
    }
}

/* "step" [batch, batches, die, w] -> "sums" [pid, n, correct, loss, g].
 * The weights and the gradient travel as bin: an array of doubles of this
 * same program on this same machine. */
static int
s_worker_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_worker_t *w = state;
    if (!tr_msg_is(msg, "step"))
        return TR_EUNHANDLED;
    int64_t v[3]; /* batch, batches, die */
    const void *bin;
    size_t len, size = (size_t)(w->f + 1) * sizeof(double);
    double wt[MAX_FEATURES + 1];
    tr_reader_t r;
    tr_reader_init(&r, msg);
    if (s_read_ints(&r, 3, v) != 0 || tr_read_bin(&r, &bin, &len) != 0 ||
        len != size)
        return tr_reply_error(self, msg, TR_EPROTO);
    memcpy(wt, bin, size); /* bin bytes need not be aligned */
    if (v[2]) { /* --kill-at: die holding this step's request */
        if (!w->thread)
            kill(getpid(), SIGKILL);
        return TR_EFAILED; /* a thread ends abnormally instead */
    }
    s_sums_t s = {0};
    s_worker_sums(w, wt, (long)v[0], (long)v[1], &s);
    tr_msg_t *reply = NULL;
    int rc = tr_msg_create(&reply, "sums");
    if (rc == 0 &&
        (rc = s_add_ints(reply, 3, (int64_t[]){getpid(), s.n, s.correct}))
            == 0 &&
        (rc = tr_msg_add_double(reply, s.loss)) == 0 &&
        (rc = tr_msg_add_bin(reply, s.g, size)) == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(sgd_worker, .state_size = sizeof(s_worker_t),
             .init = s_worker_init, .handle = s_worker_handle,
             .terminate = s_worker_terminate)

/* ------------------------------------------------------------------ */
/* Param: owns the weights and runs the steps                           */

typedef struct {
    long workers, features, batches, kill_at, step; /* step: steps done */
    bool thread;
    int64_t pid[MAX_WORKERS];    /* of each worker's last answer */
    double wt[MAX_FEATURES + 1]; /* the weights, bias last */
} s_param_t;

/* init ["param" workers, features, batches, kill_at, thread] */
static int
s_param_init(tr_actor_t *self, void *state, const tr_msg_t *args)
{
    (void)self;
    s_param_t *st = state;
    int64_t v[5];
    tr_reader_t r;
    tr_reader_init(&r, args);
    if (s_read_ints(&r, 5, v) != 0)
        return TR_EINVAL;
    st->workers = (long)v[0], st->features = (long)v[1];
    st->batches = (long)v[2], st->kill_at = (long)v[3];
    st->thread = v[4] != 0;
    return 0;
}

/* Ask worker k for its sums on batch under the current weights. By name:
 * while worker k restarts, its name is kept and the ask waits for the new
 * one (up to the deadline). */
static int
s_ask_step(tr_actor_t *self, s_param_t *st, int k, long batch, bool die,
           tr_future_t **fut)
{
    char name[32];
    snprintf(name, sizeof name, "worker-%d", k);
    tr_msg_t *m = NULL;
    int rc = tr_msg_create(&m, "step");
    if (rc == 0 &&
        (rc = s_add_ints(m, 3, (int64_t[]){batch, st->batches, die})) == 0 &&
        (rc = tr_msg_add_bin(m, st->wt, (size_t)(st->features + 1) *
                                            sizeof(double))) == 0)
        rc = tr_ask(tr_actor_node(self), name, &m, STEP_TIMEOUT_MS, fut);
    tr_msg_destroy(&m); /* NULL once sent */
    return rc;
}

/* Wait for worker k's answer (the future is destroyed) and add it to
 * *sum; *why gets the worker's exit reason if it died first. */
static int
s_add_sums(s_param_t *st, int k, tr_future_t **fut, s_sums_t *sum, int *why)
{
    tr_msg_t *reply = NULL;
    int rc = tr_future_get(*fut, TR_FOREVER, &reply); /* the ask's deadline */
    *why = tr_future_exit_reason(*fut);
    tr_future_destroy(fut);
    if (rc != 0)
        return rc;
    int64_t v[3]; /* pid, n, correct */
    double loss, g[MAX_FEATURES + 1];
    const void *bin;
    size_t len;
    tr_reader_t r;
    tr_reader_init(&r, reply);
    if ((rc = s_read_ints(&r, 3, v)) == 0 &&
        (rc = tr_read_double(&r, &loss)) == 0 &&
        (rc = tr_read_bin(&r, &bin, &len)) == 0) {
        if (len == (size_t)(st->features + 1) * sizeof(double)) {
            memcpy(g, bin, len);
            st->pid[k] = v[0], sum->n += v[1], sum->correct += v[2];
            sum->loss += loss;
            for (long j = 0; j <= st->features; j++)
                sum->g[j] += g[j];
        } else {
            rc = TR_EPROTO;
        }
    }
    tr_msg_destroy(&reply);
    return rc;
}

/* One synchronous round over batch (-1: every row): *sum is the sums
 * over all shards. */
static int
s_round(tr_actor_t *self, s_param_t *st, long batch, s_sums_t *sum)
{
    tr_future_t *fut[MAX_WORKERS] = {0};
    long step = st->step + 1;
    bool kill = batch >= 0 && step == st->kill_at;
    int rc = 0;
    /* Scatter: every worker has the weights before any answer is read,
     * so the workers compute side by side. */
    for (int k = 0; k < st->workers && rc == 0; k++)
        rc = s_ask_step(self, st, k, batch, kill && k == 0, &fut[k]);
    /* Gather, in worker order, so that the sums are always added in one
     * order. A worker lost in mid-step is sent the same step again. */
    for (int k = 0; k < st->workers && rc == 0; k++) {
        int why = 0, resends = 0;
        while ((rc = s_add_sums(st, k, &fut[k], sum, &why)) != 0 &&
               (rc == TR_EDEAD || rc == TR_ETIMEDOUT) &&
               resends++ < MAX_RESENDS) {
            printf("param: step %ld: worker-%d lost: %s (%s); sending the "
                   "step again\n", step, k, tr_strerror(rc),
                   rc == TR_EDEAD ? tr_strerror(why) : "hung");
            /* Hung rather than dead: SIGKILL it so that its supervisor
             * replaces it. (A thread cannot be killed, TR_ENOTSUP: the
             * next ask waits for it again.) */
            char name[32];
            tr_id_t id;
            snprintf(name, sizeof name, "worker-%d", k);
            if (rc == TR_ETIMEDOUT &&
                tr_whereis(tr_actor_node(self), name, &id) == 0)
                tr_kill(tr_actor_node(self), id);
            if ((rc = s_ask_step(self, st, k, batch, false, &fut[k])) != 0)
                break;
        }
        if (rc == 0 && resends > 0)
            printf("param: step %ld: worker-%d answered again: a new %s, "
                   "pid %lld\n", step, k, st->thread ? "thread" : "process",
                   (long long)st->pid[k]);
    }
    for (int k = 0; k < st->workers; k++)
        tr_future_destroy(&fut[k]); /* after an error: drop the rest */
    return rc;
}

/* "epoch": a step per batch -> "loss" [loss, accuracy, rows], the loss
 * and accuracy of each batch before its step, averaged; "eval": every row,
 * no step -> "eval" [loss, accuracy, rows]. A failed round fails the
 * request, not this actor. */
static int
s_param_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_param_t *st = state;
    bool eval = tr_msg_is(msg, "eval");
    if (!eval && !tr_msg_is(msg, "epoch"))
        return TR_EUNHANDLED;
    long rounds = eval ? 1 : st->batches;
    double v[3] = {0, 0, 0};
    int rc = 0;
    for (long i = 0; i < rounds && rc == 0; i++) {
        s_sums_t sum = {0};
        if ((rc = s_round(self, st, eval ? -1 : i, &sum)) != 0)
            break;
        double n = (double)sum.n;
        v[0] += sum.loss / n / (double)rounds;
        v[1] += (double)sum.correct / n / (double)rounds;
        v[2] += n;
        if (eval)
            break;
        for (long j = 0; j <= st->features; j++) /* the mean gradient */
            st->wt[j] -= LR * sum.g[j] / n;
        st->step++;
    }
    if (rc != 0)
        return tr_reply_error(self, msg, rc);
    tr_msg_t *reply = NULL;
    rc = tr_msg_create(&reply, eval ? "eval" : "loss");
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = tr_msg_add_double(reply, v[i]);
    if (rc == 0)
        rc = tr_reply(self, msg, &reply);
    tr_msg_destroy(&reply);
    return rc;
}

TR_BEHAVIOUR(sgd_param, .state_size = sizeof(s_param_t),
             .init = s_param_init, .handle = s_param_handle)

/* ------------------------------------------------------------------ */
/* main: the options, the supervised workers, param, the epochs         */

typedef struct {
    long workers, epochs, kill_at, seed, rows, features, batches;
    bool thread;
} s_opts_t;

/* Parse the command line; false (with a message) on a bad one. */
static bool
s_parse(int argc, char **argv, s_opts_t *o)
{
    *o = (s_opts_t){.workers = 2, .epochs = 10, .seed = 1, .rows = 20000,
                    .features = 16, .batches = 10};
    const struct {
        const char *name;
        long *v, lo, hi;
    } num[] = {{"workers", &o->workers, 1, MAX_WORKERS},
               {"epochs", &o->epochs, 1, 100000},
               {"kill-at", &o->kill_at, 1, LONG_MAX},
               {"seed", &o->seed, 0, LONG_MAX},
               {"rows", &o->rows, 1, 10000000},
               {"features", &o->features, 1, MAX_FEATURES},
               {"batches", &o->batches, 1, 10000}};
    struct option opts[9] = {{"mode", required_argument, NULL, 'm'}};
    for (int i = 0; i < 7; i++)
        opts[i + 1] = (struct option){num[i].name, required_argument, NULL, i};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'm' && (strcmp(optarg, "process") == 0 ||
                         strcmp(optarg, "thread") == 0)) {
            o->thread = optarg[0] == 't';
        } else if (c == 'm') {
            fprintf(stderr, "sgd: --mode: expected process or thread, got "
                    "'%s'\n", optarg);
            return false;
        } else if (c >= 0 && c < 7) {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < num[c].lo ||
                v > num[c].hi) {
                fprintf(stderr, "sgd: --%s: expected an integer in %ld..%ld"
                        ", got '%s'\n", num[c].name, num[c].lo, num[c].hi,
                        optarg);
                return false;
            }
            *num[c].v = v;
        } else {
            return false; /* getopt said why */
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sgd: unexpected argument '%s'\n", argv[optind]);
        return false;
    }
    if (o->rows < o->batches) {
        fprintf(stderr, "sgd: --rows %ld: fewer rows than --batches (%ld)\n",
                o->rows, o->batches);
        return false;
    }
    if (o->kill_at > o->epochs * o->batches) {
        fprintf(stderr, "sgd: --kill-at %ld: there are only %ld steps (%ld "
                "epochs of %ld)\n", o->kill_at, o->epochs * o->batches,
                o->epochs, o->batches);
        return false;
    }
    return true;
}

/* A supervisor with one child spec per worker: "worker-k", PERMANENT, its
 * shard's recipe in the spawn args (the supervisor keeps a copy for every
 * restart of that worker). */
static int
s_start_workers(tr_node_t *node, const s_opts_t *o)
{
    tr_child_spec_t specs[MAX_WORKERS];
    char names[MAX_WORKERS][32];
    tr_msg_t *args[MAX_WORKERS] = {0};
    int rc = 0;
    for (int k = 0; k < o->workers && rc == 0; k++) {
        snprintf(names[k], sizeof names[k], "worker-%d", k);
        if ((rc = tr_msg_create(&args[k], "shard")) == 0)
            rc = s_add_ints(args[k], 6, (int64_t[]){o->seed, k, o->workers,
                                                   o->rows, o->features,
                                                   o->thread});
        specs[k] = (tr_child_spec_t){
            .id = names[k], .behaviour = "sgd_worker",
            .spawn = {.name = names[k], .args = args[k],
                      .mode = o->thread ? TR_THREAD : TR_PROCESS},
            .restart = TR_PERMANENT};
    }
    if (rc == 0)
        rc = tr_sup_start(node, &(tr_sup_opts_t){.strategy = TR_ONE_FOR_ONE,
                                                 .max_restarts = 3},
                          specs, (int)o->workers, NULL);
    for (int k = 0; k < o->workers; k++)
        tr_msg_destroy(&args[k]);
    return rc;
}

/* Spawn param under its name. */
static int
s_start_param(tr_node_t *node, const s_opts_t *o)
{
    tr_msg_t *args = NULL;
    int rc = tr_msg_create(&args, "param");
    if (rc == 0 &&
        (rc = s_add_ints(args, 5, (int64_t[]){o->workers, o->features,
                                              o->batches, o->kill_at,
                                              o->thread})) == 0)
        rc = tr_spawn(node, "sgd_param",
                      &(tr_spawn_opts_t){.name = "param", .args = args},
                      NULL);
    tr_msg_destroy(&args);
    return rc;
}

/* Call param with tag; its answer's three numbers in v. */
static int
s_call_param(tr_node_t *node, const char *tag, double v[3])
{
    tr_msg_t *m = NULL, *reply = NULL;
    int rc = tr_msg_create(&m, tag);
    /* No deadline here: param's asks to the workers carry theirs. */
    if (rc == 0 &&
        (rc = tr_call(node, "param", &m, TR_FOREVER, &reply)) == 0) {
        tr_reader_t r;
        tr_reader_init(&r, reply);
        for (int i = 0; i < 3 && rc == 0; i++)
            rc = tr_read_double(&r, &v[i]);
    }
    tr_msg_destroy(&m);
    tr_msg_destroy(&reply);
    return rc;
}

static double
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    /* First: in a worker process this runs its actor and never returns. */
    tr_init(&argc, &argv);
    s_opts_t o;
    if (!s_parse(argc, argv, &o)) {
        fprintf(stderr, "usage: sgd [--workers N] [--epochs N] "
                "[--mode process|thread] [--kill-at STEP]\n           "
                "[--seed N] [--rows N] [--features N] [--batches N]\n");
        return 2;
    }
    printf("sgd: %ld rows x %ld features (seed %ld), %ld %s worker%s, %ld "
           "steps per epoch\n", o.rows, o.features, o.seed, o.workers,
           o.thread ? "thread" : "process", o.workers > 1 ? "s" : "",
           o.batches);

    tr_node_t *node = NULL;
    double *ms = calloc((size_t)o.epochs, sizeof *ms), v[3] = {0, 0, 0};
    const char *what = "start";
    int rc = ms ? tr_node_create(&node, NULL) : TR_ENOMEM;
    if (rc == 0 && (rc = s_start_workers(node, &o)) == 0)
        rc = s_start_param(node, &o);
    for (long e = 0; e < o.epochs && rc == 0; e++) {
        double t0 = s_now_ms();
        what = "epoch";
        if ((rc = s_call_param(node, "epoch", v)) == 0) {
            ms[e] = s_now_ms() - t0;
            printf("epoch %2ld: loss %.6f, accuracy %.2f%% (%.1f ms)\n",
                   e + 1, v[0], 100 * v[1], ms[e]);
        }
    }
    if (rc == 0) {
        what = "eval";
        rc = s_call_param(node, "eval", v);
    }
    int drc = tr_node_destroy(&node); /* stops param and the workers */
    if (rc != 0)
        fprintf(stderr, "sgd: %s: %s\n", what, tr_strerror(rc));
    else if (drc != 0)
        fprintf(stderr, "sgd: node destroy: %s\n", tr_strerror(drc));
    else {
        qsort(ms, (size_t)o.epochs, sizeof *ms, s_cmp);
        printf("sgd: final loss %.9f, accuracy %.2f%% on %.0f rows, %.2f ms "
               "per epoch (median)\n", v[0], 100 * v[1], v[2],
               ms[o.epochs / 2]);
    }
    free(ms);
    return rc || drc ? 1 : 0;
}
