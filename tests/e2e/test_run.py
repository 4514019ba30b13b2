"""Running tasks: exit codes, shell commands, env, cwd, stdin, result fields."""
import json
import os
import re
import socket

from harness import SpoolTest, environ, wait_for

PY = "/usr/bin/python3"
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Run(SpoolTest):
    def setUp(self):
        with environ({"SPOOLRUN_E2E_UNSET_ME": "present", "SPOOLRUN_E2E_INHERITED": "yes"}):
            super().setUp()

    def test_succeeding_task_fields(self):
        task = {"id": "ok-1", "command": ["echo", "hello"], "meta": {"k": [1, "x"]}, "format": 1}
        r = self.run_task(task)
        self.assertEqual(r["format"], 1)
        self.assertEqual(r["id"], "ok-1")
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["exit_code"], 0)
        self.assertIsNone(r["signal"])
        self.assertIsNone(r["error"])
        self.assertEqual(r["stdout"], "hello\n")
        self.assertEqual(r["stdout_bytes"], 6)
        self.assertEqual(r["stderr"], "")
        self.assertEqual(r["stderr_bytes"], 0)
        self.assertFalse(r["stdout_truncated"])
        self.assertFalse(r["stdout_invalid_utf8"])
        self.assertRegex(r["started_at"], RFC3339_MS)
        self.assertRegex(r["finished_at"], RFC3339_MS)
        self.assertLessEqual(r["started_at"], r["finished_at"])
        self.assertIsInstance(r["duration_ms"], int)
        self.assertGreaterEqual(r["duration_ms"], 0)
        self.assertIsInstance(r["pid"], int)
        self.assertEqual(r["attempt"], 1)
        self.assertEqual(r["task"], task)
        self.assertEqual(r["task"]["meta"], {"k": [1, "x"]})
        self.assertEqual(r["task_file"], "ok-1.json")
        self.assertIsInstance(r["task_file_stamp"], str)
        self.assertEqual(r["warnings"], [])
        self.assertEqual(set(r["rusage"]), {"user_ms", "system_ms", "max_rss_kib"})
        self.assertEqual(r["runner"]["pid"], self.spool.proc.pid)
        self.assertEqual(r["runner"]["host"], socket.gethostname())
        self.assertIsInstance(r["runner"]["version"], str)
        self.assertEqual(r["stdout_log"], self.spool.path("logs", "ok-1.stdout"))
        # Nothing was written to stderr: no empty log file is made for it.
        self.assertIsNone(r["stderr_log"])
        self.assertFalse(os.path.exists(self.spool.path("logs", "ok-1.stderr")))
        self.assertTrue(os.path.isabs(r["stdout_log"]))
        with open(r["stdout_log"], "rb") as f:
            self.assertEqual(f.read(), b"hello\n")
        # The task file is consumed: not left in incoming/ or active/.
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])
        wait_for(lambda: os.listdir(self.spool.path("active")) == [], timeout=5,
                 what="the task file to leave active/")

    def test_failing_task_keeps_exit_code(self):
        r = self.run_task({"id": "fail", "command": ["sh", "-c", "echo oops >&2; exit 3"]})
        self.assertEqual(r["status"], "failed")
        self.assertEqual(r["exit_code"], 3)
        self.assertIsNone(r["signal"])
        self.assertEqual(r["stderr"], "oops\n")

    def test_killed_by_signal(self):
        r = self.run_task({"id": "sig", "command": ["sh", "-c", "kill -USR1 $$"]})
        self.assertEqual(r["status"], "killed")
        self.assertIsNone(r["exit_code"])
        self.assertEqual(r["signal"], {"number": 10, "name": "SIGUSR1"})

    def test_string_command_runs_through_shell(self):
        r = self.run_task({"id": "shell", "command": "echo a | tr a b; echo $((6*7)) >&2"})
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["stdout"], "b\n")
        self.assertEqual(r["stderr"], "42\n")

    def test_id_from_file_name(self):
        r = self.run_task({"command": ["true"]}, name="named-by-file.json")
        self.assertEqual(r["id"], "named-by-file")
        self.assertEqual(r["status"], "succeeded")

    def test_env_set_and_unset(self):
        # The watcher was started with SPOOLRUN_E2E_INHERITED and
        # SPOOLRUN_E2E_UNSET_ME in its environment (see setUp).
        r = self.run_task({"id": "env",
                           "env": {"SPOOLRUN_T1": "v a=l", "SPOOLRUN_E2E_UNSET_ME": None,
                                   "SPOOLRUN_E2E_NEVER_SET": None},
                           "command": [PY, "-c",
                                       "import os, json; print(json.dumps({k: os.environ.get(k) for k in "
                                       "['SPOOLRUN_T1', 'SPOOLRUN_E2E_UNSET_ME', 'SPOOLRUN_E2E_INHERITED', "
                                       "'SPOOLRUN_E2E_NEVER_SET']}))"]})
        self.assertEqual(r["status"], "succeeded", r)
        got = json.loads(r["stdout"])
        self.assertEqual(got["SPOOLRUN_T1"], "v a=l")
        self.assertIsNone(got["SPOOLRUN_E2E_UNSET_ME"])
        self.assertIsNone(got["SPOOLRUN_E2E_NEVER_SET"])
        self.assertEqual(got["SPOOLRUN_E2E_INHERITED"], "yes", "untouched variables are inherited")

    def test_cwd(self):
        d = os.path.join(self.spool.tmp, "work dir")
        os.mkdir(d)
        r = self.run_task({"id": "cwd", "cwd": d, "command": ["pwd"]})
        self.assertEqual(r["stdout"], d + "\n")

    def test_stdin(self):
        r = self.run_task({"id": "stdin", "stdin": "line1\nline2\n", "command": ["tac"]})
        self.assertEqual(r["stdout"], "line2\nline1\n")

    def test_no_stdin_reads_eof(self):
        r = self.run_task({"id": "nostdin", "command": ["wc", "-c"], "timeout": 5})
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["stdout"].strip(), "0")

    def test_meta_echoed_back(self):
        meta = {"owner": "ci", "n": 3, "nested": {"list": [None, True, 1.5]}}
        r = self.run_task({"id": "meta", "command": ["true"], "meta": meta})
        self.assertEqual(r["task"]["meta"], meta)


class BigStdin(SpoolTest):
    CONFIG = "[spool]\nmax_task_bytes = 4M\n"

    def test_large_stdin_does_not_deadlock(self):
        # 1 MiB of stdin, far more than a pipe buffer, while the task also
        # writes: the runner must feed and drain at the same time.
        data = "0123456789abcde\n" * 65536
        r = self.run_task({"id": "bigin", "stdin": data, "timeout": 20,
                           "command": "tee /dev/stderr | wc -c"}, timeout=20)
        self.assertEqual(r["status"], "succeeded", r["error"])
        self.assertEqual(r["stdout"].strip(), str(len(data)))
        self.assertEqual(r["stderr_bytes"], len(data))

    def test_task_closing_stdin_early(self):
        data = "x" * (1 << 20)
        r = self.run_task({"id": "closein", "stdin": data, "timeout": 10,
                           "command": ["head", "-c", "10"]})
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["stdout"], "x" * 10)
        self.assertTrue(any("stdin" in w for w in r["warnings"]), r["warnings"])


class StaleLogs(SpoolTest):
    CONFIG = "[retry]\nbackoff = 0\n"

    def test_retry_that_writes_nothing_leaves_no_old_log(self):
        """A quiet attempt after a noisy one must not leave the noisy log
        behind, as if it were its own."""
        flag = os.path.join(self.spool.tmp, "second")
        r = self.run_task({"id": "quiet-retry", "retries": 1, "command": [
            "sh", "-c", f"if [ -e {flag} ]; then exit 0; fi; touch {flag}; echo noisy; exit 1"]})
        self.assertEqual((r["status"], r["attempt"]), ("succeeded", 2))
        self.assertIsNone(r["stdout_log"])
        self.assertFalse(os.path.exists(self.spool.path("logs", "quiet-retry.stdout")))
