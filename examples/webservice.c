/* examples/webservice.c - a web service built from actors: an HTTP gateway
 * in front of a users API actor, a pool of lookup workers and a process
 * pool for CPU-bound work, under a supervisor.
 *
 * The Python it answers (Flask and ThreadPoolExecutor):
 *
 *     @app.route("/api/v1/users")
 *     def users():
 *         ids = request.args["user_ids"].split(",")
 *         result = []                        # shared by the threads
 *         with ThreadPoolExecutor(10) as ex:  # a new pool per request
 *             for i in ids:
 *                 ex.submit(lambda i: result.append(fetch_user(i)), i)
 *         return jsonify(result)             # in whatever order they came
 *
 * Here nothing is shared and nothing is started per request:
 *
 *   curl --> gateway --"http"--> users_api --"get" [id]--> store-0..3
 *                                    ^  (an ask per id)     (lookup actors)
 *                                    +---- answers, any order ----+
 *
 * users_api asks the lookup actors once per id, in turn (futures with
 * callbacks, so it never blocks), keeps each answer in its slot, and
 * replies when all are in, in the order asked, or at its deadline with
 * what it has (a user that did not come in time is an error entry). A
 * lookup actor waits for its "database" with a timer, not by blocking a
 * thread, so one actor has many lookups in flight (Python's pool holds a
 * thread per lookup instead). /primes?below=N counts primes on a pool of
 * worker processes: a worker that dies under a request (a crash, a kill)
 * is replaced and the request runs again on another, so it costs no
 * answer; only a request that kills three workers gets a 500, and never
 * the service. /health answers at once. Everything but the pool runs
 * under one supervisor.
 *
 *   webservice [PORT [SECONDS]]   PORT 0: any free one (printed);
 *                                 SECONDS: stop after (0: on Ctrl-C)
 * The users come from a file next to this program's source
 * (examples/users.csv), each lookup waits 20 ms as a database would.
 */
#include <ctype.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "troupe.h"

#define LOOKUP_MS 20      /* a lookup's simulated latency */
#define API_DEADLINE 1000 /* ms a users request may take */
#define MAX_IDS 64

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "webservice: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

/* ------------------------------------------------------------------ */
/* The store: "id,name,email" lines, read once (a task reads it        */
/* through a static copy: the workers only read it).                   */

#define MAX_USERS 64
static struct {
    int id;
    char name[64], email[96];
} s_users[MAX_USERS];
static int s_nusers;

static void
s_load_users(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    char line[256];
    while (fgets(line, sizeof line, f) && s_nusers < MAX_USERS) {
        if (!isdigit((unsigned char)line[0]))
            continue; /* the header */
        if (sscanf(line, "%d,%63[^,],%95[^\n]", &s_users[s_nusers].id,
                   s_users[s_nusers].name, s_users[s_nusers].email) == 3)
            s_nusers++;
    }
    fclose(f);
}

/* ------------------------------------------------------------------ */
/* A lookup actor: "get" [id] -> "user" [json], or TR_ENOENT, after the  */
/* latency a database would have. The wait is a timer: the request is  */
/* kept (tr_msg_dup) and answered when the timer's "done" [key] comes.  */

#define STORES 4
#define STORE_PENDING 1024

typedef struct {
    tr_msg_t *pending[STORE_PENDING]; /* kept requests, by slot */
} s_store_t;

static int
s_store_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_store_t *st = state;
    if (tr_msg_is(msg, "get")) {
        int slot = 0;
        while (slot < STORE_PENDING && st->pending[slot] != NULL)
            slot++;
        if (slot == STORE_PENDING)
            return tr_reply_error(self, msg, TR_EBUSY);
        int rc = tr_msg_dup(msg, &st->pending[slot]);
        tr_msg_t *done = NULL;
        if (rc == 0 && (rc = tr_msg_create(&done, "done")) == 0 &&
            (rc = tr_msg_add_int(done, slot)) == 0)
            rc = tr_timer_after(self, LOOKUP_MS, &done, NULL);
        tr_msg_destroy(&done);
        if (rc != 0) {
            tr_msg_destroy(&st->pending[slot]);
            return tr_reply_error(self, msg, rc);
        }
        return 0;
    }
    if (tr_msg_is(msg, "done")) { /* the "database" answered */
        tr_reader_t r;
        int64_t slot, id;
        tr_reader_init(&r, msg);
        if (tr_read_int(&r, &slot) != 0 || slot < 0 ||
            slot >= STORE_PENDING || st->pending[slot] == NULL)
            return TR_EPROTO;
        tr_msg_t *req = st->pending[slot];
        st->pending[slot] = NULL;
        tr_reader_init(&r, req);
        int rc = tr_read_int(&r, &id);
        for (int i = 0; rc == 0 && i < s_nusers; i++) {
            if (s_users[i].id != id)
                continue;
            char json[256];
            tr_msg_t *user = NULL;
            snprintf(json, sizeof json,
                     "{\"id\":%d,\"name\":\"%s\",\"email\":\"%s\"}",
                     s_users[i].id, s_users[i].name, s_users[i].email);
            if ((rc = tr_msg_create(&user, "user")) == 0 &&
                (rc = tr_msg_add_str(user, json)) == 0)
                rc = tr_reply(self, req, &user);
            tr_msg_destroy(&user);
            tr_msg_destroy(&req);
            return rc;
        }
        rc = tr_reply_error(self, req, rc ? rc : TR_ENOENT);
        tr_msg_destroy(&req);
        return rc;
    }
    return TR_EUNHANDLED;
}

static void
s_store_terminate(tr_actor_t *self, void *state, int reason)
{
    s_store_t *st = state;
    (void)self, (void)reason;
    for (int i = 0; i < STORE_PENDING; i++)
        tr_msg_destroy(&st->pending[i]);
}

TR_BEHAVIOUR(user_store, .state_size = sizeof(s_store_t),
             .handle = s_store_handle, .terminate = s_store_terminate);

/* primes: an "http" request ?below=N -> a JSON response; CPU-bound, so it
 * runs on worker processes. */
static int
s_primes(const tr_msg_t *args, tr_msg_t **result)
{
    tr_http_req_t req;
    char v[32], json[96];
    int rc = tr_http_req_read(args, &req);
    if (rc != 0)
        return rc;
    long below = 0;
    if (tr_http_query_get(req.query, "below", v, sizeof v) == 0)
        below = strtol(v, NULL, 10);
    if (below < 0 || below > 10000000) {
        const char *e = "{\"error\":\"below must be 0..10000000\"}";
        return tr_http_response(result, 400, "application/json", e,
                                strlen(e));
    }
    long count = 0;
    for (long n = 2; n < below; n++) {
        bool prime = true;
        for (long d = 2; d * d <= n && prime; d++)
            prime = n % d != 0;
        count += prime;
    }
    int len = snprintf(json, sizeof json, "{\"below\":%ld,\"count\":%ld}",
                       below, count);
    return tr_http_response(result, 200, "application/json", json,
                            (size_t)len);
}
TR_TASK(primes, s_primes);

/* ------------------------------------------------------------------ */
/* users_api: one "http" request -> a lookup task per id, answers      */
/* gathered in order                                                   */

typedef struct s_req s_req_t;
typedef struct {
    s_req_t *req;
    int index;
} s_part_t;

/* A request being gathered. */
struct s_req {
    tr_msg_t *http;              /* the request, answered at the end */
    int n, left;
    char *json[MAX_IDS];         /* each id's entry, when in */
    tr_future_t *f[MAX_IDS];
    s_part_t part[MAX_IDS];
    uint64_t timer;
    struct s_req *next, *prev;   /* the actor's open requests */
};

typedef struct {
    s_req_t *open;
    unsigned next_store; /* lookups go to the stores in turn */
} s_api_t;

static tr_actor_t *s_api_self; /* for the callbacks (one users_api) */

static void
s_req_finish(s_api_t *api, s_req_t *q)
{
    /* [entry, entry, ...] in the order the ids were asked */
    size_t cap = 16, len = 0;
    for (int i = 0; i < q->n; i++)
        cap += (q->json[i] ? strlen(q->json[i]) : 64) + 1;
    char *body = malloc(cap);
    if (body != NULL) {
        body[len++] = '[';
        for (int i = 0; i < q->n; i++) {
            const char *e = q->json[i] ? q->json[i]
                                       : "{\"error\":\"not in time\"}";
            len += (size_t)snprintf(body + len, cap - len, "%s%s",
                                    i ? "," : "", e);
        }
        body[len++] = ']';
        (void)tr_http_reply(s_api_self, q->http, 200, "application/json",
                            body, len);
        free(body);
    }
    for (int i = 0; i < q->n; i++) {
        tr_future_destroy(&q->f[i]); /* late ones: their answer is dropped */
        free(q->json[i]);
    }
    if (q->timer)
        (void)tr_timer_cancel(s_api_self, q->timer);
    if (q->prev)
        q->prev->next = q->next;
    else
        api->open = q->next;
    if (q->next)
        q->next->prev = q->prev;
    tr_msg_destroy(&q->http);
    free(q);
}

static s_api_t *s_api_state;

/* A lookup answered (or failed): its slot, and the end when it is the
 * last. Runs on users_api's thread, between its messages. */
static void
s_on_user(void *arg, tr_future_t *f)
{
    s_part_t *p = arg;
    s_req_t *q = p->req;
    tr_msg_t *r = NULL;
    int rc = tr_future_get(f, 0, &r);
    q->f[p->index] = NULL;
    tr_future_destroy(&f);
    const char *s;
    size_t len;
    tr_reader_t rd;
    char err[96];
    if (rc == 0) {
        tr_reader_init(&rd, r);
        if (tr_read_str(&rd, &s, &len) == 0 &&
            (q->json[p->index] = malloc(len + 1)) != NULL) {
            memcpy(q->json[p->index], s, len);
            q->json[p->index][len] = 0;
        }
    } else {
        snprintf(err, sizeof err, "{\"error\":\"%s\"}",
                 rc == TR_ENOENT ? "no such user" : tr_strerror(rc));
        q->json[p->index] = strdup(err);
    }
    tr_msg_destroy(&r);
    if (--q->left == 0)
        s_req_finish(s_api_state, q);
}

static int
s_api_users(tr_actor_t *self, s_api_t *api, const tr_msg_t *msg)
{
    tr_http_req_t req;
    char ids[1024];
    int rc = tr_http_req_read(msg, &req);
    if (rc != 0)
        return rc;
    if (tr_http_query_get(req.query, "user_ids", ids, sizeof ids) != 0) {
        const char *e = "{\"error\":\"user_ids=1,2,3 is needed\"}";
        return tr_http_reply(self, msg, 400, "application/json", e,
                             strlen(e));
    }
    s_req_t *q = calloc(1, sizeof *q);
    if (q == NULL || (rc = tr_msg_dup(msg, &q->http)) != 0) {
        free(q);
        return tr_http_reply(self, msg, 503, NULL, "busy\n", 5);
    }
    q->next = api->open;
    if (api->open)
        api->open->prev = q;
    api->open = q;
    /* one lookup task per id, all at once: they run side by side */
    for (char *tok = strtok(ids, ","); tok && q->n < MAX_IDS;
         tok = strtok(NULL, ",")) {
        int i = q->n++;
        q->part[i] = (s_part_t){q, i};
        q->left++;
        char *end;
        long id = strtol(tok, &end, 10);
        tr_msg_t *a = NULL;
        char store[16];
        snprintf(store, sizeof store, "store-%u", api->next_store++ % STORES);
        rc = *end != 0 || end == tok ? TR_EINVAL : tr_msg_create(&a, "get");
        if (rc == 0 && (rc = tr_msg_add_int(a, id)) == 0 &&
            (rc = tr_ask(tr_actor_node(self), store, &a, API_DEADLINE,
                         &q->f[i])) == 0)
            rc = tr_future_then(q->f[i], s_on_user, &q->part[i]);
        tr_msg_destroy(&a);
        if (rc != 0) { /* this id fails at once; the others go on */
            char err[96];
            snprintf(err, sizeof err, "{\"error\":\"%s\"}",
                     rc == TR_EINVAL ? "not an id" : tr_strerror(rc));
            q->json[i] = strdup(err);
            tr_future_destroy(&q->f[i]);
            q->left--;
        }
    }
    if (q->left == 0) {
        s_req_finish(api, q);
        return 0;
    }
    /* the deadline: answer with what is in by then */
    tr_msg_t *t = NULL;
    if ((rc = tr_msg_create(&t, "late")) == 0 &&
        (rc = tr_msg_add_uint(t, (uint64_t)(uintptr_t)q)) == 0)
        rc = tr_timer_after(self, API_DEADLINE, &t, &q->timer);
    tr_msg_destroy(&t);
    return rc;
}

static int
s_api_handle(tr_actor_t *self, void *state, const tr_msg_t *msg)
{
    s_api_t *api = state;
    s_api_self = self;
    s_api_state = api;
    if (tr_msg_is(msg, "http")) {
        tr_http_req_t req;
        int rc = tr_http_req_read(msg, &req);
        if (rc != 0)
            return rc;
        if (strcmp(req.path, "/health") == 0)
            return tr_http_reply(self, msg, 200, "application/json",
                                 "{\"status\":\"ok\"}", 15);
        return s_api_users(self, api, msg);
    }
    if (tr_msg_is(msg, "late")) { /* a request's deadline */
        tr_reader_t r;
        uint64_t key;
        tr_reader_init(&r, msg);
        if (tr_read_uint(&r, &key) != 0)
            return TR_EPROTO;
        for (s_req_t *q = api->open; q != NULL; q = q->next)
            if ((uint64_t)(uintptr_t)q == key) { /* still open */
                q->timer = 0;
                s_req_finish(api, q);
                break;
            }
        return 0;
    }
    return TR_EUNHANDLED;
}

static void
s_api_terminate(tr_actor_t *self, void *state, int reason)
{
    s_api_t *api = state;
    (void)reason;
    s_api_self = self;
    while (api->open != NULL)
        s_req_finish(api, api->open);
}

TR_BEHAVIOUR(users_api, .state_size = sizeof(s_api_t),
             .handle = s_api_handle, .terminate = s_api_terminate);

/* ------------------------------------------------------------------ */

static volatile sig_atomic_t s_stop;

static void
s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

int
main(int argc, char **argv)
{
    tr_init(&argc, &argv); /* a process worker of the primes pool starts here */
    int port = argc > 1 ? atoi(argv[1]) : 8080;
    int seconds = argc > 2 ? atoi(argv[2]) : 0;
    if (port < 0 || port > 65535 || seconds < 0) {
        fprintf(stderr, "usage: webservice [PORT [SECONDS]]\n");
        return 2;
    }
    const char *users = getenv("TROUPE_USERS");
    s_load_users(users ? users : TROUPE_SOURCE_DIR "/users.csv");

    tr_node_t *node = NULL;
    s_check(tr_node_create(&node, NULL), "node");
    /* 2 primes workers (processes: CPU-bound, and a crash stays there).
     * Counting primes can be done twice, so a request whose worker died
     * is given to another, twice at most: one that kills every worker it
     * runs on (a bug it hits) fails alone after three. */
    tr_pool_t *primes = NULL;
    s_check(tr_pool_start(node, &(tr_pool_opts_t){.name = "primes",
                                                  .workers = 2,
                                                  .mode = TR_POOL_PROCESSES,
                                                  .max_retries = 2},
                          &primes), "primes pool");
    /* The lookup actors and users_api under a supervisor: one that fails
     * is restarted under the same name, and the next ask finds it. */
    tr_child_spec_t kids[STORES + 1];
    char names[STORES][16];
    for (int i = 0; i < STORES; i++) {
        snprintf(names[i], sizeof names[i], "store-%d", i);
        kids[i] = (tr_child_spec_t){.id = names[i], .behaviour = "user_store",
                                    .spawn = {.name = names[i]},
                                    .restart = TR_PERMANENT};
    }
    kids[STORES] = (tr_child_spec_t){.id = "users_api",
                                     .behaviour = "users_api",
                                     .spawn = {.name = "users_api"},
                                     .restart = TR_PERMANENT};
    s_check(tr_sup_start(node, &(tr_sup_opts_t){.name = "web_sup",
                                                .strategy = TR_ONE_FOR_ONE,
                                                .max_restarts = 5},
                         kids, STORES + 1, NULL), "supervisor");
    tr_http_route_t routes[] = {
        {.method = "GET", .prefix = "/api/v1/users", .actor = "users_api",
         .timeout_ms = API_DEADLINE + 500},
        {.method = "GET", .prefix = "/health", .actor = "users_api"},
        /* 10 s for the request, tries again included (and for each
         * try: a worker stuck past it is killed) */
        {.method = "GET", .prefix = "/primes", .pool = primes,
         .task = "primes", .timeout_ms = 10000},
    };
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    if (port == 0)
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:*");
    tr_http_t *gw = NULL;
    s_check(tr_http_start(node, &(tr_http_opts_t){.name = "gateway",
                                                 .endpoint = ep,
                                                 .routes = routes,
                                                 .nroutes = 3},
                          &gw), "gateway");
    printf("webservice: listening on http://127.0.0.1:%d/ "
           "(/api/v1/users?user_ids=1,2,3  /primes?below=100000  /health)\n",
           tr_http_port(gw));
    fflush(stdout);

    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    for (int ms = 0; !s_stop && (seconds == 0 || ms < seconds * 1000);
         ms += 100)
        (void)poll(NULL, 0, 100);

    /* graceful: the gateway answers what is in flight, then the rest */
    s_check(tr_http_stop(&gw, 5000), "gateway stop");
    s_check(tr_pool_shutdown(&primes, true, 5000), "primes stop");
    s_check(tr_node_destroy(&node), "node destroy");
    printf("webservice: stopped\n");
    return 0;
}
