#!/usr/bin/env python3
"""bench/suite/runner.py - runs every implementation of the side-by-side
suite, checks each result, prints the tables and (full mode) writes
docs/benchmarks.md, docs/benchmarks.svg and the tables of
docs/bottlenecks.md. Started by bench/suite/run, which builds first; see
bench/suite/README.md.

Standard library only.
"""
import argparse
import datetime
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The two tiers: actors in one OS process, and every actor (or, for
# erlang-dist, every far actor) in another OS process. Each system's ratio
# is to the troupe of its tier.
IN_TIER = ["troupe", "libzmq", "czmq", "caf", "erlang", "python"]
CROSS_TIER = ["troupe-proc", "libzmq-ipc", "erlang-dist", "python-mp"]
TIER_TROUPE = {s: "troupe" for s in IN_TIER}
TIER_TROUPE.update({s: "troupe-proc" for s in CROSS_TIER})

# The bottleneck workloads' extra implementations (printed by the troupe
# and Python programs next to their actors).
MUTEX_ROWS = [
    ("c-atomic", "C11 atomic_fetch_add, T threads (no lock at all)"),
    ("pthread-mutex", "pthread mutex around counter++, T threads"),
    ("troupe", "troupe counter actor, T writer actors (thread actors)"),
    ("troupe-proc", "troupe counter actor, T writers (process actors)"),
    ("caf", "CAF counter actor, T writer actors"),
    ("erlang", "Erlang counter process, T writer processes"),
    ("erlang-dist", "Erlang counter on another node, T writers here"),
    ("py-lock", "Python: T threads, global counter under threading.Lock"),
    ("python", "Python: counter thread + SimpleQueue, T writer threads"),
    ("py-mp-value", "Python: T processes, multiprocessing.Value + its lock"),
    ("python-mp", "Python: counter process, T writer processes"),
]
MEMORY_ROWS = [
    ("pthread", "bare pthread blocked on a condition variable"),
    ("troupe", "troupe thread actor (thread + 2 ZeroMQ sockets)"),
    ("czmq", "CZMQ zactor (thread + PAIR pipe)"),
    ("caf", "CAF event-based actor (no thread of its own)"),
    ("erlang", "Erlang process blocked in receive"),
    ("python", "Python threading.Thread blocked on an Event"),
    ("troupe-proc", "troupe process actor (PSS of the child + parent's)"),
    ("python-mp", "Python multiprocessing.Process, fork (PSS)"),
]

WORKLOADS = ["pingpong", "counting", "fjthrput", "ring", "big", "pool"]
# The tutorial's other bottlenecks: blocking I/O, a flooded bounded
# mailbox (semaphore starvation), a request cycle (deadlock).
OTHER = ["io", "starve", "deadlock"]
OTHER_SYSTEMS = ["troupe", "troupe-proc", "python", "python-mp"]
TITLES = {
    "pingpong": "ping-pong",
    "counting": "counting",
    "fjthrput": "fork-join throughput",
    "ring": "thread ring",
    "big": "big (many-to-many)",
    "pool": "trivial-task pool",
    "mutex": "mutex counter",
    "memory": "memory per actor",
    "io": "blocking I/O on a pool",
    "starve": "a call to a flooded actor",
    "deadlock": "a request cycle",
}

# Parameters: per mode and tier; counts are scaled per system (below) so
# that a slow system still runs in seconds. Rates do not depend on them.
PARAMS = {
    "quick": {
        "in": {
            "pingpong": {"n": 500}, "counting": {"n": 5000},
            "fjthrput": {"k": 4, "n": 1000}, "ring": {"r": 16, "t": 1000},
            "big": {"a": 8, "p": 100}, "pool": {"w": 2, "n": 2000},
            "mutex": {"t": 4, "n": 2000}, "memory": {"n": 20},
            "io": {"w": 4, "n": 40, "s": 1000}, "starve": {"m": 5},
            "deadlock": {"d": 20},
        },
        "cross": {
            "pingpong": {"n": 300}, "counting": {"n": 3000},
            "fjthrput": {"k": 2, "n": 1000}, "ring": {"r": 4, "t": 500},
            "big": {"a": 4, "p": 100}, "pool": {"w": 2, "n": 1000},
            "mutex": {"t": 2, "n": 1000}, "memory": {"n": 4},
            "io": {"w": 4, "n": 40, "s": 1000}, "starve": {"m": 5},
            "deadlock": {"d": 20},
        },
    },
    "full": {
        "in": {
            "pingpong": {"n": 40000}, "counting": {"n": 1000000},
            "fjthrput": {"k": 8, "n": 100000},
            "ring": {"r": 100, "t": 100000},
            "big": {"a": 32, "p": 5000}, "pool": {"w": 2, "n": 200000},
            "mutex": {"t": 4, "n": 250000}, "memory": {"n": 500},
            "io": {"w": 16, "n": 2000, "s": 2000},
            "starve": {"m": 50}, "deadlock": {"d": 100},
        },
        "cross": {
            "pingpong": {"n": 20000}, "counting": {"n": 500000},
            "fjthrput": {"k": 4, "n": 100000},
            "ring": {"r": 16, "t": 50000},
            "big": {"a": 8, "p": 5000}, "pool": {"w": 2, "n": 100000},
            "mutex": {"t": 4, "n": 100000}, "memory": {"n": 40},
            "io": {"w": 16, "n": 2000, "s": 2000},
            "starve": {"m": 50}, "deadlock": {"d": 100},
        },
    },
}
COUNT_KEYS = {"pingpong": ["n"], "counting": ["n"], "fjthrput": ["n"],
              "ring": ["t"], "big": ["p"], "pool": ["n"], "mutex": ["n"]}
# Full mode: the share of the tier's counts a slower system runs (by
# workload; "*" for the others), so that each figure takes about a second.
SCALE = {
    "python": {"*": 0.25, "pool": 0.1, "mutex": 0.1},
    "python-mp": {"*": 0.25, "counting": 0.05, "fjthrput": 0.05,
                  "pool": 0.05, "mutex": 0.05},
    "erlang-dist": {"*": 0.5, "counting": 0.25, "fjthrput": 0.25,
                    "mutex": 0.25},
}
# Memory: how many actors (the lightweight ones need many to show).
MEMORY_N = {"caf": 20000, "erlang": 20000}


def unit_count(workload, p):
    """Messages (pool: tasks; mutex: increments) a run handles."""
    return {
        "pingpong": lambda: 2 * p["n"],
        "counting": lambda: p["n"],
        "fjthrput": lambda: p["k"] * p["n"],
        "ring": lambda: p["t"],
        "big": lambda: 2 * p["a"] * p["p"],
        "pool": lambda: p["n"],
        "mutex": lambda: p["t"] * p["n"],
        "memory": lambda: p["n"],
        "io": lambda: p["n"],
        "starve": lambda: 1,
        "deadlock": lambda: 1,
    }[workload]()


def expected(workload, p):
    return {
        "pingpong": lambda: str(p["n"]),
        "counting": lambda: str(p["n"]),
        "fjthrput": lambda: str(p["k"] * p["n"]),
        "ring": lambda: "%d:%d" % (p["t"], p["t"] % p["r"]),
        "big": lambda: str(p["a"] * p["p"]),
        "pool": lambda: str(p["n"] * p["n"]),
        "mutex": lambda: str(p["t"] * p["n"]),
        "memory": lambda: str(p["n"]),
        "io": lambda: str(p["n"] * p["n"]),
        "starve": lambda: str(p["m"]),
        "deadlock": lambda: "2",
    }[workload]()


def params_for(mode, system, workload):
    tier = "in" if system in IN_TIER else "cross"
    p = dict(PARAMS[mode][tier][workload])
    if mode == "full":
        for k in COUNT_KEYS.get(workload, []):
            f = SCALE.get(system, {})
            p[k] = max(1, int(p[k] * f.get(workload, f.get("*", 1.0))))
        if workload == "memory" and system in MEMORY_N:
            p["n"] = MEMORY_N[system]
    return p


def spec(workload, p):
    return workload + ":" + ",".join("%s=%d" % kv for kv in sorted(p.items()))


class System:
    def __init__(self, name, argv, missing, workloads, extra=()):
        self.name = name
        self.argv = argv          # command, without workload specs
        self.missing = missing    # why it is skipped, or None
        self.workloads = workloads
        self.extra = extra        # other systems its program prints


def systems(build):
    bdir = os.path.join(build, "bench", "suite")
    prog = lambda p: os.path.join(bdir, p)
    have = lambda p: os.access(prog(p), os.X_OK)
    escript = shutil.which("escript")
    all_w = WORKLOADS + ["mutex", "memory"]
    all_t = all_w + OTHER  # troupe and Python
    py = [sys.executable, os.path.join(HERE, "python_suite.py")]
    es = [escript or "escript", os.path.join(HERE, "erlang_suite.escript")]
    no_troupe = None if have("troupe_suite") else "troupe_suite not built"
    no_zmq = None if have("zmq_suite") else "zmq_suite not built"
    no_czmq = None if have("czmq_suite") else (
        "libczmq-dev not installed (czmq_suite not built)")
    no_caf = None if have("caf_suite") else (
        "libcaf-dev or a C++ compiler missing (caf_suite not built)")
    no_erl = None if escript else "erlang-nox not installed (no escript)"
    return [
        System("troupe", [prog("troupe_suite"), "--mode", "thread"],
               no_troupe, all_t, ("pthread-mutex", "c-atomic", "pthread")),
        System("libzmq", [prog("zmq_suite"), "--mode", "thread"], no_zmq,
               WORKLOADS),
        System("czmq", [prog("czmq_suite")], no_czmq, WORKLOADS + ["memory"]),
        System("caf", [prog("caf_suite")], no_caf, all_w),
        System("erlang", es + ["--mode", "local"], no_erl, all_w),
        System("python", py + ["--mode", "thread"], None, all_t,
               ("py-lock",)),
        System("troupe-proc", [prog("troupe_suite"), "--mode", "process"],
               no_troupe, all_t),
        System("libzmq-ipc", [prog("zmq_suite"), "--mode", "process"],
               no_zmq, WORKLOADS),
        System("erlang-dist", es + ["--mode", "dist"], no_erl,
               WORKLOADS + ["mutex"]),
        System("python-mp", py + ["--mode", "process"], None, all_t,
               ("py-mp-value",)),
    ]


class Results:
    def __init__(self):
        self.values = {}   # (workload, system) -> [numbers]
        self.failures = []  # text lines
        self.params = {}   # (workload, system) -> params
        self.skipped = []  # (system, why)
        self.load = os.getloadavg()


def run_program(sysm, specs, rounds, timeout, res, log):
    """Run one program on some workloads; record and check its lines."""
    argv = sysm.argv + ["--rounds", str(rounds)] + [s for _, _, s in specs]
    by_workload = {w: p for w, p, _ in specs}
    seen = set()
    t0 = time.time()
    # a session of its own: on a timeout the program's whole group (its
    # forked actors, a peer BEAM) goes, not only the program
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        err, rc = "timed out after %d s" % timeout, "timeout"
    log.write("$ %s  (%.1f s)\n%s%s" % (" ".join(argv), time.time() - t0,
                                         out, err))
    for line in out.splitlines():
        f = line.split()
        if len(f) == 5 and f[0] == "RESULT":
            _, w, system, number, check = f
            if w not in by_workload:
                continue
            p = by_workload[w]
            if system == sysm.name or system in sysm.extra:
                seen.add((w, system))
                want = expected(w, p)
                if check != want:
                    res.failures.append(
                        "%s %s: wrong result %s (expected %s)" %
                        (w, system, check, want))
                    continue
                res.values.setdefault((w, system), []).append(float(number))
                res.params[(w, system)] = p
    if rc != 0:
        tail = " | ".join(err.strip().splitlines()[-3:])
        res.failures.append("%s: %s failed (%s): %s" % (
            sysm.name, ",".join(by_workload), rc, tail))
    else:
        for w in by_workload:
            if (w, sysm.name) not in seen and "SKIP %s" % w not in out:
                res.failures.append("%s %s: no result" % (w, sysm.name))


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def rate(res, w, system):
    """Messages (tasks, increments) a second; None when not measured."""
    v = res.values.get((w, system))
    if not v:
        return None
    secs = median(v)
    return unit_count(w, res.params[(w, system)]) / secs if secs > 0 else None


def per_actor_kib(res, system):
    v = res.values.get(("memory", system))
    if not v:
        return None
    return median(v) / res.params[("memory", system)]["n"]


def fmt_rate(x):
    if x is None:
        return "-"
    for div, suf in ((1e6, "M"), (1e3, "k")):
        if x >= div:
            return "%.3g%s" % (x / div, suf)
    return "%.3g" % x


def fmt_ratio(x):
    return "%.2g" % x if x < 10 else "%.0f" % x


def matrix(res, tier):
    """Rows of [workload, cells...] for one tier; cell 'rate (ratio)'."""
    rows = []
    for w in WORKLOADS:
        row = [TITLES[w]]
        for s in tier:
            r = rate(res, w, s)
            t = rate(res, w, TIER_TROUPE[s])
            if r is None:
                row.append("-")
            elif s == TIER_TROUPE[s] or t is None:
                row.append(fmt_rate(r))
            else:
                row.append("%s (%s)" % (fmt_rate(r), fmt_ratio(t / r)))
        rows.append(row)
    return rows


def mutex_rows(res):
    base = rate(res, "mutex", "troupe")
    rows = []
    for s, what in MUTEX_ROWS:
        r = rate(res, "mutex", s)
        if r is None:
            continue
        rows.append([s, what, fmt_rate(r),
                     fmt_ratio(base / r) if base else "-"])
    return rows


def memory_rows(res):
    base = per_actor_kib(res, "troupe")
    rows = []
    for s, what in MEMORY_ROWS:
        k = per_actor_kib(res, s)
        if k is None:
            continue
        n = res.params[("memory", s)]["n"]
        rows.append([s, what, str(n), "%.1f" % k,
                     "%.2g" % (k / base) if base else "-"])
    return rows


def other_rows(res):
    """io (tasks/s), starve (median wait of a call), deadlock (time until
    both sides are free), per system."""
    rows = []
    for w in OTHER:
        row = [TITLES[w]]
        for s in OTHER_SYSTEMS:
            v = res.values.get((w, s))
            if not v:
                row.append("-")
            elif w == "io":
                row.append(fmt_rate(rate(res, w, s)) + "/s")
            elif w == "starve":
                row.append("%.0f us" % (median(v) * 1e6))
            else:
                row.append("%.0f ms" % (median(v) * 1e3))
        rows.append(row)
    return rows


def text_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows)
              for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(widths[i]) if i == 0 else
                               str(c).rjust(widths[i])
                               for i, c in enumerate(r))
    return "\n".join([line(header), line(["-" * w for w in widths])] +
                     [line(r) for r in rows])


def md_table(header, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def bench_lines(res):
    """bench/run's convention, troupe against raw libzmq."""
    out = []
    for w in WORKLOADS:
        for t, b, suffix in (("troupe", "libzmq", ""),
                             ("troupe-proc", "libzmq-ipc", "_proc")):
            tr, base = rate(res, w, t), rate(res, w, b)
            if tr and base:
                unit = "task/s" if w == "pool" else "msg/s"
                out.append("BENCH suite_%s%s troupe=%.0f%s baseline=%.0f%s "
                           "ratio=%.2f" % (w, suffix, tr, unit, base, unit,
                                           tr / base))
    return out


# --------------------------------------------------------------------------
# the chart

COLORS = {
    "troupe": "#d62728", "libzmq": "#7f7f7f", "czmq": "#bcbd22",
    "caf": "#1f77b4", "erlang": "#9467bd", "python": "#2ca02c",
    "troupe-proc": "#ff9896", "libzmq-ipc": "#c7c7c7",
    "erlang-dist": "#c5b0d5", "python-mp": "#98df8a",
}


def svg_chart(res, title):
    order = IN_TIER + CROSS_TIER
    present = [s for s in order if any(rate(res, w, s) for w in WORKLOADS)]
    vals = [rate(res, w, s) for w in WORKLOADS for s in present]
    vals = [v for v in vals if v]
    if not vals:
        return None
    lo = 10 ** math.floor(math.log10(min(vals)))
    hi = 10 ** math.ceil(math.log10(max(vals)))
    bar, gap, left, right, top = 11, 14, 150, 70, 60
    plot_w = 560
    group_h = len(present) * bar + gap
    height = top + len(WORKLOADS) * group_h + 40 + 18 * (
        (len(present) + 3) // 4)
    width = left + plot_w + right
    x = lambda v: left + plot_w * (math.log10(v) - math.log10(lo)) / (
        math.log10(hi) - math.log10(lo))
    esc = lambda s: (s.replace("&", "&amp;").replace("<", "&lt;")
                     .replace(">", "&gt;"))
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">' %
         (width, height, width, height),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>' %
         (left, esc(title)),
         '<text x="%d" y="38" fill="#555">messages (pool: tasks) per '
         'second, log scale; higher is better</text>' % left]
    d = lo
    while d <= hi * 1.0001:
        xx = x(d)
        o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>'
                 % (xx, top - 6, xx, top + len(WORKLOADS) * group_h))
        o.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">'
                 '%s</text>' % (xx, top - 9, fmt_rate(d)))
        d *= 10
    for gi, w in enumerate(WORKLOADS):
        y0 = top + gi * group_h
        o.append('<text x="%d" y="%.1f" text-anchor="end" '
                 'font-weight="bold">%s</text>' %
                 (left - 8, y0 + len(present) * bar / 2 + 4, esc(TITLES[w])))
        for si, s in enumerate(present):
            v = rate(res, w, s)
            y = y0 + si * bar
            if not v:
                continue
            o.append('<rect x="%d" y="%d" width="%.1f" height="%d" '
                     'fill="%s"><title>%s %s: %s/s</title></rect>' %
                     (left, y, max(1.0, x(v) - left), bar - 2, COLORS[s],
                      esc(s), esc(w), fmt_rate(v)))
            o.append('<text x="%.1f" y="%d" font-size="9" fill="#333">'
                     '%s</text>' % (x(v) + 3, y + bar - 3, fmt_rate(v)))
    ly = top + len(WORKLOADS) * group_h + 16
    for i, s in enumerate(present):
        lx = left + (i % 4) * 150
        yy = ly + (i // 4) * 18
        o.append('<rect x="%d" y="%d" width="12" height="10" fill="%s"/>' %
                 (lx, yy - 9, COLORS[s]))
        o.append('<text x="%d" y="%d">%s</text>' % (lx + 16, yy, esc(s)))
    o.append("</svg>")
    return "\n".join(o) + "\n"


# --------------------------------------------------------------------------
# the docs

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True,
                              timeout=20).stdout.strip()
    except Exception:
        return ""


def machine_notes(load):
    cpu = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
    deb = sh("cat /etc/debian_version")
    ver = lambda pkg: sh("dpkg-query -W -f='${Version}' %s" % pkg) or "-"
    return [
        "CPU: %s, %d logical CPUs; kernel %s; Debian %s; load average "
        "%.2f before the run, %.2f after (other work on the machine "
        "shows here)." % (cpu, os.cpu_count() or 0, platform.release(), deb,
                          load[0], os.getloadavg()[0]),
        "gcc %s; libzmq %s; CZMQ %s; CAF %s; Erlang/OTP %s (erts %s); "
        "Python %s" % (
            sh("gcc -dumpfullversion") or "-",
            sh("pkg-config --modversion libzmq") or "-",
            sh("pkg-config --modversion libczmq") or "-",
            ver("libcaf-dev"),
            sh("erl -noshell -eval 'io:put_chars(erlang:system_info("
               "otp_release)), halt().'") or "-",
            sh("erl -noshell -eval 'io:put_chars(erlang:system_info("
               "version)), halt().'") or "-",
            platform.python_version()),
    ]


def replace_block(path, name, text, skeleton):
    begin, end = "<!-- %s:begin -->" % name, "<!-- %s:end -->" % name
    doc = open(path).read() if os.path.exists(path) else skeleton
    block = begin + "\n" + text.rstrip() + "\n" + end
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) +
                                                    len(end):]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)


def params_text(mode):
    out = []
    for tier, label in (("in", "one process"), ("cross", "across processes")):
        ps = PARAMS[mode][tier]
        out.append("%s: %s." % (label, "; ".join(
            "%s %s" % (w, ",".join("%s=%d" % kv for kv in sorted(
                ps[w].items()))) for w in WORKLOADS + ["mutex", "memory"] +
            OTHER)))
    return out


def write_docs(res, args, command, elapsed):
    date = datetime.date.today().isoformat()
    hdr_in = ["workload"] + IN_TIER
    hdr_cross = ["workload"] + CROSS_TIER
    lines = [
        "Written by `%s` on %s (%.0f s). Median of %d rounds per figure; "
        "each cell is messages per second (pool: tasks per second) and, in "
        "brackets, **troupe's rate divided by that system's** (above 1: "
        "troupe is faster)." % (command, date, elapsed, args.rounds),
        "",
        "Machine: " + " ".join(machine_notes(res.load)),
        "",
        "**In one OS process** (troupe thread actors against the others; "
        "ratio = troupe / system):",
        "",
        md_table(hdr_in, matrix(res, IN_TIER)),
        "",
        "**Across OS processes** (troupe process actors; ratio = "
        "troupe-proc / system):",
        "",
        md_table(hdr_cross, matrix(res, CROSS_TIER)),
        "",
        "![bar chart, log scale](benchmarks.svg)",
        "",
        "Sizes (full mode): " + " ".join(params_text("full")) +
        " Slower systems run a share of the counts (rates do not depend on "
        "them): " + "; ".join("%s %s" % (k, ", ".join(
            "%s %s" % ("others" if w == "*" else w, f)
            for w, f in v.items())) for k, v in
            SCALE.items()) + ".",
        "",
        "Against raw libzmq, in bench/run's format:",
        "",
        "```",
    ] + bench_lines(res) + ["```"]
    if res.skipped:
        lines += ["", "Skipped: " + "; ".join("%s (%s)" % s
                                               for s in res.skipped)]
    if res.failures:
        lines += ["", "Failed: " + "; ".join(res.failures)]
    replace_block(os.path.join(ROOT, "docs", "benchmarks.md"), "suite",
                  "\n".join(lines), "# Benchmarks\n")
    replace_block(os.path.join(ROOT, "docs", "bottlenecks.md"), "suite",
                  "\n".join([
                      "Written by `%s` on %s; machine as in "
                      "[benchmarks.md](benchmarks.md)." % (command, date),
                      "",
                      "**Lock contention: T = %d writers add 1 to one "
                      "counter** (increments per second, median; ratio = "
                      "troupe thread actors / that row):" %
                      res.params.get(("mutex", "troupe"), {}).get("t", 0),
                      "",
                      md_table(["implementation", "what", "inc/s", "ratio"],
                               mutex_rows(res),
                               ["---", "---", "---:", "---:"]),
                      "",
                      "**Memory per idle actor** (KiB; ratio to a troupe "
                      "thread actor):",
                      "",
                      md_table(["implementation", "what", "n", "KiB each",
                                "ratio"], memory_rows(res),
                               ["---", "---", "---:", "---:", "---:"]),
                      "",
                      "**The other bottlenecks** (median of the rounds):",
                      "",
                      md_table(["bottleneck"] + OTHER_SYSTEMS,
                               other_rows(res)),
                  ]), "# Bottlenecks\n")
    svg = svg_chart(res, "troupe and the actor systems people use (%s)" %
                    date)
    if svg:
        with open(os.path.join(ROOT, "docs", "benchmarks.svg"), "w") as f:
            f.write(svg)


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, one round: checks results only")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    ap.add_argument("--systems", default="",
                    help="comma-separated systems to run (default: all)")
    ap.add_argument("--workloads", default="",
                    help="comma-separated workloads (default: all)")
    ap.add_argument("--no-docs", action="store_true",
                    help="full mode: do not write docs/")
    ap.add_argument("--command", default="bench/suite/run")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    want_s = set(filter(None, args.systems.split(",")))
    want_w = set(filter(None, args.workloads.split(",")))
    timeout = 120 if args.quick else 300
    res = Results()
    log_path = os.path.join(args.build, "bench", "suite", "suite.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    t_start = time.time()
    epmd_before = bool(shutil.which("epmd")) and subprocess.run(
        ["epmd", "-names"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0
    with open(log_path, "w") as log:
        for s in systems(args.build):
            if want_s and s.name not in want_s:
                continue
            if s.missing:
                print("SKIP %s: %s" % (s.name, s.missing), flush=True)
                res.skipped.append((s.name, s.missing))
                continue
            ws = [w for w in s.workloads if not want_w or w in want_w]
            if not ws:
                continue
            specs = [(w, params_for(mode, s.name, w),
                      spec(w, params_for(mode, s.name, w))) for w in ws]
            t0 = time.time()
            # quick: one program run each; full: one per workload, so that
            # a failure costs one cell
            groups = [specs] if args.quick else [[x] for x in specs]
            for g in groups:
                if not args.quick and g[0][0] == "memory":
                    # a process of its own each round: memory freed by an
                    # earlier round would be reused without showing
                    for _ in range(args.rounds):
                        run_program(s, g, 1, timeout, res, log)
                else:
                    run_program(s, g, args.rounds, timeout, res, log)
            print("ran %-12s %5.1f s" % (s.name, time.time() - t0),
                  flush=True)
    if shutil.which("epmd") and not epmd_before:
        subprocess.run(["epmd", "-kill"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    elapsed = time.time() - t_start

    print()
    print("In one OS process: messages/s (ratio = troupe / system)")
    print(text_table(["workload"] + IN_TIER, matrix(res, IN_TIER)))
    print()
    print("Across OS processes: messages/s (ratio = troupe-proc / system)")
    print(text_table(["workload"] + CROSS_TIER, matrix(res, CROSS_TIER)))
    print()
    print("mutex counter: increments/s (ratio = troupe / row)")
    print(text_table(["implementation", "what", "inc/s", "ratio"],
                     mutex_rows(res)))
    print()
    print("memory per idle actor: KiB (ratio to a troupe thread actor)")
    print(text_table(["implementation", "what", "n", "KiB each", "ratio"],
                     memory_rows(res)))
    print()
    print("other bottlenecks: io tasks/s, starve median wait, deadlock "
          "time until both are free")
    print(text_table(["bottleneck"] + OTHER_SYSTEMS, other_rows(res)))
    print()
    for line in bench_lines(res):
        print(line)
    for s, why in res.skipped:
        print("skipped: %s (%s)" % (s, why))
    print("log: %s" % os.path.relpath(log_path, ROOT))
    if not args.quick and not args.no_docs and not want_s and not want_w:
        write_docs(res, args, args.command, elapsed)
        print("wrote docs/benchmarks.md, docs/benchmarks.svg, "
              "docs/bottlenecks.md")
    checked = sum(len(v) for v in res.values.values())
    if res.failures:
        for f in res.failures:
            print("FAIL " + f)
        print("suite: %d passed, %d failed" % (checked,
                                                     len(res.failures)))
        return 1
    print("suite: %d passed, 0 failed" % checked)
    return 0


if __name__ == "__main__":
    sys.exit(main())
