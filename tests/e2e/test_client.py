"""scripts/spoolrun_client.py end to end against a real watcher.

The ClaudeOutput tests need the runner's "output": "jsonl" support (events
and summary in the result). A runner without it rejects the unknown field
"output"; those tests then skip, saying so, and run fully once it is there."""
import importlib.util
import json
import os
import subprocess
import time
import unittest

from harness import FIXTURES, REPO, SLOW, SpoolTest, assert_valid_result

CLIENT_PATH = os.path.join(REPO, "scripts", "spoolrun_client.py")
CLAUDE = os.path.join(FIXTURES, "claude")
PY = "/usr/bin/python3"


def load_client():
    spec = importlib.util.spec_from_file_location("spoolrun_client", CLIENT_PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


client = load_client()


class Client(SpoolTest):
    def test_submit_and_wait(self):
        tid = client.submit({"command": ["echo", "hello"]}, spool=self.spool.root)
        self.assertRegex(tid, r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
        r = client.wait(tid, timeout=10 * SLOW, spool=self.spool.root)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["id"], tid)
        self.assertEqual(r["stdout"], "hello\n")
        self.assertEqual(r["task_file"], tid + ".json")
        self.assertEqual(r["task"]["id"], tid, "the generated id is written into the task")
        self.assertEqual([n for n in os.listdir(self.spool.path("incoming"))], [],
                         "no temporary file left behind")

    def test_submit_keeps_given_id_and_does_not_modify_the_dict(self):
        task = {"id": "given-1", "command": "echo $X", "env": {"X": "y"}}
        before = json.dumps(task, sort_keys=True)
        r = client.run(task, timeout=10 * SLOW, spool=self.spool.root)
        self.assertEqual(r["id"], "given-1")
        self.assertEqual(r["stdout"], "y\n")
        self.assertEqual(json.dumps(task, sort_keys=True), before)

    def test_run_returns_non_success_results(self):
        r = client.run({"command": "echo no >&2; exit 3"}, timeout=10 * SLOW, spool=self.spool.root)
        self.assertEqual((r["status"], r["exit_code"], r["stderr"]), ("failed", 3, "no\n"))
        r = client.run({"command": ["sleep", "5"], "timeout": 0.2, "kill_grace": 0},
                       timeout=10 * SLOW, spool=self.spool.root)
        self.assertEqual(r["status"], "timeout")
        r = client.run({"command": ["/nonexistent/prog"]}, timeout=10 * SLOW, spool=self.spool.root)
        self.assertEqual(r["status"], "error")

    def test_ids_unique_and_sortable(self):
        ids = [client.submit({"command": ["true"]}, spool=self.spool.root) for _ in range(50)]
        self.assertEqual(len(set(ids)), 50)
        self.assertEqual(ids, sorted(ids))
        self.assertTrue(all(a < b for a, b in zip(ids, ids[1:])), "strictly increasing")
        for tid in ids:
            self.assertEqual(client.wait(tid, timeout=20 * SLOW, spool=self.spool.root)["status"],
                             "succeeded")
        self.assertEqual(len(self.spool.results()), 50)

    def test_new_id_shape(self):
        a, b = client.new_id(), client.new_id("job")
        self.assertRegex(a, r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}$")
        self.assertRegex(b, r"^job-\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}$")
        with self.assertRaises(client.InvalidTask):
            client.new_id(".hidden")

    def test_wait_timeout(self):
        t0 = time.monotonic()
        with self.assertRaises(client.SpoolTimeout) as cm:
            client.wait("never-submitted", timeout=0.3, spool=self.spool.root)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertLess(elapsed, 2 * SLOW)
        e = cm.exception
        self.assertIsInstance(e, TimeoutError)
        self.assertIsInstance(e, client.SpoolError)
        self.assertEqual(e.id, "never-submitted")
        self.assertIn("never-submitted", str(e))
        self.assertIn(self.spool.root, str(e))

    def test_rejected_task_raises(self):
        """What the runner refuses (here a file planted by hand, as the
        client itself refuses bad tasks before writing) is TaskRejected."""
        self.spool.submit('{"id": "rej", "command": ["true"], "timeout": -1}', name="rej.json")
        with self.assertRaises(client.TaskRejected) as cm:
            client.wait("rej", timeout=10 * SLOW, spool=self.spool.root)
        e = cm.exception
        self.assertIsInstance(e, client.SpoolError)
        self.assertEqual(e.code, "invalid_task")
        self.assertEqual(e.field, "timeout")
        self.assertIn("timeout", e.message)
        self.assertIn(e.message, str(e))
        self.assertEqual(e.result["status"], "rejected")

    def test_invalid_fields_refused_before_writing(self):
        for bad, field in (({"command": ["true"], "timeout": -1}, "timeout"),
                           ({"command": ["true"], "no_such_field": 1}, "no_such_field"),
                           ({"command": ["true"], "timout": 5}, "timout"),
                           ({"command": ["true"], "retries": "2"}, "retries"),
                           ({"command": ["true"], "output": "xml"}, "output"),
                           ({"command": ["true"], "limits": {"memory": 1}}, "limits"),
                           ({"command": ["true"], "id": "-x"}, "id")):
            with self.assertRaisesRegex(client.InvalidTask, f'"{field}"', msg=repr(bad)):
                client.run(bad, timeout=10 * SLOW, spool=self.spool.root)
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])
        self.assertEqual(self.spool.results(), [])

    def test_python_rules_agree_with_the_runner(self):
        """Without a spoolrun program at hand the client checks with its own
        copy of the rules: each case is judged the same by both."""
        cases = [{"command": ["true"]}, {"command": "echo $X", "env": {"X": None}},
                 {"command": ["true"], "timeout": -1}, {"command": ["true"], "timout": 5},
                 {"command": ["true"], "retries": "2"}, {"command": ["true"], "output": "xml"},
                 {"command": ["true"], "limits": {"memory": 1}}, {"command": ["true"], "id": "-x"},
                 {"command": []}, {"command": ["true"], "priority": 1.5},
                 {"command": ["true"], "retry_on": {"exit_codes": [256]}},
                 {"command": ["true"], "format": 2}, {"command": ["true"], "meta": {"a": 1}},
                 {"command": ["true"], "env": {"A=B": "x"}}, {"command": ["true"], "cwd": ""}]
        for task in cases:
            p = subprocess.run([os.environ["SPOOLRUN_BIN"], "validate", "-"],
                               input=json.dumps(task), capture_output=True, text=True)
            try:
                client._check_task(task)
                python_ok = True
            except client.InvalidTask:
                python_ok = False
            self.assertEqual(python_ok, p.returncode == 0, (task, p.stderr))

    def test_client_side_shape_check(self):
        for bad in ([], "echo", {}, {"cmd": ["x"]}, {"command": []}, {"command": ""},
                    {"command": ["", "x"]}, {"command": [1]}, {"command": ["x"], "id": "../x"},
                    {"command": ["x"], "id": ".x"}, {"command": ["x"], "meta": object()}):
            with self.assertRaises(client.InvalidTask, msg=repr(bad)):
                client.submit(bad, spool=self.spool.root)
        self.assertTrue(issubclass(client.InvalidTask, ValueError))
        self.assertEqual(os.listdir(self.spool.path("incoming")), [], "nothing written")

    def test_duplicate_id_refused_client_side(self):
        client.run({"id": "dup", "command": ["true"]}, timeout=10 * SLOW, spool=self.spool.root)
        with self.assertRaisesRegex(client.SpoolError, "already exists"):
            client.submit({"id": "dup", "command": ["false"]}, spool=self.spool.root)

    def test_missing_spool(self):
        with self.assertRaisesRegex(client.SpoolError, "incoming"):
            client.submit({"command": ["true"]}, spool=os.path.join(self.spool.tmp, "nope"))

    def test_cli_run(self):
        p = subprocess.run([PY, CLIENT_PATH, "run", "--spool", self.spool.root, "--wait-timeout",
                            str(10 * SLOW), "--", "sh", "-c", "echo out; exit 5"],
                           capture_output=True, text=True, timeout=30 * SLOW)
        self.assertEqual(p.returncode, 5, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual((r["status"], r["stdout"]), ("failed", "out\n"))
        p = subprocess.run([PY, CLIENT_PATH, "run", "--spool", self.spool.root, "--timeout", "-1",
                            "--", "true"], capture_output=True, text=True, timeout=30 * SLOW)
        self.assertEqual(p.returncode, 65)
        self.assertIn('invalid task: field "timeout"', p.stderr)
        self.assertEqual(os.listdir(self.spool.path("incoming")), [], "nothing written")
        p = subprocess.run([PY, CLIENT_PATH, "wait", "--spool", self.spool.root, "--wait-timeout",
                            "0.2", "nope"], capture_output=True, text=True, timeout=30 * SLOW)
        self.assertEqual(p.returncode, 3)
        self.assertIn("nope", p.stderr)

    def test_claude_task_shape(self):
        t = client.claude_task("the prompt; rm -rf / `x` $(y)", timeout=30, tools=["Read", "Bash"],
                               model="m", cwd=".", claude="claude", env={"A": "1"},
                               extra={"retries": 1})
        self.assertEqual(t["command"], ["claude", "-p", "--output-format", "stream-json", "--verbose",
                                        "--allowedTools", "Read,Bash", "--model", "m"])
        self.assertEqual(t["stdin"], "the prompt; rm -rf / `x` $(y)")
        self.assertEqual((t["output"], t["timeout"], t["env"], t["retries"]), ("jsonl", 30, {"A": "1"}, 1))
        self.assertEqual(t["cwd"], os.path.abspath("."))
        t = client.claude_task("p")
        self.assertEqual(t["command"], ["claude", "-p", "--output-format", "stream-json", "--verbose"])
        self.assertNotIn("cwd", t)
        self.assertNotIn("env", t)

    def test_usage_limit_deferral_with_fake_claude(self):
        # Runs now, without "output": the runner finds the usage-limit
        # message on stderr, defers the task until the epoch, then the fake
        # succeeds. The same as ClaudeOutput.test_usage_limit, minus jsonl.
        state = os.path.join(self.spool.tmp, "claude-state")
        task = client.claude_task("FAKE:usage-limit:2", timeout=30, claude=CLAUDE,
                                  env={"FAKE_CLAUDE_STATE": state},
                                  extra={"retries": 1, "limit_key": "claude"})
        del task["output"]
        r = client.run(task, timeout=30 * SLOW, spool=self.spool.root)
        self.assertEqual(r["status"], "succeeded", r["attempts"])
        self.assertEqual(len(r["attempts"]), 2, r["attempts"])
        self.assertIn("usage limit", r["attempts"][0]["retry_reason"])
        self.assertEqual(r["attempts"][0]["status"], "failed")
        self.assertEqual(r["attempts"][1]["status"], "succeeded")
        last = json.loads(r["stdout"].splitlines()[-1])
        self.assertEqual((last["type"], last["is_error"]), ("result", False))


class Queued(SpoolTest):
    START = False

    def test_queued_id_is_not_replaced(self):
        self.spool.start()
        self.spool.stop()  # creates the spool, then nothing consumes incoming/
        tid = client.submit({"id": "q1", "command": ["echo", "first"]}, spool=self.spool.root)
        with self.assertRaisesRegex(client.SpoolError, "already queued"):
            client.submit({"id": "q1", "command": ["echo", "second"]}, spool=self.spool.root)
        self.assertEqual(sorted(os.listdir(self.spool.path("incoming"))), ["q1.json"])
        with open(self.spool.path("incoming", "q1.json")) as f:
            self.assertEqual(json.load(f)["command"], ["echo", "first"])
        self.assertEqual(os.stat(self.spool.path("incoming", "q1.json")).st_nlink, 1)
        self.spool.start()
        self.assertEqual(client.wait(tid, timeout=10 * SLOW, spool=self.spool.root)["stdout"], "first\n")


class ClaudeOutput(SpoolTest):
    """execute_task with the fake claude. Needs "output": "jsonl" in the
    runner [C, in progress]: skipped while the runner rejects the field."""

    def execute(self, prompt, **kw):
        kw.setdefault("wait_timeout", 30 * SLOW)
        try:
            r = client.execute_task(prompt, spool=self.spool.root, claude=CLAUDE, **kw)
        except client.TaskRejected as e:
            if e.field == "output":
                self.skipTest("output field not supported by this build")
            raise
        assert_valid_result(r)
        self.assertEqual(r["output"], "jsonl")
        return r

    def check_summary_complete(self, s):
        self.assertIs(s["complete"], True, s)
        self.assertIsInstance(s["session_id"], str)
        self.assertIsInstance(s["num_turns"], int)
        self.assertGreater(s["num_turns"], 0)
        self.assertIsInstance(s["total_cost_usd"], (int, float))
        self.assertIsInstance(s["duration_ms"], (int, float))
        self.assertIsInstance(s["usage"], dict)
        self.assertIsInstance(s["usage"]["input_tokens"], int)
        self.assertIsInstance(s["usage"]["output_tokens"], int)

    def test_execute_task_succeeds(self):
        prompt = "Summarise the repository. FAKE:echo \"quotes\" $(no shell) \u00e9"
        r = self.execute(prompt, timeout=60, tools=["Read", "Bash"], model="fake-model-1")
        self.assertEqual(r["status"], "succeeded", r.get("summary"))
        s = r["summary"]
        self.check_summary_complete(s)
        self.assertEqual(s["result"], prompt)
        self.assertIs(s["is_error"], False)
        self.assertEqual(s["subtype"], "success")
        events = r["events"]
        init = events[0]
        self.assertEqual((init["type"], init["subtype"]), ("system", "init"))
        self.assertEqual(init["tools"], ["Read", "Bash"])
        self.assertEqual(init["model"], "fake-model-1")
        self.assertEqual(s["session_id"], init["session_id"])
        self.assertEqual(events[-1]["type"], "result")
        self.assertTrue(any(c.get("type") == "tool_use" for e in events if e["type"] == "assistant"
                            for c in e["message"]["content"]))
        self.assertEqual(r["events_total"], len(events))
        self.assertEqual(r.get("events_omitted", 0), 0)
        self.assertEqual(r["non_json_lines"], 0)
        self.assertIsNone(r.get("output_error"))

    def test_no_tools_or_model_passes_none(self):
        r = self.execute("plain", timeout=60)
        self.assertEqual(r["status"], "succeeded")
        init = r["events"][0]
        self.assertIsNone(init["allowed_tools_arg"])
        self.assertIsNone(init["model_arg"])
        self.assertEqual(r["summary"]["result"], "Done.")

    def test_cwd_and_env(self):
        d = os.path.join(self.spool.tmp, "work dir")
        os.mkdir(d)
        r = self.execute("FAKE:echo", timeout=60, cwd=d, env={"FAKE_CLAUDE_STATE": "/nonexistent"})
        self.assertEqual(r["events"][0]["cwd"], d)
        self.assertEqual(r["task"]["env"], {"FAKE_CLAUDE_STATE": "/nonexistent"})

    def test_failure_is_returned(self):
        r = self.execute("FAKE:fail", timeout=60)
        self.assertEqual(r["status"], "failed")
        s = r["summary"]
        self.assertIs(s["complete"], True)
        self.assertIs(s["is_error"], True)
        self.assertEqual(s["subtype"], "error_during_execution")

    def test_huge_event(self):
        r = self.execute("FAKE:huge", timeout=60)
        self.assertEqual(r["status"], "succeeded")
        self.check_summary_complete(r["summary"])
        self.assertEqual(r["summary"]["result"], "Done.")
        # Bounded: the result does not carry the whole 3 MB event inline
        # twice over, and the counts add up.
        size = os.path.getsize(self.spool.result_path(r["id"]))
        self.assertLess(size, 3 * 1024 * 1024, "events are bounded")
        self.assertGreaterEqual(r["events_total"], len(r["events"]))
        self.assertEqual(r["events_total"], len(r["events"]) + r.get("events_omitted", 0))

    def test_usage_limit(self):
        state = os.path.join(self.spool.tmp, "claude-state")
        r = self.execute("FAKE:usage-limit:2", timeout=60, env={"FAKE_CLAUDE_STATE": state},
                         extra={"retries": 1, "limit_key": "claude"})
        self.assertEqual(r["status"], "succeeded", r["attempts"])
        self.assertEqual(len(r["attempts"]), 2, r["attempts"])
        self.assertIn("usage limit", r["attempts"][0]["retry_reason"])
        self.check_summary_complete(r["summary"])


if __name__ == "__main__":
    unittest.main()
