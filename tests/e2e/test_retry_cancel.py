"""Cancellation through SPOOL/cancel/<id>: queued, deferred, running,
finished and not-yet-arrived tasks."""
import json
import os
import time

from harness import SLOW, SpoolTest, pid_gone, read_pid, wait_for
from retry_util import (cancel, count, counter_cmd, deferred_tasks, listdir, ts_ms,
                        wait_deferred, wait_log)


class Cancel(SpoolTest):
    def gate(self, rid="gate"):
        """Submits a task that runs until tmp/go exists; returns once it runs."""
        go = os.path.join(self.spool.tmp, "go")
        pidfile = os.path.join(self.spool.tmp, rid + ".pid")
        self.spool.submit({"id": rid, "timeout": 30,
                           "command": f"echo $$ > '{pidfile}'; while [ ! -e '{go}' ]; do sleep 0.02; done"})
        read_pid(pidfile, what="the gate task to start")
        return go

    def marker_task(self, rid, **extra):
        return dict({"id": rid, "command": ["touch", os.path.join(self.spool.tmp, rid + ".ran")]},
                    **extra)

    def ran(self, rid):
        return os.path.exists(os.path.join(self.spool.tmp, rid + ".ran"))

    def assert_cancelled_unrun(self, r, rid):
        self.assertEqual(r["id"], rid)
        self.assertEqual(r["status"], "cancelled")
        self.assertEqual(r["error"]["code"], "cancelled")
        self.assertIsNone(r["exit_code"])
        self.assertIsNone(r["pid"])
        self.assertFalse(self.ran(rid), f"{rid} must not run")

    def cancel_gone(self, rid):
        return not os.path.exists(self.spool.path("cancel", rid))

    def test_cancel_queued_task(self):
        go = self.gate()
        self.spool.submit(self.marker_task("victim"))
        self.spool.submit(self.marker_task("bystander"))
        cancel(self.spool, "victim")
        open(go, "w").close()
        r = self.spool.result("victim")
        self.assert_cancelled_unrun(r, "victim")
        self.assertEqual(r["attempts"], [])
        self.assertEqual(self.spool.result("gate")["status"], "succeeded")
        self.assertEqual(self.spool.result("bystander")["status"], "succeeded")
        self.assertTrue(self.ran("bystander"))
        self.spool.wait(lambda: self.cancel_gone("victim"), 5, what="cancel/victim to be removed")
        self.assertEqual(listdir(self.spool, "incoming"), [])
        # (a result is published just before its file leaves active/)
        self.spool.wait(lambda: listdir(self.spool, "active") == [], 5, what="active/ to empty")
        self.assertEqual(self.spool.results(), ["bystander.json", "gate.json", "victim.json"])

    def test_cancel_names_the_id_not_the_file(self):
        go = self.gate()
        self.spool.submit(self.marker_task("real-id"), name="file-name.json")
        cancel(self.spool, "real-id")
        open(go, "w").close()
        r = self.spool.result("real-id")
        self.assert_cancelled_unrun(r, "real-id")
        self.assertEqual(r["task_file"], "file-name.json")
        self.spool.wait(lambda: self.cancel_gone("real-id"), 5, what="cancel/real-id to be removed")

    def test_cancel_queued_task_while_paused(self):
        open(self.spool.path("pause"), "w").close()
        wait_log(self.spool, "paused")
        self.spool.submit(self.marker_task("held"))
        cancel(self.spool, "held")
        r = self.spool.result("held")
        self.assert_cancelled_unrun(r, "held")
        self.spool.wait(lambda: self.cancel_gone("held"), 5, what="cancel/held to be removed")
        self.assertEqual(listdir(self.spool, "incoming"), [])

    def test_cancel_before_the_task_arrives(self):
        cancel(self.spool, "early")
        # A cancel for an unknown id waits for its task.
        r0 = self.run_task({"id": "barrier", "command": ["true"]})
        self.assertEqual(r0["status"], "succeeded")
        self.assertFalse(self.cancel_gone("early"), "kept until its task arrives")
        r = self.run_task(self.marker_task("early"))
        self.assert_cancelled_unrun(r, "early")
        self.spool.wait(lambda: self.cancel_gone("early"), 5, what="cancel/early to be removed")

    def test_cancel_deferred_task(self):
        tmp = self.spool.tmp
        self.spool.submit({"id": "later", "retries": 3, "retry_backoff": 8,
                           "command": counter_cmd(tmp, "c", "exit 1")})
        st = wait_deferred(self.spool, "later.json")
        t0 = time.monotonic()
        cancel(self.spool, "later")
        r = self.spool.result("later", timeout=3)
        self.assertLess(time.monotonic() - t0, 3 * SLOW, "cancelled at once, not at its retry time")
        self.assertLess(ts_ms(r["finished_at"]), st["not_before_ms"])
        self.assertEqual(r["status"], "cancelled")
        self.assertEqual(r["error"]["code"], "cancelled")
        self.assertEqual(count(tmp, "c"), 1, "not run again")
        # Its history is kept: the one failed run.
        self.assertEqual(len(r["attempts"]), 1)
        self.assertEqual(r["attempts"][0]["status"], "failed")
        self.assertEqual(listdir(self.spool, "deferred"), [], "task and state file gone")
        self.spool.wait(lambda: self.cancel_gone("later"), 5, what="cancel/later to be removed")
        # And the watcher carries on.
        self.assertEqual(self.run_task({"id": "next", "command": ["true"]})["status"], "succeeded")
        self.assertEqual(count(tmp, "c"), 1)

    def test_cancel_running_task(self):
        tmp = self.spool.tmp
        pidfile, gcfile = os.path.join(tmp, "main.pid"), os.path.join(tmp, "gc.pid")
        self.spool.submit({"id": "long", "retries": 2, "retry_backoff": 0.1, "kill_grace": 2,
                           "command": counter_cmd(tmp, "c", f"sleep 30 & echo $! > '{gcfile}'; "
                                                            f"echo $$ > '{pidfile}'; wait")})
        pid = read_pid(pidfile)
        gc = read_pid(gcfile)
        t0 = time.monotonic()
        cancel(self.spool, "long")
        r = self.spool.result("long", timeout=5)
        self.assertLess(time.monotonic() - t0, 3 * SLOW, "cancelled promptly")
        self.assertEqual(r["status"], "cancelled")
        self.assertEqual(r["error"]["code"], "cancelled")
        self.assertEqual(r["pid"], pid)
        self.assertLess(r["duration_ms"], 10000)
        wait_for(lambda: pid_gone(pid), timeout=3, what="the task to be gone")
        wait_for(lambda: pid_gone(gc), timeout=3, what="the task's child to be gone")
        # A cancelled run is final, retries or not.
        self.assertEqual(len(r["attempts"]), 1)
        self.assertEqual(r["attempts"][0]["status"], "cancelled")
        self.assertEqual(count(tmp, "c"), 1)
        self.assertEqual(deferred_tasks(self.spool), [])
        self.spool.wait(lambda: self.cancel_gone("long"), 5, what="cancel/long to be removed")
        self.assertEqual(self.run_task({"id": "after", "command": ["echo", "x"]})["stdout"], "x\n")

    def test_cancel_running_task_ignoring_sigterm(self):
        pidfile = os.path.join(self.spool.tmp, "main.pid")
        self.spool.submit({"id": "stubborn", "kill_grace": 0.3,
                           "command": f"trap '' TERM; echo $$ > '{pidfile}'; while :; do sleep 0.05; done"})
        pid = read_pid(pidfile)
        cancel(self.spool, "stubborn")
        r = self.spool.result("stubborn", timeout=5)
        self.assertEqual(r["status"], "cancelled")
        self.assertEqual(r["signal"]["name"], "SIGKILL")
        wait_for(lambda: pid_gone(pid), timeout=3, what="the task to be gone")
        self.spool.wait(lambda: self.cancel_gone("stubborn"), 5, what="cancel/stubborn to be removed")

    def test_cancel_of_finished_task_is_removed(self):
        r = self.run_task({"id": "done", "command": ["echo", "hi"]})
        with open(self.spool.result_path("done")) as f:
            before = f.read()
        cancel(self.spool, "done")
        self.spool.wait(lambda: self.cancel_gone("done"), 5, what="cancel/done to be removed")
        with open(self.spool.result_path("done")) as f:
            self.assertEqual(f.read(), before, "the result is left alone")
        self.assertEqual(json.loads(before)["status"], r["status"])
        self.assertEqual(self.spool.results(), ["done.json"])

    def test_cancel_of_finished_task_while_another_runs(self):
        self.run_task({"id": "done", "command": ["true"]})
        go = self.gate()
        cancel(self.spool, "done")
        open(go, "w").close()
        self.assertEqual(self.spool.result("gate")["status"], "succeeded", "not the one cancelled")
        self.spool.wait(lambda: self.cancel_gone("done"), 5, what="cancel/done to be removed")
        self.assertEqual(self.spool.results(), ["done.json", "gate.json"])

    def test_cancel_deferred_then_same_file_name_deferred_again_keeps_its_time(self):
        # x1 waits in deferred/x.json for 4-8 s and is cancelled; x2, a new
        # task in a file of the same name, fails and must be retried after
        # its own short back-off, not at x1's old time.
        tmp = self.spool.tmp
        self.spool.submit({"id": "x1", "retries": 3, "retry_backoff": 8,
                           "command": counter_cmd(tmp, "c1", "exit 1")}, name="x.json")
        st1 = wait_deferred(self.spool, "x.json")
        cancel(self.spool, "x1")
        self.assertEqual(self.spool.result("x1")["status"], "cancelled")
        self.spool.submit({"id": "x2", "retries": 1, "retry_backoff": 0.3,
                           "command": counter_cmd(tmp, "c2", "[ $n -ge 2 ]")}, name="x.json")
        r = self.spool.result("x2", timeout=15)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(len(r["attempts"]), 2)
        late = ts_ms(r["attempts"][1]["started_at"]) - ts_ms(r["attempts"][0]["retry_at"])
        self.assertLess(late, 700 * SLOW,
                        f"x2's retry ran {late} ms after its retry_at (x1's cancelled retry was due "
                        f"at {st1['not_before_ms']}, {st1['not_before_ms'] - ts_ms(r['attempts'][0]['retry_at'])} ms "
                        f"after x2's retry_at)")
        self.assertEqual(count(tmp, "c1"), 1)
