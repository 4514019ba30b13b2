#!/usr/bin/python3
"""spoolrun benchmark driver (Python 3 standard library only).

Runs the five benchmarks described in bench/README.md, prints a results table
and writes it, with every raw sample, to bench/results/. Every figure is the
median of several runs; every ratio compares two figures measured in this same
invocation. BENCH_QUICK=1 gives a ~1 minute smoke run.

Usage: bench/run.py [--only 1,2,...]   (after `make all`; `make bench` does both)
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
SPOOLRUN = os.path.join(ROOT, "build", "spoolrun")
RESULTS_DIR = os.path.join(BENCH, "results")

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def knob(name, full, quick):
    v = os.environ.get(name)
    return type(full)(v) if v else (quick if QUICK else full)


N_TASKS = knob("BENCH_N", 2000, 200)            # benchmark 1
REPS = knob("BENCH_REPS", 3, 3)                 # runs per figure (median)
N_DROPS = knob("BENCH_DROPS", 200, 60)          # benchmark 2
BIG = knob("BENCH_BIG_MB", 1024, 256)           # benchmark 3 (MiB)
N_BACKLOG = knob("BENCH_BACKLOG", 100000, 10000)  # benchmark 4
N_DRAIN = knob("BENCH_DRAIN", 10000, 500)       # benchmark 4
DRAIN_REPS = knob("BENCH_DRAIN_REPS", 3, 1)
N_PEER = knob("BENCH_PEER_N", 200, 40)          # benchmark 5

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
    for name in ("probe", "writer", "waitn", "baseline_runner", "bare_watcher"):
        src = os.path.join(BENCH, f"{name}.c")
        out = os.path.join(BIN, name)
        if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
            subprocess.run(["cc", "-O2", "-Wall", "-o", out, src], check=True)


def write_task(path, task):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, json.dumps(task).encode())
    os.close(fd)


# ------------------------------------------------------------- spoolrun

class Watcher:
    """A spoolrun watcher on a fresh spool in its own temp dir."""

    def __init__(self, label, fsync=False, extra="", spool=None):
        self.dir = spool or tmpdir(label)
        self.spool = os.path.join(self.dir, "spool")
        self.stage = os.path.join(self.dir, "stage")
        os.makedirs(self.stage, exist_ok=True)
        self.config = os.path.join(self.dir, "spoolrun.ini")
        with open(self.config, "w") as f:
            f.write(f"[spool]\nfsync = {'yes' if fsync else 'no'}\n"
                    f"[log]\nlevel = warn\n{extra}")
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
        wait_file(os.path.join(self.results(), f"{tid}.json"), timeout=30)

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


def spoolrun_batch(n, fsync, command=("/bin/true",)):
    """Tasks staged beforehand, renamed into incoming/ all at once while the
    watcher runs; seconds from the first rename to the Nth result."""
    w = Watcher("b1", fsync=fsync).start()
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


def baseline_batch(n, fsync):
    d = tmpdir("base")
    try:
        stage, res, tmp = (os.path.join(d, x) for x in ("stage", "results", "tmp"))
        for x in (stage, res, tmp):
            os.makedirs(x)
        stage_tasks(stage, n, ["/bin/true"])
        out = subprocess.run([os.path.join(BIN, "baseline_runner"), stage, res, tmp,
                              "1" if fsync else "0", "/bin/true"],
                             env=ENV, check=True, capture_output=True, text=True).stdout
        count, secs = out.split()
        assert int(count) == n, out
        return float(secs)
    finally:
        drop_dir(d)


# ------------------------------------------------------------ benchmarks

def bench1(rows, raw):
    log(f"[1] per-task overhead: {N_TASKS} x /bin/true, {REPS} runs each")
    cases = {"spoolrun fsync": lambda: spoolrun_batch(N_TASKS, True),
             "baseline fsync": lambda: baseline_batch(N_TASKS, True),
             "spoolrun nofsync": lambda: spoolrun_batch(N_TASKS, False),
             "baseline nofsync": lambda: baseline_batch(N_TASKS, False)}
    secs = {k: [] for k in cases}
    for r in range(REPS):
        for k, fn in cases.items():
            s = fn()
            secs[k].append(s)
            log(f"    run {r + 1}: {k:17s} {s:7.3f} s  {N_TASKS / s:7.1f} tasks/s")
    rate = {k: N_TASKS / median(v) for k, v in secs.items()}
    raw["bench1"] = {"n": N_TASKS, "seconds": secs}
    for fs in ("fsync", "nofsync"):
        ratio = rate[f"spoolrun {fs}"] / rate[f"baseline {fs}"]
        rows.append(("1 per-task overhead", f"spoolrun, fsync={'yes' if fs == 'fsync' else 'no'}",
                     f"{rate[f'spoolrun {fs}']:.1f} tasks/s", "baseline_runner",
                     f"{rate[f'baseline {fs}']:.1f} tasks/s", ratio, ">= 0.8", ratio >= 0.8))
    return rate


def bench2(rows, raw):
    log(f"[2] pickup latency: {N_DROPS} single drops per watcher")
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
    raw["bench2_us"] = lat
    bare_med = median(lat["bare_watcher"])
    for key in ("spoolrun fsync=no", "spoolrun fsync=yes"):
        m, p99 = median(lat[key]), pct(lat[key], 99)
        ratio = m / bare_med
        rows.append(("2 pickup latency", f"{key} median (p99)", f"{m:.0f} us ({p99:.0f})",
                     "bare_watcher median (p99)",
                     f"{bare_med:.0f} us ({pct(lat['bare_watcher'], 99):.0f})",
                     ratio, "<= 1.25", ratio <= 1.25))
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


def bench3(rows, raw):
    big = BIG << 20
    log(f"[3] capture throughput: {BIG} MiB, {REPS} runs each")
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
        hwms = [capture_run(size, 0, small_log)[2] for _ in range(REPS)]
        rss[label] = hwms
    raw["bench3"] = {"bytes": big, "cases": data, "rss_hwm_mib": rss}
    for name, d in data.items():
        sp = big / median(d["transfer"]) / 1e6
        pp = big / median(d["pipe"]) / 1e6
        ratio = sp / pp
        rows.append(("3 capture throughput", f"spoolrun {name} (wall {big / median(d['wall']) / 1e6:.0f})",
                     f"{sp:.0f} MB/s", "writer | cat >/dev/null", f"{pp:.0f} MB/s",
                     ratio, ">= 0.8", ratio >= 0.8))
    rss[f"{BIG // 2} MiB stdout + {BIG // 2} MiB stderr"] = data["stdout+stderr"]["hwm"]
    for label, hwms in rss.items():
        m = median(hwms)
        rows.append(("3 capture RSS", f"watcher VmHWM, {label}", f"{m:.1f} MiB",
                     "", "", None, "< 8 MiB", m < 8))


def bench4(rows, raw):
    log(f"[4] queue scale: {N_BACKLOG} task files present at start; "
        f"{N_DRAIN} dropped while running")
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
    raw["bench4"] = {"backlog": N_BACKLOG, "first_task_s": first, "rss_mib": rss,
                     "hwm_mib": hwm, "drain": N_DRAIN, "drain_s": drain}
    rows.append(("4 queue scale", f"exec -> first task, {N_BACKLOG} queued", f"{median(first):.3f} s",
                 "", "", None, "<= 2 s", median(first) <= 2))
    rows.append(("4 queue scale", "watcher RSS after the scan (HWM)",
                 f"{median(rss):.1f} MiB ({median(hwm):.1f})", "", "", None, "< 64 MiB",
                 median(hwm) < 64))
    rows.append(("4 queue scale", f"drain {N_DRAIN} dropped, fsync=no", f"{median(drain):.2f} s",
                 "", f"{N_DRAIN / median(drain):.0f} tasks/s", None, "", None))


def tsp_batch(n):
    d = tmpdir("tsp")
    env = dict(ENV, TS_SOCKET=os.path.join(d, "socket"), TMPDIR=d, TS_MAXFINISHED=str(n + 10))
    tsp = shutil.which("tsp") or shutil.which("ts")
    try:
        subprocess.run([tsp, "/bin/true"], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([tsp, "-w"], env=env, check=True)
        script = f'i=0; while [ $i -lt {n} ]; do "$0" /bin/true >/dev/null; i=$((i+1)); done; "$0" -w'
        t0 = time.monotonic_ns()
        subprocess.run(["sh", "-c", script, tsp], env=env, check=True)
        secs = (time.monotonic_ns() - t0) / 1e9
        jobs = subprocess.run([tsp], env=env, capture_output=True, text=True).stdout
        done = sum(1 for line in jobs.splitlines() if " finished " in line)
        assert done == n + 1, f"tsp finished {done} of {n + 1}"
        return secs
    finally:
        subprocess.run([tsp, "-K"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        drop_dir(d)


def nq_batch(n):
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


def bench5(rows, raw):
    log(f"[5] peers: {N_PEER} x /bin/true each, {REPS} runs")
    cases = {"spoolrun fsync=no": lambda: spoolrun_batch(N_PEER, False),
             "spoolrun fsync=yes": lambda: spoolrun_batch(N_PEER, True),
             "task-spooler (tsp)": lambda: tsp_batch(N_PEER),
             "nq": lambda: nq_batch(N_PEER),
             "shell_loop.sh": lambda: shell_batch(N_PEER)}
    secs = {k: [] for k in cases}
    for r in range(REPS):
        for k, fn in cases.items():
            s = fn()
            secs[k].append(s)
            log(f"    run {r + 1}: {k:20s} {s:7.2f} s  {N_PEER / s:7.1f} tasks/s")
    raw["bench5"] = {"n": N_PEER, "seconds": secs}
    rate = {k: N_PEER / median(v) for k, v in secs.items()}
    ref = rate["spoolrun fsync=no"]
    for k in cases:
        if k == "spoolrun fsync=no":
            continue
        rows.append(("5 peers", f"{k} / spoolrun fsync=no", f"{rate[k]:.1f} tasks/s",
                     "spoolrun fsync=no", f"{ref:.1f} tasks/s", rate[k] / ref, "", None))


# ------------------------------------------------------------ benchmark 6: Slurm

N_SLURM = knob("BENCH_SLURM_N", 100, 30)
SLURM_POLL = 0.5  # seconds; the baseline's wait polls as often as spoolrun does


def slurm_cluster():
    """A real single-node cluster (tests/e2e/slurm_cluster.py), or None with
    the reason logged."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import slurm_cluster
    reason = slurm_cluster.unavailable()
    if reason:
        log(f"[6] Slurm: skipped: {reason}")
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


def bench6(rows, raw):
    """Tasks/s through the Slurm executor against plain sbatch in the same
    run: what spoolrun adds to the engine's own pace (target: < 10 %)."""
    cluster = slurm_cluster()
    if not cluster:
        return
    try:
        log(f"[6] Slurm: {N_SLURM} x true, {REPS} runs, single-node cluster")
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
        rows.append(("6 slurm", "spoolrun executor=slurm", f"{ours:.1f} tasks/s",
                     "sbatch --wrap true loop", f"{base:.1f} tasks/s", ours / base, ">= 0.90",
                     ours / base >= 0.90))
    finally:
        cluster.stop()


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
            "spoolrun": subprocess.run([SPOOLRUN, "--version"], capture_output=True,
                                       text=True).stdout.strip()}


def table(rows):
    head = ("benchmark", "measured", "value", "baseline", "baseline value", "ratio", "target", "ok")
    body = []
    for r in rows:
        ratio = "" if r[5] is None else f"{r[5]:.2f}"
        ok = "" if r[7] is None else ("yes" if r[7] else "NO")
        body.append((r[0], r[1], r[2], r[3], r[4], ratio, r[6], ok))
    widths = [max(len(str(x[i])) for x in [head] + body) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="1,2,3,4,5,6", help="comma-separated benchmark numbers")
    args = ap.parse_args()
    only = {int(x) for x in args.only.split(",") if x}
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
    benches = {1: bench1, 2: bench2, 3: bench3, 4: bench4, 5: bench5, 6: bench6}
    try:
        for k in sorted(only):
            benches[k](rows, raw)
    finally:
        cleanup()
    info["runtime_s"] = round(time.monotonic() - t, 1)
    text = table(rows)
    print(f"\nspoolrun benchmarks, {info['date']}, {info['cores']} cores, {info['cpu']}, "
          f"kernel {info['kernel']}{', BENCH_QUICK' if QUICK else ''}; "
          f"each figure is the median of {REPS} runs; total {info['runtime_s']} s\n")
    print(text)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if QUICK else "")
    with open(os.path.join(RESULTS_DIR, f"{stamp}.json"), "w") as f:
        json.dump({"machine": info, "rows": rows, "raw": raw}, f, indent=1)
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
