"""Every move between spool directories is safe, every failed move is
retried, every count is true (issue 10 points 1, 2, 8, 13). Faults are
injected with strace (-e inject) into the watcher alone, never its tasks."""
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from harness import BIN, SLOW, Spool, SpoolTest, wait_for

STRACE = shutil.which("strace")


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


class Traced:
    """The watcher (or drain) run under strace with a fault injected; the
    signals go to the traced process itself."""

    def __init__(self, spool, inject, command="watch"):
        self.spool = spool
        self.err = open(spool.stderr_path, "ab")
        # LeakSanitizer cannot run under ptrace: a sanitizer build would
        # end with its error (exit 1) instead of its own status.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        self.strace = subprocess.Popen(
            # -f: the watcher's publishing threads make the moves out of
            # active/ when fsync = yes (src/publisher.h); they must see the
            # fault too.
            [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", f"trace={inject.split(':')[0]}",
             "-e", f"inject={inject}", BIN, command, *spool.args()],
            stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err, env=env)
        self.pid = wait_for(self._tracee, what="the traced watcher")

    def _tracee(self):
        # strace may fork short-lived probes first: the tracee runs BIN.
        for pid in children_of(self.strace.pid):
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(BIN):
                    return pid
            except OSError:
                pass
        return None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=20):
        try:
            return self.strace.wait(timeout * SLOW)
        finally:
            self.err.close()

    def kill(self):
        if self.strace.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.strace.wait(5)
            except subprocess.TimeoutExpired:
                self.strace.kill()
                self.strace.wait()
        if not self.err.closed:
            self.err.close()


def visible(d):
    return sorted(n for n in os.listdir(d) if not n.startswith("."))


def sh(script):
    return ["/bin/sh", "-c", script]


@unittest.skipUnless(STRACE, "strace is not installed (apt-get install strace)")
class FailedMoves(SpoolTest):
    START = False

    def traced(self, inject, command="watch"):
        t = Traced(self.spool, inject, command)
        self.addCleanup(t.kill)
        return t

    def test_failed_claim_is_retried_not_dropped(self):
        """EIO on the first three renames (the claim and its first two
        retries): the task is claimed at the fourth try, with no restart."""
        self.spool.submit({"id": "claimed", "command": ["echo", "ok"]})
        os.makedirs(self.spool.path("results"), exist_ok=True)
        t = self.traced("renameat2:error=EIO:when=1..3")
        r = self.spool.result("claimed", timeout=10)
        self.assertEqual((r["status"], r["stdout"], r["attempt"]), ("succeeded", "ok\n", 1))
        self.assertIn("trying again", self.spool.log())
        t.signal(signal.SIGTERM)
        self.assertEqual(t.wait(), 0)

    def test_failed_move_to_deferred_is_retried_with_exact_history(self):
        """EIO on the move to deferred/ (the second and third renames; the
        first is the claim): the retry still happens, once, with its history
        and retry budget exact, and no restart is needed."""
        once = os.path.join(self.spool.tmp, "once")
        self.spool.submit({"id": "mover", "retries": 2, "retry_backoff": 0.2, "command": sh(
            f"if [ -e '{once}' ]; then echo second; exit 0; fi; touch '{once}'; exit 3")})
        os.makedirs(self.spool.path("results"), exist_ok=True)
        t = self.traced("renameat2:error=EIO:when=2..3")
        r = self.spool.result("mover", timeout=15)
        self.assertEqual((r["status"], r["stdout"], r["attempt"]), ("succeeded", "second\n", 2))
        self.assertEqual([a["attempt"] for a in r["attempts"]], [1, 2])
        self.assertEqual(r["attempts"][0]["exit_code"], 3)
        self.assertNotIn("interrupted", json.dumps(r["attempts"]))
        self.assertIn("cannot move it to deferred/", self.spool.log())
        t.signal(signal.SIGTERM)
        self.assertEqual(t.wait(), 0)

    def test_stop_summary_counts_what_is_really_in_incoming(self):
        """Claims that keep failing: the three tasks stay in incoming/, and
        the stop summary says so (it counts the directory, not memory)."""
        for i in range(3):
            self.spool.submit({"id": f"stuck{i}", "command": ["true"]})
        t = self.traced("renameat2:error=EIO")
        wait_for(lambda: self.spool.log().count("cannot take it from incoming/") >= 3,
                 what="the failing claims")
        t.signal(signal.SIGTERM)
        self.assertEqual(t.wait(), 0)
        self.assertEqual(sorted(os.listdir(self.spool.path("incoming"))),
                         ["stuck0.json", "stuck1.json", "stuck2.json"])
        self.assertIn("3 task(s) wait in incoming/", self.spool.log())

    def test_drain_fails_with_a_task_stuck_in_active(self):
        """The task file cannot be removed from active/ (EIO on every
        unlink): drain must not exit 0 leaving it there."""
        self.spool.submit({"id": "sticky", "command": ["true"]})
        t = self.traced("unlinkat:error=EIO", command="drain")
        rc = t.wait(timeout=30)
        self.assertEqual(rc, 1, self.spool.log()[-2000:])
        self.assertEqual(visible(self.spool.path("active")), ["sticky.json"])
        self.assertIn("left in active/", self.spool.log())
        # Nothing is lost: the next start publishes the recorded result and
        # does not run the task again.
        self.spool.start()
        r = self.spool.result("sticky")
        self.assertEqual((r["status"], r["attempt"]), ("succeeded", 1))
        wait_for(lambda: os.listdir(self.spool.path("active")) == [], what="active/ to empty")


class NeverReplace(SpoolTest):
    START = False

    def test_requeue_never_replaces_a_waiting_file_of_the_same_name(self):
        """SIGTERM while job.json (id first) runs and another job.json (id
        second) waits in incoming/: both survive and both run later."""
        gate = os.path.join(self.spool.tmp, "gate")
        started = os.path.join(self.spool.tmp, "started")
        self.spool.submit({"id": "first", "command": sh(
            f"if [ -e '{gate}' ]; then echo first; exit 0; fi; touch '{started}'; exec sleep 30")},
            "job.json")
        self.spool.start()
        wait_for(lambda: os.path.exists(started), what="first to run")
        self.spool.submit({"id": "second", "command": ["echo", "second"]}, "job.json")
        self.assertEqual(self.spool.stop(), 0)
        with open(self.spool.path("incoming", "job.json")) as f:
            self.assertEqual(json.load(f)["id"], "second", "the waiting file is not replaced")
        self.assertEqual(visible(self.spool.path("deferred")), ["job.json"])
        open(gate, "w").close()
        self.spool.start()
        self.assertEqual(self.spool.result("first")["stdout"], "first\n")
        self.assertEqual(self.spool.result("second")["stdout"], "second\n")

    def test_due_retry_waits_while_its_name_runs(self):
        """A deferred job.json comes due while another job.json runs (two
        slots): it waits for the name instead of replacing the running file."""
        self.spool = Spool("[runner]\nslots = 2\n")
        self.addCleanup(self.spool.cleanup)
        once = os.path.join(self.spool.tmp, "once")
        self.spool.submit({"id": "retry", "retries": 1, "retry_backoff": 0.5, "command": sh(
            f"if [ -e '{once}' ]; then echo retried; exit 0; fi; touch '{once}'; exit 1")},
            "job.json")
        self.spool.start()
        wait_for(lambda: os.path.exists(self.spool.path("deferred", "job.json")),
                 what="the first attempt to be deferred")
        self.spool.submit({"id": "long", "command": sh("sleep 1.5; echo long")}, "job.json")
        r = self.spool.result("retry", timeout=10)
        self.assertEqual((r["status"], r["stdout"], r["attempt"]), ("succeeded", "retried\n", 2))
        self.assertEqual(self.spool.result("long")["stdout"], "long\n")


class DuplicateWhileDeferred(SpoolTest):
    def test_duplicate_of_a_deferred_task_is_refused_and_the_retry_keeps_its_history(self):
        once = os.path.join(self.spool.tmp, "once")
        self.spool.submit({"id": "dupx", "retries": 1, "retry_backoff": 1, "command": sh(
            f"if [ -e '{once}' ]; then echo retried; exit 0; fi; touch '{once}'; exit 1")},
            "a.json")
        wait_for(lambda: os.path.exists(self.spool.path("deferred", "a.json")),
                 what="the first attempt to be deferred")
        self.spool.submit({"id": "dupx", "command": ["echo", "impostor"]}, "b.json")
        dup = self.spool.result("dupx@2")
        self.assertEqual((dup["status"], dup["error"]["code"]), ("rejected", "duplicate_id"))
        self.assertEqual(dup["task_file"], "b.json")
        r = self.spool.result("dupx", timeout=10)
        self.assertEqual(r["task_file"], "a.json")
        self.assertEqual((r["status"], r["attempt"], len(r["attempts"])), ("succeeded", 2, 2))
        self.assertEqual(r["stdout"], "retried\n")
        self.assertEqual(self.spool.results(), ["dupx.json", "dupx@2.json"])
