"""Retries with back-off: attempts recorded, retry_on, timing, defaults
from [retry], deferred tasks not blocking incoming/, bad retry_on."""
import os

from harness import SLOW, SpoolTest
from retry_util import (count, counter_cmd, deferred_tasks, listdir, succeed_at, ts_ms,
                        wait_deferred)

# Slack for the runner's own work between a run's end and its retry decision
# (and between a task becoming due and starting), in ms.
SLACK_MS = 250 * SLOW


class Retries(SpoolTest):
    def check_attempt_shape(self, r):
        """Invariants of every result with attempts."""
        att = r["attempts"]
        self.assertEqual([a["attempt"] for a in att], list(range(1, len(att) + 1)))
        self.assertEqual(r["attempt"], len(att))
        for a in att[:-1]:
            self.assertIsInstance(a["retry_reason"], str, a)
            self.assertTrue(a["retry_reason"], a)
            self.assertIsInstance(a["retry_at"], str, a)
        self.assertIsNone(att[-1]["retry_reason"])
        self.assertIsNone(att[-1]["retry_at"])
        # Top-level fields describe the last attempt.
        last = att[-1]
        self.assertEqual(r["status"], last["status"])
        self.assertEqual(r["exit_code"], last["exit_code"])
        self.assertEqual(r["started_at"], last["started_at"])
        self.assertEqual(r["finished_at"], last["finished_at"])
        for prev, nxt in zip(att, att[1:]):
            self.assertGreaterEqual(ts_ms(nxt["started_at"]), ts_ms(prev["retry_at"]),
                                    "a retry must not start before its retry_at")

    def test_retry_fails_twice_then_succeeds(self):
        backoff = 0.3
        r = self.run_task({"id": "flaky", "retries": 2, "retry_backoff": backoff,
                           "command": succeed_at(self.spool.tmp, "c", 3)}, timeout=15)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["exit_code"], 0)
        self.assertEqual(r["attempt"], 3)
        att = r["attempts"]
        self.assertEqual(len(att), 3)
        self.assertEqual([a["status"] for a in att], ["failed", "failed", "succeeded"])
        self.assertEqual([a["exit_code"] for a in att], [1, 1, 0])
        self.check_attempt_shape(r)
        for n, a in enumerate(att[:-1]):
            gap = ts_ms(a["retry_at"]) - ts_ms(a["finished_at"])
            full = backoff * 2 ** n * 1000
            self.assertGreaterEqual(gap, full * 0.5 - 2, f"retry {n}: retry_at too early")
            self.assertLessEqual(gap, full + SLACK_MS, f"retry {n}: retry_at too late")
        self.assertEqual(count(self.spool.tmp, "c"), 3)
        self.assertEqual(listdir(self.spool, "deferred"), [])
        # (a result is published just before its file and state leave active/)
        self.spool.wait(lambda: listdir(self.spool, "active") == [], 5, what="active/ to empty")

    def test_retry_never_succeeds_exhausts_retries(self):
        r = self.run_task({"id": "hopeless", "retries": 2, "retry_backoff": 0.2,
                           "command": counter_cmd(self.spool.tmp, "c", "echo run $n; exit 3")},
                          timeout=15)
        self.assertEqual(r["status"], "failed")
        self.assertEqual(r["exit_code"], 3)
        self.assertEqual(r["stdout"], "run 3\n", "the top-level output is the last attempt's")
        self.assertEqual(len(r["attempts"]), 3, "retries + 1 attempts")
        self.assertEqual([a["status"] for a in r["attempts"]], ["failed"] * 3)
        self.check_attempt_shape(r)
        self.assertEqual(count(self.spool.tmp, "c"), 3, "run exactly retries + 1 times")
        self.assertEqual(listdir(self.spool, "deferred"), [])

    def test_retry_zero_retries_runs_once(self):
        r = self.run_task({"id": "once", "retries": 0, "retry_backoff": 0.1,
                           "command": counter_cmd(self.spool.tmp, "c", "exit 1")})
        self.assertEqual(r["status"], "failed")
        self.assertEqual(len(r["attempts"]), 1)
        self.assertIsNone(r["attempts"][0]["retry_reason"])
        self.assertEqual(count(self.spool.tmp, "c"), 1)

    def test_retry_on_exit_codes_only_listed(self):
        # Run 1 exits 75 (listed: retried), run 2 exits 2 (not listed: final).
        r = self.run_task({"id": "codes", "retries": 3, "retry_backoff": 0.2,
                           "retry_on": {"exit_codes": [75]},
                           "command": counter_cmd(self.spool.tmp, "c",
                                                  "[ $n -ge 2 ] && exit 2; exit 75")},
                          timeout=15)
        self.assertEqual(r["status"], "failed")
        self.assertEqual(r["exit_code"], 2)
        self.assertEqual([a["exit_code"] for a in r["attempts"]], [75, 2])
        self.assertIn("75", r["attempts"][0]["retry_reason"])
        self.check_attempt_shape(r)
        self.assertEqual(count(self.spool.tmp, "c"), 2, "exit 2 is not in exit_codes: no retry")

    def test_retry_on_exit_codes_unlisted_first_failure_not_retried(self):
        r = self.run_task({"id": "nocode", "retries": 3, "retry_backoff": 0.1,
                           "retry_on": {"exit_codes": [75]},
                           "command": counter_cmd(self.spool.tmp, "c", "exit 2")})
        self.assertEqual(r["status"], "failed")
        self.assertEqual(len(r["attempts"]), 1)
        self.assertEqual(count(self.spool.tmp, "c"), 1)

    def test_retry_on_timeout(self):
        r = self.run_task({"id": "slow", "retries": 2, "retry_backoff": 0.2, "timeout": 0.3,
                           "kill_grace": 0.2, "retry_on": {"timeout": True},
                           "command": counter_cmd(self.spool.tmp, "c",
                                                  "[ $n -ge 2 ] && exit 0; exec sleep 30")},
                          timeout=15)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual([a["status"] for a in r["attempts"]], ["timeout", "succeeded"])
        self.assertIn("timed out", r["attempts"][0]["retry_reason"])
        self.check_attempt_shape(r)

    def test_retry_on_without_timeout_does_not_retry_timeout(self):
        r = self.run_task({"id": "slow2", "retries": 2, "retry_backoff": 0.1, "timeout": 0.3,
                           "kill_grace": 0.2, "retry_on": {"exit_codes": [1]},
                           "command": counter_cmd(self.spool.tmp, "c", "exec sleep 30")},
                          timeout=15)
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(len(r["attempts"]), 1)
        self.assertEqual(count(self.spool.tmp, "c"), 1)

    def test_retry_on_signal(self):
        r = self.run_task({"id": "sig", "retries": 1, "retry_backoff": 0.1,
                           "retry_on": {"signal": True},
                           "command": counter_cmd(self.spool.tmp, "c",
                                                  "[ $n -ge 2 ] && exit 0; kill -KILL $$")},
                          timeout=15)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual([a["status"] for a in r["attempts"]], ["killed", "succeeded"])
        self.assertEqual(r["attempts"][0]["signal"], "SIGKILL")

    def test_retry_on_output_pattern_on_stderr(self):
        r = self.run_task({"id": "rated", "retries": 2, "retry_backoff": 0.2,
                           "retry_on": {"output_patterns": ["rate limit"]},
                           "command": counter_cmd(self.spool.tmp, "c",
                                                  "[ $n -ge 2 ] && exit 0; "
                                                  "echo 'error: rate limit exceeded' >&2; exit 1")},
                          timeout=15)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual([a["status"] for a in r["attempts"]], ["failed", "succeeded"])
        self.assertIn("rate limit", r["attempts"][0]["retry_reason"])
        self.check_attempt_shape(r)

    def test_retry_on_output_pattern_on_stdout_is_an_ere(self):
        r = self.run_task({"id": "rated2", "retries": 2, "retry_backoff": 0.2,
                           "retry_on": {"output_patterns": ["^HTTP (429|503)$"]},
                           "command": counter_cmd(self.spool.tmp, "c",
                                                  "[ $n -ge 2 ] && exit 0; "
                                                  "echo first; echo 'HTTP 503'; echo last; exit 1")},
                          timeout=15)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(len(r["attempts"]), 2)

    def test_retry_on_output_pattern_not_matching_is_final(self):
        r = self.run_task({"id": "other", "retries": 2, "retry_backoff": 0.1,
                           "retry_on": {"output_patterns": ["rate limit"]},
                           "command": counter_cmd(self.spool.tmp, "c",
                                                  "echo 'disk full' >&2; exit 1")})
        self.assertEqual(r["status"], "failed")
        self.assertEqual(len(r["attempts"]), 1)
        self.assertEqual(r["stderr"], "disk full\n")
        self.assertEqual(count(self.spool.tmp, "c"), 1)

    def test_retry_backoff_timing(self):
        backoff = 0.5
        r = self.run_task({"id": "timed", "retries": 1, "retry_backoff": backoff,
                           "command": succeed_at(self.spool.tmp, "c", 2)}, timeout=15)
        a1, a2 = r["attempts"]
        gap = ts_ms(a2["started_at"]) - ts_ms(a1["finished_at"])
        self.assertGreaterEqual(gap, backoff * 1000 * 0.5 - 2, "retried before half the back-off")
        self.assertLessEqual(gap, backoff * 1000 + 2 * SLACK_MS, "retried far later than the back-off")

    def test_retry_backoff_doubles_up_to_max(self):
        # Delays 0.2, 0.4 -> capped 0.3, 0.8 -> capped 0.3.
        r = self.run_task({"id": "capped", "retries": 3, "retry_backoff": 0.2,
                           "retry_backoff_max": 0.3,
                           "command": counter_cmd(self.spool.tmp, "c", "exit 1")}, timeout=15)
        self.assertEqual(len(r["attempts"]), 4)
        for n, full in enumerate([200, 300, 300]):
            a = r["attempts"][n]
            gap = ts_ms(a["retry_at"]) - ts_ms(a["finished_at"])
            self.assertGreaterEqual(gap, full * 0.5 - 2, f"retry {n}")
            self.assertLessEqual(gap, full + SLACK_MS, f"retry {n}: capped at retry_backoff_max")

    def test_retry_deferred_task_does_not_block_incoming(self):
        # A fails at once and waits 1-2 s; B, submitted after, runs meanwhile.
        self.spool.submit({"id": "a", "retries": 1, "retry_backoff": 2,
                           "command": succeed_at(self.spool.tmp, "ca", 2)})
        st = wait_deferred(self.spool, "a.json")
        self.assertEqual(st.get("not_before_ms") is not None, True, st)
        rb = self.run_task({"id": "b", "command": ["echo", "b"]})
        self.assertEqual(rb["status"], "succeeded")
        self.assertFalse(os.path.exists(self.spool.result_path("a")),
                         "b's result must appear before a's retry has run")
        self.assertEqual(deferred_tasks(self.spool), ["a.json"])
        ra = self.spool.result("a", timeout=10)
        self.assertEqual(ra["status"], "succeeded")
        self.assertLess(ts_ms(rb["finished_at"]), ts_ms(ra["attempts"][1]["started_at"]))
        self.assertGreaterEqual(ts_ms(ra["attempts"][1]["started_at"]), st["not_before_ms"])

    def test_retry_state_file_in_deferred(self):
        self.spool.submit({"id": "st", "retries": 1, "retry_backoff": 1,
                           "command": succeed_at(self.spool.tmp, "c", 2)})
        st = wait_deferred(self.spool, "st.json")
        self.assertIsInstance(st["not_before_ms"], int)
        r = self.spool.result("st", timeout=10)
        self.assertEqual(ts_ms(r["attempts"][0]["retry_at"]), st["not_before_ms"])
        self.assertEqual(listdir(self.spool, "deferred"), [], "state file removed too")


class ConfigDefaults(SpoolTest):
    CONFIG = "[retry]\nretries = 2\nbackoff = 0.2\nbackoff_max = 0.2\n"

    def test_retry_defaults_from_config(self):
        r = self.run_task({"id": "dflt", "command": counter_cmd(self.spool.tmp, "c", "exit 1")},
                          timeout=15)
        self.assertEqual(len(r["attempts"]), 3, "[retry] retries = 2")
        for a in r["attempts"][:-1]:
            gap = ts_ms(a["retry_at"]) - ts_ms(a["finished_at"])
            self.assertGreaterEqual(gap, 100 - 2)
            self.assertLessEqual(gap, 200 + SLACK_MS, "[retry] backoff_max = 0.2")

    def test_retry_task_overrides_config(self):
        r = self.run_task({"id": "own", "retries": 0,
                           "command": counter_cmd(self.spool.tmp, "c", "exit 1")})
        self.assertEqual(len(r["attempts"]), 1)
        self.assertEqual(count(self.spool.tmp, "c"), 1)


class BadRetryOn(SpoolTest):
    def assert_rejected(self, rid, task, *words):
        task = dict(task, id=rid)
        task.setdefault("command", ["true"])
        r = self.run_task(task)
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], "invalid_task")
        self.assertEqual(r["error"]["field"], "retry_on")
        self.assertIn("retry_on", r["error"]["message"])
        for w in words:
            self.assertIn(w, r["error"]["message"])
        self.assertEqual(r["attempts"], [])

    def test_retry_on_unknown_key_rejected(self):
        self.assert_rejected("unk", {"retries": 1, "retry_on": {"exit_code": [1]}}, "exit_code")

    def test_retry_on_bad_regex_rejected(self):
        self.assert_rejected("badre", {"retries": 1, "retry_on": {"output_patterns": ["(["]}},
                             "output_patterns")

    def test_retry_on_bad_types_rejected(self):
        self.assert_rejected("badcode", {"retry_on": {"exit_codes": [1, "2"]}}, "exit_codes")
        self.assert_rejected("badto", {"retry_on": {"timeout": "yes"}}, "timeout")
        self.assert_rejected("notobj", {"retry_on": ["timeout"]})

    def test_retry_bad_retries_rejected(self):
        r = self.run_task({"id": "neg", "retries": -1, "command": ["true"]})
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["field"], "retries")
