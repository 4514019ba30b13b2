"""Parallel slots and per-key caps ([runner] slots, [concurrency]): tasks
start in queue order whenever a slot is free, never more than slots at once,
never more than a key's cap; cancels and stops stay instant while tasks run."""
import json
import os
import signal
import time

from harness import SLOW, SpoolTest, wait_for


def timed_cmd(log_dir, rid, seconds):
    """A task that records when it starts and ends (monotonic-ish wall clock)."""
    path = os.path.join(log_dir, rid)
    return ["/bin/sh", "-c",
            f"date +%s.%N > '{path}.start'; sleep {seconds}; date +%s.%N > '{path}.end'"]


def spans(log_dir, rids):
    out = {}
    for rid in rids:
        with open(os.path.join(log_dir, rid + ".start")) as f:
            start = float(f.read())
        with open(os.path.join(log_dir, rid + ".end")) as f:
            end = float(f.read())
        out[rid] = (start, end)
    return out


def max_overlap(intervals):
    """The most intervals open at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda x: (x[0], x[1]))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


class ThreeSlots(SpoolTest):
    CONFIG = "[runner]\nslots = 3\n"

    def test_six_one_second_tasks_take_about_two_seconds(self):
        marks = os.path.join(self.spool.tmp, "marks")
        os.mkdir(marks)
        rids = [f"s{i}" for i in range(6)]
        for rid in rids:
            self.spool.submit({"id": rid, "command": timed_cmd(marks, rid, 1)})
        for rid in rids:
            self.assertEqual(self.spool.result(rid, timeout=20)["status"], "succeeded")
        sp = spans(marks, rids)
        first = min(s for s, _ in sp.values())
        last = max(e for _, e in sp.values())
        self.assertLessEqual(max_overlap(list(sp.values())), 3, sp)
        self.assertEqual(max_overlap(list(sp.values())), 3, "all three slots are used")
        self.assertGreaterEqual(last - first, 1.9)
        self.assertLess(last - first, 2.0 + 0.9 * SLOW, f"six 1 s tasks on 3 slots took {last - first:.2f} s")

    def test_sigterm_with_three_running_requeues_all(self):
        marks = os.path.join(self.spool.tmp, "marks")
        os.mkdir(marks)
        rids = ["r0", "r1", "r2"]
        for rid in rids:
            self.spool.submit({"id": rid, "command": timed_cmd(marks, rid, 30)})
        wait_for(lambda: all(os.path.exists(os.path.join(marks, r + ".start")) for r in rids),
                 what="three tasks running")
        self.assertEqual(self.spool.stop(), 0)
        self.assertEqual(self.spool.results(), [], "none published (as failed or otherwise)")
        back = sorted(os.listdir(self.spool.path("incoming")))
        self.assertEqual(back, ["r0.json", "r1.json", "r2.json"])
        self.assertEqual([n for n in os.listdir(self.spool.path("active"))], [])
        self.assertIn("3 task(s) wait in incoming/", self.spool.log())
        # And they run to the end at the next start.
        for rid in rids:
            with open(self.spool.path("incoming", rid + ".json")) as f:
                task = json.load(f)
            task["command"] = ["true"]
            tmp = self.spool.stage(rid + ".json")
            with open(tmp, "w") as f:
                json.dump(task, f)
            os.replace(tmp, self.spool.path("incoming", rid + ".json"))
        self.spool.start()
        for rid in rids:
            r = self.spool.result(rid)
            self.assertEqual(r["status"], "succeeded")
            self.assertEqual(r["attempt"], 1, "a stop is not an attempt")


class KeyCap(SpoolTest):
    CONFIG = "[runner]\nslots = 4\n[concurrency]\nk = 1\n"

    def test_capped_key_never_overlaps_while_others_run_beside(self):
        marks = os.path.join(self.spool.tmp, "marks")
        os.mkdir(marks)
        keyed = [f"k{i}" for i in range(3)]
        free = [f"f{i}" for i in range(3)]
        # The keyed tasks come first in the queue: capped, they must not
        # block the free ones behind them.
        for rid in keyed:
            self.spool.submit({"id": rid, "limit_key": "k", "command": timed_cmd(marks, rid, 0.6)})
        for rid in free:
            self.spool.submit({"id": rid, "command": timed_cmd(marks, rid, 0.6)})
        for rid in keyed + free:
            self.assertEqual(self.spool.result(rid, timeout=20)["status"], "succeeded")
        sp = spans(marks, keyed + free)
        self.assertEqual(max_overlap([sp[r] for r in keyed]), 1, sp)
        self.assertTrue(any(overlaps(sp[k], sp[f]) for k in keyed for f in free),
                        f"free tasks ran beside the capped ones: {sp}")
        # The free tasks did not wait for the keyed ones to finish.
        self.assertLess(max(sp[f][0] for f in free), sp["k1"][0] + 0.3 * SLOW, sp)

    def test_key_matches_ignoring_case(self):
        marks = os.path.join(self.spool.tmp, "marks")
        os.mkdir(marks)
        rids = ["a0", "a1"]
        self.spool.submit({"id": "a0", "limit_key": "K", "command": timed_cmd(marks, "a0", 0.5)})
        self.spool.submit({"id": "a1", "limit_key": "k", "command": timed_cmd(marks, "a1", 0.5)})
        for rid in rids:
            self.spool.result(rid)
        sp = spans(marks, rids)
        self.assertFalse(overlaps(sp["a0"], sp["a1"]), sp)


class InstantCancel(SpoolTest):
    CONFIG = "[runner]\nslots = 1\n"

    def test_cancel_queued_and_deferred_while_a_long_task_runs(self):
        ran = os.path.join(self.spool.tmp, "ran")
        # A task that fails once and is deferred for a minute.
        self.spool.submit({"id": "later", "retries": 1, "retry_backoff": 60,
                           "command": ["/bin/sh", "-c", f"echo later >> '{ran}'; exit 3"]})
        wait_for(lambda: os.path.exists(self.spool.path("deferred", "later.json")),
                 what="the failing task to be deferred")
        started = os.path.join(self.spool.tmp, "long.started")
        self.spool.submit({"id": "long", "command": ["/bin/sh", "-c", f"touch '{started}'; sleep 60"]})
        wait_for(lambda: os.path.exists(started), what="the long task to start")
        self.spool.submit({"id": "queued", "command": ["/bin/sh", "-c", f"echo queued >> '{ran}'"]})
        wait_for(lambda: "queued" in open(os.path.join(self.spool.root, "incoming", "queued.json")).read(),
                 what="queued task in incoming/")
        for rid in ("queued", "later"):
            t0 = time.monotonic()
            with open(self.spool.path("cancel", rid), "w"):
                pass
            r = self.spool.result(rid, timeout=1.0)
            self.assertLess(time.monotonic() - t0, 1.0 * SLOW)
            self.assertEqual(r["status"], "cancelled")
        with open(ran) as f:
            self.assertEqual(f.read().split(), ["later"], "the queued one never ran; the deferred once")
        later = self.spool.result("later")
        self.assertEqual(len(later["attempts"]), 1, "its one run is in its history")
        self.assertFalse(os.path.exists(self.spool.path("results", "long.json")))
        self.assertTrue(os.path.exists(started))


class StatusEverySlot(SpoolTest):
    CONFIG = "[runner]\nslots = 3\n"

    def test_status_lists_every_running_task(self):
        from harness import run_cli
        rids = ["p0", "p1", "p2"]
        for rid in rids:
            self.spool.submit({"id": rid, "command": ["/bin/sh", "-c", f"echo out-{rid}; sleep 30"]})

        def all_running():
            p = run_cli("status", "--json", *self.spool.args())
            st = json.loads(p.stdout)
            running = {r["id"]: r for r in st["running"]}
            ok = sorted(running) == rids and all(
                r["pid"] and r["elapsed_ms"] is not None and r["stdout_bytes"] > 0
                for r in running.values())
            return running if ok else None
        running = wait_for(all_running, what="status to list three running tasks with output")
        pids = {r["pid"] for r in running.values()}
        self.assertEqual(len(pids), 3, "each task its own process")
        for r in running.values():
            with open(f"/proc/{r['pid']}/cmdline", "rb") as f:
                self.assertIn(b"sleep 30", f.read())
            self.assertEqual(r["executor"], "local")
            self.assertEqual(r["attempt"], 1)
            self.assertIsNotNone(r["started_at"])


class ReloadSlots(SpoolTest):
    CONFIG = "[runner]\nslots = 1\n"

    def test_sighup_changes_slots_for_later_starts(self):
        marks = os.path.join(self.spool.tmp, "marks")
        os.mkdir(marks)
        with open(self.spool.config, "w") as f:
            f.write("[runner]\nslots = 3\n")
        self.spool.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in self.spool.log(), what="the reload")
        rids = [f"h{i}" for i in range(3)]
        for rid in rids:
            self.spool.submit({"id": rid, "command": timed_cmd(marks, rid, 1)})
        for rid in rids:
            self.spool.result(rid, timeout=10)
        self.assertEqual(max_overlap(list(spans(marks, rids).values())), 3)


class OneSlotOrder(SpoolTest):
    """slots = 1 (the default): strictly one at a time, in queue order."""
    START = False

    def test_one_at_a_time_in_order(self):
        marks = os.path.join(self.spool.tmp, "marks")
        os.mkdir(marks)
        rids = [f"o{i}" for i in range(4)]
        for k, rid in enumerate(rids):
            name = self.spool.submit({"id": rid, "priority": k, "command": timed_cmd(marks, rid, 0.2)})
            self.assertTrue(name)
        self.spool.start()
        for rid in rids:
            self.spool.result(rid)
        sp = spans(marks, rids)
        self.assertEqual(max_overlap(list(sp.values())), 1)
        self.assertEqual(sorted(rids, key=lambda r: sp[r][0]), list(reversed(rids)))
