"""The real Claude Code CLI (npm @anthropic-ai/claude-code, pinned in
claude_standin.CLAUDE_VERSION, installed once into a cache outside the
repository) run by a real watcher against a stand-in Anthropic API: success,
a tool round trip, a subscriber's five-hour limit (stream-json and text),
an API-key 429, a 529, a stand-in that stops answering, and the Python
client's execute_task. Skipped, saying why, where npm cannot install it.

tests/fixtures/claude (the fake) stays for what this CLI cannot be made to
produce: the legacy "Claude AI usage limit reached|<epoch>" message of older
CLIs (the default usage_limit_pattern), a 3 MB event, and the shape tests
that need no Node (test_fake_claude.py, test_client.py)."""
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import unittest

from harness import REPO, SLOW, SpoolTest
from retry_util import ts_ms, wait_deferred
import claude_standin as cs

sys.path.insert(0, os.path.join(REPO, "scripts"))
import spoolrun_client as client  # noqa: E402


class RealClaude(SpoolTest):
    # Short back-offs, so a 429 or 529 costs the test a second or two; one
    # deferral for them, so the bound is seen too.
    CONFIG = ("[retry]\nrate_limit_backoff = 1\nrate_limit_backoff_max = 2\n"
              "limit_deferrals = 1\n")

    @classmethod
    def setUpClass(cls):
        cls.claude = cs.install_claude()

    def setUp(self):
        super().setUp()
        self.home = tempfile.mkdtemp(prefix="claude-home-")
        self.addCleanup(shutil.rmtree, self.home, True)
        self.work = os.path.join(self.spool.tmp, "work")
        os.mkdir(self.work)
        self.behave = lambda req: cs.text("Hello from the stand-in")
        self.api = cs.StandIn(lambda req: self.behave(req))
        self.addCleanup(self.api.close)

    def task(self, tid, prompt="say hi", subscriber=False, extra=None, tools=None):
        return cs_task(self, tid, prompt, subscriber, extra, tools)

    def test_success(self):
        r = self.run_task(self.task("ok"), timeout=60)
        self.assertEqual((r["status"], r["exit_code"], r["output"]), ("succeeded", 0, "jsonl"),
                         r.get("stderr"))
        s = r["summary"]
        init = r["events"][0]
        self.assertEqual((init["type"], init["subtype"]), ("system", "init"))
        self.assertIs(s["complete"], True)
        self.assertEqual(s["result"], "Hello from the stand-in")
        self.assertEqual((s["is_error"], s["subtype"], s["num_turns"]), (False, "success", 1))
        self.assertGreater(s["total_cost_usd"], 0)
        self.assertEqual((s["usage"]["input_tokens"], s["usage"]["output_tokens"]), (12, 5))
        self.assertEqual(s["session_id"], init["session_id"])
        self.assertEqual((s["stop_reason"], s["terminal_reason"]), ("end_turn", "completed"))
        self.assertIsNone(s["api_error_status"])
        self.assertIsNone(s["rate_limit_info"])
        self.assertEqual(s["model"], init["model"])
        self.assertTrue(s["models"] and all(isinstance(m, str) for m in s["models"]), s["models"])
        (req,) = self.api.messages()
        self.assertIn("say hi", cs.prompt_text(req["body"]), "the prompt came on stdin")
        self.assertEqual(req["headers"].get("x-api-key"), "sk-ant-api03-fake-key")

    def test_tool_round_trip_through_execute_task(self):
        notes = os.path.join(self.work, "notes.txt")
        with open(notes, "w") as f:
            f.write("the secret is 4217\n")

        def behave(req):
            done = cs.tool_results(req)
            if done:
                return cs.text("The file says: " + json.dumps(done))
            return cs.tool_use("Read", {"file_path": notes})
        self.behave = behave
        prompt = "Read notes.txt and tell me the secret; \"quotes\" $(no shell) \u00e9"
        r = client.execute_task(prompt, timeout=60, tools=["Read"], cwd=self.work,
                                spool=self.spool.root, claude=self.claude,
                                env=cs.cli_env(self.home, self.api.url),
                                wait_timeout=60 * SLOW)
        self.assertEqual(r["status"], "succeeded", r.get("stderr"))
        self.assertEqual(r["task"]["command"], [self.claude, "-p", "--output-format", "stream-json",
                                                "--verbose", "--allowedTools", "Read"])
        self.assertEqual(r["task"]["stdin"], prompt)
        s = r["summary"]
        self.assertEqual(s["num_turns"], 2, s)
        self.assertIn("4217", s["result"])
        first, second = self.api.messages()
        self.assertIn(prompt, cs.prompt_text(first["body"]), "the prompt, intact, on stdin")
        self.assertIn("4217", json.dumps(cs.tool_results(second["body"])),
                      "Read ran without asking: --allowedTools came from tools")
        self.assertEqual(r["events"][0]["cwd"], self.work)

    def test_five_hour_limit_defers_with_key_and_spends_no_retry(self):
        reset = int(time.time() + 4 * SLOW) + 1
        self.behave = lambda req: (cs.subscriber_limit(reset) if time.time() < reset
                                   else cs.text("after the reset"))
        self.spool.submit(self.task("a", subscriber=True,
                                    extra={"limit_key": "claude", "retries": 2,
                                           "retry_backoff": 1}))
        st = wait_deferred(self.spool, "a.json", timeout=30)
        self.assertEqual(st["not_before_ms"], reset * 1000, st)
        self.assertTrue(st["usage_limit"])
        # A sibling of the same limit_key waits with it, without running.
        self.spool.submit(self.task("b", subscriber=True, extra={"limit_key": "claude"}))
        st_b = wait_deferred(self.spool, "b.json", timeout=30)
        self.assertEqual(st_b["not_before_ms"], reset * 1000)
        ra = self.spool.result("a", timeout=30 + reset - time.time())
        rb = self.spool.result("b", timeout=30)
        for r in (ra, rb):
            self.assertEqual(r["status"], "succeeded", r["attempts"])
            self.assertEqual(r["summary"]["result"], "after the reset")
        first = ra["attempts"][0]
        self.assertEqual(len(ra["attempts"]), 2, ra["attempts"])
        self.assertEqual(first["status"], "failed")
        lim = first["retry_limit"]
        self.assertEqual((lim["kind"], lim["type"], lim["source"], lim["resets_at"],
                          lim["api_error_status"]),
                         ("usage_limit", "five_hour", "rate_limit_event", reset, 429))
        self.assertEqual(ts_ms(lim["until"]), reset * 1000)
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(reset))
        self.assertIn("five_hour", first["retry_reason"])
        self.assertIn(when, first["retry_reason"])
        self.assertIn("no retry spent", first["retry_reason"])
        self.assertGreaterEqual(ts_ms(ra["attempts"][1]["started_at"]), reset * 1000)
        self.assertEqual(len(rb["attempts"]), 1, "b never ran before the reset")
        # The stand-in saw exactly one limited request (a's first), and
        # nothing got through before the reset.
        codes = [(m["time"], cs.tool_results(m["body"])) for m in self.api.messages()]
        self.assertEqual(len(codes), 3, codes)
        self.assertEqual(sum(t < reset for t, _ in codes), 1)

    def test_five_hour_limit_in_text_output(self):
        # No events: the CLI prints "You've hit your session limit · resets
        # 6:47am (Asia/Kolkata)" in the zone of its TZ.
        reset = int(time.time()) + 3600
        self.behave = lambda req: cs.subscriber_limit(reset)
        t = self.task("t", subscriber=True, extra={"limit_key": "claude"})
        t["command"] = [self.claude, "-p", "--output-format", "text"]
        del t["output"]
        t["env"]["TZ"] = "Asia/Kolkata"
        self.spool.submit(t)
        st = wait_deferred(self.spool, "t.json", timeout=30)
        lim = st["attempts"][0]["retry_limit"]
        self.assertEqual((lim["kind"], lim["source"], lim["type"]),
                         ("usage_limit", "text", "session limit"), st)
        # The CLI names the minute; the runner waits for its end.
        self.assertEqual(st["not_before_ms"], (reset // 60 * 60 + 60) * 1000, st)
        self.assertEqual(lim["resets_at"], reset // 60 * 60 + 60)

    def test_api_key_429_backs_off_under_the_key(self):
        calls = []

        def behave(req):
            calls.append(time.time())
            if len(calls) == 1:
                return cs.error(429, "rate_limit_error", "Number of requests has exceeded your "
                                "per-minute rate limit")
            return cs.text("after the 429")
        self.behave = behave
        r = self.run_task(self.task("k", extra={"limit_key": "claude"}), timeout=60)
        self.assertEqual(r["status"], "succeeded", r["attempts"])
        self.assertEqual(len(r["attempts"]), 2)
        lim = r["attempts"][0]["retry_limit"]
        self.assertEqual((lim["kind"], lim["api_error_status"], lim["source"], lim["resets_at"]),
                         ("rate_limited", 429, "result event", None))
        self.assertIn("429", r["attempts"][0]["retry_reason"])
        # rate_limit_backoff = 1: between half and all of a second.
        gap = ts_ms(r["attempts"][1]["started_at"]) - ts_ms(r["attempts"][0]["finished_at"])
        self.assertGreaterEqual(gap, 450)

    def test_529_backs_off_then_fails_once_deferrals_are_spent(self):
        self.behave = lambda req: cs.error(529, "overloaded_error", "Overloaded")
        r = self.run_task(self.task("o", extra={"limit_key": "claude"}), timeout=60)
        self.assertEqual(r["status"], "failed", r["attempts"])
        self.assertEqual(len(r["attempts"]), 2, "limit_deferrals = 1, retries 0")
        self.assertEqual(r["attempts"][0]["retry_limit"]["kind"], "overloaded")
        self.assertNotIn("retry_limit", r["attempts"][1])
        s = r["summary"]
        self.assertEqual((s["api_error_status"], s["is_error"]), (529, True))
        self.assertIn("529", s["result"])
        self.assertEqual(len(self.api.messages()), 2)

    def test_stand_in_stops_answering_idle_timeout(self):
        self.behave = lambda req: cs.hang()
        r = self.run_task(self.task("h", extra={"idle_timeout": 2}), timeout=60)
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(r["error"]["code"], "idle_timeout")
        s = r["summary"]
        self.assertIs(s["complete"], False)
        self.assertIn("idle_timeout", s["reason"])
        self.assertEqual(r["events"][0]["subtype"], "init")
        self.assertIsInstance(s["model"], str)


def cs_task(test, tid, prompt, subscriber, extra, tools):
    """The task the Python client builds for claude, pointed at the stand-in."""
    return client.claude_task(prompt, timeout=60, tools=tools, cwd=test.work, claude=test.claude,
                              env=cs.cli_env(test.home, test.api.url, subscriber),
                              extra={"id": tid, **(extra or {})})


if __name__ == "__main__":
    unittest.main()
