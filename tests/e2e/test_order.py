"""Which task runs when: start-up scan, priority, arrival order, bursts."""
import json
import os

from harness import SpoolTest, wait_for


def append_cmd(path, rid):
    return ["/bin/sh", "-c", f"echo {rid} >> '{path}'"]


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


class BeforeStart(SpoolTest):
    START = False

    def test_files_present_before_start_are_run(self):
        order = os.path.join(self.spool.tmp, "order")
        for i in range(3):
            self.spool.submit({"id": f"pre{i}", "command": append_cmd(order, f"pre{i}")})
        self.spool.start()
        for i in range(3):
            self.assertEqual(self.spool.result(f"pre{i}")["status"], "succeeded")
        self.assertEqual(sorted(read_lines(order)), ["pre0", "pre1", "pre2"])

    def test_priority_then_arrival_order(self):
        order = os.path.join(self.spool.tmp, "order")
        # (name, priority) in the order they arrive; names sort against arrival.
        specs = [("z-low", -5), ("y-mid1", 0), ("x-high", 10), ("w-mid2", 0), ("v-top", 99),
                 ("u-mid3", 0), ("t-high2", 10), ("s-default", None)]
        base = 1_700_000_000_000_000_000
        for k, (rid, prio) in enumerate(specs):
            task = {"id": rid, "command": append_cmd(order, rid)}
            if prio is not None:
                task["priority"] = prio
            name = self.spool.submit(task)
            # Arrival order is the files' modification order; make it exact
            # rather than rely on the file system's timestamp granularity.
            t = base + k * 1_000_000
            os.utime(self.spool.path("incoming", name), ns=(t, t))
        self.spool.start()
        for rid, _ in specs:
            self.spool.result(rid)
        self.assertEqual(read_lines(order),
                         ["v-top", "x-high", "t-high2", "y-mid1", "w-mid2", "u-mid3", "s-default",
                          "z-low"])


class Burst(SpoolTest):
    N = 200

    def test_200_tasks_at_once(self):
        tmp = self.spool.tmp
        order = os.path.join(tmp, "order")
        gate = os.path.join(tmp, "gate")
        started = os.path.join(tmp, "gate-started")
        # Hold the runner in a first task until every file is in incoming/,
        # so that all 200 are queued together.
        self.spool.submit({"id": "gate", "timeout": 60,
                           "command": f"touch '{started}'; while [ ! -e '{gate}' ]; do sleep 0.005; done"})
        wait_for(lambda: os.path.exists(started), what="the gate task to start")
        prios = [3, 0, -2, 7, 0]
        expected = []
        base = 1_700_000_000_000_000_000
        names = []
        for i in range(self.N):
            # Names sort in reverse of arrival, so arrival order is what counts.
            rid = f"t{self.N - 1 - i:03d}"
            prio = prios[i % len(prios)]
            path = self.spool.stage(rid + ".json")
            with open(path, "w") as f:
                json.dump({"id": rid, "priority": prio, "command": append_cmd(order, rid)}, f)
            t = base + i * 1_000_000
            os.utime(path, ns=(t, t))
            expected.append((-prio, i, rid))
            names.append(rid + ".json")
        for n in names:
            self.spool.move_in(n)
        open(gate, "w").close()
        self.assertEqual(self.spool.result("gate", timeout=10)["status"], "succeeded")
        want = [rid for _, _, rid in sorted(expected)]
        results = {}
        for rid in want:
            results[rid] = self.spool.result(rid, timeout=30)
            self.assertEqual(results[rid]["status"], "succeeded", rid)
        got = read_lines(order)
        self.assertEqual(len(got), self.N, "each task ran exactly once")
        self.assertEqual(sorted(set(got)), sorted(want))
        self.assertEqual(got, want, "priority first, then arrival")
        starts = [results[rid]["started_at"] for rid in want]
        self.assertEqual(starts, sorted(starts), "started_at follows the same order")
        self.assertEqual(self.spool.results(), sorted(["gate.json"] + names),
                         "exactly one result per task")
        wait_for(lambda: os.listdir(self.spool.path("active")) == [], timeout=5,
                 what="active/ to empty")
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])
