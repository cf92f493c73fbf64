#!/usr/bin/env python3
"""bench/suite/python_suite.py - the suite's workloads in Python, standard
library only: what the tutorial troupe was started from would write.

--mode thread (system "python"): each actor is a threading.Thread reading
its mailbox, a queue.SimpleQueue (the fastest queue in the standard
library); the pool is concurrent.futures.ThreadPoolExecutor.
--mode process (system "python-mp"): each actor is a
multiprocessing.Process reading a multiprocessing.SimpleQueue (a locked
pipe, without Queue's feeder thread: the quicker of the two); the pool is
ProcessPoolExecutor. The driver is the main thread in both.

The mutex workload also times the tutorial's own code: threads adding to a
global under threading.Lock ("py-lock"), processes adding to a
multiprocessing.Value under its lock ("py-mp-value").

Same command line and RESULT lines as every program of the suite
(bench/suite/suite.h); workloads and checks: bench/suite/README.md.
"""
import concurrent.futures as cf
import multiprocessing as mp
import os
import queue
import sys
import threading
import time

MASK64 = (1 << 64) - 1


def die(msg):
    sys.stderr.write("python_suite: %s\n" % msg)
    sys.exit(1)


def result(name, system, number, check):
    print("RESULT %s %s %.6f %s" % (name, system, number, check), flush=True)


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE") // 1024


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Threads:
    """Actors as threads with SimpleQueue mailboxes."""
    name = "python"

    def queue(self):
        return queue.SimpleQueue()

    def start(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        return t

    def executor(self, w):
        return cf.ThreadPoolExecutor(max_workers=w)


class Processes:
    """Actors as processes with multiprocessing.SimpleQueue mailboxes."""
    name = "python-mp"

    def __init__(self):
        self.ctx = mp.get_context()  # Linux: fork

    def queue(self):
        return self.ctx.SimpleQueue()

    def start(self, fn, *args):
        p = self.ctx.Process(target=fn, args=args, daemon=True)
        p.start()
        return p

    def executor(self, w):
        return cf.ProcessPoolExecutor(max_workers=w)


def ready_all(ctl, n):
    """The driver's barrier: every actor set up before the clock starts."""
    for _ in range(n):
        ctl.get()


def join_all(handles):
    for h in handles:
        h.join()


# --------------------------------------------------------------------------

def pong(ctl, inbox, outbox, n):
    ctl.put("ready")
    get, put = inbox.get, outbox.put
    for _ in range(n):
        get()
        put("pong")


def pingpong(s, name, p):
    n = p["n"]
    ctl, inbox, outbox = s.queue(), s.queue(), s.queue()
    h = s.start(pong, ctl, inbox, outbox, n)
    ready_all(ctl, 1)
    got = 0
    t0 = time.perf_counter()
    for _ in range(n):
        inbox.put("ping")
        got += outbox.get() == "pong"
    result(name, s.name, time.perf_counter() - t0, got)
    join_all([h])


def counter(ctl, inbox, reply):
    """"inc" adds one; ("get", q) answers the count on q; None ends."""
    ctl.put("ready")
    count = 0
    get = inbox.get
    while True:
        m = get()
        if m == "inc":
            count += 1
        elif m is None:
            return
        else:
            reply.put(count)


def counters(s, name, k, n):
    ctl, reply = s.queue(), s.queue()
    boxes = [s.queue() for _ in range(k)]
    hs = [s.start(counter, ctl, b, reply) for b in boxes]
    ready_all(ctl, k)
    puts = [b.put for b in boxes]
    t0 = time.perf_counter()
    for _ in range(n):
        for put in puts:
            put("inc")
    total = 0
    for b in boxes:
        b.put("get")
        total += reply.get()
    result(name, s.name, time.perf_counter() - t0, total)
    for b in boxes:
        b.put(None)
    join_all(hs)


def counting(s, name, p):
    counters(s, name, 1, p["n"])


def fjthrput(s, name, p):
    counters(s, name, p["k"], p["n"])


def ring_actor(ctl, idx, inbox, nxt, done):
    ctl.put("ready")
    get, put = inbox.get, nxt.put
    while True:
        m = get()
        if m is None:
            return
        left, hops = m
        if left == 0:
            done.put((hops, idx))
        else:
            put((left - 1, hops + 1))


def ring(s, name, p):
    r, t = p["r"], p["t"]
    ctl, done = s.queue(), s.queue()
    boxes = [s.queue() for _ in range(r)]
    hs = [s.start(ring_actor, ctl, i, boxes[i], boxes[(i + 1) % r], done)
          for i in range(r)]
    ready_all(ctl, r)
    t0 = time.perf_counter()
    boxes[0].put((t, 0))
    hops, pos = done.get()
    result(name, s.name, time.perf_counter() - t0, "%d:%d" % (hops, pos))
    for b in boxes:
        b.put(None)
    join_all(hs)


def big_actor(ctl, idx, boxes, p, done):
    """("p", from) is a ping, "o" a pong, "go" starts, None ends."""
    ctl.put("ready")
    n = len(boxes)
    rng = idx + 1
    pongs = 0
    inbox = boxes[idx]
    while True:
        m = inbox.get()
        if m is None:
            return
        if m == "o":
            pongs += 1
            if pongs == p:
                done.put(pongs)
                continue
        elif m != "go":
            boxes[m[1]].put("o")
            continue
        rng = (rng * 6364136223846793005 + 1442695040888963407) & MASK64
        to = (idx + 1 + (rng >> 33) % (n - 1)) % n
        boxes[to].put(("p", idx))


def big(s, name, p):
    a, pings = p["a"], p["p"]
    ctl, done = s.queue(), s.queue()
    boxes = [s.queue() for _ in range(a)]
    hs = [s.start(big_actor, ctl, i, boxes, pings, done) for i in range(a)]
    ready_all(ctl, a)
    t0 = time.perf_counter()
    for b in boxes:
        b.put("go")
    total = sum(done.get() for _ in range(a))
    result(name, s.name, time.perf_counter() - t0, total)
    for b in boxes:
        b.put(None)
    join_all(hs)


def task(x):
    return 2 * x + 1


def pool(s, name, p):
    w, n = p["w"], p["n"]
    with s.executor(w) as ex:
        list(ex.map(task, range(w)))  # workers started
        t0 = time.perf_counter()
        total = sum(ex.map(task, range(n)))
        result(name, s.name, time.perf_counter() - t0, total)


def sleepy_task(xs):
    x, us = xs
    time.sleep(us / 1e6)
    return 2 * x + 1


def io(s, name, p):
    """pool's tasks, each sleeping s microseconds (blocking I/O)."""
    w, n, us = p["w"], p["n"], p["s"]
    with s.executor(w) as ex:
        list(ex.map(task, range(w)))  # workers started
        t0 = time.perf_counter()
        total = sum(ex.map(sleepy_task, ((x, us) for x in range(n))))
        result(name, s.name, time.perf_counter() - t0, total)


# --- starve: a call to a counter that another writer floods ---------------

def starve_counter(box, reply):
    count = 0
    get = box.get
    while True:
        m = get()
        if m == "inc":
            count += 1
        elif m is None:
            return
        else:
            reply.put(count)


def flooder(box, stop):
    put = box.put
    while not stop.is_set():
        for _ in range(1000):
            put("inc")


def starve(s, name, p):
    """The tutorial's bounded buffer (a Queue with maxsize, i.e. a
    semaphore on its slots): one writer keeps it full, the driver's
    request waits behind what is queued."""
    m = p["m"]
    if isinstance(s, Threads):
        box, reply = queue.Queue(maxsize=1000), queue.Queue()
        stop = threading.Event()
    else:
        box, reply = s.ctx.Queue(maxsize=1000), s.ctx.Queue()
        stop = s.ctx.Event()
    hc = s.start(starve_counter, box, reply)
    hf = s.start(flooder, box, stop)
    time.sleep(0.01)  # the flood under way
    lat, first, c = [], None, 0
    for _ in range(m):
        t0 = time.perf_counter()
        box.put("get")
        c = reply.get()
        lat.append(time.perf_counter() - t0)
        first = c if first is None else first
        time.sleep(0.001)
    stop.set()
    hf.join()
    box.put(None)
    hc.join()
    lat.sort()
    print("# starve %s: the counter handled %d incs meanwhile" %
          (s.name, c - first))
    result(name, s.name, lat[len(lat) // 2], len(lat))


# --- deadlock: two locks taken in opposite orders --------------------------

def cycle(first, second, barrier, d, out):
    with first:
        barrier.wait()
        # a plain "with second:" would wait forever; the timeout is
        # Python's way out
        if second.acquire(timeout=d / 1000):
            second.release()
        else:
            out.put("timeout")


def deadlock(s, name, p):
    d = p["d"]
    if isinstance(s, Threads):
        a, b, barrier = threading.Lock(), threading.Lock(), \
            threading.Barrier(2)
    else:
        a, b, barrier = s.ctx.Lock(), s.ctx.Lock(), s.ctx.Barrier(2)
    out = s.queue()
    t0 = time.perf_counter()
    hs = [s.start(cycle, a, b, barrier, d, out),
          s.start(cycle, b, a, barrier, d, out)]
    join_all(hs)
    secs = time.perf_counter() - t0
    timeouts = 0
    while not out.empty():
        out.get()
        timeouts += 1
    # one gives up at its timeout, which lets the other through
    print("# deadlock %s: %d of 2 acquires timed out" % (s.name, timeouts))
    result(name, s.name, secs, sum(not h.is_alive() for h in hs))


# --- mutex: the tutorial's lock against a counter actor --------------------

COUNT = 0


def lock_writer(lock, n):
    global COUNT
    for _ in range(n):
        with lock:
            COUNT += 1


def value_writer(value, n):
    for _ in range(n):
        with value.get_lock():
            value.value += 1


def mutex(s, name, p):
    global COUNT
    t, n = p["t"], p["n"]
    ctl, box, sync = s.queue(), s.queue(), s.queue()
    # one counter actor; writer i gets its answer on replies[i], the
    # driver on replies[t]
    replies = [s.queue() for _ in range(t)] + [sync]
    hc = s.start(mutex_counter, ctl, box, replies)
    ready_all(ctl, 1)
    t0 = time.perf_counter()
    hs = [s.start(mutex_writer, box, n, sync, replies[i], i)
          for i in range(t)]
    for _ in range(t):
        sync.get()
    box.put(("get", t))
    total = sync.get()
    result(name, s.name, time.perf_counter() - t0, total)
    box.put(None)
    join_all(hs + [hc])
    if isinstance(s, Threads):
        COUNT = 0
        lock = threading.Lock()
        t0 = time.perf_counter()
        hs = [s.start(lock_writer, lock, n) for _ in range(t)]
        join_all(hs)
        result(name, "py-lock", time.perf_counter() - t0, COUNT)
    else:
        value = s.ctx.Value("q", 0)
        t0 = time.perf_counter()
        hs = [s.start(value_writer, value, n) for _ in range(t)]
        join_all(hs)
        result(name, "py-mp-value", time.perf_counter() - t0, value.value)


def mutex_counter(ctl, box, replies):
    """"inc" adds one; ("get", i) answers on replies[i]; None ends."""
    ctl.put("ready")
    count = 0
    get = box.get
    while True:
        m = get()
        if m == "inc":
            count += 1
        elif m is None:
            return
        else:
            replies[m[1]].put(count)


def mutex_writer(box, n, sync, reply, i):
    put = box.put
    for _ in range(n):
        put("inc")
    put(("get", i))  # after this writer's incs: one mailbox, in order
    sync.put(reply.get())


# --- memory ----------------------------------------------------------------

def idle(ctl, ev):
    ctl.put("ready")
    ev.wait()


def memory(s, name, p):
    n = p["n"]
    ctl = s.queue()
    if isinstance(s, Threads):
        ev = threading.Event()
        first = s.start(idle, ctl, ev)
        ready_all(ctl, 1)
        before = rss_kib()
        hs = [s.start(idle, ctl, ev) for _ in range(n)]
        ready_all(ctl, n)
        kib = rss_kib() - before
        alive = sum(h.is_alive() for h in hs)
    else:
        ev = s.ctx.Event()
        first = s.start(idle, ctl, ev)
        ready_all(ctl, 1)
        before = rss_kib()
        hs = [s.start(idle, ctl, ev) for _ in range(n)]
        ready_all(ctl, n)
        # the children's PSS (their share of the pages they share with
        # this process after fork) plus what this process grew
        kib = rss_kib() - before + sum(pss_kib(h.pid) for h in hs)
        alive = sum(h.is_alive() for h in hs)
    result(name, s.name, float(kib), alive)
    ev.set()
    join_all(hs + [first])


WORKLOADS = {
    "pingpong": pingpong, "counting": counting, "fjthrput": fjthrput,
    "ring": ring, "big": big, "pool": pool, "mutex": mutex,
    "memory": memory, "io": io, "starve": starve, "deadlock": deadlock,
}


def main(argv):
    mode, rounds, specs = "thread", 1, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--mode" and i + 1 < len(argv):
            mode, i = argv[i + 1], i + 2
            continue
        if a == "--rounds" and i + 1 < len(argv):
            rounds, i = int(argv[i + 1]), i + 2
            continue
        wname, _, rest = a.partition(":")
        params = {}
        for kv in filter(None, rest.split(",")):
            k, _, v = kv.partition("=")
            params[k] = int(v)
            if params[k] < 1:
                die("%s: %s must be at least 1" % (wname, k))
        if wname not in WORKLOADS:
            die("unknown workload '%s'" % wname)
        specs.append((wname, params))
        i += 1
    if mode == "thread":
        s = Threads()
    elif mode == "process":
        s = Processes()
    else:
        die("--mode is thread or process")
    for wname, params in specs:
        for _ in range(rounds):
            WORKLOADS[wname](s, wname, params)


if __name__ == "__main__":
    main(sys.argv[1:])
