"""The lifecycle commands beside the watcher (docs/lifecycle.md): resubmit,
pause/resume/pause --wait, wait --all, labels in status, and the submit
options and validation of the lifecycle fields."""
import json
import os
import subprocess
import time

from harness import BIN, SLOW, SpoolTest, run_cli, run_exec, wait_for
from retry_util import cancel


def gate_cmd(gate, marker=None):
    """A shell command that (touches marker and) runs while gate exists."""
    touch = f"touch '{marker}'; " if marker else ""
    return ["sh", "-c", f"{touch}while [ -e '{gate}' ]; do sleep 0.02; done"]


def watching(pid):
    """True once process pid has an inotify watch: `wait` adds it right
    after reading what to wait for, so the snapshot is taken."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fdinfo"):
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                if "inotify wd:" in f.read():
                    return True
    except (FileNotFoundError, ProcessLookupError):
        pass
    return False


class Resubmit(SpoolTest):
    def cli(self, *args):
        return run_cli(args[0], *self.spool.args(), *args[1:])

    def test_resubmit_a_failed_task(self):
        self.assertEqual(self.run_task({"id": "f", "command": ["sh", "-c", "exit 3"]})["status"], "failed")
        p = self.cli("resubmit", "f")
        self.assertEqual((p.returncode, p.stdout), (0, "f.r2\n"), p.stderr)
        r = self.spool.result("f.r2")
        self.assertEqual(r["status"], "failed")
        self.assertEqual(r["task"]["command"], ["sh", "-c", "exit 3"])
        self.assertTrue(os.path.exists(self.spool.result_path("f")), "the old result is kept")
        # The next free id; a resubmission of f.r2 counts on, it does not stack.
        self.assertEqual(self.cli("resubmit", "f").stdout, "f.r3\n")
        self.spool.result("f.r3")
        self.assertEqual(self.cli("resubmit", "f.r2").stdout, "f.r4\n")
        self.spool.result("f.r4")
        # --id and --wait (exit status of the new result).
        p = self.cli("resubmit", "--id", "again", "--wait", "f")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("again", p.stderr)  # with --wait the id goes to stderr, as for submit
        self.assertEqual(json.loads(p.stdout)["id"], "again")
        # A taken --id is refused.
        p = self.cli("resubmit", "--id", "again", "f")
        self.assertEqual(p.returncode, 73)
        self.assertIn("again", p.stderr)

    def test_resubmit_a_rejected_task(self):
        # Rejected for its id: filed under the file name; resubmitting gives
        # it a valid id, and it runs.
        self.spool.submit({"id": "not valid!", "command": ["true"]}, name="badid.json")
        self.assertEqual(self.spool.result("badid")["status"], "rejected")
        p = self.cli("resubmit", "badid")
        self.assertEqual((p.returncode, p.stdout), (0, "badid.r2\n"), p.stderr)
        self.assertEqual(self.spool.result("badid.r2")["status"], "succeeded")
        # Rejected for another field: the same error, naming the field.
        self.spool.submit({"id": "typo", "command": ["true"], "timout": 5})
        self.assertEqual(self.spool.result("typo")["status"], "rejected")
        p = self.cli("resubmit", "typo")
        self.assertEqual(p.returncode, 65)
        self.assertIn('"timout"', p.stderr)
        self.assertFalse(os.path.exists(self.spool.path("incoming", "typo.r2.json")))
        # Not JSON at all: nothing to resubmit.
        self.spool.submit(b"{not json", name="garbage.json")
        self.assertEqual(self.spool.result("garbage")["status"], "rejected")
        p = self.cli("resubmit", "garbage")
        self.assertEqual(p.returncode, 65)
        self.assertIn("no task", p.stderr)

    def test_resubmit_unknown_id(self):
        p = self.cli("resubmit", "nothing-here")
        self.assertEqual(p.returncode, 66)
        self.assertIn("no result for nothing-here", p.stderr)
        self.assertEqual(self.cli("resubmit", "--id", "bad id", "x").returncode, 2)
        self.assertEqual(self.cli("resubmit").returncode, 2)


class PauseResume(SpoolTest):
    def cli(self, *args):
        return run_cli(args[0], *self.spool.args(), *args[1:])

    def test_pause_wait_returns_when_nothing_runs(self):
        gate, started = os.path.join(self.spool.tmp, "gate"), os.path.join(self.spool.tmp, "started")
        open(gate, "w").close()
        self.spool.submit({"id": "long", "command": gate_cmd(gate, started)})
        wait_for(lambda: os.path.exists(started), what="the long task to start")
        waiter = subprocess.Popen([BIN, "pause", "--wait", *self.spool.args()],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: waiter.poll() is None and waiter.kill())
        wait_for(lambda: os.path.exists(self.spool.path("pause")), what="the pause file")
        # The pause file is there and the task still runs: --wait must not
        # have returned (it cannot, while active/ holds a running task).
        self.assertIsNone(waiter.poll(), "pause --wait returned while a task runs")
        self.assertTrue(os.listdir(self.spool.path("active")))
        os.unlink(gate)
        self.assertEqual(waiter.wait(10 * SLOW), 0)
        self.assertEqual(self.spool.result("long")["status"], "succeeded")
        # Paused: a new task does not start ...
        self.spool.submit({"id": "held", "command": ["true"]})
        cancel(self.spool, "long")  # a barrier: handled (removed) even while paused
        self.spool.wait(lambda: not os.path.exists(self.spool.path("cancel", "long")), 5,
                        what="cancel/long to be removed")
        self.assertFalse(os.path.exists(self.spool.result_path("held")))
        self.assertIn("held.json", os.listdir(self.spool.path("incoming")))
        # ... until resume.
        p = self.cli("resume")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(self.spool.path("pause")))
        self.assertEqual(self.spool.result("held")["status"], "succeeded")
        # resume when not paused is fine.
        self.assertEqual(self.cli("resume").returncode, 0)

    def test_pause_wait_timeout_and_no_watcher(self):
        gate, started = os.path.join(self.spool.tmp, "gate"), os.path.join(self.spool.tmp, "started")
        open(gate, "w").close()
        self.spool.submit({"id": "long", "command": gate_cmd(gate, started)})
        wait_for(lambda: os.path.exists(started), what="the long task to start")
        p = self.cli("pause", "--wait", "--timeout", "0.3")
        self.assertEqual(p.returncode, 69)
        self.assertIn("still run", p.stderr)
        self.assertTrue(os.path.exists(self.spool.path("pause")), "stays paused")
        os.unlink(gate)
        self.spool.result("long")
        # No watcher: nothing runs, so --wait returns at once.
        self.spool.stop()
        p = self.cli("pause", "--wait")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.cli("pause", "--timeout", "x").returncode, 2)
        self.assertEqual(self.cli("pause", "extra").returncode, 2)


class WaitAll(SpoolTest):
    def test_wait_all_waits_for_everything_unfinished(self):
        open(self.spool.path("pause"), "w").close()
        for rid, prio, code in (("w1", 3, 0), ("w2", 2, 4), ("w3", 1, 5)):
            self.spool.submit({"id": rid, "priority": prio, "command": ["sh", "-c", f"exit {code}"]})
        waiter = subprocess.Popen([BIN, "wait", "--all", *self.spool.args()],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: waiter.poll() is None and waiter.kill())
        # Once it watches results/ it has read the queue; then run the tasks.
        wait_for(lambda: watching(waiter.pid) or waiter.poll() is not None, what="wait --all to watch")
        self.assertIsNone(waiter.poll(), waiter.stderr.read() if waiter.poll() is not None else "")
        self.assertEqual(run_cli("resume", *self.spool.args()).returncode, 0)
        out, err = waiter.communicate(timeout=20 * SLOW)
        self.assertEqual(waiter.returncode, 4, err)  # the first non-zero, in run order
        ids = [json.loads(line)["id"] for line in out.splitlines()]
        self.assertEqual(sorted(ids), ["w1", "w2", "w3"])

    def test_wait_all_with_nothing_and_timeout(self):
        p = run_cli("wait", "--all", *self.spool.args())
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        open(self.spool.path("pause"), "w").close()
        self.spool.submit({"id": "paused-one", "command": ["true"]})
        p = run_cli("wait", "--all", "--timeout", "0.3", *self.spool.args())
        self.assertEqual(p.returncode, 69)
        self.assertIn("paused-one", p.stderr)
        self.assertEqual(run_cli("wait", "--all", "x", *self.spool.args()).returncode, 2)


class Labels(SpoolTest):
    def test_labels_in_status_and_results(self):
        gate, started = os.path.join(self.spool.tmp, "gate"), os.path.join(self.spool.tmp, "started")
        open(gate, "w").close()
        self.addCleanup(lambda: os.path.exists(gate) and os.unlink(gate))
        p = run_cli("submit", *self.spool.args(), "--id", "nb", "--label", "nightly build", "--",
                    *gate_cmd(gate, started))
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: os.path.exists(started), what="nb to start")
        run_cli("submit", *self.spool.args(), "--id", "q1", "--label", "nightly build", "--", "true")
        run_cli("submit", *self.spool.args(), "--id", "q2", "--label", "other", "--", "true")
        p = run_cli("status", *self.spool.args())
        lines = {l.split()[0]: l for l in p.stdout.splitlines() if l.split()}
        self.assertIn("nightly build", lines["nb"])
        self.assertIn("nightly build", lines["q1"])
        self.assertIn("other", lines["q2"])
        p = run_cli("status", "--label", "nightly build", *self.spool.args())
        ids = [l.split()[0] for l in p.stdout.splitlines() if l.split()]
        self.assertIn("nb", ids)
        self.assertIn("q1", ids)
        self.assertNotIn("q2", ids)
        st = json.loads(run_cli("status", "--json", "--label", "other", *self.spool.args()).stdout)
        self.assertEqual([q["id"] for q in st["queued"]], ["q2"])
        self.assertEqual(st["queued"][0]["label"], "other")
        self.assertEqual(st["running"], [])
        os.unlink(gate)
        r = self.spool.result("q2")
        self.assertEqual(r["label"], "other")
        self.assertEqual(r["task"]["label"], "other")
        self.spool.result("q1")
        st = json.loads(run_cli("status", "--json", "--label", "nightly build", *self.spool.args()).stdout)
        self.assertEqual(sorted(x["id"] for x in st["recent"]), ["nb", "q1"])
        p = run_cli("status", *self.spool.args())
        self.assertRegex(p.stdout, r"(?m)^q2 +succeeded .*other")


class SubmitOptions(SpoolTest):
    START = False

    def setUp(self):
        super().setUp()
        # A spool without a watcher (the client commands create none):
        # submitted files stay in incoming/ to be read back.
        self.assertEqual(run_cli("drain", *self.spool.args()).returncode, 0)

    def submitted(self, *args):
        p = run_cli("submit", *self.spool.args(), "--id", "s", *args, "--", "true")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.spool.path("incoming", "s.json")) as f:
            doc = json.load(f)
        os.unlink(self.spool.path("incoming", "s.json"))
        return doc

    def test_submit_sets_the_fields(self):
        doc = self.submitted("--after", "a", "--after", "b", "--label", "L", "--timeout", "auto",
                             "--history-key", "k")
        self.assertEqual(doc["after"], ["a", "b"])
        self.assertEqual((doc["label"], doc["timeout"], doc["history_key"]), ("L", "auto", "k"))
        self.assertEqual(self.submitted("--at", "2030-01-02T03:04:05Z")["not_before"],
                         "2030-01-02T03:04:05.000Z")
        self.assertEqual(self.submitted("--at", "1893456000")["not_before"], "2030-01-01T00:00:00.000Z")
        before = time.time()
        nb = self.submitted("--delay", "60")["not_before"]
        import datetime
        t = datetime.datetime.strptime(nb, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        self.assertTrue(before + 59 <= t <= time.time() + 61, nb)

    def test_bad_values_name_the_option_or_field(self):
        cases = [
            (["--after", "has space"], 2, "--after"),
            (["--at", "tomorrow"], 2, "--at"),
            (["--delay", "-3"], 2, "--delay"),
            (["--at", "2030-01-01T00:00:00Z", "--delay", "5"], 2, "give one"),
            (["--label", "x" * 129], 65, '"label"'),
            (["--after", "a", "--after", "a"], 65, "listed twice"),
        ]
        for args, rc, says in cases:
            p = run_cli("submit", *self.spool.args(), *args, "--", "true")
            self.assertEqual(p.returncode, rc, (args, p.stderr))
            self.assertIn(says, p.stderr, args)

    def test_validate_names_the_field(self):
        cases = {"after": {"after": []}, "after_policy": {"after": ["a"], "after_policy": "x"},
                 "not_before": {"not_before": "next week"}, "label": {"label": ""},
                 "timeout": {"timeout": "forever"}, "history_key": {"history_key": 3}}
        for field, extra in cases.items():
            path = os.path.join(self.spool.tmp, field + ".json")
            with open(path, "w") as f:
                json.dump(dict({"command": ["true"]}, **extra), f)
            p = run_cli("validate", path)
            self.assertEqual(p.returncode, 65, field)
            self.assertIn(f'"{field}"', p.stderr)
        path = os.path.join(self.spool.tmp, "good.json")
        with open(path, "w") as f:
            json.dump({"command": ["true"], "after": ["x"], "after_policy": "finished",
                       "not_before": 1893456000, "label": "l", "timeout": "auto",
                       "history_key": "k"}, f)
        self.assertEqual(run_cli("validate", path).returncode, 0)


class ExecLifecycle(SpoolTest):
    START = False

    def test_exec_auto_timeout_has_no_history(self):
        rc, r, err = run_exec({"id": "x", "command": ["true"], "timeout": "auto", "label": "L"})
        self.assertEqual(rc, 0, err)
        self.assertEqual((r["timeout_source"], r["timeout_s"], r["label"]), ("auto_default", 3600, "L"))
        rc, r, err = run_exec({"id": "y", "command": ["true"], "timeout": 2})
        self.assertEqual((r["timeout_source"], r["timeout_s"], r["label"]), ("task", 2, None))
