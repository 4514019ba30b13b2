"""Starting a task: what happens when it cannot be started."""
import os

from harness import SpoolTest


class SpawnErrors(SpoolTest):
    def test_missing_executable(self):
        r = self.run_task({"id": "nope", "command": ["spoolrun-no-such-program-xyz", "arg"]})
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "exec_failed")
        self.assertIn("spoolrun-no-such-program-xyz", r["error"]["message"])
        self.assertIsNone(r["exit_code"])
        self.assertIsNone(r["signal"])
        self.assertEqual(r["stdout"], "")

    def test_missing_absolute_path(self):
        r = self.run_task({"id": "nope-abs", "command": ["/nonexistent/dir/prog"]})
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "exec_failed")

    def test_not_executable(self):
        p = os.path.join(self.spool.tmp, "data.txt")
        with open(p, "w") as f:
            f.write("not a program\n")
        os.chmod(p, 0o644)
        r = self.run_task({"id": "noexec", "command": [p]})
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "exec_failed")
        self.assertIn("ermission", r["error"]["message"])

    def test_script_without_shebang_runs_with_sh(self):
        p = os.path.join(self.spool.tmp, "script")
        with open(p, "w") as f:
            f.write('echo "from script $1"\n')
        os.chmod(p, 0o755)
        r = self.run_task({"id": "noshebang", "command": [p, "arg1"]})
        self.assertEqual(r["status"], "succeeded", r["error"])
        self.assertEqual(r["stdout"], "from script arg1\n")

    def test_path_lookup_uses_task_path(self):
        d = os.path.join(self.spool.tmp, "bin")
        os.mkdir(d)
        with open(os.path.join(d, "mytool"), "w") as f:
            f.write("#!/bin/sh\necho mytool ran\n")
        os.chmod(os.path.join(d, "mytool"), 0o755)
        r = self.run_task({"id": "pathlookup", "command": ["mytool"],
                           "env": {"PATH": d + ":/usr/bin:/bin"}})
        self.assertEqual(r["status"], "succeeded", r["error"])
        self.assertEqual(r["stdout"], "mytool ran\n")

    def test_bad_cwd(self):
        missing = os.path.join(self.spool.tmp, "no-such-dir")
        r = self.run_task({"id": "badcwd", "cwd": missing, "command": ["true"]})
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "cwd_failed")
        self.assertIn(missing, r["error"]["message"])

    def test_cwd_is_a_file(self):
        f = os.path.join(self.spool.tmp, "plainfile")
        open(f, "w").close()
        r = self.run_task({"id": "cwdfile", "cwd": f, "command": ["true"]})
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "cwd_failed")

    def test_runner_keeps_going_after_errors(self):
        self.run_task({"id": "e1", "command": ["/nonexistent"]})
        r = self.run_task({"id": "e2", "command": ["echo", "fine"]})
        self.assertEqual(r["stdout"], "fine\n")
