"""Durable publication off the critical path (src/publisher.h): the window
between "result written" and "durable" made observable with the test hook
SPOOLRUN_TEST_STALL_PUBLISH=STEP:MARKER, which holds the publishing thread at
STEP ("written": the result is whole in tmp/, nothing synced or renamed;
"placed": synced and renamed into results/, results/ not yet synced) after
creating MARKER, until MARKER is removed. A watcher killed with SIGKILL there
never leaves a half-durable result visible, and loses or repeats nothing."""
import json
import os
import shlex

from harness import wait_for
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
        os.environ[HOOK] = f"{step}:{self.marker}"
        try:
            self.spool.start()
        finally:
            del os.environ[HOOK]

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
        # Written whole into tmp/, but not durable: not visible, task kept.
        tmp = listdir(self.spool.path("tmp"))
        self.assertEqual(len(tmp), 1, tmp)
        self.assertEqual(load(self.spool.path("tmp", tmp[0]))["id"], "w")
        self.assertEqual(self.spool.results(), [], "a result not yet durable must not be visible")
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), [name])
        crash(self.spool)
        self.assertEqual(self.spool.results(), [])
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), [name])
        # Restarted without the hook: the temporary is dropped and the task,
        # whose result never became durable, runs again (an interrupted attempt).
        self.spool.start()
        r = self.spool.result("w")
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["attempt"], 2, r)
        self.assertEqual(lines(self.counter), ["w", "w"])
        self.spool.wait(lambda: listdir(self.spool.path("active")) == [],
                        what="the task file to be let go")
        self.assertEqual(self.spool.results(), ["w.json"])
        self.assertEqual(listdir(self.spool.path("tmp")), [])
        self.assertEqual(self.spool.stop(), 0)

    def test_kill_between_placed_and_durable_shows_a_whole_result(self):
        self.start_stalled("placed")
        name = self.spool.submit(self.counting_task("p"))
        self.wait_stalled()
        # Its bytes are synced before the rename: what is visible is whole;
        # the task file stays in active/ until results/ is synced too.
        with open(self.spool.result_path("p"), "rb") as f:
            seen = f.read()
        self.assertEqual(json.loads(seen)["stdout"], "out-p\n")
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), [name])
        crash(self.spool)
        with open(self.spool.result_path("p"), "rb") as f:
            self.assertEqual(f.read(), seen)
        self.spool.start()
        self.spool.wait(lambda: listdir(self.spool.path("active")) == [],
                        what="the restart to finish the bookkeeping")
        self.assertIn("result already published", self.spool.log())
        self.assertEqual(lines(self.counter), ["p"], "a published task never runs again")
        self.assertEqual(self.spool.results(), ["p.json"])
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

    def test_duplicate_id_waits_for_the_result_on_its_way(self):
        self.start_stalled("written")
        self.spool.submit(self.counting_task("dup"), name="a.json")
        self.wait_stalled()
        self.spool.submit(self.counting_task("dup", " again"), name="b.json")
        # b.json may be claimed, but must not run while dup's result is on its way.
        wait_for(lambda: not os.path.exists(self.spool.path("incoming", "b.json")),
                 what="b.json to be claimed")
        os.unlink(self.marker)
        first = self.spool.result("dup")
        self.assertEqual(first["stdout"], "out-dup\n")
        second = self.spool.result("dup@2")
        self.assertEqual(second["status"], "rejected", second)
        self.assertEqual(second["error"]["code"], "duplicate_id")
        self.assertEqual(lines(self.counter), ["dup"], "the duplicate must not run")
        self.assertEqual(self.spool.stop(), 0)
