#!/usr/bin/env python3
"""bench/py_spawn.py N - Python's side of bench_process's spawn_latency.

Starts a multiprocessing.Process N times and makes one round trip with it
over a Pipe, as troupe's tr_spawn + first call does; prints the median in
milliseconds. Standard library only."""
import multiprocessing as mp
import statistics
import sys
import time


def echo(conn):
    conn.send(conn.recv())


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    times = []
    for _ in range(n):
        parent, child = mp.Pipe()
        t0 = time.perf_counter()
        p = mp.Process(target=echo, args=(child,))
        p.start()
        parent.send(b"x" * 64)
        parent.recv()
        times.append((time.perf_counter() - t0) * 1e3)
        p.join()
    print(f"{statistics.median(times):.3f}")


if __name__ == "__main__":
    main()
