"""The lifecycle in the watcher (docs/lifecycle.md): dependencies (after,
after_policy, skips, cycles, missing ids), not_before across a restart,
and timeouts learned from history."""
import json
import os
import signal
import time

from harness import SLOW, SpoolTest, run_cli, wait_for
from retry_util import now_ms, ts_ms


def journal_cmd(journal, rid, script="true"):
    """Appends "start RID" and, after script, "end RID" to journal."""
    return ["sh", "-c", f"echo start {rid} >> '{journal}'; {script}; rc=$?; "
                        f"echo end {rid} >> '{journal}'; exit $rc"]


class Dependencies(SpoolTest):
    def journal(self):
        try:
            with open(os.path.join(self.spool.tmp, "journal")) as f:
                return f.read().split("\n")[:-1]
        except FileNotFoundError:
            return []

    def task(self, rid, after=None, script="true", **extra):
        t = {"id": rid, "command": journal_cmd(os.path.join(self.spool.tmp, "journal"), rid, script)}
        if after:
            t["after"] = after
        t.update(extra)
        return t

    def test_chain_runs_in_order(self):
        # Submitted backwards: the order comes from the dependencies alone.
        self.spool.submit(self.task("C", ["B"], "sleep 0.05"))
        self.spool.submit(self.task("B", ["A"], "sleep 0.05"))
        self.spool.submit(self.task("A", None, "sleep 0.05"))
        for rid in "ABC":
            self.assertEqual(self.spool.result(rid)["status"], "succeeded")
        self.assertEqual(self.journal(), ["start A", "end A", "start B", "end B", "start C", "end C"])

    def test_failed_dependency_skips_dependants_transitively(self):
        self.spool.submit(self.task("B", ["A"]))
        self.spool.submit(self.task("C", ["B"]))
        self.spool.submit(self.task("D", ["A"], after_policy="finished"))
        self.spool.submit(self.task("A", None, "exit 3"))
        self.assertEqual(self.spool.result("A")["status"], "failed")
        b, c, d = (self.spool.result(r) for r in "BCD")
        self.assertEqual((b["status"], b["error"]["code"], b["error"]["field"]),
                         ("skipped", "dependency_failed", "after"))
        self.assertIn('"A"', b["error"]["message"])
        self.assertIn('"failed"', b["error"]["message"])
        self.assertEqual((c["status"], c["error"]["code"]), ("skipped", "dependency_failed"))
        self.assertIn('"B"', c["error"]["message"])
        self.assertIn('"skipped"', c["error"]["message"])
        self.assertEqual(b["attempt"], 0)
        self.assertEqual(b["task"]["after"], ["A"])
        self.assertEqual(d["status"], "succeeded", "after_policy finished runs anyway")
        self.assertNotIn("start B", self.journal())
        self.assertNotIn("start C", self.journal())
        # A skipped result exits 122.
        p = run_cli("wait", *self.spool.args(), "C")
        self.assertEqual(p.returncode, 122)
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])
        self.assertEqual([n for n in os.listdir(self.spool.path("active")) if n[0] != "."], [])

    def test_cycle_found(self):
        self.spool.submit(self.task("X", ["Y"]))
        self.spool.submit(self.task("Z", ["X"]))
        self.spool.submit(self.task("S", ["S"]))
        self.spool.submit(self.task("R1", ["R3"]))
        self.spool.submit(self.task("R2", ["R1"]))
        self.spool.submit(self.task("Y", ["X"]))   # closes X <-> Y
        self.spool.submit(self.task("R3", ["R2"]))  # closes R1 -> R3 -> R2 -> R1
        self.spool.submit(self.task("free"))
        for rid in ("X", "Y", "S", "R1", "R2", "R3"):
            r = self.spool.result(rid)
            self.assertEqual((r["status"], r["error"]["code"]), ("skipped", "dependency_cycle"), rid)
            self.assertIn("cycle", r["error"]["message"])
        z = self.spool.result("Z")
        self.assertEqual((z["status"], z["error"]["code"]), ("skipped", "dependency_failed"))
        self.assertEqual(self.spool.result("free")["status"], "succeeded")
        self.assertEqual(self.journal(), ["start free", "end free"])

    def test_task_after_missing_id_waits_while_others_run(self):
        self.spool.submit(self.task("W", ["ghost"], priority=10))  # first in line
        for rid in ("O1", "O2"):
            self.spool.submit(self.task(rid))
        self.assertEqual(self.spool.result("O1")["status"], "succeeded")
        self.assertEqual(self.spool.result("O2")["status"], "succeeded")
        self.assertEqual(os.listdir(self.spool.path("incoming")), ["W.json"])
        self.assertFalse(os.path.exists(self.spool.result_path("W")))
        st = json.loads(run_cli("status", "--json", *self.spool.args()).stdout)
        w = [q for q in st["queued"] if q["id"] == "W"][0]
        self.assertEqual((w["blocked"], w["waiting_for"]), ("dependency", "ghost"))
        self.assertIn("waiting for ghost", run_cli("status", *self.spool.args()).stdout)
        # The id appears and succeeds: W runs.
        self.spool.submit(self.task("ghost"))
        self.assertEqual(self.spool.result("W")["status"], "succeeded")
        self.assertEqual(self.journal()[-2:], ["start W", "end W"])

    def test_cancel_of_a_waiting_task(self):
        self.spool.submit(self.task("held", ["ghost"]))
        self.run_task(self.task("barrier"))
        p = run_cli("cancel", *self.spool.args(), "--wait", "held")
        self.assertEqual(p.returncode, 125, p.stderr)
        self.assertEqual(self.spool.result("held")["status"], "cancelled")
        self.assertNotIn("start held", self.journal())

    def test_deleted_dependency_result_means_waiting_again(self):
        self.spool.submit(self.task("P"))
        self.spool.result("P")
        os.unlink(self.spool.result_path("P"))
        self.spool.submit(self.task("Q", ["P"]))
        self.spool.submit(self.task("other"))
        self.spool.result("other")
        self.assertFalse(os.path.exists(self.spool.result_path("Q")))
        st = json.loads(run_cli("status", "--json", *self.spool.args()).stdout)
        self.assertEqual([q["waiting_for"] for q in st["queued"]], ["P"])


class DependenciesThreeSlots(Dependencies):
    CONFIG = "[runner]\nslots = 3\n"

    def test_chain_with_a_parallel_task(self):
        # With three slots the chain still runs strictly in order, while an
        # independent task runs beside it.
        self.spool.submit(self.task("C", ["B"], "sleep 0.1"))
        self.spool.submit(self.task("B", ["A"], "sleep 0.1"))
        self.spool.submit(self.task("A", None, "sleep 0.1"))
        self.spool.submit(self.task("side", None, "sleep 0.3"))
        for rid in ("A", "B", "C", "side"):
            self.assertEqual(self.spool.result(rid)["status"], "succeeded")
        j = [e for e in self.journal() if not e.endswith("side")]
        self.assertEqual(j, ["start A", "end A", "start B", "end B", "start C", "end C"])


class NotBefore(SpoolTest):
    def started_at(self, rid):
        p = os.path.join(self.spool.tmp, rid + ".started")
        wait_for(lambda: os.path.exists(p) and os.path.getsize(p) > 0, 15, what=f"{rid} to start")
        with open(p) as f:
            return float(f.read())

    def test_not_before_across_a_restart(self):
        marker = os.path.join(self.spool.tmp, "N.started")
        when = time.time() + 3
        p = run_cli("submit", *self.spool.args(), "--id", "N", "--at", f"{when:.3f}", "--",
                    "sh", "-c", f"date +%s.%N > '{marker}.tmp'; mv '{marker}.tmp' '{marker}'")
        self.assertEqual(p.returncode, 0, p.stderr)
        # It waits, shown with its time, and does not block a later task.
        self.run_task({"id": "later", "command": ["true"]})
        st = json.loads(run_cli("status", "--json", *self.spool.args()).stdout)
        self.assertEqual([(q["id"], q["blocked"]) for q in st["queued"]], [("N", "not_before")])
        self.assertIn("not before", run_cli("status", *self.spool.args()).stdout)
        # A restart keeps it.
        self.assertEqual(self.spool.stop(), 0)
        self.assertFalse(os.path.exists(marker))
        self.spool.start()
        started = self.started_at("N")
        self.assertGreaterEqual(started, int(when * 1000) / 1000, "started before not_before")
        self.assertLess(started, when + 1.0 * SLOW, "started more than a second late")
        r = self.spool.result("N")
        self.assertEqual(r["status"], "succeeded")
        self.assertGreaterEqual(ts_ms(r["started_at"]), int(when * 1000))


class AutoTimeout(SpoolTest):
    CONFIG = ("[task]\nauto_timeout_factor = 3\nauto_timeout_min = 0.5\n"
              "auto_timeout_default = 20\nkill_grace = 0.2\n")

    def auto(self, rid, cmd, key="k"):
        return self.run_task({"id": rid, "command": cmd, "timeout": "auto", "history_key": key},
                             timeout=30)

    def test_auto_timeout_kills_a_run_far_slower_than_its_history(self):
        for i in range(5):
            r = self.auto(f"fast{i}", ["sleep", "0.05"])
            self.assertEqual(r["status"], "succeeded")
            # Fewer than 5 runs recorded before this one: the default.
            self.assertEqual((r["timeout_source"], r["timeout_s"]), ("auto_default", 20))
        t0 = time.monotonic()
        r = self.auto("slow", ["sleep", "30"])
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(r["timeout_source"], "auto")
        self.assertEqual(r["timeout_s"], 0.5)  # 3 x p90 (~0.05 s) < auto_timeout_min
        self.assertLess(time.monotonic() - t0, 10 * SLOW)
        # Another key has no history: the default again.
        r = self.auto("other", ["true"], key="another")
        self.assertEqual((r["timeout_source"], r["timeout_s"]), ("auto_default", 20))
        # The history survives a restart; the failed run was not recorded.
        self.spool.stop()
        self.spool.start()
        r = self.auto("slow2", ["sleep", "30"])
        self.assertEqual((r["status"], r["timeout_source"]), ("timeout", "auto"))

    def test_default_with_fewer_runs_and_other_sources(self):
        for i in range(4):
            self.auto(f"f{i}", ["true"], key="four")
        r = self.auto("fifth", ["sleep", "1"], key="four")
        self.assertEqual((r["status"], r["timeout_source"], r["timeout_s"]),
                         ("succeeded", "auto_default", 20))
        r = self.run_task({"id": "own", "command": ["true"], "timeout": 7})
        self.assertEqual((r["timeout_source"], r["timeout_s"]), ("task", 7))
        r = self.run_task({"id": "dflt", "command": ["true"]})
        self.assertEqual((r["timeout_source"], r["timeout_s"]), ("default", 3600))

    def test_corrupt_history_is_ignored_with_a_warning(self):
        for i in range(5):
            self.auto(f"c{i}", ["true"], key="corrupt-me")
        hist = self.spool.path("history")
        files = [n for n in os.listdir(hist) if not n.startswith(".")]
        self.assertEqual(len(files), 1)
        with open(os.path.join(hist, files[0]), "w") as f:
            f.write("{garbage")
        r = self.auto("after-corrupt", ["true"], key="corrupt-me")
        self.assertEqual(r["timeout_source"], "auto_default")
        self.assertIn("corrupt", self.spool.log())
        with open(os.path.join(hist, files[0])) as f:
            self.assertEqual(len(json.load(f)["runs_s"]), 1, "replaced by the next run")


class HistoryOnlyWhenUsed(SpoolTest):
    def test_tasks_that_use_no_history_keep_none(self):
        hist = self.spool.path("history")
        files = lambda: sorted(os.listdir(hist)) if os.path.isdir(hist) else []
        for i in range(3):
            self.assertEqual(self.run_task({"id": f"plain{i}", "command": ["true"],
                                            "timeout": 10})["status"], "succeeded")
        self.assertEqual(files(), [])
        # Naming a history_key records, even without an auto timeout.
        self.assertEqual(self.run_task({"id": "keyed", "command": ["true"],
                                        "history_key": "k"})["status"], "succeeded")
        self.assertEqual(len(files()), 1)


class AutoTimeoutFromConfig(SpoolTest):
    CONFIG = "[task]\ntimeout = auto\nauto_timeout_default = 15\n"

    def test_config_timeout_auto(self):
        r = self.run_task({"id": "a", "command": ["true"]})
        self.assertEqual((r["timeout_source"], r["timeout_s"]), ("auto_default", 15))
        r = self.run_task({"id": "b", "command": ["true"], "timeout": 4})
        self.assertEqual((r["timeout_source"], r["timeout_s"]), ("task", 4))
