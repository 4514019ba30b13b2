"""SPOOL/pause and `spoolrun drain`."""
import json
import os
import subprocess

from harness import BIN, SLOW, SpoolTest, read_pid, run_cli
from retry_util import (cancel, count, counter_cmd, deferred_tasks, drain, listdir, now_ms,
                        succeed_at, wait_deferred, wait_log, wait_until_ms)


class Pause(SpoolTest):
    def marker_task(self, rid, **extra):
        return dict({"id": rid, "command": ["touch", os.path.join(self.spool.tmp, rid + ".ran")]},
                    **extra)

    def ran(self, rid):
        return os.path.exists(os.path.join(self.spool.tmp, rid + ".ran"))

    def barrier(self, finished_id):
        """Returns once the watcher has handled every event before now: a
        cancel for an already finished task is removed even while paused,
        and inotify delivers events in order."""
        cancel(self.spool, finished_id)
        self.spool.wait(lambda: not os.path.exists(self.spool.path("cancel", finished_id)), 5,
                        what=f"cancel/{finished_id} to be removed")

    def pause(self):
        start = len(self.spool.log())
        open(self.spool.path("pause"), "w").close()
        wait_log(self.spool, "paused", start=start)

    def resume(self):
        os.unlink(self.spool.path("pause"))

    def test_pause_holds_new_tasks_until_resumed(self):
        self.run_task({"id": "done", "command": ["true"]})
        self.pause()
        self.spool.submit(self.marker_task("held"))
        self.barrier("done")
        self.assertEqual(listdir(self.spool, "incoming"), ["held.json"], "paused: nothing starts")
        self.assertFalse(self.ran("held"))
        self.assertFalse(os.path.exists(self.spool.result_path("held")))
        start = len(self.spool.log())
        self.resume()
        r = self.spool.result("held")
        self.assertEqual(r["status"], "succeeded")
        self.assertTrue(self.ran("held"))
        self.assertIn("resumed", self.spool.log()[start:])

    def test_pause_lets_the_running_task_finish(self):
        tmp = self.spool.tmp
        go, pidfile = os.path.join(tmp, "go"), os.path.join(tmp, "gate.pid")
        self.spool.submit({"id": "gate", "timeout": 30,
                           "command": f"echo $$ > '{pidfile}'; while [ ! -e '{go}' ]; do sleep 0.02; done; echo done"})
        read_pid(pidfile)
        self.spool.submit(self.marker_task("next"))
        self.pause()
        open(go, "w").close()
        r = self.spool.result("gate")
        self.assertEqual(r["status"], "succeeded", "the running task is not stopped by pause")
        self.assertEqual(r["stdout"], "done\n")
        self.barrier("gate")
        self.assertEqual(listdir(self.spool, "incoming"), ["next.json"])
        self.assertFalse(self.ran("next"))
        self.resume()
        self.assertEqual(self.spool.result("next")["status"], "succeeded")

    def test_pause_holds_a_due_retry(self):
        tmp = self.spool.tmp
        self.run_task({"id": "done", "command": ["true"]})
        self.spool.submit({"id": "re", "retries": 1, "retry_backoff": 1.6,
                           "command": succeed_at(tmp, "c", 2)})
        st = wait_deferred(self.spool, "re.json")
        self.pause()
        self.assertLess(now_ms(), st["not_before_ms"], "paused too late: test inconclusive")
        wait_until_ms(st["not_before_ms"] + 100, what="the retry to be due")
        self.barrier("done")
        self.assertEqual(count(tmp, "c"), 1, "a due retry must not start while paused")
        self.assertEqual(deferred_tasks(self.spool), ["re.json"])
        self.resume()
        r = self.spool.result("re")
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(len(r["attempts"]), 2)


class PauseAtStart(SpoolTest):
    START = False

    def test_pause_present_at_start(self):
        os.makedirs(self.spool.path("results"))
        self.foreign_results.add("old.json")  # forged for the barrier: not schema-checked
        with open(self.spool.result_path("old"), "w") as f:
            json.dump({"format": 1, "id": "old", "status": "succeeded"}, f)
        open(self.spool.path("pause"), "w").close()
        self.spool.submit({"id": "t", "command": ["echo", "t"]})
        self.spool.start()
        wait_log(self.spool, "paused")
        cancel(self.spool, "old")  # barrier: handled in the main loop
        self.spool.wait(lambda: not os.path.exists(self.spool.path("cancel", "old")), 5,
                        what="cancel/old to be removed")
        self.assertEqual(listdir(self.spool, "incoming"), ["t.json"])
        self.assertFalse(os.path.exists(self.spool.result_path("t")))
        os.unlink(self.spool.path("pause"))
        self.assertEqual(self.spool.result("t")["stdout"], "t\n")


class Drain(SpoolTest):
    START = False

    def append_task(self, rid, priority=None, code=0):
        order = os.path.join(self.spool.tmp, "order")
        t = {"id": rid, "command": f"echo {rid} >> '{order}'; exit {code}"}
        if priority is not None:
            t["priority"] = priority
        return t

    def order(self):
        with open(os.path.join(self.spool.tmp, "order")) as f:
            return f.read().split()

    def test_drain_empty_spool_exits_0(self):
        p = drain(self.spool)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.isdir(self.spool.path("incoming")))
        self.assertEqual(self.spool.results(), [])

    def test_drain_all_succeed_exits_0(self):
        for rid in ("a", "b", "c"):
            self.spool.submit(self.append_task(rid))
        p = drain(self.spool)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.spool.results(), ["a.json", "b.json", "c.json"])
        self.assertEqual(sorted(self.order()), ["a", "b", "c"])
        self.assertEqual(listdir(self.spool, "incoming"), [])
        self.assertEqual(listdir(self.spool, "active"), [])

    def test_drain_one_fails_exits_1(self):
        self.spool.submit(self.append_task("ok1"))
        self.spool.submit(self.append_task("bad", code=3))
        self.spool.submit(self.append_task("ok2"))
        p = drain(self.spool)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(sorted(self.order()), ["bad", "ok1", "ok2"], "every task runs")
        with open(self.spool.result_path("bad")) as f:
            self.assertEqual(json.load(f)["status"], "failed")

    def test_drain_exits_75_when_a_watcher_holds_the_lock(self):
        self.spool.start()
        p = drain(self.spool)
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertIn("lock", p.stderr)
        self.assertIsNone(self.spool.proc.poll(), "the watcher is unaffected")

    def test_drain_holds_the_lock_while_it_runs(self):
        tmp = self.spool.tmp
        go, pidfile = os.path.join(tmp, "go"), os.path.join(tmp, "gate.pid")
        self.spool.submit({"id": "gate", "timeout": 30,
                           "command": f"echo $$ > '{pidfile}'; while [ ! -e '{go}' ]; do sleep 0.02; done"})
        d = subprocess.Popen([BIN, "drain", *self.spool.args()], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: d.poll() is None and (d.kill(), d.wait()))
        read_pid(pidfile, what="drain to run the gate task")
        w = run_cli("watch", *self.spool.args(), timeout=10)
        self.assertEqual(w.returncode, 75, "a watcher must not start while drain holds the lock\n" + w.stderr)
        open(go, "w").close()
        out, err = d.communicate(timeout=10 * SLOW)
        self.assertEqual(d.returncode, 0, err)
        self.assertEqual(self.spool.results(), ["gate.json"])

    def test_drain_exits_75_when_paused(self):
        os.makedirs(self.spool.root)
        open(self.spool.path("pause"), "w").close()
        self.spool.submit(self.append_task("p"))
        p = drain(self.spool)
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertEqual(listdir(self.spool, "incoming"), ["p.json"])
        self.assertEqual(self.spool.results(), [])

    def test_drain_runs_in_priority_order(self):
        for rid, prio in [("low", -5), ("mid", None), ("high", 10), ("mid2", 3), ("top", 100)]:
            self.spool.submit(self.append_task(rid, prio))
        p = drain(self.spool)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.order(), ["top", "high", "mid2", "mid", "low"])

    def test_drain_runs_due_deferred_task_only(self):
        tmp = self.spool.tmp
        self.spool.start()
        self.spool.submit({"id": "soon", "retries": 1, "retry_backoff": 2,
                           "command": succeed_at(tmp, "cs", 2)})
        st = wait_deferred(self.spool, "soon.json")
        self.spool.submit({"id": "far", "retries": 1, "retry_backoff": 600,
                           "command": counter_cmd(tmp, "cf", "exit 1")})
        wait_deferred(self.spool, "far.json")
        self.assertEqual(self.spool.stop(), 0)
        self.assertEqual(count(tmp, "cs"), 1, "the watcher retried too early: test inconclusive")
        wait_until_ms(st["not_before_ms"] + 50, what="soon's retry to be due")
        p = drain(self.spool)
        self.assertEqual(p.returncode, 0, "every task drain ran succeeded\n" + p.stderr)
        with open(self.spool.result_path("soon")) as f:
            r = json.load(f)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(len(r["attempts"]), 2)
        self.assertEqual(count(tmp, "cf"), 1, "far's retry is not due: drain leaves it")
        self.assertEqual(deferred_tasks(self.spool), ["far.json"])
        self.assertEqual(self.spool.results(), ["soon.json"])

    def test_drain_task_left_waiting_for_retry_exits_1(self):
        self.spool.submit({"id": "wait", "retries": 1, "retry_backoff": 600,
                           "command": counter_cmd(self.spool.tmp, "c", "exit 1")})
        p = drain(self.spool)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(deferred_tasks(self.spool), ["wait.json"])
        self.assertEqual(count(self.spool.tmp, "c"), 1)

    def test_drain_retry_that_succeeds_in_the_same_drain_exits_0(self):
        # retry_backoff 0: the retry is due at once, so drain runs it too;
        # the task ends succeeded, so every task drain ran succeeded.
        self.spool.submit({"id": "flaky", "retries": 1, "retry_backoff": 0,
                           "command": succeed_at(self.spool.tmp, "c", 2)})
        p = drain(self.spool)
        with open(self.spool.result_path("flaky")) as f:
            r = json.load(f)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(len(r["attempts"]), 2)
        self.assertEqual(deferred_tasks(self.spool), [])
        self.assertEqual(p.returncode, 0, "the only task succeeded (after one retry)\n" + p.stderr)
