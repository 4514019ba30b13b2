"""Usage limits (a tool saying when its quota lifts) and deferred tasks
across a restart of the watcher."""
import math
import os
import time

from harness import SpoolTest, read_pid
from retry_util import count, counter_cmd, deferred_tasks, now_ms, succeed_at, ts_ms, wait_deferred


def future_epoch(ahead=2):
    """A Unix time (s) at least `ahead` seconds from now."""
    return math.ceil(time.time()) + ahead


def limit_line(epoch):
    return f"echo 'Claude AI usage limit reached|{epoch}'"


class UsageLimit(SpoolTest):
    def test_retry_usage_limit_defers_until_epoch_and_holds_key(self):
        tmp = self.spool.tmp
        epoch = future_epoch()
        # a: run 1 hits the limit; later runs fail normally.
        self.spool.submit({"id": "a", "retries": 1, "retry_backoff": 0.2, "limit_key": "claude",
                           "command": counter_cmd(tmp, "ca", f"[ $n -eq 1 ] && {limit_line(epoch)}; exit 1")})
        st = wait_deferred(self.spool, "a.json")
        self.assertEqual(st["not_before_ms"], epoch * 1000)
        self.assertLess(now_ms(), epoch * 1000, "too slow to test the deferral")
        # Meanwhile: b shares the key and must wait; c is unrelated and runs.
        self.spool.submit({"id": "b", "limit_key": "claude",
                           "command": counter_cmd(tmp, "cb", "echo b ran")})
        rc = self.run_task({"id": "c", "command": ["echo", "c"]})
        self.assertEqual(rc["status"], "succeeded")
        self.assertLess(ts_ms(rc["finished_at"]), epoch * 1000, "an unrelated task runs at once")
        self.assertEqual(count(tmp, "cb"), 0, "b shares a's limit_key: it must not run before the epoch")
        self.assertFalse(os.path.exists(self.spool.result_path("b")))
        self.assertEqual(count(tmp, "ca"), 1)

        rb = self.spool.result("b", timeout=10)
        self.assertEqual(rb["status"], "succeeded")
        self.assertEqual(count(tmp, "cb"), 1)
        self.assertEqual(len(rb["attempts"]), 1, "b's wait was not a run")
        self.assertGreaterEqual(ts_ms(rb["attempts"][0]["started_at"]), epoch * 1000)

        ra = self.spool.result("a", timeout=10)
        att = ra["attempts"]
        # The usage limit spent no retry: retries = 1 still allows a normal retry.
        self.assertEqual(len(att), 3, att)
        self.assertEqual(count(tmp, "ca"), 3)
        self.assertIn("usage limit", att[0]["retry_reason"])
        self.assertEqual(ts_ms(att[0]["retry_at"]), epoch * 1000)
        self.assertGreaterEqual(ts_ms(att[1]["started_at"]), epoch * 1000)
        self.assertIsNotNone(att[1]["retry_reason"])
        self.assertNotIn("usage limit", att[1]["retry_reason"])
        self.assertIsNone(att[2]["retry_reason"])
        self.assertEqual(ra["status"], "failed")
        self.assertEqual(ra["attempt"], 3)

    def test_retry_usage_limit_with_limit_key_and_no_retries(self):
        epoch = future_epoch(1)
        r = self.run_task({"id": "k", "limit_key": "api",
                           "command": counter_cmd(self.spool.tmp, "c",
                                                  f"[ $n -eq 1 ] && {limit_line(epoch)} >&2 && exit 1; echo ok")},
                          timeout=10)
        self.assertEqual(r["status"], "succeeded", "a usage limit does not spend a retry")
        self.assertEqual(len(r["attempts"]), 2)
        self.assertIn("usage limit", r["attempts"][0]["retry_reason"])
        self.assertGreaterEqual(ts_ms(r["attempts"][1]["started_at"]), epoch * 1000)

    def test_retry_usage_limit_ignored_without_retries_or_key(self):
        epoch = future_epoch(100)
        r = self.run_task({"id": "plain",
                           "command": counter_cmd(self.spool.tmp, "c", f"{limit_line(epoch)}; exit 1")})
        self.assertEqual(r["status"], "failed")
        self.assertEqual(len(r["attempts"]), 1)
        self.assertEqual(deferred_tasks(self.spool), [])

    def test_retry_usage_limit_in_the_past_is_an_ordinary_failure(self):
        epoch = int(time.time()) - 100
        r = self.run_task({"id": "past", "retries": 1, "retry_backoff": 0.2,
                           "command": counter_cmd(self.spool.tmp, "c", f"{limit_line(epoch)}; exit 1")},
                          timeout=10)
        self.assertEqual(len(r["attempts"]), 2, "one ordinary retry, then final")
        self.assertNotIn("usage limit", r["attempts"][0]["retry_reason"])
        self.assertLess(ts_ms(r["attempts"][0]["retry_at"]) - ts_ms(r["attempts"][0]["finished_at"]), 1000)


class CustomPattern(SpoolTest):
    CONFIG = "[retry]\nusage_limit_pattern = quota exhausted until ([0-9]+)\n"

    def test_retry_usage_limit_pattern_from_config(self):
        epoch = future_epoch(1)
        r = self.run_task({"id": "q", "retries": 1, "retry_backoff": 0.2,
                           "command": counter_cmd(self.spool.tmp, "c",
                                                  f"[ $n -eq 1 ] && echo 'quota exhausted until {epoch}' && exit 1; exit 0")},
                          timeout=10)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(len(r["attempts"]), 2)
        self.assertIn("usage limit", r["attempts"][0]["retry_reason"])
        self.assertGreaterEqual(ts_ms(r["attempts"][1]["started_at"]), epoch * 1000)


class Restart(SpoolTest):
    def test_retry_deferred_task_survives_restart(self):
        tmp = self.spool.tmp
        self.spool.submit({"id": "r", "retries": 1, "retry_backoff": 2.4,
                           "command": succeed_at(tmp, "c", 2)})
        st = wait_deferred(self.spool, "r.json")
        nb = st["not_before_ms"]
        self.assertEqual(self.spool.stop(), 0)
        self.assertEqual(deferred_tasks(self.spool), ["r.json"])
        self.spool.start()
        self.assertLess(now_ms(), nb, "restarted after the retry was due: test inconclusive")
        r = self.spool.result("r", timeout=10)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(count(tmp, "c"), 2)
        self.assertEqual(len(r["attempts"]), 2)
        self.assertEqual(ts_ms(r["attempts"][0]["retry_at"]), nb)
        self.assertGreaterEqual(ts_ms(r["attempts"][1]["started_at"]), nb,
                                "the restarted watcher must keep the retry's time")
        self.assertEqual(deferred_tasks(self.spool), [])

    def test_retry_history_kept_when_stopped_during_a_retry(self):
        tmp = self.spool.tmp
        pidfile = os.path.join(tmp, "run2.pid")
        # Run 1 fails, run 2 blocks until the watcher is stopped, run 3 succeeds.
        self.spool.submit({"id": "h", "retries": 2, "retry_backoff": 0.2, "kill_grace": 2,
                           "command": counter_cmd(tmp, "c", f"[ $n -eq 1 ] && exit 1; "
                                                            f"[ $n -eq 2 ] && echo $$ > '{pidfile}' && exec sleep 30; exit 0")})
        read_pid(pidfile, what="the second run")
        self.assertEqual(self.spool.stop(), 0)
        self.assertEqual(deferred_tasks(self.spool), ["h.json"], "put back with its history")
        self.spool.start()
        r = self.spool.result("h", timeout=10)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(count(tmp, "c"), 3)
        att = r["attempts"]
        self.assertEqual(att[0]["status"], "failed")
        self.assertIsNotNone(att[0]["retry_reason"])
        self.assertEqual(att[-1]["status"], "succeeded")
        self.assertEqual([a["attempt"] for a in att], list(range(1, len(att) + 1)))
        self.assertEqual(r["attempt"], len(att))

    def test_retry_usage_limit_survives_restart(self):
        tmp = self.spool.tmp
        epoch = future_epoch()
        self.spool.submit({"id": "a", "limit_key": "claude",
                           "command": counter_cmd(tmp, "ca", f"[ $n -eq 1 ] && {limit_line(epoch)} && exit 1; exit 0")})
        wait_deferred(self.spool, "a.json")
        self.assertEqual(self.spool.stop(), 0)
        self.spool.start()
        # The key's block is restored with the deferred task: b waits too.
        self.spool.submit({"id": "b", "limit_key": "claude", "command": counter_cmd(tmp, "cb", "true")})
        self.assertLess(now_ms(), epoch * 1000, "too slow to test the deferral")
        rb = self.spool.result("b", timeout=10)
        ra = self.spool.result("a", timeout=10)
        self.assertGreaterEqual(ts_ms(rb["attempts"][0]["started_at"]), epoch * 1000)
        self.assertGreaterEqual(ts_ms(ra["attempts"][1]["started_at"]), epoch * 1000)
        self.assertEqual(ra["status"], "succeeded")
        self.assertEqual((count(tmp, "ca"), count(tmp, "cb")), (2, 1))
