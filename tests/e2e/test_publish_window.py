"""Durable publication off the critical path (src/publisher.h): the window
between "result written" and "durable" made observable with the test hook
SPOOLRUN_TEST_STALL_PUBLISH=STEP:MARKER, which holds the publishing thread once
at STEP, after creating MARKER, until MARKER is removed:
  written    the result is whole in its completion record tmp/done-*, not
             synced, the task file still in active/;
  recorded   the record synced, tmp/ not yet;
  published  renamed into results/, results/ not yet synced, the task file
             let go.
A watcher killed with SIGKILL at any of them never leaves a half-durable
result visible, loses nothing, and never runs again a task whose record it
finds whole (a power cut may tear an unsynced record: it then does not
parse, is dropped, and the task runs again; a kill of the process cannot)."""
import json
import os
import shlex
import time

from harness import SLOW, environ, wait_for
from hostile_util import HostileTest, crash, lines, listdir, load

HOOK = "SPOOLRUN_TEST_STALL_PUBLISH"


class PublishWindow(HostileTest):
    START = False
    CONFIG = "[spool]\nfsync = yes\n"

    def setUp(self):
        super().setUp()
        self.marker = os.path.join(self.spool.tmp, "stalled")
        self.counter = os.path.join(self.spool.tmp, "runs")

    def start_stalled(self, step):
        with environ({HOOK: f"{step}:{self.marker}"}):
            self.spool.start()

    def wait_stalled(self):
        self.spool.wait(lambda: os.path.exists(self.marker),
                        what="the publisher to stall at the hook")

    def counting_task(self, tid, extra=""):
        c = shlex.quote(self.counter)
        return {"id": tid, "command": ["/bin/sh", "-c", f"echo {tid} >> {c}; echo out-{tid}{extra}"]}

    def test_kill_between_written_and_durable_shows_nothing(self):
        self.start_stalled("written")
        name = self.spool.submit(self.counting_task("w"))
        self.wait_stalled()
        # Written whole as its record, not durable: not visible, task kept.
        tmp = listdir(self.spool.path("tmp"))
        self.assertEqual(tmp, ["done-" + name])
        self.assertEqual(load(self.spool.path("tmp", tmp[0]))["id"], "w")
        self.assertEqual(self.spool.results(), [], "a result not yet durable must not be visible")
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), [name])
        crash(self.spool)
        self.assertEqual(self.spool.results(), [])
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), [name])
        # Restarted without the hook: the record survived the process whole,
        # so it is published and the task is not run again.
        self.spool.start()
        r = self.spool.result("w")
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["attempt"], 1, r)
        self.spool.wait(lambda: listdir(self.spool.path("active")) == [],
                        what="the task file to be let go")
        self.assertEqual(lines(self.counter), ["w"], "a recorded task never runs again")
        self.assertEqual(self.spool.results(), ["w.json"])
        self.assertEqual(listdir(self.spool.path("tmp")), [])
        self.assertEqual(self.spool.stop(), 0)

    def test_torn_record_is_dropped_and_the_task_runs_again(self):
        self.start_stalled("written")
        name = self.spool.submit(self.counting_task("t"))
        self.wait_stalled()
        crash(self.spool)
        # What a power cut could leave of a record not yet synced.
        rec = self.spool.path("tmp", "done-" + name)
        with open(rec, "r+b") as f:
            f.truncate(max(1, os.path.getsize(rec) // 2))
        self.spool.start()
        r = self.spool.result("t")
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["attempt"], 2, r)
        self.assertEqual(lines(self.counter), ["t", "t"])
        self.spool.wait(lambda: listdir(self.spool.path("active")) == [],
                        what="the task file to be let go")
        self.assertEqual(self.spool.results(), ["t.json"])
        self.assertEqual(self.spool.stop(), 0)

    def test_kill_between_recorded_and_durable_publishes_the_record(self):
        self.start_stalled("recorded")
        name = self.spool.submit(self.counting_task("r"))
        self.wait_stalled()
        self.assertEqual(self.spool.results(), [], "a record not yet durable must not be visible")
        self.assertEqual(listdir(self.spool.path("tmp")), ["done-" + name])
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), [name])
        crash(self.spool)
        self.assertEqual(self.spool.results(), [])
        # The record survived the process: the restart publishes it and lets
        # the task file go, without running the task again.
        self.spool.start()
        r = self.spool.result("r")
        self.assertEqual(r["stdout"], "out-r\n")
        self.assertEqual(r["attempt"], 1, r)
        self.spool.wait(lambda: listdir(self.spool.path("active")) == [],
                        what="the task file to be let go")
        self.assertEqual(lines(self.counter), ["r"], "a recorded task never runs again")
        self.assertEqual(self.spool.results(), ["r.json"])
        self.assertEqual(listdir(self.spool.path("tmp")), [])
        self.assertEqual(self.spool.stop(), 0)

    def test_kill_between_published_and_durable_shows_a_whole_result(self):
        self.start_stalled("published")
        self.spool.submit(self.counting_task("p"))
        self.wait_stalled()
        # Visible only after its record was durable: whole, its task file gone.
        with open(self.spool.result_path("p"), "rb") as f:
            seen = f.read()
        self.assertEqual(json.loads(seen)["stdout"], "out-p\n")
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), [])
        crash(self.spool)
        with open(self.spool.result_path("p"), "rb") as f:
            self.assertEqual(f.read(), seen)
        before = self.spool.log().count("watching")
        self.spool.start()
        # The log is appended to: wait for the new watcher's own line.
        self.spool.wait(lambda: self.spool.log().count("watching") > before,
                        what="the restart")
        self.assertEqual(lines(self.counter), ["p"], "a published task never runs again")
        self.assertEqual(self.spool.results(), ["p.json"])
        self.assertEqual(listdir(self.spool.path("active")), [])
        self.assertEqual(listdir(self.spool.path("tmp")), [])
        self.assertEqual(self.spool.stop(), 0)

    def test_next_task_runs_while_result_is_made_durable(self):
        self.start_stalled("written")
        self.spool.submit(self.counting_task("first"))
        self.wait_stalled()
        second = os.path.join(self.spool.tmp, "second-ran")
        self.spool.submit({"id": "second", "command": ["/bin/sh", "-c",
                                                        f"touch {shlex.quote(second)}"]})
        # The next task starts while the first result is still on its way.
        self.spool.wait(lambda: os.path.exists(second),
                        what="the second task to run while the first is being made durable")
        self.assertEqual(self.spool.results(), [])
        os.unlink(self.marker)
        self.assertEqual(self.spool.result("first")["status"], "succeeded")
        self.assertEqual(self.spool.result("second")["status"], "succeeded")
        self.spool.wait(lambda: listdir(self.spool.path("active")) == [],
                        what="both task files to be let go")
        self.assertEqual(self.spool.stop(), 0)

    def test_duplicate_id_while_the_first_result_is_on_its_way(self):
        self.start_stalled("written")
        self.spool.submit(self.counting_task("dup"), name="a.json")
        self.wait_stalled()
        # Same id, another file: it must not start while dup's result is on
        # its way (it would find no result and run as if new).
        self.spool.submit(self.counting_task("dup", " again"), name="b.json")
        os.unlink(self.marker)
        first = self.spool.result("dup")
        self.assertEqual(first["stdout"], "out-dup\n")
        second = self.spool.result("dup@2")
        self.assertEqual(second["status"], "rejected", second)
        self.assertEqual(second["error"]["code"], "duplicate_id")
        self.assertEqual(lines(self.counter), ["dup"], "the duplicate must not run")
        self.assertEqual(self.spool.stop(), 0)



class ClaimDurableBeforeStart(HostileTest):
    """The claim of a task (its rename into active/) is durable before the
    task's process exists (so max_attempts counts a task that crashes the
    machine), now that the loop prepares the process while the claim's
    fsync runs and waits for it only just before creating it (spawn.h's
    spawn_gate). The hook's step "claim" holds the fsync of active/; the task
    checks whether the hold is still on when it runs."""
    START = False
    CONFIG = PublishWindow.CONFIG
    start_stalled = PublishWindow.start_stalled
    wait_stalled = PublishWindow.wait_stalled

    def setUp(self):
        super().setUp()
        self.marker = os.path.join(self.spool.tmp, "stalled")

    def test_task_never_runs_before_its_claim_is_synced(self):
        self.start_stalled("claim")
        started = os.path.join(self.spool.tmp, "started")
        m, st = shlex.quote(self.marker), shlex.quote(started)
        self.spool.submit({"id": "c", "command": ["/bin/sh", "-c", f"touch {st}; test ! -e {m}"]})
        self.wait_stalled()
        # A runner that started the task without the fsync would have done
        # so by now; this one must not have.
        end = time.monotonic() + 1.0 * SLOW
        while time.monotonic() < end and not os.path.exists(started):
            time.sleep(0.01)
        self.assertFalse(os.path.exists(started), "the task ran before its claim was synced")
        os.unlink(self.marker)
        r = self.spool.result("c")
        self.assertEqual(r["status"], "succeeded", r)
