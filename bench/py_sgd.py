#!/usr/bin/env python3
"""bench/py_sgd.py CMD ARGS... - Python's side of bench_sgd.c.

The same training as examples/sgd.c, on the same data (the same
counter-based generator, so the same rows from the same seed), in numpy:
logistic regression, one step per batch (the rows i with i % BATCHES ==
b), learning rate 2. Prints one line of numbers: the median milliseconds
per epoch, then the final loss over every row. Standard library and numpy
only; BLAS is held to one thread, as each troupe worker is one thread.

  single ROWS FEATURES BATCHES EPOCHS SEED
        one process, the batches laid out contiguously beforehand
  parallel WORKERS ROWS FEATURES BATCHES EPOCHS SEED
        Python's data parallelism on a CPU: WORKERS processes
        (multiprocessing) each own a shard, the main process sends each
        one the weights through a Pipe every step, adds up the gradients
        they send back and steps (what sgd's param actor does)
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import multiprocessing as mp  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

LR = 2.0
U = np.uint64


def mix(x):
    """splitmix64's mixer over a uint64 array (wrapping, as in C)."""
    x = x + U(0x9E3779B97F4A7C15)
    x = (x ^ (x >> U(30))) * U(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> U(27))) * U(0x94D049BB133111EB)
    return x ^ (x >> U(31))


def uniform(seed, keys):
    s = mix(np.array([seed], dtype=U))
    return (mix(s ^ keys) >> U(11)).astype(np.float64) * 2.0 ** -53


def make_rows(seed, lo, hi, f):
    """Rows [lo, hi) as examples/sgd.c's s_make_row makes them."""
    model = uniform(seed, U(1 << 63) + np.arange(f + 1, dtype=U))
    w, b = 4 * model[:f] - 2, 2 * model[f] - 1
    key = np.arange(lo, hi, dtype=U)[:, None] * U(f + 1)
    x = 2 * uniform(seed, key + np.arange(f, dtype=U)) - 1
    z = b + x @ w
    y = uniform(seed, key[:, 0] + U(f)) < 1 / (1 + np.exp(-z))
    return x, y.astype(np.float64)


def batches_of(x, y, lo, nb):
    """The shard's part of each batch: rows i with i % nb == b."""
    out = []
    for b in range(nb):
        first = (b - lo % nb) % nb
        out.append((np.ascontiguousarray(x[first::nb]), y[first::nb].copy()))
    return out


def sums(x, y, w):
    """n, loss, gradient (bias last) over rows x, y under weights w."""
    z = x @ w[:-1] + w[-1]
    p = 1 / (1 + np.exp(-z))
    loss = np.sum(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    g = np.empty_like(w)
    g[:-1] = x.T @ (p - y)
    g[-1] = np.sum(p - y)
    return len(y), loss, g


def single(rows, f, nb, epochs, seed):
    x, y = make_rows(seed, 0, rows, f)
    parts = batches_of(x, y, 0, nb)
    w = np.zeros(f + 1)
    ms = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for xb, yb in parts:
            n, _, g = sums(xb, yb, w)
            w -= LR * g / n
        ms.append((time.perf_counter() - t0) * 1e3)
    n, loss, _ = sums(x, y, w)
    return statistics.median(ms), loss / n


def worker(conn, seed, lo, hi, f, nb):
    x, y = make_rows(seed, lo, hi, f)
    parts = batches_of(x, y, lo, nb)
    whole = (x, y)
    conn.send("ready")
    while True:
        msg = conn.recv()
        if msg is None:
            return
        b, w = msg
        n, loss, g = sums(*(whole if b < 0 else parts[b]), w)
        conn.send((n, loss, g))


def parallel(workers, rows, f, nb, epochs, seed):
    conns, procs = [], []
    for k in range(workers):
        a, b = mp.Pipe()
        lo, hi = rows * k // workers, rows * (k + 1) // workers
        p = mp.Process(target=worker, args=(b, seed, lo, hi, f, nb))
        p.start()
        conns.append(a)
        procs.append(p)
    for c in conns:
        c.recv()  # "ready": the shards are made
    w = np.zeros(f + 1)

    def step(b):
        for c in conns:
            c.send((b, w))
        n, loss, g = 0, 0.0, np.zeros(f + 1)
        for c in conns:
            pn, pl, pg = c.recv()
            n, loss, g = n + pn, loss + pl, g + pg
        return n, loss, g

    ms = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for b in range(nb):
            n, _, g = step(b)
            w -= LR * g / n
        ms.append((time.perf_counter() - t0) * 1e3)
    n, loss, _ = step(-1)
    for c in conns:
        c.send(None)
    for p in procs:
        p.join()
    return statistics.median(ms), loss / n


def main():
    cmd, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    if cmd == "single":
        ms, loss = single(*args)
    elif cmd == "parallel":
        ms, loss = parallel(*args)
    else:
        sys.exit("py_sgd.py: unknown command " + cmd)
    print(f"{ms:.3f} {loss:.9f}")


if __name__ == "__main__":
    main()
