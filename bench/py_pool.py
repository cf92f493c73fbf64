#!/usr/bin/env python3
"""bench/py_pool.py CMD ARGS... - Python's side of bench_pool.c.

The same work as troupe's side, on 2 workers; prints one line of numbers
(the first is the figure bench_pool compares). Standard library only.

  submit_process N WINDOW ROUNDS  ProcessPoolExecutor.submit of N trivial
                                  tasks, WINDOW in flight: tasks/s (median)
  submit_thread N WINDOW ROUNDS   the same with ThreadPoolExecutor
  map_chunk1 N ROUNDS             multiprocessing.Pool.map(chunksize=1):
                                  items/s (median)
  map_chunked N ROUNDS            Pool.map with its default chunksize
  speedup LIMIT ROUNDS            primes below LIMIT in 16 tasks on
                                  ProcessPoolExecutor(1) and (2): speedup,
                                  then the two times in seconds (medians)
  chaos N KILLS INTERVAL_MS TASK_US TIMEOUT_S
                                  N tasks (a TASK_US sleep each) on
                                  ProcessPoolExecutor(2) while a thread
                                  SIGKILLs a random worker every
                                  INTERVAL_MS, KILLS times: lost+hung,
                                  failed, hung, kills, seconds
"""
import concurrent.futures as cf
import multiprocessing as mp
from concurrent.futures.process import BrokenProcessPool
import os
import random
import signal
import statistics
import sys
import threading
import time

WORKERS = 2


def ident(x):
    return x


def is_prime(n):
    if n < 2:
        return 0
    d = 2
    while d * d <= n:
        if n % d == 0:
            return 0
        d += 1
    return 1


def count_primes(lo, hi):
    return sum(is_prime(i) for i in range(lo, hi))


def nap(x, us):
    time.sleep(us / 1e6)
    return x


def warm_up(ex):
    # ProcessPoolExecutor starts its workers on demand: two tasks at once
    # make it start both before anything is timed.
    list(ex.map(nap, range(2 * WORKERS), [50000] * (2 * WORKERS)))


def submit_window_callbacks(ex, n, window):
    """A window of futures, each collected by a done callback (the faster
    way for ProcessPoolExecutor)."""
    sem = threading.BoundedSemaphore(window)
    total = [0]

    def collect(f):
        total[0] += f.result()
        sem.release()

    t0 = time.perf_counter()
    for i in range(n):
        sem.acquire()
        ex.submit(ident, i).add_done_callback(collect)
    for _ in range(window):
        sem.acquire()
    dt = time.perf_counter() - t0
    assert total[0] == n * (n - 1) // 2, total[0]
    return n / dt


def submit_window_wait(ex, n, window):
    """A window of futures, collected with wait(FIRST_COMPLETED) (the
    faster way for ThreadPoolExecutor)."""
    t0 = time.perf_counter()
    pending = set()
    total = 0
    i = 0
    while i < n or pending:
        while i < n and len(pending) < window:
            pending.add(ex.submit(ident, i))
            i += 1
        done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        for f in done:
            total += f.result()
    dt = time.perf_counter() - t0
    assert total == n * (n - 1) // 2, total
    return n / dt


def cmd_submit(processes, n, window, rounds):
    if processes:
        ex, run = cf.ProcessPoolExecutor(WORKERS), submit_window_callbacks
    else:
        ex, run = cf.ThreadPoolExecutor(WORKERS), submit_window_wait
    with ex:
        warm_up(ex)
        run(ex, max(n // 10, 1), window)
        rates = [run(ex, n, window) for _ in range(rounds)]
    print(f"{statistics.median(rates):.1f}")


def cmd_map(n, chunked, rounds):
    with mp.Pool(WORKERS) as pool:
        pool.map(ident, range(max(n // 10, 1)), chunksize=None if chunked
                 else 1)
        rates = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            if chunked:
                out = pool.map(ident, range(n))
            else:
                out = pool.map(ident, range(n), chunksize=1)
            rates.append(n / (time.perf_counter() - t0))
            assert len(out) == n and out[-1] == n - 1
    print(f"{statistics.median(rates):.1f}")


def primes_time(workers, limit):
    tasks = 16
    step = (limit + tasks - 1) // tasks
    with cf.ProcessPoolExecutor(workers) as ex:
        warm_up(ex)
        t0 = time.perf_counter()
        fs = [ex.submit(count_primes, i * step, (i + 1) * step)
              for i in range(tasks)]
        count = sum(f.result() for f in fs)
        return time.perf_counter() - t0, count


def cmd_speedup(limit, rounds):
    t1s, t2s = [], []
    for _ in range(rounds):
        t1, c1 = primes_time(1, limit)
        t2, c2 = primes_time(2, limit)
        assert c1 == c2
        t1s.append(t1)
        t2s.append(t2)
    t1, t2 = statistics.median(t1s), statistics.median(t2s)
    print(f"{t1 / t2:.3f} {t1:.3f} {t2:.3f}")


def children():
    """The live (not zombie) children of this process: the workers."""
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == me and fields[0] != "Z":
            out.append(int(name))
    return out


def killer(want, interval, stop, kills):
    rng = random.Random(os.getpid())
    time.sleep(interval)
    while not stop.is_set() and kills[0] < want:
        kids = children()
        try:
            if not kids:
                raise ProcessLookupError
            os.kill(rng.choice(kids), signal.SIGKILL)
            kills[0] += 1
            stop.wait(interval)
        except ProcessLookupError:
            # none alive (a broken pool never starts new ones): look again
            stop.wait(0.001)


def cmd_chaos(n, want, interval_ms, task_us, timeout_s):
    ex = cf.ProcessPoolExecutor(WORKERS)
    warm_up(ex)
    stop = threading.Event()
    kills = [0]
    th = threading.Thread(target=killer,
                          args=(want, interval_ms / 1e3, stop, kills),
                          daemon=True)
    t0 = time.perf_counter()
    th.start()
    fs = []
    failed = 0
    for i in range(n):
        try:
            fs.append(ex.submit(nap, i, task_us))
        except BrokenProcessPool:
            failed += n - i  # the pool broke: the rest cannot even start
            break
    done, not_done = cf.wait(fs, timeout=timeout_s)
    secs = time.perf_counter() - t0
    stop.set()
    for f in done:
        if f.exception() is not None or not 0 <= f.result() < n:
            failed += 1
    hung = len(not_done)
    print(f"{failed + hung} {failed} {hung} {kills[0]} {secs:.2f}")
    sys.stdout.flush()
    # Do not wait for a pool that may hang.
    ex.shutdown(wait=False, cancel_futures=True)
    os._exit(0)


def main():
    cmd, args = sys.argv[1], [int(float(a)) for a in sys.argv[2:]]
    if cmd == "submit_process":
        cmd_submit(True, *args)
    elif cmd == "submit_thread":
        cmd_submit(False, *args)
    elif cmd == "map_chunk1":
        cmd_map(args[0], False, args[1])
    elif cmd == "map_chunked":
        cmd_map(args[0], True, args[1])
    elif cmd == "speedup":
        cmd_speedup(*args)
    elif cmd == "chaos":
        cmd_chaos(*args)
    else:
        sys.exit(f"py_pool.py: unknown command {cmd}")


if __name__ == "__main__":
    main()
