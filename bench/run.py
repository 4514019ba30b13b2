#!/usr/bin/python3
"""spoolrun benchmark driver (Python 3 standard library only).

Runs the measurements described in bench/README.md and prints one table with
every target of the performance issue: measured value, baseline, ratio,
target and ok/missed. It writes the table, with every raw sample, to
bench/results/. Every figure is the median of several runs; every ratio
compares two figures measured in this same invocation, their runs
interleaved. BENCH_QUICK=1 gives a short smoke run.

The driver is one function per measurement, `bench_NAME(rows, raw)`,
registered in MEASUREMENTS (run in that order by default) or OPTIONAL (run
only when named with --only). To add one (e.g. a Slurm executor), write the
function, append rows with `row()`, and register it in either table.

Usage: bench/run.py [--only throughput,peers|1,3|proto]   (after `make all`;
`make bench` does both)
"""

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
BIN = os.path.join(ROOT, "build", "bench")
# BENCH_SPOOLRUN: another binary (e.g. an older build, for a before/after).
SPOOLRUN = os.environ.get("BENCH_SPOOLRUN") or os.path.join(ROOT, "build", "spoolrun")
RESULTS_DIR = os.path.join(BENCH, "results")

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def knob(name, full, quick):
    v = os.environ.get(name)
    return type(full)(v) if v else (quick if QUICK else full)


N_TASKS = knob("BENCH_N", 2000, 300)              # throughput, parallel
REPS = knob("BENCH_REPS", 3, 3)                   # runs per figure (median)
N_PEER = knob("BENCH_PEER_N", 2000, 300)          # peers (the issue: N = 2,000)
N_SHELL = knob("BENCH_SHELL_N", 200, 30)          # the plain-shell peer (~10 tasks/s)
N_DROPS = knob("BENCH_DROPS", 200, 60)            # latency
BIG = knob("BENCH_BIG_MB", 1024, 256)             # capture (MiB)
N_BACKLOG = knob("BENCH_BACKLOG", 100000, 10000)  # scale
N_DRAIN = knob("BENCH_DRAIN", 10000, 500)         # scale
DRAIN_REPS = knob("BENCH_DRAIN_REPS", 3, 1)
N_PROTO = knob("BENCH_PROTO_N", 1000, 300)        # publication prototype
PROTO_REPS = knob("BENCH_PROTO_REPS", 5, 3)
CORES = knob("BENCH_CORES", os.cpu_count() or 1, os.cpu_count() or 1)

# Every process started here carries this variable; cleanup kills exactly the
# processes that carry it (the tsp server and nq jobs daemonise themselves).
TAG = "SPOOLRUN_BENCH_TAG"
TAG_VALUE = secrets.token_hex(8)
ENV = dict(os.environ, **{TAG: TAG_VALUE})

_procs = []
_dirs = []


# --------------------------------------------------------------- plumbing

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def tagged_pids():
    mine = os.getpid()
    needle = f"{TAG}={TAG_VALUE}".encode()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == mine:
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def cleanup():
    for p in _procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
    for _ in range(3):
        pids = tagged_pids()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)
    for p in _procs:
        try:
            p.wait(timeout=5)
        except Exception:
            pass
    _procs.clear()
    for d in _dirs:
        shutil.rmtree(d, ignore_errors=True)
    _dirs.clear()


def on_signal(sig, _frame):
    raise KeyboardInterrupt(f"signal {sig}")


def tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=f"spoolrun-bench-{prefix}-")
    _dirs.append(d)
    return d


def drop_dir(d):
    shutil.rmtree(d, ignore_errors=True)
    if d in _dirs:
        _dirs.remove(d)


def spawn(argv, **kw):
    kw.setdefault("env", ENV)
    kw.setdefault("start_new_session", True)
    p = subprocess.Popen(argv, **kw)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except OSError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p in _procs:
        _procs.remove(p)


def wait_file(path, timeout=60.0, interval=0.0005, nonempty=True):
    end = time.monotonic() + timeout
    while True:
        try:
            if not nonempty or os.path.getsize(path) > 0:
                return
        except OSError:
            pass
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {path}")
        time.sleep(interval)


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024.0  # MiB
    return out


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def build_helpers():
    os.makedirs(BIN, exist_ok=True)
    libs = {"publish_proto": ["-luring", "-lpthread"]}
    for name in ("probe", "writer", "waitn", "baseline_runner", "bare_watcher", "publish_proto"):
        src = os.path.join(BENCH, f"{name}.c")
        out = os.path.join(BIN, name)
        if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
            subprocess.run(["cc", "-O2", "-Wall", "-o", out, src] + libs.get(name, []),
                           check=True)


def write_task(path, task):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, json.dumps(task).encode())
    os.close(fd)


# ------------------------------------------------------------- spoolrun

def config_text(fsync, slots=1):
    text = f"[spool]\nfsync = {'yes' if fsync else 'no'}\n[log]\nlevel = warn\n"
    # Named only when not 1, so that a binary without [runner] slots runs
    # the slots = 1 measurements all the same.
    return text + (f"[runner]\nslots = {slots}\n" if slots != 1 else "")


_slots_ok = None


def slots_supported():
    """Whether this spoolrun knows [runner] slots: `drain` of an empty spool
    exits at once, 0 when the config is accepted."""
    global _slots_ok
    if _slots_ok is None:
        d = tmpdir("slots")
        cfg = os.path.join(d, "c.ini")
        with open(cfg, "w") as f:
            f.write(config_text(False, 2))
        rc = subprocess.run([SPOOLRUN, "drain", "--spool", os.path.join(d, "spool"),
                             "--config", cfg], env=ENV, capture_output=True,
                            timeout=60).returncode
        drop_dir(d)
        _slots_ok = rc == 0
        if not _slots_ok:
            log("    this spoolrun has no [runner] slots: rows with slots > 1 are n/a")
    return _slots_ok


class Watcher:
    """A spoolrun watcher on a fresh spool in its own temp dir."""

    def __init__(self, label, fsync=False, extra="", spool=None, slots=1):
        self.dir = spool or tmpdir(label)
        self.spool = os.path.join(self.dir, "spool")
        self.stage = os.path.join(self.dir, "stage")
        os.makedirs(self.stage, exist_ok=True)
        self.config = os.path.join(self.dir, "spoolrun.ini")
        with open(self.config, "w") as f:
            f.write(config_text(fsync, slots) + extra)
        self.proc = None
        self.n_warm = 0

    def incoming(self):
        return os.path.join(self.spool, "incoming")

    def results(self):
        return os.path.join(self.spool, "results")

    def start(self, warm=True):
        self.errlog = open(os.path.join(self.dir, "watcher.stderr"), "ab")
        self.t_exec = time.monotonic_ns()
        self.proc = spawn([SPOOLRUN, "watch", "--spool", self.spool, "--config", self.config],
                          stdout=subprocess.DEVNULL, stderr=self.errlog)
        if warm:
            self.warm_up()
        return self

    def warm_up(self):
        """Drops one /bin/true task and waits for its result: the watcher is
        then past its start-up and idle in poll()."""
        os.makedirs(self.incoming(), exist_ok=True)
        tid = f"warm{self.n_warm}"
        self.n_warm += 1
        self.drop(tid, ["/bin/true"], wait=False)
        end = time.monotonic() + 30
        while not os.path.exists(os.path.join(self.results(), f"{tid}.json")):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the watcher exited ({self.proc.returncode}); "
                                   f"see {self.errlog.name}")
            if time.monotonic() > end:
                raise TimeoutError("the watcher did not run its warm-up task")
            time.sleep(0.001)

    def drop(self, tid, command, wait=True, **extra):
        task = {"id": tid, "command": command, **extra}
        staged = os.path.join(self.stage, f"{tid}.json")
        write_task(staged, task)
        t = time.monotonic_ns()
        os.rename(staged, os.path.join(self.incoming(), f"{tid}.json"))
        if wait:
            wait_file(os.path.join(self.results(), f"{tid}.json"), timeout=600)
        return t

    def result(self, tid):
        with open(os.path.join(self.results(), f"{tid}.json")) as f:
            return json.load(f)

    def status(self):
        return proc_status(self.proc.pid)

    def stop(self):
        if self.proc:
            stop(self.proc)
            self.errlog.close()
            with open(self.errlog.name, "rb") as f:
                err = f.read().decode(errors="replace").strip()
            if err:
                log(f"  [spoolrun stderr] {err[-2000:]}")
            self.proc = None

    def close(self):
        self.stop()
        drop_dir(self.dir)


def stage_tasks(stage, n, command, prefix="t"):
    names = []
    for i in range(n):
        tid = f"{prefix}{i:06d}"
        write_task(os.path.join(stage, f"{tid}.json"), {"id": tid, "command": command})
        names.append(f"{tid}.json")
    return names


def waitn(directory, n, timeout):
    p = spawn([os.path.join(BIN, "waitn"), directory, str(n), str(timeout)],
              stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def waitn_result(p):
    out = p.stdout.read()
    rc = p.wait()
    _procs.remove(p)
    if rc != 0:
        raise RuntimeError(f"waitn failed ({rc})")
    return int(out.strip())


def spoolrun_batch(n, fsync, slots=1, command=("/bin/true",)):
    """Tasks staged beforehand, renamed into incoming/ all at once while the
    watcher runs; seconds from the first rename to the Nth result."""
    w = Watcher("b1", fsync=fsync, slots=slots).start()
    try:
        names = stage_tasks(w.stage, n, list(command))
        wt = waitn(w.results(), n, 900)
        inc = w.incoming()
        t0 = time.monotonic_ns()
        for name in names:
            os.rename(os.path.join(w.stage, name), os.path.join(inc, name))
        t1 = waitn_result(wt)
        return (t1 - t0) / 1e9
    finally:
        w.close()


def baseline_batch(n, fsync, spawn_kind="spawn", loops=1):
    """baseline_runner on n staged task files: LOOPS C loops in parallel,
    each starting its tasks with spawn_kind (spawn, vfork or fork)."""
    d = tmpdir("base")
    try:
        stage, res, tmp = (os.path.join(d, x) for x in ("stage", "results", "tmp"))
        for x in (stage, res, tmp):
            os.makedirs(x)
        stage_tasks(stage, n, ["/bin/true"])
        out = subprocess.run([os.path.join(BIN, "baseline_runner"), stage, res, tmp,
                              "1" if fsync else "0", "/bin/true", spawn_kind, str(loops)],
                             env=ENV, check=True, capture_output=True, text=True).stdout
        count, secs = out.split()
        assert int(count) == n, out
        return float(secs)
    finally:
        drop_dir(d)


# ----------------------------------------------------------------- peers

def tsp_batch(n, slots=1):
    """task-spooler: n x `tsp /bin/true` from a sh loop, then `tsp -w`,
    timed from the first enqueue; `tsp -S slots` set before."""
    d = tmpdir("tsp")
    env = dict(ENV, TS_SOCKET=os.path.join(d, "socket"), TMPDIR=d, TS_MAXFINISHED=str(n + 10))
    tsp = shutil.which("tsp") or shutil.which("ts")
    try:
        subprocess.run([tsp, "/bin/true"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([tsp, "-w"], env=env, check=True)
        subprocess.run([tsp, "-S", str(slots)], env=env, check=True)
        script = f'i=0; while [ $i -lt {n} ]; do "$0" /bin/true >/dev/null; i=$((i+1)); done; "$0" -w'
        t0 = time.monotonic_ns()
        subprocess.run(["sh", "-c", script, tsp], env=env, check=True)
        # `tsp -w` waits for the last job queued; with several slots an
        # earlier one may still run: wait until every job is finished.
        while True:
            jobs = subprocess.run([tsp], env=env, capture_output=True, text=True).stdout
            done = sum(1 for line in jobs.splitlines() if " finished " in line)
            if done >= n + 1:
                break
            time.sleep(0.001)
        secs = (time.monotonic_ns() - t0) / 1e9
        assert done == n + 1, f"tsp finished {done} of {n + 1}"
        return secs
    finally:
        subprocess.run([tsp, "-K"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        drop_dir(d)


def nq_batch(n):
    """nq (one job at a time, as nq always runs them): n x `nq /bin/true`,
    then `nq -w`."""
    d = tmpdir("nq")
    env = dict(ENV, NQDIR=d)
    try:
        script = f'i=0; while [ $i -lt {n} ]; do nq /bin/true >/dev/null; i=$((i+1)); done; nq -w'
        t0 = time.monotonic_ns()
        subprocess.run(["sh", "-c", script], env=env, check=True, stdout=subprocess.DEVNULL)
        secs = (time.monotonic_ns() - t0) / 1e9
        logs = [f for f in os.listdir(d) if f.startswith(",")]
        assert len(logs) == n, f"nq ran {len(logs)} of {n}"
        return secs
    finally:
        drop_dir(d)


def shell_batch(n):
    d = tmpdir("shell")
    spool, stage = os.path.join(d, "spool"), os.path.join(d, "stage")
    for x in ("incoming", "results"):
        os.makedirs(os.path.join(spool, x))
    os.makedirs(stage)
    p = spawn(["bash", os.path.join(BENCH, "shell_loop.sh"), spool],
              stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "stderr"), "w"))
    try:
        # ready once a warm-up task went through
        write_task(os.path.join(stage, "warm.json"), {"id": "warm", "command": ["/bin/true"]})
        time.sleep(0.2)
        os.rename(os.path.join(stage, "warm.json"), os.path.join(spool, "incoming", "warm.json"))
        wait_file(os.path.join(spool, "results", "warm.json"), timeout=30)
        names = stage_tasks(stage, n, ["/bin/true"])
        wt = waitn(os.path.join(spool, "results"), n, 900)
        t0 = time.monotonic_ns()
        for name in names:
            os.rename(os.path.join(stage, name), os.path.join(spool, "incoming", name))
        return (waitn_result(wt) - t0) / 1e9
    finally:
        stop(p)
        drop_dir(d)


# ---------------------------------------------------------------- tables

def row(rows, bench, measured, value, baseline="", baseline_value="", ratio=None,
        target="", ok=None):
    """One line of the table. target is text (">= 0.9", "< 8 MiB"); ok is
    True/False when the row is a target, None when it is information."""
    rows.append((bench, measured, value, baseline, baseline_value, ratio, target, ok))


def ratio_row(rows, bench, measured, rate, baseline, base_rate, op=None, limit=None,
              unit="tasks/s"):
    """A row comparing two rates (higher is better) with an optional target
    `ratio op limit`; a missing side (None) makes the row n/a."""
    if rate is None or base_rate is None:
        row(rows, bench, measured, "n/a" if rate is None else f"{rate:.1f} {unit}", baseline,
            "n/a" if base_rate is None else f"{base_rate:.1f} {unit}", None,
            f"{op} {limit}" if op else "", False if op else None)
        return
    r = rate / base_rate
    ok = None if op is None else (r >= limit if op == ">=" else r <= limit)
    row(rows, bench, measured, f"{rate:.1f} {unit}", baseline, f"{base_rate:.1f} {unit}", r,
        f"{op} {limit}" if op else "", ok)


def interleaved(title, cases, reps, n):
    """Runs every case once per round, rounds repeated reps times (so drift
    in the machine's load hits every case alike); returns seconds per case.
    A case whose function is None is skipped (n/a)."""
    secs = {k: [] for k, fn in cases.items() if fn}
    for r in range(reps):
        for k, fn in cases.items():
            if not fn:
                continue
            s = fn()
            secs[k].append(s)
            log(f"    {title} run {r + 1}: {k:34s} {s:7.3f} s  {n / s:7.1f} tasks/s")
    return secs


def rates(secs, n):
    return {k: n / median(v) for k, v in secs.items()}


# ---------------------------------------------------------- measurements

def bench_throughput(rows, raw):
    """One slot: spoolrun (fsync yes/no) against one C loop (posix_spawn,
    the fastest way to start a task; fork for reference), fsync yes/no."""
    n = N_TASKS
    log(f"[throughput] {n} x /bin/true, one at a time, {REPS} runs each")
    cases = {"spoolrun fsync=yes": lambda: spoolrun_batch(n, True),
             "C loop spawn, no fsync": lambda: baseline_batch(n, False, "spawn"),
             "spoolrun fsync=no": lambda: spoolrun_batch(n, False),
             "C loop spawn, fsync": lambda: baseline_batch(n, True, "spawn"),
             "C loop fork, no fsync": lambda: baseline_batch(n, False, "fork")}
    secs = interleaved("throughput", cases, REPS, n)
    raw["throughput"] = {"n": n, "seconds": secs}
    rate = rates(secs, n)
    b = "throughput slots=1"
    ratio_row(rows, b, "spoolrun fsync=yes", rate["spoolrun fsync=yes"],
              "C loop spawn, no fsync", rate["C loop spawn, no fsync"], ">=", 0.9)
    ratio_row(rows, b, "spoolrun fsync=no", rate["spoolrun fsync=no"],
              "C loop spawn, no fsync", rate["C loop spawn, no fsync"])
    ratio_row(rows, b, "spoolrun fsync=yes", rate["spoolrun fsync=yes"],
              "C loop spawn, fsync", rate["C loop spawn, fsync"])
    ratio_row(rows, b, "C loop fork, no fsync", rate["C loop fork, no fsync"],
              "C loop spawn, no fsync", rate["C loop spawn, no fsync"])
    return rate


def bench_parallel(rows, raw):
    """slots = cores: spoolrun durable (and not) against as many C loops in
    parallel as cores, without fsync (and with)."""
    n, k = N_TASKS, CORES
    log(f"[parallel] {n} x /bin/true, slots = {k} / {k} C loops, {REPS} runs each")
    sl = slots_supported()
    cases = {f"spoolrun slots={k} fsync=yes": (lambda: spoolrun_batch(n, True, k)) if sl else None,
             f"{k} C loops spawn, no fsync": lambda: baseline_batch(n, False, "spawn", k),
             f"spoolrun slots={k} fsync=no": (lambda: spoolrun_batch(n, False, k)) if sl else None,
             f"{k} C loops spawn, fsync": lambda: baseline_batch(n, True, "spawn", k)}
    secs = interleaved("parallel", cases, REPS, n)
    raw["parallel"] = {"n": n, "cores": k, "seconds": secs}
    rate = rates(secs, n)
    b = f"parallel slots={k}"
    ratio_row(rows, b, f"spoolrun slots={k} fsync=yes", rate.get(f"spoolrun slots={k} fsync=yes"),
              f"{k} C loops, no fsync", rate[f"{k} C loops spawn, no fsync"], ">=", 0.85)
    ratio_row(rows, b, f"spoolrun slots={k} fsync=no", rate.get(f"spoolrun slots={k} fsync=no"),
              f"{k} C loops, no fsync", rate[f"{k} C loops spawn, no fsync"])
    ratio_row(rows, b, f"{k} C loops, fsync", rate[f"{k} C loops spawn, fsync"],
              f"{k} C loops, no fsync", rate[f"{k} C loops spawn, no fsync"])


def bench_peers(rows, raw):
    """Durable spoolrun against task-spooler (1 slot and -S cores) and nq,
    same slots, same N."""
    n, k = N_PEER, CORES
    log(f"[peers] {n} x /bin/true each, {REPS} runs")
    sl = slots_supported()
    cases = {"spoolrun slots=1 fsync=yes": lambda: spoolrun_batch(n, True),
             "task-spooler 1 slot": lambda: tsp_batch(n, 1),
             f"spoolrun slots={k} fsync=yes": (lambda: spoolrun_batch(n, True, k)) if sl else None,
             f"task-spooler -S {k}": lambda: tsp_batch(n, k),
             "nq": lambda: nq_batch(n)}
    secs = interleaved("peers", cases, REPS, n)
    raw["peers"] = {"n": n, "seconds": secs}
    rate = rates(secs, n)
    b = f"peers N={n}"
    s1, sk = rate["spoolrun slots=1 fsync=yes"], rate.get(f"spoolrun slots={k} fsync=yes")
    ratio_row(rows, b, "spoolrun slots=1 fsync=yes", s1, "task-spooler 1 slot",
              rate["task-spooler 1 slot"], ">=", 1.5)
    ratio_row(rows, b, f"spoolrun slots={k} fsync=yes", sk, f"task-spooler -S {k}",
              rate[f"task-spooler -S {k}"], ">=", 2)
    ratio_row(rows, b, "spoolrun slots=1 fsync=yes", s1, "nq", rate["nq"], ">=", 5)


def bench_shell(rows, raw):
    """The plain-shell peer (inotifywait + mv + timeout + jq), information."""
    n = N_SHELL
    log(f"[shell] {n} x /bin/true each, {REPS} runs")
    secs = interleaved("shell", {"spoolrun slots=1 fsync=yes": lambda: spoolrun_batch(n, True),
                                 "shell_loop.sh": lambda: shell_batch(n)}, REPS, n)
    raw["shell"] = {"n": n, "seconds": secs}
    rate = rates(secs, n)
    ratio_row(rows, f"peers N={n}", "spoolrun slots=1 fsync=yes", rate["spoolrun slots=1 fsync=yes"],
              "shell_loop.sh", rate["shell_loop.sh"])


def bench_latency(rows, raw):
    """Pickup latency: rename into incoming/ -> the task's first instruction,
    single drops, three watchers taking turns."""
    log(f"[latency] {N_DROPS} single drops per watcher")
    probe = os.path.join(BIN, "probe")
    sf = Watcher("b2-nofsync", fsync=False).start()
    sy = Watcher("b2-fsync", fsync=True).start()
    bd = tmpdir("b2-bare")
    binc, bout, bstage = (os.path.join(bd, x) for x in ("incoming", "out", "stage"))
    for x in (binc, bout, bstage):
        os.makedirs(x)
    bare = spawn([os.path.join(BIN, "bare_watcher"), binc, probe, bout],
                 stdout=subprocess.PIPE, text=True)
    assert bare.stdout.readline().strip() == "ready"
    outs = {w: tmpdir("b2-out") for w in (sf, sy)}
    lat = {"spoolrun fsync=no": [], "spoolrun fsync=yes": [], "bare_watcher": []}
    try:
        for i in range(N_DROPS):
            tid = f"p{i:05d}"
            for w, key in ((sf, "spoolrun fsync=no"), (sy, "spoolrun fsync=yes")):
                out = os.path.join(outs[w], tid)
                t = w.drop(tid, [probe, out], wait=True)
                wait_file(out)
                lat[key].append((int(open(out).read()) - t) / 1e3)
                time.sleep(0.002)
            staged = os.path.join(bstage, f"{tid}.json")
            write_task(staged, {"id": tid, "command": [probe]})
            t = time.monotonic_ns()
            os.rename(staged, os.path.join(binc, f"{tid}.json"))
            out = os.path.join(bout, tid)
            wait_file(out)
            lat["bare_watcher"].append((int(open(out).read()) - t) / 1e3)
            # the bare watcher removes the task file once the probe is reaped
            end = time.monotonic() + 10
            while os.path.exists(os.path.join(binc, f"{tid}.json")) and time.monotonic() < end:
                time.sleep(0.0005)
            time.sleep(0.002)
    finally:
        sf.close()
        sy.close()
        stop(bare)
    raw["latency_us"] = lat
    bare_med = median(lat["bare_watcher"])
    for key, target in (("spoolrun fsync=yes", 1.1), ("spoolrun fsync=no", None)):
        m, p99 = median(lat[key]), pct(lat[key], 99)
        r = m / bare_med
        row(rows, "pickup latency", f"{key} median (p99)", f"{m:.0f} us ({p99:.0f})",
            "bare_watcher median (p99)",
            f"{bare_med:.0f} us ({pct(lat['bare_watcher'], 99):.0f})", r,
            f"<= {target}" if target else "", (r <= target) if target else None)
    for k, v in lat.items():
        log(f"    {k:20s} median {median(v):8.0f} us  p99 {pct(v, 99):8.0f} us")


def capture_run(out_b, err_b, extra):
    """One writer task on a fresh watcher: (transfer s, wall s, VmHWM MiB)."""
    w = Watcher("b3", fsync=False, extra=extra).start()
    try:
        writer = os.path.join(BIN, "writer")
        t0 = w.drop("cap", [writer, str(out_b), str(err_b)], wait=False)
        wait_file(os.path.join(w.results(), "cap.json"), timeout=600, interval=0.002)
        wall = (time.monotonic_ns() - t0) / 1e9
        st = w.status()
        r = w.result("cap")
        assert r["status"] == "succeeded", r["status"]
        assert r["stdout_bytes"] == out_b and r["stderr_bytes"] == err_b
        return r["duration_ms"] / 1e3, wall, st["VmHWM"]
    finally:
        w.close()


def pipe_run(out_b, err_b):
    """writer | cat > /dev/null (and 2> a second cat): wall seconds."""
    writer = os.path.join(BIN, "writer")
    t0 = time.monotonic_ns()
    w = subprocess.Popen([writer, str(out_b), str(err_b)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE if err_b else subprocess.DEVNULL, env=ENV)
    cats = [subprocess.Popen(["cat"], stdin=w.stdout, stdout=subprocess.DEVNULL, env=ENV)]
    w.stdout.close()
    if err_b:
        cats.append(subprocess.Popen(["cat"], stdin=w.stderr, stdout=subprocess.DEVNULL, env=ENV))
        w.stderr.close()
    for p in [w] + cats:
        p.wait()
    return (time.monotonic_ns() - t0) / 1e9


def bench_capture(rows, raw):
    """Capture throughput against a pipe, and the watcher's peak RSS."""
    big = BIG << 20
    log(f"[capture] {BIG} MiB, {REPS} runs each")
    small_log = "[output]\nmax_log = 1M\n"
    cases = [("stdout", big, 0, small_log), ("stdout+stderr", big // 2, big // 2, small_log)]
    if not QUICK:
        cases.append(("stdout, default max_log=100M", big, 0, ""))
    data = {}
    for r in range(REPS):
        for name, ob, eb, extra in cases:
            tr, wall, hwm = capture_run(ob, eb, extra)
            pipe = pipe_run(ob, eb)
            d = data.setdefault(name, {"transfer": [], "wall": [], "hwm": [], "pipe": []})
            d["transfer"].append(tr)
            d["wall"].append(wall)
            d["hwm"].append(hwm)
            d["pipe"].append(pipe)
            log(f"    run {r + 1}: {name:30s} spoolrun {big / tr / 1e6:7.0f} MB/s "
                f"(wall {big / wall / 1e6:5.0f})  pipe {big / pipe / 1e6:7.0f} MB/s  HWM {hwm:.1f} MiB")
    rss = {}
    for label, size in (("10 MiB stdout", 10 << 20), (f"{BIG} MiB stdout", big)):
        rss[label] = [capture_run(size, 0, small_log)[2] for _ in range(REPS)]
    raw["capture"] = {"bytes": big, "cases": data, "rss_hwm_mib": rss}
    for name, d in data.items():
        sp = big / median(d["transfer"]) / 1e6
        pp = big / median(d["pipe"]) / 1e6
        ratio_row(rows, "capture", f"spoolrun {name} (wall {big / median(d['wall']) / 1e6:.0f})",
                  sp, "writer | cat >/dev/null", pp, ">=", 0.9, unit="MB/s")
    rss[f"{BIG // 2} MiB stdout + {BIG // 2} MiB stderr"] = data["stdout+stderr"]["hwm"]
    for label, hwms in rss.items():
        m = median(hwms)
        row(rows, "capture RSS", f"watcher VmHWM, {label}", f"{m:.1f} MiB", target="< 8 MiB",
            ok=m < 8)


def bench_scale(rows, raw):
    """100,000 queued files: time to the first task and RSS; then a drain."""
    log(f"[scale] {N_BACKLOG} task files present at start; {N_DRAIN} dropped while running")
    probe = os.path.join(BIN, "probe")
    w = Watcher("b4", fsync=False)
    out = os.path.join(w.dir, "first")
    inc = w.incoming()
    os.makedirs(inc, exist_ok=True)
    t = time.monotonic()
    names = set()
    for i in range(N_BACKLOG):
        tid = f"q{i:06d}"
        write_task(os.path.join(inc, f"{tid}.json"), {"id": tid, "command": [probe, out]})
        names.add(f"{tid}.json")
    log(f"    created {N_BACKLOG} task files in {time.monotonic() - t:.1f} s")
    first, rss, hwm = [], [], []
    try:
        for r in range(REPS):
            w.start(warm=False)
            wait_file(out, timeout=120, interval=0.001)
            st = w.status()
            first_ns = int(open(out).read())
            w.stop()
            first.append((first_ns - w.t_exec) / 1e9)
            rss.append(st["VmRSS"])
            hwm.append(st["VmHWM"])
            log(f"    run {r + 1}: first task after {first[-1]:.3f} s; RSS {st['VmRSS']:.1f} MiB, "
                f"HWM {st['VmHWM']:.1f} MiB")
            # Put the backlog back as it was for the next run.
            os.unlink(out)
            for sub in ("results", "logs", "active"):
                p = os.path.join(w.spool, sub)
                for f in os.listdir(p):
                    if f.startswith(".") or sub != "active":
                        os.unlink(os.path.join(p, f))
                    else:
                        os.rename(os.path.join(p, f), os.path.join(inc, f))
            for name in names - set(os.listdir(inc)):
                tid = name[:-5]
                write_task(os.path.join(inc, name), {"id": tid, "command": [probe, out]})
    finally:
        w.close()
    drain = []
    for r in range(DRAIN_REPS):
        s = spoolrun_batch(N_DRAIN, False)
        drain.append(s)
        log(f"    drain run {r + 1}: {N_DRAIN} tasks in {s:.2f} s ({N_DRAIN / s:.0f} tasks/s)")
    raw["scale"] = {"backlog": N_BACKLOG, "first_task_s": first, "rss_mib": rss,
                    "hwm_mib": hwm, "drain": N_DRAIN, "drain_s": drain}
    row(rows, "queue scale", f"exec -> first task, {N_BACKLOG} queued", f"{median(first):.3f} s",
        target="<= 1 s", ok=median(first) <= 1)
    row(rows, "queue scale", "watcher RSS after the scan (HWM)",
        f"{median(rss):.1f} MiB ({median(hwm):.1f})", target="< 64 MiB", ok=median(hwm) < 64)
    row(rows, "queue scale", f"drain {N_DRAIN} dropped, fsync=no", f"{median(drain):.2f} s",
        "", f"{N_DRAIN / median(drain):.0f} tasks/s")


def proto_batch(n, mech, claim_sync):
    d = tmpdir("proto")
    try:
        for x in ("incoming", "active", "results", "tmp"):
            os.makedirs(os.path.join(d, x))
        stage_tasks(os.path.join(d, "incoming"), n, ["/bin/true"])
        out = subprocess.run([os.path.join(BIN, "publish_proto"), d, str(n), mech,
                              str(claim_sync)], env=ENV, check=True, capture_output=True,
                             text=True).stdout.split()
        assert int(out[0]) == n, out
        return float(out[1]), float(out[2]) / n
    finally:
        drop_dir(d)


def bench_proto(rows, raw):
    """The publication prototype (bench/publish_proto.c): the same task loop
    with each way of making results durable, interleaved."""
    n = N_PROTO
    log(f"[proto] {n} x /bin/true per run, {PROTO_REPS} runs each")
    variants = [("none", 0), ("serial", 0), ("thread", 0), ("batch", 0), ("uring", 0),
                ("serial", 1), ("thread", 1), ("batch", 1), ("uring", 1),
                ("thread", 2), ("batch", 2), ("uring", 2)]
    secs = {v: [] for v in variants}
    waits = {v: [] for v in variants}
    for r in range(PROTO_REPS):
        for v in variants:
            s, w = proto_batch(n, *v)
            secs[v].append(s)
            waits[v].append(w)
            log(f"    proto run {r + 1}: {v[0]:6s} claim_sync={v[1]} {s:6.3f} s "
                f"{n / s:7.1f} tasks/s  claim wait {w:5.0f} us/task")
    raw["proto"] = {"n": n, "seconds": {f"{m} {c}": v for (m, c), v in secs.items()},
                    "claim_wait_us": {f"{m} {c}": v for (m, c), v in waits.items()}}
    ref = n / median(secs[("none", 0)])
    for v in variants:
        rate = n / median(secs[v])
        claim = {0: "claim not synced", 1: "claim synced", 2: "claim first, synced"}[v[1]]
        ratio_row(rows, "proto", f"{v[0]}, {claim} (wait {median(waits[v]):.0f} us)", rate,
                  "none", ref)


# ----------------------------------------------------------------- Slurm
# (from branch slurm, issue 12; registered as MEASUREMENTS' `slurm`)

N_SLURM = knob("BENCH_SLURM_N", 100, 30)
SLURM_POLL = 0.5  # seconds; the baseline's wait polls as often as spoolrun does


def slurm_cluster():
    """A real single-node cluster (tests/e2e/slurm_cluster.py), or None with
    the reason logged."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    try:
        import slurm_cluster
    except ImportError as e:
        log(f"[slurm] skipped: {e}")
        return None
    reason = slurm_cluster.unavailable()
    if reason:
        log(f"[slurm] skipped: {reason}")
        return None
    return slurm_cluster.SlurmCluster(oversubscribe=32).start()


def sbatch_loop_batch(cluster, n):
    """The bare engine: n x `sbatch --wrap true`, then polling squeue until
    every job ended; seconds from the first sbatch to the last end."""
    d = tmpdir("sbatch")
    try:
        t0 = time.monotonic_ns()
        ids = []
        for _ in range(n):
            r = cluster.run("sbatch", "--parsable", "--no-requeue", "--output=/dev/null",
                            f"--chdir={d}", "--wrap=true")
            ids.append(r.stdout.strip().split(";")[0])
        left = set(ids)
        while left:
            r = cluster.run("squeue", "--noheader", "--states=all", "--format=%i|%T",
                            "--jobs=" + ",".join(sorted(left)))
            for line in r.stdout.split():
                jid, st = line.split("|", 1)
                if st not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"):
                    left.discard(jid)
            if left:
                time.sleep(SLURM_POLL)
        return (time.monotonic_ns() - t0) / 1e9
    finally:
        drop_dir(d)


def spoolrun_slurm_batch(cluster, n):
    """n /bin/true tasks through the Slurm executor (slots = n): seconds
    from the first rename into incoming/ to the nth result."""
    ENV["SLURM_CONF"] = cluster.conf  # the watcher's sbatch and squeue
    w = Watcher("slurm", fsync=False, extra=f"[runner]\nexecutor = slurm\nslots = {n}\n"
                f"[slurm]\npoll_interval = {SLURM_POLL}\n")
    w.start(warm=False)
    try:
        os.makedirs(w.incoming(), exist_ok=True)
        names = stage_tasks(w.stage, n, ["/bin/true"])
        wt = waitn(w.results(), n, 900)
        t0 = time.monotonic_ns()
        for name in names:
            os.rename(os.path.join(w.stage, name), os.path.join(w.incoming(), name))
        t1 = waitn_result(wt)
        bad = [n for n in os.listdir(w.results()) if w.result(n[:-5])["status"] != "succeeded"]
        if bad:
            raise RuntimeError(f"{len(bad)} Slurm task(s) did not succeed, e.g. {bad[0]}")
        return (t1 - t0) / 1e9
    finally:
        w.close()


def bench_slurm(rows, raw):
    """Tasks/s through the Slurm executor against plain sbatch in the same
    run: what spoolrun adds to the engine's own pace (target: < 10 %)."""
    cluster = slurm_cluster()
    if not cluster:
        return
    try:
        log(f"[slurm] {N_SLURM} x true, {REPS} runs, single-node cluster")
        secs = {"spoolrun executor=slurm": [], "sbatch --wrap true loop": []}
        for r in range(REPS):
            for k, fn in (("sbatch --wrap true loop", sbatch_loop_batch),
                          ("spoolrun executor=slurm", spoolrun_slurm_batch)):
                s = fn(cluster, N_SLURM)
                secs[k].append(s)
                log(f"    run {r + 1}: {k:24s} {s:7.2f} s  {N_SLURM / s:7.1f} tasks/s")
        raw["bench6"] = {"n": N_SLURM, "seconds": secs}
        ours = N_SLURM / median(secs["spoolrun executor=slurm"])
        base = N_SLURM / median(secs["sbatch --wrap true loop"])
        ratio_row(rows, "slurm", "spoolrun executor=slurm", ours, "sbatch --wrap true loop", base,
                  ">=", 0.9)
    finally:
        cluster.stop()


MEASUREMENTS = [("throughput", bench_throughput), ("parallel", bench_parallel),
                ("peers", bench_peers), ("latency", bench_latency), ("capture", bench_capture),
                ("scale", bench_scale), ("slurm", bench_slurm)]
OPTIONAL = [("shell", bench_shell), ("proto", bench_proto)]


# ------------------------------------------------------------------ main

def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cores": os.cpu_count(),
            "cpu": model, "kernel": platform.release(),
            "load": os.getloadavg()[0],
            "spoolrun": subprocess.run([SPOOLRUN, "--version"], capture_output=True,
                                       text=True).stdout.strip()}


def table(rows):
    head = ("benchmark", "measured", "value", "baseline", "baseline value", "ratio", "target", "ok")
    body = []
    for r in rows:
        ratio = "" if r[5] is None else f"{r[5]:.2f}"
        ok = "" if r[7] is None else ("ok" if r[7] else "MISSED")
        body.append((r[0], r[1], r[2], r[3], r[4], ratio, r[6], ok))
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    return "\n".join(out)


def selected(only):
    """The measurements named by --only (names or 1-based numbers of
    MEASUREMENTS), in their registered order."""
    every = MEASUREMENTS + OPTIONAL
    if not only:
        return MEASUREMENTS
    want = set(x.strip() for x in only.split(",") if x.strip())
    for w in want:
        if w.isdigit():
            if not 1 <= int(w) <= len(MEASUREMENTS):
                sys.exit(f"--only: no measurement number {w}")
        elif w not in dict(every):
            sys.exit(f"--only: unknown measurement {w!r} (known: "
                     f"{', '.join(k for k, _ in every)})")
    return [(k, fn) for i, (k, fn) in enumerate(every)
            if k in want or (i < len(MEASUREMENTS) and str(i + 1) in want)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="",
                    help="comma-separated measurement names or numbers (default: all of "
                         + ", ".join(k for k, _ in MEASUREMENTS) + "; optional: "
                         + ", ".join(k for k, _ in OPTIONAL) + ")")
    args = ap.parse_args()
    todo = selected(args.only)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    if not os.access(SPOOLRUN, os.X_OK):
        sys.exit(f"{SPOOLRUN} is missing: run `make all` first")
    build_helpers()
    info = machine()
    info["quick"] = QUICK
    log(f"spoolrun benchmarks{' (BENCH_QUICK)' if QUICK else ''}: {info}")
    rows, raw = [], {}
    t = time.monotonic()
    try:
        for _, fn in todo:
            fn(rows, raw)
    finally:
        cleanup()
    info["runtime_s"] = round(time.monotonic() - t, 1)
    text = table(rows)
    targets = [r for r in rows if r[7] is not None]
    missed = [r for r in targets if not r[7]]
    print(f"\nspoolrun benchmarks, {info['date']}, {info['cores']} cores, {info['cpu']}, "
          f"kernel {info['kernel']}, load {info['load']:.2f}{', BENCH_QUICK' if QUICK else ''}; "
          f"each figure is the median of {REPS} runs; total {info['runtime_s']} s\n")
    print(text)
    print(f"\n{len(targets) - len(missed)} of {len(targets)} targets ok"
          + (f"; missed: {'; '.join(f'{r[0]}: {r[1]}' + (f' vs {r[3]}' if r[3] else '') for r in missed)}" if missed else ""))
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if QUICK else "")
    with open(os.path.join(RESULTS_DIR, f"{stamp}.json"), "w") as f:
        json.dump({"machine": info, "rows": rows, "raw": raw}, f, indent=1,
                  default=str)
    with open(os.path.join(RESULTS_DIR, f"{stamp}.txt"), "w") as f:
        f.write(text + "\n")
    shutil.copy(os.path.join(RESULTS_DIR, f"{stamp}.txt"), os.path.join(RESULTS_DIR, "latest.txt"))
    print(f"\nwritten to {os.path.relpath(RESULTS_DIR, ROOT)}/{stamp}.json and .txt")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        cleanup()
        sys.exit(f"interrupted: {e}")
