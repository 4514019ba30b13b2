"""`spoolrun node-run` inside real Slurm batch jobs: the node side of the
Slurm executor, driven here by plain sbatch. One single-node cluster
(slurm_cluster.py) for the whole file; skipped, with the reason, where it
cannot start (not root, Slurm or munge missing)."""
import json
import os
import shutil
import tempfile
import unittest

from harness import BIN, wait_for
from slurm_cluster import SlurmCluster, unavailable

cluster = None


def setUpModule():
    global cluster
    reason = unavailable()
    if reason:
        raise unittest.SkipTest(reason)
    cluster = SlurmCluster().start()


def tearDownModule():
    if cluster:
        cluster.stop()


class NodeRunTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="spoolrun-node-")
        os.chmod(self.tmp, 0o755)
        self.root = os.path.join(self.tmp, "spool")
        os.makedirs(os.path.join(self.root, "active"), 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def sbatch(self, name, spool=None, attempt=1):
        """Submits node-run of active/<name> as a batch job; its job id."""
        out = os.path.join(self.tmp, f"{name}.slurm")
        r = cluster.run("sbatch", "--parsable", "--no-requeue", f"--output={out}", f"--chdir={self.tmp}",
                        f"--wrap=exec {BIN} node-run --spool {spool or self.root} --attempt {attempt} {name}")
        return r.stdout.strip().split(";")[0], out

    def wait_ended(self, job):
        def state():
            for jid, st in cluster.jobs():
                if jid == job and st not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING"):
                    return st
            return None
        return wait_for(state, timeout=60, interval=0.1, what=f"Slurm job {job} to end")

    def put(self, name, task):
        with open(os.path.join(self.root, "active", name), "w") as f:
            json.dump(task, f)

    def node_result(self, name):
        with open(os.path.join(self.root, "active", f".{name}.node-result")) as f:
            return json.load(f)

    def test_runs_the_task_and_leaves_its_result(self):
        self.put("a.json", {"id": "a", "command": "echo out-$SLURM_JOB_ID; echo err >&2; exit 3",
                            "timeout": 30})
        job, _ = self.sbatch("a.json", attempt=2)
        self.assertEqual(self.wait_ended(job), "COMPLETED")
        r = self.node_result("a.json")
        self.assertEqual(r["status"], "failed")
        self.assertEqual(r["exit_code"], 3)
        self.assertEqual(r["attempt"], 2)
        self.assertEqual(r["stdout"], f"out-{job}\n")  # it ran inside the job
        self.assertEqual(r["stderr"], "err\n")
        self.assertEqual(r["stdout_log"], os.path.join(self.root, "logs", "a.stdout"))
        with open(r["stdout_log"]) as f:
            self.assertEqual(f.read(), f"out-{job}\n")
        # The task file stays for the watcher, which publishes.
        self.assertTrue(os.path.exists(os.path.join(self.root, "active", "a.json")))
        self.assertEqual(os.listdir(os.path.join(self.root, "results")), [])

    def test_timeout_is_spoolruns_own(self):
        self.put("t.json", {"id": "t", "command": ["sleep", "30"], "timeout": 0.5, "kill_grace": 0.5})
        job, _ = self.sbatch("t.json")
        self.assertEqual(self.wait_ended(job), "COMPLETED")
        r = self.node_result("t.json")
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(r["error"]["code"], "timeout")

    def test_refuses_clearly_when_the_node_cannot_see_the_task(self):
        elsewhere = os.path.join(self.tmp, "not-shared")
        job, out = self.sbatch("x.json", spool=elsewhere)
        self.assertEqual(self.wait_ended(job), "FAILED")
        with open(out) as f:
            msg = f.read()
        self.assertIn(f"{elsewhere}/active/x.json: not visible on node", msg)
        self.assertIn("file system every Slurm node shares", msg)
        self.assertFalse(os.path.exists(elsewhere), "node-run must not create a spool of its own")


if __name__ == "__main__":
    unittest.main()
