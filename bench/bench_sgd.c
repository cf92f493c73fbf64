/* bench/bench_sgd.c - data-parallel training: examples/sgd timed on 1 and
 * 2 workers against the same training in numpy (bench/py_sgd.py: the
 * same data from the same seed, the same steps, so the same final loss).
 *
 *  sgd_epoch    milliseconds per epoch, 200,000 rows x 32 features in 4
 *               steps: troupe's sgd on 2 process workers vs numpy in one
 *               process (BLAS held to one thread)
 *  sgd_speedup  2 workers over 1: troupe's process workers vs Python's
 *               own data parallelism on a CPU (multiprocessing workers
 *               that own a shard, fed the weights through Pipes)
 *
 * Each round runs the example (a program of its own: its median epoch is
 * what it prints) once with 1 worker and once with 2, then the Python
 * side; the figures are medians over the rounds. Without numpy the troupe
 * figures are printed as a remark.
 *
 * Usage: bench_sgd [--quick] [name...]
 * The example's path is built in (TR_SGD_EXAMPLE, bench/meson.build);
 * $TROUPE_SGD overrides it. The Python interpreter: $TROUPE_PYTHON, else
 * /usr/bin/python3, else python3 on the PATH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "troupe.h"
#include "bench_util.h"

#ifndef TR_SGD_EXAMPLE
#define TR_SGD_EXAMPLE "build-release/examples/sgd"
#endif

#define ROWS 200000
#define FEATURES 32
#define BATCHES 4
#define SEED 1

static int s_rounds = 3;
static int s_epochs = 10;
static const char *s_bench_dir = "bench";

static const char *
s_python(void)
{
    const char *py = getenv("TROUPE_PYTHON");
    if (py != NULL && py[0] != 0)
        return py;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3"
                                                 : "python3";
}

/* Run a command (under `timeout`, so that nothing can stall the run) and
 * read the numbers of the first of its output lines that starts with
 * prefix (prefix "": the first line) with fmt into v[0..n). Returns
 * whether all n were read. */
static bool
s_run(const char *cmd, const char *prefix, const char *fmt, double *v,
      int n)
{
    char full[2048], line[512];
    snprintf(full, sizeof full, "timeout -s KILL 600 %s 2>/dev/null", cmd);
    FILE *p = popen(full, "r");
    bool ok = false;
    if (p == NULL)
        return false;
    while (fgets(line, sizeof line, p) != NULL)
        if (!ok && strncmp(line, prefix, strlen(prefix)) == 0)
            ok = sscanf(line + strlen(prefix), fmt, &v[0], &v[1]) == n;
    return pclose(p) == 0 && ok;
}

/* examples/sgd on w process workers: ms per epoch, final loss. */
static void
s_troupe(int w, double *ms, double *loss)
{
    const char *exe = getenv("TROUPE_SGD");
    char cmd[1024];
    double v[2];
    snprintf(cmd, sizeof cmd, "'%s' --workers %d --rows %d --features %d "
             "--batches %d --epochs %d --seed %d",
             exe ? exe : TR_SGD_EXAMPLE, w, ROWS, FEATURES, BATCHES,
             s_epochs, SEED);
    /* sgd: final loss L, accuracy A% on R rows, M ms per epoch (median) */
    if (!s_run(cmd, "sgd: final loss ", "%lf, accuracy %*f%% on %*f rows, "
               "%lf ms", v, 2)) {
        fprintf(stderr, "bench_sgd: %s failed\n", cmd);
        exit(1);
    }
    *loss = v[0], *ms = v[1];
}

/* bench/py_sgd.py with args: ms per epoch, final loss; false if Python
 * or numpy failed. */
static bool
s_py(const char *args, double *ms, double *loss)
{
    char cmd[1024];
    double v[2];
    snprintf(cmd, sizeof cmd, "'%s' '%s/py_sgd.py' %s %d %d %d %d %d",
             s_python(), s_bench_dir, args, ROWS, FEATURES, BATCHES,
             s_epochs, SEED);
    if (!s_run(cmd, "", "%lf %lf", v, 2))
        return false;
    *ms = v[0], *loss = v[1];
    return true;
}

int
main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0)
            s_rounds = 1, s_epochs = 5;
    const char *src = getenv("TROUPE_BENCH_DIR");
    if (src != NULL)
        s_bench_dir = src;
    bool epoch = bu_wanted(argc, argv, "sgd_epoch");
    bool speedup = bu_wanted(argc, argv, "sgd_speedup");
    if (!epoch && !speedup)
        return 0;

    /* t: troupe 1 and 2 workers; p: numpy single, Python 1 and 2. */
    double t[2][8], p[3][8], tl = 0, pl = 0, dummy;
    bool py = true;
    for (int r = 0; r < s_rounds; r++) {
        s_troupe(1, &t[0][r], &tl);
        s_troupe(2, &t[1][r], &dummy);
        if (dummy < tl - 1e-7 || dummy > tl + 1e-7) {
            fprintf(stderr, "bench_sgd: loss %.9f on 1 worker, %.9f on 2\n",
                    tl, dummy);
            exit(1);
        }
        py = py && s_py("single", &p[0][r], &pl) &&
             (!speedup || (s_py("parallel 1", &p[1][r], &dummy) &&
                           s_py("parallel 2", &p[2][r], &dummy)));
    }
    double t1 = bu_median(t[0], s_rounds), t2 = bu_median(t[1], s_rounds);
    if (!py) {
        printf("# sgd: troupe 1 worker %.1f ms, 2 workers %.1f ms per epoch "
               "(speedup %.2fx); no baseline: %s %s/py_sgd.py failed "
               "(python3-numpy not installed? apt-get install "
               "python3-numpy)\n", t1, t2, t1 / t2, s_python(), s_bench_dir);
        return 0;
    }
    double p0 = bu_median(p[0], s_rounds);
    if (epoch) {
        printf("BENCH sgd_epoch troupe=%.1fms baseline=%.1fms ratio=%.2f\n",
               t2, p0, t2 / p0);
        printf("# sgd_epoch: lower is better; an epoch of %d rows x %d "
               "features in %d steps: troupe's sgd on 2 process workers "
               "(1 worker: %.1f ms) vs numpy in one process; final loss "
               "%.9f and %.9f (the same data and steps), median of %d "
               "rounds\n", ROWS, FEATURES, BATCHES, t1, tl, pl, s_rounds);
    }
    if (speedup) {
        double p1 = bu_median(p[1], s_rounds), p2 = bu_median(p[2], s_rounds);
        printf("BENCH sgd_speedup troupe=%.2fx baseline=%.2fx ratio=%.2f\n",
               t1 / t2, p1 / p2, (t1 / t2) / (p1 / p2));
        printf("# sgd_speedup: higher is better; 2 workers over 1: troupe "
               "%.1f -> %.1f ms per epoch, Python multiprocessing + numpy "
               "workers fed through Pipes %.1f -> %.1f ms, median of %d "
               "rounds\n", t1, t2, p1, p2, s_rounds);
    }
    return 0;
}
