"""spoolrun clean and [spool] keep_results: each option, results removed with
their logs and rejected originals, never anything queued, running or
deferred; `wait` for a cleaned id says so instead of hanging."""
import json
import os
import time

from harness import SLOW, Spool, SpoolTest, read_pid, run_cli


class Clean(SpoolTest):
    def setUp(self):
        super().setUp()
        s = self.spool
        self.run_task({"id": "cl-ok", "command": ["echo", "out"]})
        self.run_task({"id": "cl-fail", "command": ["sh", "-c", "echo err >&2; exit 4"]})
        s.submit(b"{broken", name="cl-bad.json")
        s.result("cl-bad")
        s.wait(lambda: os.path.exists(s.path("rejected", "cl-bad.json")), what="the rejected copy")
        # Deferred (a retry an hour away), running, and queued behind it.
        s.submit({"id": "cl-def", "retries": 1, "retry_backoff": 3600, "command": ["false"]})
        s.wait(lambda: [n for n in os.listdir(s.path("deferred")) if not n.startswith(".")],
               what="the deferred task")
        pidfile = os.path.join(s.tmp, "run.pid")
        s.submit({"id": "cl-run", "command": f"echo running; echo $$ > '{pidfile}'; exec sleep 60"})
        read_pid(pidfile)
        s.wait(lambda: os.path.exists(s.path("logs", "cl-run.stdout")), what="cl-run's log")
        s.submit({"id": "cl-queued", "command": ["true"]})

    def clean(self, *args):
        p = run_cli("clean", *self.spool.args(), *args)
        return p

    def untouched(self):
        s = self.spool
        self.assertTrue(os.path.exists(s.path("active", "cl-run.json")))
        self.assertTrue(os.path.exists(s.path("incoming", "cl-queued.json")))
        self.assertTrue([n for n in os.listdir(s.path("deferred")) if n.startswith("cl-def")])
        self.assertTrue(os.path.exists(s.path("logs", "cl-run.stdout")))

    def test_dry_run_json_lists_and_removes_nothing(self):
        p = self.clean("--dry-run", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(p.stdout)
        self.assertEqual(doc["dry_run"], True)
        self.assertEqual(doc["older_than_s"], 0)
        self.assertEqual(sorted(r["id"] for r in doc["removed"]), ["cl-bad", "cl-fail", "cl-ok"])
        ok = [r for r in doc["removed"] if r["id"] == "cl-ok"][0]
        self.assertEqual(ok["status"], "succeeded")
        self.assertEqual(ok["files"], [self.spool.path("logs", "cl-ok.stdout").replace(self.spool.root, os.path.realpath(self.spool.root)),
                                       ok["result_file"]])
        self.assertEqual(sorted(self.spool.results()), ["cl-bad.json", "cl-fail.json", "cl-ok.json"])
        self.untouched()

    def test_status_filter_then_all(self):
        p = self.clean("--status", "failed", "--status", "rejected")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 2, p.stdout)
        self.assertIn("removed cl-fail (failed, finished ", p.stdout)
        self.assertEqual(self.spool.results(), ["cl-ok.json"])
        self.assertFalse(os.path.exists(self.spool.path("logs", "cl-fail.stderr")))
        self.assertFalse(os.path.exists(self.spool.path("rejected", "cl-bad.json")))
        self.assertTrue(os.path.exists(self.spool.path("logs", "cl-ok.stdout")))
        p = self.clean()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.spool.results(), [])
        self.assertFalse(os.path.exists(self.spool.path("logs", "cl-ok.stdout")))
        self.untouched()
        # Nothing more to do: said, exit 0.
        p = self.clean()
        self.assertEqual((p.returncode, p.stdout), (0, ""))
        self.assertIn("no result finished more than 0s ago", p.stderr)

    def test_older_than_keeps_recent_results(self):
        p = self.clean("--older-than", "1h")
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        self.assertEqual(len(self.spool.results()), 3)
        time.sleep(1.1)  # results must be older than 1 s: the clock has to move
        p = self.clean("--older-than", "1s", "--status", "succeeded")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(self.spool.results()), ["cl-bad.json", "cl-fail.json"])
        self.untouched()

    def test_bad_options_name_the_option(self):
        for args, word in ((["--older-than", "5x"], "--older-than"), (["--older-than", "-1d"], "--older-than"),
                           (["--status", "bogus"], "--status"), (["--older-than"], "needs a value"),
                           (["extra"], "operands")):
            p = self.clean(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(word, p.stderr, args)
        self.assertEqual(len(self.spool.results()), 3)

    def test_wait_for_a_cleaned_id_says_so(self):
        self.assertEqual(self.clean("--status", "succeeded").returncode, 0)
        t0 = time.monotonic()
        p = run_cli("wait", *self.spool.args(), "cl-ok", timeout=20)
        self.assertLess(time.monotonic() - t0, 10 * SLOW)
        self.assertEqual(p.returncode, 66, p.stderr)
        self.assertIn("cl-ok: its result was removed by spoolrun clean at ", p.stderr)
        # Others are still waited for and printed as usual.
        p = run_cli("wait", *self.spool.args(), "cl-fail", "cl-ok")
        self.assertEqual(p.returncode, 4)
        self.assertEqual(json.loads(p.stdout)["id"], "cl-fail")
        # A new task of that id gets its result, and wait returns it.
        self.spool.submit({"id": "cl-ok", "command": ["echo", "again"]}, name="cl-ok-2.json")
        os.kill(read_pid(os.path.join(self.spool.tmp, "run.pid")), 9)  # let the queue move
        self.spool.result("cl-ok")
        p = run_cli("wait", *self.spool.args(), "cl-ok")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["stdout"], "again\n")


class KeepResults(SpoolTest):
    CONFIG = "[spool]\nkeep_results = 1s\n"

    def test_watcher_cleans_at_start(self):
        self.run_task({"id": "kr-1", "command": ["echo", "x"]})
        self.assertTrue(os.path.exists(self.spool.path("logs", "kr-1.stdout")))
        self.assertEqual(self.spool.stop(), 0)
        time.sleep(1.1)  # older than keep_results
        self.spool.start()
        # The log line follows the removal: wait for it, then look at the files.
        self.spool.wait(lambda: "keep_results: removed 1 result(s)" in self.spool.log(),
                        what="keep_results to remove kr-1")
        self.assertEqual(self.spool.results(), [])
        self.assertFalse(os.path.exists(self.spool.path("logs", "kr-1.stdout")))
        # A fresh result survives (the next clean is an hour away).
        self.run_task({"id": "kr-2", "command": ["true"]})
        self.assertEqual(self.spool.results(), ["kr-2.json"])


class KeepResultsConfig(SpoolTest):
    START = False

    def test_bad_duration_names_the_key(self):
        sp = Spool("[spool]\nkeep_results = 7 days\n")
        self.addCleanup(sp.cleanup)
        p = run_cli("watch", *sp.args())
        self.assertEqual(p.returncode, 78)
        self.assertIn("[spool] keep_results: expected a duration", p.stderr)
