"""The fake claude CLI (tests/fixtures/claude) itself: every mode writes
only valid JSON lines on stdout, with the events the real CLI writes."""
import json
import os
import re
import subprocess
import tempfile
import time
import unittest

from harness import FIXTURES

CLAUDE = os.path.join(FIXTURES, "claude")
BASE = [CLAUDE, "-p", "--output-format", "stream-json", "--verbose"]


def fake(prompt, *args, env=None, timeout=30):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([*BASE, *args], input=prompt.encode(), capture_output=True,
                       timeout=timeout, env=e)
    events = [json.loads(line) for line in p.stdout.decode().splitlines()]
    return p.returncode, events, p.stderr.decode()


class FakeClaude(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fake-claude-")
        self.state = os.path.join(self.tmp, "state")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.tmp]))

    def check_stream(self, events):
        self.assertTrue(all(isinstance(e, dict) and "type" in e for e in events), events)
        init = events[0]
        self.assertEqual((init["type"], init["subtype"]), ("system", "init"))
        sid = init["session_id"]
        self.assertIsInstance(init["tools"], list)
        self.assertIsInstance(init["model"], str)
        for e in events:
            self.assertEqual(e["session_id"], sid, e)
        return init

    def check_result(self, ev, is_error, subtype):
        self.assertEqual(ev["type"], "result")
        self.assertEqual(ev["is_error"], is_error)
        self.assertEqual(ev["subtype"], subtype)
        for k in ("duration_ms", "duration_api_ms", "num_turns"):
            self.assertIsInstance(ev[k], int, k)
        self.assertIsInstance(ev["total_cost_usd"], float)
        self.assertIsInstance(ev["result"], str)
        for k in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
            self.assertIsInstance(ev["usage"][k], int, k)

    def test_success_with_tool_use(self):
        rc, ev, err = fake("do the thing", "--allowedTools", "Read,Bash", "--model", "m-1")
        self.assertEqual(rc, 0, err)
        init = self.check_stream(ev)
        self.assertEqual(init["tools"], ["Read", "Bash"])
        self.assertEqual(init["model"], "m-1")
        self.assertEqual(init["allowed_tools_arg"], "Read,Bash")
        self.assertEqual(init["model_arg"], "m-1")
        types = [e["type"] for e in ev]
        self.assertEqual(types[-1], "result")
        self.assertIn("assistant", types)
        uses = [c for e in ev if e["type"] == "assistant" for c in e["message"]["content"]
                if c["type"] == "tool_use"]
        results = [c for e in ev if e["type"] == "user" for c in e["message"]["content"]
                   if c["type"] == "tool_result"]
        self.assertEqual(len(uses), 1)
        self.assertEqual([r["tool_use_id"] for r in results], [uses[0]["id"]])
        for e in ev:
            if e["type"] == "assistant":
                self.assertEqual(e["message"]["role"], "assistant")
        self.check_result(ev[-1], False, "success")
        self.assertEqual(ev[-1]["result"], "Done.")
        self.assertEqual(ev[-1]["num_turns"], sum(t == "assistant" for t in types))

    def test_defaults_without_tools_or_model(self):
        rc, ev, err = fake("x")
        self.assertEqual(rc, 0, err)
        init = self.check_stream(ev)
        self.assertIsNone(init["allowed_tools_arg"])
        self.assertIsNone(init["model_arg"])
        self.assertIn("Bash", init["tools"])

    def test_echo(self):
        prompt = "say it back FAKE:echo\n\u00e9\u2603 \"quoted\"\n"
        rc, ev, err = fake(prompt)
        self.assertEqual(rc, 0)
        self.check_stream(ev)
        self.assertEqual(ev[-1]["result"], prompt)

    def test_fail(self):
        rc, ev, err = fake("FAKE:fail")
        self.assertEqual(rc, 1)
        self.check_stream(ev)
        self.check_result(ev[-1], True, "error_during_execution")

    def test_huge(self):
        rc, ev, err = fake("FAKE:huge")
        self.assertEqual(rc, 0, err)
        self.check_stream(ev)
        biggest = max(len(json.dumps(e)) for e in ev)
        self.assertGreater(biggest, 3_000_000)
        self.check_result(ev[-1], False, "success")
        rc, ev, err = fake("FAKE:huge:1000")
        self.assertLess(max(len(json.dumps(e)) for e in ev), 3000)

    def test_usage_limit_then_success_after_epoch(self):
        env = {"FAKE_CLAUDE_STATE": self.state}
        t0 = time.time()
        rc, ev, err = fake("FAKE:usage-limit:1", env=env)
        t1 = time.time()
        self.assertEqual(rc, 1)
        self.check_stream(ev)
        m = re.search(r"Claude AI usage limit reached\|(\d+)", err)
        self.assertIsNotNone(m, err)
        epoch = int(m.group(1))
        self.assertTrue(t0 < epoch <= t1 + 1, (t0, t1, epoch))  # now + 1 s, whole seconds
        self.assertIn(f"usage limit reached|{epoch}", ev[-1]["result"])
        self.assertTrue(ev[-1]["is_error"])
        # Before the epoch: the same limit again (unless a slow start-up
        # took it past the epoch: then it rightly succeeds, spending it).
        rc, ev, err = fake("FAKE:usage-limit:1", env=env)
        if rc == 0:
            self.assertGreaterEqual(time.time(), epoch)
            return
        self.assertEqual(rc, 1)
        self.assertIn(f"|{epoch}", err)
        time.sleep(max(0, epoch - time.time()) + 0.05)
        rc, ev, err = fake("FAKE:usage-limit:1", env=env)
        self.assertEqual(rc, 0, err)
        self.check_result(ev[-1], False, "success")
        self.assertFalse(os.path.exists(self.state), "the state is spent once it succeeded")

    def test_usage_limit_default_state_in_cwd(self):
        env = dict(os.environ)
        env.pop("FAKE_CLAUDE_STATE", None)
        p = subprocess.run(BASE, input=b"FAKE:usage-limit", capture_output=True, cwd=self.tmp,
                           env=env, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, ".fake-claude-state")))

    def test_bad_usage(self):
        p = subprocess.run([CLAUDE, "-p", "--bogus"], input=b"x", capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([CLAUDE, "-p", "--output-format", "stream-json"], input=b"x",
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 2, "stream-json needs --verbose, as in the real CLI")
