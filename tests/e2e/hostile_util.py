"""Helpers for the hostile end-to-end tests (crash, signals, escaping tasks,
floods, hostile files, full disks). Kept apart from harness.py on purpose."""
import json
import os
import signal
import subprocess

import harness
from harness import Spool, SpoolTest, environ, wait_for

ASAN = "asan" in os.path.abspath(harness.BIN) or harness.SLOW > 1 or any(
    k in os.environ for k in ("ASAN_OPTIONS", "SPOOLRUN_ASAN"))


MARK = "SPOOLRUN_HOSTILE_E2E"


class HostileSpool(Spool):
    """A Spool whose result waits fail at once, with the watcher's log, when
    the watcher has died (a crash or a sanitizer abort) instead of waiting
    out the whole deadline. Its watcher (and so every task) carries
    MARK=<spool's temp dir> in its environment."""

    def start(self, wait=True):
        with environ({MARK: self.tmp}):
            return super().start(wait)

    def check_alive(self):
        """Raises when the watcher has exited unasked; true otherwise."""
        proc = self.proc
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the watcher exited ({proc.returncode}); its log ends:\n"
                                 f"{self.log()[-2000:]}")
        return True

    def result(self, rid, timeout=10.0):
        p = self.result_path(rid)

        def ready():
            if os.path.exists(p):
                return True
            proc = self.proc
            if proc is not None and proc.poll() is not None and not os.path.exists(p):
                raise AssertionError(f"the watcher exited ({proc.returncode}) while waiting "
                                     f"for result {rid}; its log ends:\n{self.log()[-2000:]}")
            return False
        wait_for(ready, timeout, what=f"result {rid}")
        with open(p) as f:
            return json.load(f)


class HostileTest(SpoolTest):
    """SpoolTest on a HostileSpool."""

    def setUp(self):
        self.foreign_results = set()
        self.spool = HostileSpool(self.CONFIG)
        self.addCleanup(self.spool.cleanup)
        # Runs before spool.cleanup: nothing a test started may outlive it.
        self.addCleanup(self.kill_leftovers)
        if self.START:
            self.spool.start()

    def kill_leftovers(self):
        if self.spool.proc is not None and self.spool.proc.poll() is None:
            crash(self.spool)
        # A watcher that died first (a failed test, a sanitizer abort) leaves
        # its tasks running: find them by the mark in their environment.
        mark = f"{MARK}={self.spool.tmp}".encode()
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if mark in f.read().split(b"\0"):
                        os.kill(int(d), signal.SIGKILL)
            except OSError:
                pass


def pid_alive(pid):
    """True while pid exists and is not a zombie (pid 1 here may never reap
    what it inherits, so a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def children(pid):
    """Direct children of pid (all its threads)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except FileNotFoundError:
                pass
    except FileNotFoundError:
        pass
    return out


def descendants(pid):
    seen, todo = [], children(pid)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += children(p)
    return seen


def pgid_of(pid):
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def crash(spool):
    """SIGKILLs the watcher the way a crash or the OOM killer would, then
    kills what it was running (tasks live in their own sessions and would
    otherwise outlive it). The watcher is stopped first so it cannot start
    another task between the snapshot of its tree and its death."""
    proc = spool.proc
    if proc is None:
        return
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGSTOP)
        tree = descendants(proc.pid)
        groups = {g for g in (pgid_of(p) for p in tree) if g and g != os.getpgrp()}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in tree:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not any(pid_alive(p) for p in tree), 5,
                 what="the crashed watcher's tasks to die")
    spool.stderr.close()
    spool.proc = None


def read_pid(path, timeout=10.0):
    """Waits for a pid file written by a task and returns the pid."""
    def get():
        try:
            with open(path) as f:
                s = f.read().strip()
            return int(s) if s else None
        except (FileNotFoundError, ValueError):
            return None
    return wait_for(get, timeout, what=f"pid file {path}")


def listdir(path, hidden=True):
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if hidden or not n.startswith("."))


def load(path):
    with open(path) as f:
        return json.load(f)


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def stage(spool, name):
    """A path in the spool's staging directory (same file system as the
    spool, outside incoming/)."""
    return os.path.join(spool.staging, name)


def move_in(spool, staged, name=None):
    """Renames something prepared in staging into incoming/ (the watcher
    sees renames, not creations)."""
    os.makedirs(spool.path("incoming"), exist_ok=True)
    dst = spool.path("incoming", name or os.path.basename(staged))
    os.rename(staged, dst)
    return dst


def mount_tmpfs(path, size):
    """Mounts a tmpfs of the given size on path; returns an error text or
    None on success."""
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path],
                       capture_output=True, text=True)
    return None if p.returncode == 0 else (p.stderr.strip() or f"mount exited {p.returncode}")


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)
