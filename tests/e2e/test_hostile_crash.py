"""Crash recovery: a watcher killed with SIGKILL at any moment loses no task
and runs none twice once its result is published."""
import json
import os
import random
import shlex
import time

from harness import wait_for
from hostile_util import HostileTest, crash, lines, listdir, load, stage


def sh(script):
    return ["/bin/sh", "-c", script]


class CrashRecovery(HostileTest):
    CONFIG = "[task]\nkill_grace = 0.5\n"

    def counter(self):
        return os.path.join(self.spool.tmp, "runs")

    def wait_running(self, name, runs):
        """Waits until active/NAME exists and the task has started `runs` times."""
        wait_for(lambda: self.spool.check_alive() and os.path.exists(self.spool.path("active", name))
                 and len(lines(self.counter())) >= runs,
                 what=f"{name} to be running (start #{runs})")

    def test_hostile_crash_task_runs_again_after_sigkill(self):
        c = shlex.quote(self.counter())
        # Sleeps on its first run only, so the second run ends by itself.
        name = self.spool.submit({"id": "slow", "command": sh(
            f"echo run >> {c}; [ $(wc -l < {c}) -ge 2 ] || exec sleep 30; echo second")})
        self.wait_running(name, 1)
        crash(self.spool)
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), [name],
                         "a killed watcher leaves its task in active/")
        self.assertFalse(os.path.exists(self.spool.result_path("slow")))
        self.spool.start()
        r = self.spool.result("slow")
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["stdout"], "second\n")
        self.assertEqual(r["attempt"], 2)
        self.assertTrue(any("interrupted" in w for w in r["warnings"]), r["warnings"])
        self.assertEqual(lines(self.counter()), ["run", "run"])
        wait_for(lambda: listdir(self.spool.path("active")) == [],
                 what="active/ to be empty (attempt records included)")
        self.assertEqual(self.spool.results(), ["slow.json"])
        self.assertEqual(self.spool.stop(), 0)

    def test_hostile_crash_max_attempts_gives_up(self):
        self.spool.stop()
        with open(self.spool.config, "w") as f:
            f.write("[task]\nmax_attempts = 2\nkill_grace = 0.5\n")
        self.spool.start()
        c = shlex.quote(self.counter())
        name = self.spool.submit({"id": "doomed", "command": sh(f"echo run >> {c}; exec sleep 30")})
        self.wait_running(name, 1)
        crash(self.spool)
        self.spool.start()
        self.wait_running(name, 2)
        crash(self.spool)
        self.assertFalse(os.path.exists(self.spool.result_path("doomed")))
        self.spool.start()
        r = self.spool.result("doomed")
        self.assertEqual(r["status"], "interrupted", r)
        self.assertEqual(r["error"]["code"], "interrupted")
        self.assertEqual(r["attempt"], 2)
        self.assertIsNone(r["exit_code"])
        self.assertEqual(r["task"]["id"], "doomed")
        wait_for(lambda: listdir(self.spool.path("active")) == [], what="active/ to be empty")
        # The watcher goes on with other work, and never starts the task again.
        self.assertEqual(self.run_task({"id": "after", "command": ["true"]})["status"], "succeeded")
        self.assertEqual(lines(self.counter()), ["run", "run"], "the task must not run a third time")
        self.assertEqual(self.spool.results(), ["after.json", "doomed.json"])

    def _published_but_still_there(self, back_to):
        """A task's result is published, and the very same file (same inode,
        mtime and size) reappears in back_to/: a crash between publishing
        and removing it, or a rename undone by a power cut."""
        c = shlex.quote(self.counter())
        gate = os.path.join(self.spool.tmp, "gate")
        name = self.spool.submit({"id": "once", "command": sh(
            f"echo run >> {c}; while [ ! -e {shlex.quote(gate)} ]; do sleep 0.01; done")})
        self.wait_running(name, 1)
        keep = stage(self.spool, "keep")
        # A second name for the claimed file, made after it was read.
        os.link(self.spool.path("active", name), keep)
        open(gate, "w").close()
        r = self.spool.result("once")
        self.assertEqual(r["status"], "succeeded")
        wait_for(lambda: not os.path.exists(self.spool.path("active", name)),
                 what="active/ to be cleared")
        if back_to == "active":
            self.assertEqual(self.spool.stop(), 0)
            os.rename(keep, self.spool.path("active", name))
            self.spool.start()
        else:
            os.rename(keep, self.spool.path("incoming", name))
        wait_for(lambda: "result already published" in self.spool.log(),
                 what="the watcher to notice the result is already published")
        wait_for(lambda: listdir(self.spool.path(back_to)) == [], what=f"{back_to}/ to be cleared")
        # Proof of progress past it: a later task runs.
        self.assertEqual(self.run_task({"id": "later", "command": ["true"]})["status"], "succeeded")
        self.assertEqual(lines(self.counter()), ["run"], "a published task must never run again")
        self.assertEqual(self.spool.results(), ["later.json", "once.json"])
        self.assertEqual(listdir(self.spool.path("rejected")), [])
        self.assertEqual(load(self.spool.result_path("once"))["status"], "succeeded")

    def test_hostile_crash_published_task_left_in_active(self):
        self._published_but_still_there("active")

    def test_hostile_crash_published_task_back_in_incoming(self):
        self._published_but_still_there("incoming")


class LeftoverTmp(HostileTest):
    START = False

    def test_hostile_crash_tmp_cleaned_at_start(self):
        tmp = self.spool.path("tmp")
        os.makedirs(tmp)
        for n in ("x.json.tmp", ".hidden", "half-written"):
            with open(os.path.join(tmp, n), "w") as f:
                f.write("{ partial")
        self.spool.start()
        self.assertEqual(listdir(tmp), [], "leftovers in tmp/ must be removed at start-up")
        self.assertIn("removed leftover temporary file", self.spool.log())


SOAK = max(1, int(os.environ.get("SPOOLRUN_SOAK", "1") or 1))


class CrashStress(HostileTest):
    """SIGKILL at pseudo-random moments while ~300 tasks go through."""
    CONFIG = "[task]\ntimeout = 30\nkill_grace = 0.2\n"
    START = False
    SEED = int(os.environ.get("SPOOLRUN_SEED", "20240611"))

    def make_tasks(self, rng, n, runs):
        tasks = {}
        for i in range(n):
            tid = f"t{i:05d}"
            roll = rng.random()
            rec = f"echo {tid} >> {shlex.quote(runs)}; "
            if roll < 0.03:
                # Refused: kept in rejected/, still exactly one result.
                tasks[tid] = {"id": tid, "command": 42}
            elif roll < 0.08:
                tasks[tid] = {"id": tid, "command": sh(rec + "head -c 200000 /dev/zero | tr '\\0' x")}
            elif roll < 0.22:
                tasks[tid] = {"id": tid, "command": sh(rec + "sleep 0.03")}
            elif roll < 0.6:
                tasks[tid] = {"id": tid, "command": sh(rec + f"echo {tid}")}
            else:
                tasks[tid] = {"id": tid, "command": sh(rec + "true")}
        return tasks

    def test_hostile_crash_stress_sigkill(self):
        rng = random.Random(self.SEED)
        n_tasks, n_kills = 300 * SOAK, 20 * SOAK
        runs = os.path.join(self.spool.tmp, "runs")
        tasks = self.make_tasks(rng, n_tasks, runs)
        ids = list(tasks)
        # Two thirds before the first start, the rest while it is down.
        first = (2 * n_tasks) // 3
        for tid in ids[:first]:
            self.spool.submit(tasks[tid], tid + ".json")
        pending = ids[first:]
        rdir = self.spool.path("results")

        def count():
            self.spool.check_alive()
            try:
                return len(os.listdir(rdir))
            except FileNotFoundError:
                return 0

        self.spool.start()
        kills = 0
        t0 = time.monotonic()
        while kills < n_kills:
            done = count()
            if done >= n_tasks:
                break
            if rng.random() < 0.5:
                target = min(done + rng.randint(1, 15), n_tasks)
                wait_for(lambda: count() >= target, 20, interval=0.001,
                         what=f"{target} results (kill {kills + 1})")
            else:
                until = time.monotonic() + rng.uniform(0, 0.15)
                wait_for(lambda: time.monotonic() >= until, 5, interval=0.001, what="the kill moment")
            crash(self.spool)
            kills += 1
            # Some tasks arrive while no watcher runs.
            for _ in range(min(len(pending), rng.randint(0, 2 * len(ids) // (3 * n_kills) + 1))):
                tid = pending.pop(0)
                self.spool.submit(tasks[tid], tid + ".json")
            self.spool.start(wait=False)
        for tid in pending:
            self.spool.submit(tasks[tid], tid + ".json")
        wait_for(lambda: count() >= n_tasks, 30 * SOAK, interval=0.01, what="every task's result")
        elapsed = time.monotonic() - t0
        wait_for(lambda: "watching" in self.spool.log(), what="the last watcher to be up")
        self.assertEqual(self.spool.stop(), 0, self.spool.log()[-2000:])
        self.assertGreaterEqual(kills, min(n_kills, 5), "too few kills landed")

        # Exactly one result per task, nothing else in results/.
        self.assertEqual(sorted(os.listdir(rdir)), sorted(t + ".json" for t in ids))
        ran = {}
        for line in lines(runs):
            ran[line] = ran.get(line, 0) + 1
        statuses, retried = {}, 0
        for tid in ids:
            with open(os.path.join(rdir, tid + ".json")) as f:
                r = json.load(f)
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            self.assertEqual(r["id"], tid)
            self.assertEqual(r["task"]["command"], tasks[tid]["command"], tid)
            if tasks[tid]["command"] == 42:
                self.assertEqual(r["status"], "rejected", tid)
                self.assertEqual(r["error"]["field"], "command")
                self.assertFalse(tid in ran)
                continue
            self.assertIn(r["status"], ("succeeded", "interrupted"), (tid, r))
            retried += r["attempt"] > 1
            # Re-runs happen only for attempts cut short by a kill.
            self.assertLessEqual(ran.get(tid, 0), r["attempt"],
                                 f"{tid} ran more often than its attempts: {r}")
            if r["status"] == "succeeded":
                self.assertGreaterEqual(ran.get(tid, 0), 1, tid)
                script = tasks[tid]["command"][2]
                if "head -c" in script:
                    self.assertEqual(r["stdout_bytes"], 200000, tid)
                elif f"echo {tid}" in script.split(";", 1)[1]:
                    self.assertEqual(r["stdout"], tid + "\n", tid)
        rejected = sorted(t + ".json" for t in ids if tasks[t]["command"] == 42)
        self.assertEqual(listdir(self.spool.path("rejected")), rejected)
        for d in ("incoming", "active", "tmp"):
            self.assertEqual(listdir(self.spool.path(d)), [], f"{d}/ must be empty")
        log = self.spool.log()
        print(f"# stress (seed {self.SEED}): {n_tasks} tasks, {kills} kills, {elapsed:.1f}s, "
              f"statuses {statuses}, {retried} re-run, "
              f"{log.count('result already published')} found already published, "
              f"{log.count('removed leftover temporary file')} tmp leftovers removed", flush=True)
