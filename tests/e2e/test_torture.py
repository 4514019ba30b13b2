"""kill -9 torture with parallel slots and a consumer that moves results
away as soon as they appear (the README allows it): every task ends in
exactly one result, no task runs again once its result was published, and
nothing is left in active/ or tmp/ (issue 9 and issue 10)."""
import os
import random
import shlex
import threading
import time

from harness import SLOW, wait_for
from hostile_util import HostileTest, crash, listdir

SOAK = max(1, int(os.environ.get("SPOOLRUN_SOAK", "1") or 1))


class Consumer(threading.Thread):
    """Moves every result out of results/ into consumed/ under a unique name,
    noting "P <id>" in the runs file (O_APPEND, the same file the tasks note
    "R <id>" in), so the order of runs and publications can be checked."""

    def __init__(self, results, consumed, runs):
        super().__init__(daemon=True)
        self.results, self.consumed, self.runs = results, consumed, runs
        self.stop = threading.Event()
        self.n = 0

    def sweep(self):
        try:
            names = os.listdir(self.results)
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            self.n += 1
            try:
                os.rename(os.path.join(self.results, name),
                          os.path.join(self.consumed, f"{name}.{self.n}"))
            except FileNotFoundError:
                continue
            rid = name[:-5].split("@")[0]
            fd = os.open(self.runs, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(fd, f"P {rid}\n".encode())
            os.close(fd)

    def run(self):
        while not self.stop.is_set():
            self.sweep()
            time.sleep(0.001)
        self.sweep()


class TortureBase(HostileTest):
    START = False
    SLOTS = 3
    N_TASKS = 300
    N_KILLS = 30
    SEED = int(os.environ.get("SPOOLRUN_SEED", "20261201"))


    def setUp(self):
        # slots = 1 is the default: left out, the same config runs on any version.
        runner = f"[runner]\nslots = {self.SLOTS}\n" if self.SLOTS != 1 else ""
        type(self).CONFIG = runner + "[task]\ntimeout = 30\nkill_grace = 0.2\n"
        super().setUp()

    def torture(self):
        rng = random.Random(self.SEED + self.SLOTS)
        n_tasks, n_kills = self.N_TASKS * SOAK, self.N_KILLS * SOAK
        runs = os.path.join(self.spool.tmp, "runs")
        consumed = os.path.join(self.spool.tmp, "consumed")
        os.mkdir(consumed)
        q = shlex.quote(runs)
        ids = [f"t{i:04d}" for i in range(n_tasks)]
        for tid in ids:
            nap = rng.choice(["", "", "sleep 0.02;", "sleep 0.05;"])
            self.spool.submit({"id": tid, "command": ["/bin/sh", "-c", f"echo R {tid} >> {q}; {nap}"]},
                              tid + ".json")
        os.makedirs(self.spool.path("results"), exist_ok=True)
        consumer = Consumer(self.spool.path("results"), consumed, runs)
        consumer.start()
        self.addCleanup(consumer.stop.set)

        def published():
            return len(os.listdir(consumed))

        last_start = len(self.spool.log())
        self.spool.start()
        kills = 0
        while kills < n_kills and published() < n_tasks:
            until = time.monotonic() + rng.uniform(0.01, 0.25)
            wait_for(lambda: time.monotonic() >= until, 5, interval=0.001, what="the kill moment")
            crash(self.spool)
            kills += 1
            last_start = len(self.spool.log())
            self.spool.start(wait=False)
        wait_for(lambda: published() >= n_tasks and not listdir(self.spool.path("active")),
                 60 * SOAK, interval=0.01, what="every task's result")
        # The log gathers every start, and a watcher killed within
        # milliseconds of its start may never have said it is watching:
        # wait for the last watcher's own line, after its start.
        try:
            wait_for(lambda: " watching " in self.spool.log()[last_start:],
                     what="the last watcher to be up")
        except AssertionError as e:
            rc = self.spool.proc.poll() if self.spool.proc else None
            raise AssertionError(f"{e}; the last watcher's exit status: {rc}; log ends:\n"
                                 f"{self.spool.log()[-3000:]}") from None
        self.assertEqual(self.spool.stop(), 0, self.spool.log()[-2000:])
        consumer.stop.set()
        consumer.join(5)

        per_id = {}
        for name in os.listdir(consumed):
            rid = name.split(".json")[0].split("@")[0]
            per_id[rid] = per_id.get(rid, 0) + 1
        self.assertEqual(sorted(per_id), ids, "every task has a result")
        dup = {k: v for k, v in per_id.items() if v != 1}
        self.assertEqual(dup, {}, "exactly one result per task")
        seen_published, late = set(), []
        with open(runs) as f:
            for line in f:
                kind, rid = line.split()
                if kind == "P":
                    seen_published.add(rid)
                elif rid in seen_published:
                    late.append(rid)
        self.assertEqual(late, [], "tasks run again after their result was published")
        for d in ("incoming", "active", "tmp", "deferred"):
            self.assertEqual(listdir(self.spool.path(d)), [], f"{d}/ must be empty")
        self.assertGreaterEqual(kills, min(n_kills, 10))
        print(f"# torture (slots {self.SLOTS}, seed {self.SEED}): {n_tasks} tasks, {kills} kills, "
              f"{self.spool.log().count('completed before the last stop')} completions recovered, "
              f"{self.spool.log().count('interrupted by an earlier stop')} re-runs", flush=True)



class TortureThreeSlots(TortureBase):
    def test_torture_three_slots_consumer_moves_results(self):
        self.torture()


class TortureOneSlot(TortureBase):
    SLOTS = 1
    N_TASKS = 150
    N_KILLS = 20

    def test_torture_one_slot_consumer_moves_results(self):
        self.torture()
