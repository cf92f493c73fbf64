#!/usr/bin/env python3
"""bench/py_pipeline.py N ROUNDS - Python's side of bench_pipeline.c.

A source, three stages and a sink joined by multiprocessing.Queue: each
stage is a multiprocessing.Process that gets an item, does the trivial
work (passes the int on) and puts it on the next queue; None ends the
stream. The main process feeds the first queue from a thread and reads
the last one. Prints items per second (the median of ROUNDS runs).
Standard library only.
"""
import multiprocessing as mp
import statistics
import sys
import threading
import time

STAGES = 3


def stage(qin, qout):
    while True:
        x = qin.get()
        if x is None:
            qout.put(None)
            return
        qout.put(x)


def feed(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)


def run(n):
    qs = [mp.Queue() for _ in range(STAGES + 1)]
    ps = [mp.Process(target=stage, args=(qs[i], qs[i + 1]))
          for i in range(STAGES)]
    for p in ps:
        p.start()
    # one item through, so every process is up before the clock starts
    qs[0].put(-1)
    assert qs[-1].get() == -1
    t0 = time.perf_counter()
    src = threading.Thread(target=feed, args=(qs[0], n))
    src.start()
    total = 0
    got = 0
    while True:
        x = qs[-1].get()
        if x is None:
            break
        total += x
        got += 1
    dt = time.perf_counter() - t0
    src.join()
    for p in ps:
        p.join()
    assert got == n and total == n * (n - 1) // 2, (got, total)
    return n / dt


def main():
    n, rounds = int(sys.argv[1]), int(sys.argv[2])
    rates = [run(n) for _ in range(rounds)]
    print(f"{statistics.median(rates):.1f}")


if __name__ == "__main__":
    main()
