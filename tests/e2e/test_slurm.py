"""The Slurm executor against a real single-node Slurm cluster
(slurm_cluster.py, one for the whole file): the same spool, task and result
files as locally, tasks running as batch jobs through `spoolrun node-run`.
Skipped, with the reason, where the cluster cannot start (not root, Slurm
or munge missing)."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import BIN, SpoolTest, run_cli, wait_for
from slurm_cluster import SlurmCluster, unavailable

cluster = None
HOST = socket.gethostname().split(".")[0]
ACTIVE_STATES = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING")


def setUpModule():
    global cluster
    reason = unavailable()
    if reason:
        raise unittest.SkipTest(reason)
    cluster = SlurmCluster().start()
    os.environ["SLURM_CONF"] = cluster.conf  # for the watcher's sbatch, squeue...


def tearDownModule():
    os.environ.pop("SLURM_CONF", None)
    if cluster:
        cluster.stop()


def config(slots=4, extra=""):
    return (f"[runner]\nexecutor = slurm\nslots = {slots}\n"
            f"[slurm]\npoll_interval = 0.2\n[task]\nkill_grace = 1\n{extra}")


def root_tag(spool):
    """The prefix of the Slurm job names of spool's tasks (slurm_job_name in
    src/slurmexec.c: an FNV-1a hash of the spool root)."""
    h = 2166136261
    for b in spool.root.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return f"spoolrun-{h:08x}-"


class SlurmTest(SpoolTest):
    CONFIG = config()

    def run_slurm(self, task, timeout=60):
        r = self.run_task(task, timeout=timeout)
        return r

    def marker(self, name):
        return os.path.join(self.spool.tmp, name)

    def job_of(self, tid, states=ACTIVE_STATES, timeout=30):
        """The Slurm job id of task tid, once it is in one of states."""
        def find():
            r = cluster.run("squeue", "--noheader", "--states=all", "--format=%i|%j|%T", check=False)
            for line in r.stdout.split():
                jid, name, st = line.split("|")
                if f"-{tid}-" in name and st in states and root_tag(self.spool) in name:
                    return jid
            return None
        return wait_for(find, timeout=timeout, interval=0.1, what=f"a Slurm job for {tid}")


class Outcomes(SlurmTest):
    def test_success(self):
        r = self.run_slurm({"id": "ok1", "command": "echo hello from $SLURM_JOB_ID"})
        self.assertEqual(r["status"], "succeeded", r)
        s = r["slurm"]
        self.assertRegex(s["job_id"], r"^[0-9]+$")
        self.assertEqual(s["state"], "COMPLETED")
        self.assertEqual(s["node"], HOST)
        self.assertEqual(r["stdout"], f"hello from {s['job_id']}\n")  # ran inside the job
        self.assertEqual(r["stdout_log"], self.spool.path("logs", "ok1.stdout"))
        self.assertEqual(r["attempt"], 1)
        self.assertEqual(len(r["attempts"]), 1)
        # Nothing left behind in active/ (task, state, node result).
        wait_for(lambda: os.listdir(self.spool.path("active")) == [], what="active/ to be empty")

    def test_failure_exit_code(self):
        r = self.run_slurm({"id": "f1", "command": "echo bad >&2; exit 3"})
        self.assertEqual((r["status"], r["exit_code"], r["stderr"]), ("failed", 3, "bad\n"))
        self.assertEqual(run_cli("wait", "--spool", self.spool.root, "f1").returncode, 3)

    def test_signal(self):
        r = self.run_slurm({"id": "s1", "command": "kill -USR1 $$"})
        self.assertEqual(r["status"], "killed", r)
        self.assertEqual(r["signal"]["name"], "SIGUSR1")
        self.assertEqual(r["slurm"]["state"], "COMPLETED")  # spoolrun on the node saw it

    def test_timeout_is_spoolruns(self):
        r = self.run_slurm({"id": "t1", "command": ["sleep", "30"], "timeout": 0.5})
        self.assertEqual((r["status"], r["error"]["code"]), ("timeout", "timeout"))

    def test_idle_timeout(self):
        r = self.run_slurm({"id": "i1", "command": "echo x; sleep 30", "idle_timeout": 0.5})
        self.assertEqual((r["status"], r["error"]["code"]), ("timeout", "idle_timeout"))
        self.assertEqual(r["stdout"], "x\n")

    def test_big_output_head_and_tail(self):
        cmd = "echo HEAD; head -c 3000000 /dev/zero | tr '\\0' 'x'; echo; echo TAIL"
        r = self.run_slurm({"id": "b1", "command": cmd})
        self.assertEqual(r["status"], "succeeded")
        self.assertTrue(r["stdout_truncated"])
        self.assertEqual(r["stdout_bytes"], 3000011)
        self.assertTrue(r["stdout"].startswith("HEAD\n"))
        self.assertTrue(r["stdout"].endswith("TAIL\n"))
        self.assertEqual(os.path.getsize(r["stdout_log"]), 3000011)

    def test_output_jsonl(self):
        cmd = "echo '{\"type\":\"a\"}'; echo '{\"type\":\"result\",\"result\":\"done\"}'"
        r = self.run_slurm({"id": "j1", "command": cmd, "output": "jsonl"})
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["output"], "jsonl")
        self.assertEqual([e["type"] for e in r["events"]], ["a", "result"])

    def test_time_limit_above_timeout(self):
        self.spool.submit({"id": "tl", "command": ["sleep", "30"], "timeout": 600})
        job = self.job_of("tl")
        r = cluster.run("squeue", "--noheader", "--jobs", job, "--format=%l")
        # 600 + 1 (kill_grace) + 1 + 60 s = 662 s -> 12 minutes (rounded up)
        self.assertEqual(r.stdout.strip(), "12:00")
        self.assertEqual(run_cli("cancel", "--spool", self.spool.root, "tl").returncode, 0)
        self.assertEqual(self.spool.result("tl", 30)["status"], "cancelled")


class Refusals(SlurmTest):
    def test_bad_partition_is_submit_failed(self):
        r = self.run_slurm({"id": "p1", "command": "true", "slurm": {"partition": "nope"}})
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "submit_failed")
        self.assertIn("Invalid partition", r["error"]["message"])
        self.assertIsNone(r["slurm"])

    def test_slurm_field_is_validated(self):
        r = self.run_slurm({"id": "v1", "command": "true", "slurm": {"mem_mb": 0}})
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["field"], "slurm.mem_mb")

    def test_resources_reach_sbatch(self):
        self.spool.submit({"id": "rs", "command": ["sleep", "30"],
                           "slurm": {"cpus_per_task": 2, "mem_mb": 100, "args": ["--comment=spool"]}})
        job = self.job_of("rs")
        r = cluster.run("scontrol", "--oneliner", "show", "job", job)
        self.assertIn("NumCPUs=2", r.stdout)
        self.assertIn("Comment=spool", r.stdout)
        self.assertEqual(run_cli("cancel", "--spool", self.spool.root, "rs").returncode, 0)
        self.spool.result("rs", 30)


class Control(SlurmTest):
    def test_cancel_while_pending(self):
        ran = self.marker("ran")
        self.spool.submit({"id": "cp", "command": f"touch {ran}", "slurm": {"args": ["--hold"]}})
        self.job_of("cp", states=("PENDING",))
        t = time.monotonic()
        self.assertEqual(run_cli("cancel", "--spool", self.spool.root, "cp").returncode, 0)
        r = self.spool.result("cp", 30)
        self.assertEqual(r["status"], "cancelled", r)
        self.assertEqual(r["slurm"]["state"], "CANCELLED")
        self.assertLess(time.monotonic() - t, 20)
        self.assertFalse(os.path.exists(ran))

    def test_cancel_while_running(self):
        started = self.marker("started")
        self.spool.submit({"id": "cr", "command": f"touch {started}; exec sleep 60"})
        wait_for(lambda: os.path.exists(started), timeout=30, what="the task to start")
        self.assertEqual(run_cli("cancel", "--spool", self.spool.root, "cr").returncode, 0)
        r = self.spool.result("cr", 30)
        self.assertEqual(r["status"], "cancelled", r)
        self.assertEqual(r["error"]["code"], "cancelled")

    def test_scancel_from_outside(self):
        started = self.marker("started")
        self.spool.submit({"id": "sc", "command": f"touch {started}; exec sleep 60"})
        wait_for(lambda: os.path.exists(started), timeout=30, what="the task to start")
        cluster.run("scancel", self.job_of("sc"))
        r = self.spool.result("sc", 30)
        self.assertEqual(r["status"], "killed", r)
        self.assertEqual(r["error"]["code"], "slurm_cancelled")
        self.assertIn("CANCELLED", r["error"]["message"])

    def test_slurm_end_counts_for_retry_on(self):
        first = self.marker("first")
        cmd = f"if [ -e {first} ]; then echo second; else touch {first}; exec sleep 60; fi"
        self.spool.submit({"id": "rt", "command": cmd, "retries": 1, "retry_backoff": 0.1,
                           "retry_on": {"signal": True}})
        wait_for(lambda: os.path.exists(first), timeout=30, what="the first attempt to start")
        cluster.run("scancel", self.job_of("rt"))
        r = self.spool.result("rt", 60)
        self.assertEqual((r["status"], r["stdout"], r["attempt"]), ("succeeded", "second\n", 2), r)
        self.assertEqual(r["attempts"][0]["status"], "killed")
        self.assertIn("retry_reason", r["attempts"][0])

    def test_tail_follows_a_task_running_in_slurm(self):
        go = self.marker("go")
        self.spool.submit({"id": "tf", "command": f"echo first; while [ ! -e {go} ]; do sleep 0.1; done; echo last"})
        wait_for(lambda: run_cli("tail", "--spool", self.spool.root, "tf").stdout == "first\n",
                 timeout=30, interval=0.1, what="tail to show the node's output while it runs")
        follow = subprocess.Popen([BIN, "tail", "-f", "--spool", self.spool.root, "tf"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            open(go, "w").close()
            out, _ = follow.communicate(timeout=60)
        finally:
            follow.kill()
        self.assertEqual(out, "first\nlast\n")
        self.assertEqual(self.spool.result("tf", 30)["status"], "succeeded")

    def test_status_shows_job(self):
        started = self.marker("started")
        self.spool.submit({"id": "st", "command": f"touch {started}; exec sleep 60"})
        wait_for(lambda: os.path.exists(started), timeout=30, what="the task to start")
        job = self.job_of("st")
        def shown():
            out = json.loads(run_cli("status", "--json", "--spool", self.spool.root).stdout)
            return json.dumps(out) if job in json.dumps(out) and "RUNNING" in json.dumps(out) else None
        wait_for(shown, timeout=10, what="status to show the job id and state")
        text = run_cli("status", "--spool", self.spool.root).stdout
        self.assertIn(job, text)
        run_cli("cancel", "--spool", self.spool.root, "st")
        self.spool.result("st", 30)

    def test_sigterm_leaves_jobs_running(self):
        marks = self.marker("marks")
        self.spool.submit({"id": "lv", "command": f"sleep 2; echo lv >> {marks}"})
        job = self.job_of("lv", states=("RUNNING",))
        self.assertEqual(self.spool.stop(signal.SIGTERM), 0)
        self.assertIn(job, [j for j, st in cluster.jobs() if st in ACTIVE_STATES])
        self.assertEqual(self.spool.results(), [])
        wait_for(lambda: os.path.exists(marks), timeout=30, what="the job to finish on its own")
        self.spool.start()
        r = self.spool.result("lv", 30)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["slurm"]["job_id"], job)
        with open(marks) as f:
            self.assertEqual(f.read(), "lv\n")


class Scale(SlurmTest):
    CONFIG = config(slots=20)

    def test_100_tasks_with_20_slots(self):
        seen = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                n = sum(1 for _, st in cluster.jobs(states="PENDING,RUNNING,COMPLETING"))
                seen.append(n)
                time.sleep(0.1)
        th = threading.Thread(target=sample)
        th.start()
        try:
            for i in range(100):
                self.spool.submit({"id": f"n{i:03d}", "command": "sleep 0.5"})
            wait_for(lambda: len(self.spool.results()) == 100, timeout=240, interval=0.2,
                     what="100 results")
        finally:
            stop.set()
            th.join()
        for i in range(100):
            self.assertEqual(self.spool.result(f"n{i:03d}")["status"], "succeeded")
        self.assertLessEqual(max(seen), 20, "more than slots tasks in Slurm at once")
        self.assertGreater(max(seen), 10, f"no concurrency seen in Slurm: {max(seen)}")


class Crashes(SlurmTest):
    CONFIG = config(slots=10)

    def test_kill9_with_10_jobs_in_flight_then_restart(self):
        marks = self.marker("marks")
        for i in range(10):
            self.spool.submit({"id": f"k{i}", "command": f"echo k{i} >> {marks}; sleep 2"})
        tag = root_tag(self.spool)
        wait_for(lambda: sum(1 for _ in self._ours(tag)) == 10, timeout=30, interval=0.1,
                 what="10 jobs in Slurm")
        self.spool.proc.kill()
        self.spool.proc.wait()
        self.spool.stop()
        time.sleep(0.5)  # the jobs go on without a watcher
        self.spool.start()
        wait_for(lambda: len(self.spool.results()) == 10, timeout=90, interval=0.2,
                 what="10 results")
        self.assertEqual(sorted(self.spool.results()), [f"k{i}.json" for i in range(10)])
        with open(marks) as f:
            self.assertEqual(sorted(f.read().split()), [f"k{i}" for i in range(10)])  # each ran once
        self.assertEqual(len(list(self._ours(tag))), 10, "a task was submitted twice")
        wait_for(lambda: os.listdir(self.spool.path("active")) == [], what="active/ to be empty")

    def _ours(self, tag):
        r = cluster.run("squeue", "--noheader", "--states=all", "--format=%i|%j")
        for line in r.stdout.split():
            jid, name = line.split("|")
            if name.startswith(tag):
                yield jid

    def test_crash_between_sbatch_and_recording_the_id(self):
        """The watcher recorded the job's name, sbatch ran, the watcher died
        before recording the id: the restart finds the job by name."""
        self.spool.stop()
        marks = self.marker("marks")
        with open(self.spool.path("active", "w1.json"), "w") as f:
            json.dump({"id": "w1", "command": f"echo w1 >> {marks}; sleep 1"}, f)
        name = f"{root_tag(self.spool)}w1-1"
        with open(self.spool.path("active", ".w1.json.state"), "w") as f:
            json.dump({"attempt": 1, "executor": "slurm", "slurm_job_name": name}, f)
        job = cluster.run("sbatch", "--parsable", "--no-requeue", f"--job-name={name}",
                          f"--output={self.spool.path('logs', 'w1.slurm')}",
                          f"--wrap=exec {BIN} node-run --spool {self.spool.root} "
                          f"--config {self.spool.config} --attempt 1 w1.json").stdout.strip()
        self.spool.start()
        r = self.spool.result("w1", 60)
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["slurm"]["job_id"], job)
        with open(marks) as f:
            self.assertEqual(f.read(), "w1\n")  # ran once: not submitted again
        self.assertEqual([j for j in self._ours(root_tag(self.spool))], [job])

    def test_controller_stopped_for_a_while(self):
        cluster.stop_ctld()
        try:
            for i in range(3):
                self.spool.submit({"id": f"c{i}", "command": "echo up"})
            time.sleep(3)  # the tasks wait; nothing may be lost or failed meanwhile
            self.assertEqual(self.spool.results(), [])
        finally:
            cluster.start_ctld()
        for i in range(3):
            r = self.spool.result(f"c{i}", 90)
            self.assertEqual(r["status"], "succeeded", r)


if __name__ == "__main__":
    unittest.main()
