/* examples/wordcount.c - a pipeline: read files -> tokenize (a pool of
 * worker processes) -> count (partitioned by word) -> merge, checked
 * against a serial count. With --kill, a tokenize worker SIGKILLs itself
 * halfway: it is replaced, its lines are delivered again, and the counts
 * do not change.
 *
 * The Python it replaces (a multiprocessing.Queue chain):
 *
 *     def tokenize(qin, qout):
 *         for line in iter(qin.get, None): [qout.put(w) for w in line.split()]
 *         qout.put(None)
 *     def count(qin, qout):
 *         c = Counter(iter(qin.get, None)); qout.put(c)
 *     lines, words, counts = Queue(), Queue(), Queue()
 *     Process(target=tokenize, args=(lines, words)).start()
 *     Process(target=count, args=(words, counts)).start()
 *     for path in files: [lines.put(l) for l in open(path)]
 *     lines.put(None); total = counts.get()
 *
 * That chain has one worker a stage (more need one sentinel each, and
 * counters merged by hand), unbounded queues, and a killed worker loses
 * what it held and hangs the rest. Here each stage is a pool: the stage
 * functions see one item at a time, a stage waits while the next is full,
 * words go to the count partition that owns them (tr_pipe_emit_key), and
 * end of stream is counted for you. Where stages run is chosen at launch:
 *     TROUPE_PLACE=tokenize=process:2,count=process:3 wordcount
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "troupe.h"

#define FILES 6
#define LINES 400
#define SLOTS 4096 /* room for the vocabulary below, many times over */

static const char *s_vocab[] = {"actor", "message", "mailbox", "queue",
    "process", "thread", "pool", "stage", "pipeline", "worker", "future",
    "supervisor", "restart", "credit", "batch", "sink", "the", "a", "of"};

static void
s_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "wordcount: %s: %s\n", what, tr_strerror(rc));
        exit(1);
    }
}

/* Word counts: open addressing, words up to 31 bytes. */
typedef struct { char w[32]; int64_t n; } s_slot_t;
typedef struct { s_slot_t s[SLOTS]; } s_table_t;

/* The slot of word w: where it is, or where it goes. */
static s_slot_t *
s_slot(s_table_t *t, const char *w, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)w[i]) * 1099511628211ull;
    for (size_t i = h % SLOTS;; i = (i + 1) % SLOTS)
        if (t->s[i].w[0] == 0 ||
            (strlen(t->s[i].w) == len && memcmp(t->s[i].w, w, len) == 0))
            return &t->s[i];
}

static void
s_add(s_table_t *t, const char *w, size_t len, int64_t n)
{
    s_slot_t *s = s_slot(t, w, len);
    memcpy(s->w, w, len);
    s->n += n;
}

/* read: "file" [path] -> "line" [text] for each line of the file. */
static int
s_read(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    char path[512], line[1024];
    tr_reader_t r;
    tr_reader_init(&r, item);
    int rc = tr_read_str_copy(&r, path, sizeof path);
    FILE *f = rc == 0 ? fopen(path, "r") : NULL;
    if (f == NULL)
        return rc ? rc : TR_ENOENT;
    while (rc == 0 && fgets(line, sizeof line, f) != NULL) {
        tr_msg_t *m = NULL;
        if ((rc = tr_msg_create(&m, "line")) == 0 &&
            (rc = tr_msg_add_str(m, line)) == 0)
            rc = tr_pipe_emit(ctx, &m);
        tr_msg_destroy(&m);
    }
    fclose(f);
    return rc;
}
TR_STAGE(read, .fn = s_read);

/* tokenize: "line" [text] -> "word" [w] for each word, keyed by it. */
static int
s_tokenize(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)state;
    const char *s, *kill = getenv("WC_KILL");
    size_t len;
    tr_reader_t r;
    tr_reader_init(&r, item);
    int rc = tr_read_str(&r, &s, &len);
    /* --kill: the first worker to see the marker's line dies with it. */
    if (rc == 0 && kill != NULL && len > 5 && memcmp(s, "kill ", 5) == 0 &&
        unlink(kill) == 0) {
        fprintf(stderr, "wordcount: the tokenize worker in process %ld "
                "takes the poisoned line and is SIGKILLed\n", (long)getpid());
        raise(SIGKILL);
    }
    for (size_t i = 0; i < len && rc == 0;) {
        size_t j = i;
        while (j < len && s[j] != ' ' && s[j] != '\n')
            j++;
        tr_msg_t *m = NULL;
        if (j > i && j - i < 32 && (rc = tr_msg_create(&m, "word")) == 0 &&
            (rc = tr_msg_add_strn(m, s + i, j - i)) == 0)
            rc = tr_pipe_emit_key(ctx, s + i, j - i, &m);
        tr_msg_destroy(&m);
        i = j + 1;
    }
    return rc;
}
TR_STAGE(tokenize, .fn = s_tokenize);

/* count: a partition's table; at the end "count" [w, n] for each word. */
static int
s_count(tr_pipe_ctx_t *ctx, void *state, const tr_msg_t *item)
{
    (void)ctx;
    const char *w;
    size_t len;
    tr_reader_t r;
    tr_reader_init(&r, item);
    int rc = tr_read_str(&r, &w, &len);
    if (rc == 0)
        s_add(state, w, len, 1);
    return rc;
}

static int
s_count_end(tr_pipe_ctx_t *ctx, void *state)
{
    s_table_t *t = state;
    int rc = 0;
    for (int i = 0; i < SLOTS && rc == 0; i++) {
        tr_msg_t *m = NULL;
        if (t->s[i].n > 0 && (rc = tr_msg_create(&m, "count")) == 0 &&
            (rc = tr_msg_add_str(m, t->s[i].w)) == 0 &&
            (rc = tr_msg_add_int(m, t->s[i].n)) == 0)
            rc = tr_pipe_emit(ctx, &m);
        tr_msg_destroy(&m);
    }
    return rc;
}
TR_STAGE(count, .fn = s_count, .finish = s_count_end,
         .state_size = sizeof(s_table_t));

/* merge: the sink adds up the partitions' counts. */
static int
s_merge(void *arg, uint64_t index, int rc, const tr_msg_t *result)
{
    (void)index;
    const char *w;
    size_t len;
    int64_t n;
    tr_reader_t r;
    tr_reader_init(&r, result);
    if (rc == 0 && (rc = tr_read_str(&r, &w, &len)) == 0 &&
        (rc = tr_read_int(&r, &n)) == 0)
        s_add(arg, w, len, n);
    return rc;
}

struct files { char dir[64]; int at; };

/* The source: one item a file. */
static int
s_next(void *arg, tr_msg_t **item)
{
    struct files *fs = arg;
    if (fs->at == FILES)
        return 1;
    char path[128];
    snprintf(path, sizeof path, "%s/%d.txt", fs->dir, fs->at++);
    int rc = tr_msg_create(item, "file");
    if (rc == 0 && (rc = tr_msg_add_str(*item, path)) != 0)
        tr_msg_destroy(item);
    return rc;
}

int
main(int argc, char **argv)
{
    s_check(tr_init(&argc, &argv), "tr_init"); /* a worker stays here */
    bool kill = argc > 1 && strcmp(argv[1], "--kill") == 0;
    static s_table_t serial, merged;
    /* The input: FILES files of LINES lines of words (seeded). */
    struct files fs = {.dir = "/tmp/wordcount.XXXXXX"};
    if (mkdtemp(fs.dir) == NULL)
        s_check(TR_ESYS, "mkdtemp");
    uint64_t seed = 42;
    for (int f = 0; f < FILES; f++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%d.txt", fs.dir, f);
        FILE *out = fopen(path, "w");
        for (int l = 0; out != NULL && l < LINES; l++) {
            if (f == FILES / 2 && l == LINES / 2 && kill) {
                fputs("kill ", out); /* the line its worker dies on */
                s_add(&serial, "kill", 4, 1);
            }
            for (int k = (int)(seed % 12); k >= 0; k--) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                const char *w = s_vocab[(seed >> 33) % 19];
                fprintf(out, "%s%s", w, k ? " " : "\n");
                s_add(&serial, w, strlen(w), 1);
            }
        }
        if (out == NULL || fclose(out) != 0)
            s_check(TR_ESYS, path);
    }
    /* --kill: the marker file is removed by the worker that dies. */
    char marker[128];
    snprintf(marker, sizeof marker, "%s/kill", fs.dir);
    FILE *mk = kill ? fopen(marker, "w") : NULL;
    if (kill && (mk == NULL || fclose(mk) != 0 ||
                 setenv("WC_KILL", marker, 1) != 0))
        s_check(TR_ESYS, marker);

    tr_node_t *node = NULL;
    s_check(tr_node_create(&node, NULL), "node");
    tr_stage_opts_t stages[] = {
        {.stage = "read"},
        {.stage = "tokenize", .workers = 3, .place = TR_PLACE_PROCESS},
        {.stage = "count", .workers = 2}, /* 2 partitions of the words */
    };
    tr_pipeline_opts_t o = {.stages = stages, .nstages = 3, .batch = 64};
    tr_pipeline_t *pipe = NULL;
    s_check(tr_pipeline_start(node, &o, &pipe), "pipeline");
    const char *placed = getenv("TROUPE_PLACE");
    if (placed != NULL && placed[0] != '\0')
        printf("read -> tokenize -> count -> merge, placed by "
               "TROUPE_PLACE=%s\n", placed);
    else
        printf("read -> tokenize (3 worker processes) -> count (2 partitions "
               "by word) -> merge\n");
    fflush(stdout);
    int rc = tr_pipeline_run(pipe, s_next, &fs, s_merge, &merged);
    tr_pipeline_stats_t st = {0};
    int src = rc ? rc : tr_pipeline_stats(pipe, &st);
    s_check(tr_pipeline_stop(&pipe, TR_DEFAULT), "stop");
    tr_node_destroy(&node);
    s_check(rc, "run");
    s_check(src, "stats");

    int words = 0, total = 0, merged_words = 0;
    bool match = true;
    for (int i = 0; i < SLOTS; i++) {
        const s_slot_t *s = &serial.s[i];
        if (s->n > 0) {
            words++;
            total += (int)s->n;
            match &= s_slot(&merged, s->w, strlen(s->w))->n == s->n;
        }
        merged_words += merged.s[i].n > 0;
    }
    match &= merged_words == words;
    printf("%d files, %d words, %d distinct\n", FILES, total, words);
    if (kill)
        printf("a tokenize worker was killed and replaced: %llu worker "
               "death(s), %llu batch(es) of lines delivered again\n",
               (unsigned long long)st.worker_deaths,
               (unsigned long long)st.redelivered);
    printf("counts match the serial count: %s\n", match ? "yes" : "no");
    for (int f = 0; f < FILES; f++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%d.txt", fs.dir, f);
        unlink(path);
    }
    unlink(marker);
    rmdir(fs.dir);
    return match && (!kill || st.worker_deaths > 0) ? 0 : 1;
}
