"""The command line: exec, help, version, usage errors, config errors,
spool permission checks."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import BIN, SLOW, Spool, run_cli, run_exec


class Exec(unittest.TestCase):
    def test_exec_prints_result_and_exit_code(self):
        rc, r, err = run_exec({"id": "e1", "command": ["sh", "-c", "echo out; echo err >&2; exit 7"]})
        self.assertEqual(rc, 7, err)
        self.assertEqual(r["format"], 1)
        self.assertEqual(r["id"], "e1")
        self.assertEqual(r["status"], "failed")
        self.assertEqual(r["exit_code"], 7)
        self.assertEqual(r["stdout"], "out\n")
        self.assertEqual(r["stderr"], "err\n")
        self.assertIsNone(r["stdout_log"], "exec keeps no logs")

    def test_exec_success(self):
        rc, r, _ = run_exec({"command": ["true"]})
        self.assertEqual(rc, 0)
        self.assertEqual(r["status"], "succeeded")

    def test_exec_timeout_124(self):
        rc, r, _ = run_exec({"id": "slow", "timeout": 0.2, "kill_grace": 0.2, "command": ["sleep", "30"]})
        self.assertEqual(rc, 124)
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(r["error"]["code"], "timeout")

    def test_exec_missing_program_127(self):
        rc, r, _ = run_exec({"id": "missing", "command": ["spoolrun-no-such-program-xyz"]})
        self.assertEqual(rc, 127)
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["error"]["code"], "exec_failed")

    def test_exec_bad_cwd_126(self):
        rc, r, _ = run_exec({"id": "cwd", "cwd": "/nonexistent/dir", "command": ["true"]})
        self.assertEqual(rc, 126)
        self.assertEqual(r["error"]["code"], "cwd_failed")

    def test_exec_signal_128_plus_n(self):
        rc, r, _ = run_exec({"id": "sig", "command": ["sh", "-c", "kill -TERM $$"]})
        self.assertEqual(rc, 128 + 15)
        self.assertEqual(r["status"], "killed")

    def test_exec_rejected_65(self):
        rc, r, err = run_exec(None, input=b'{"id": "bad", "command": ')
        self.assertEqual(rc, 65)
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], "invalid_json")
        self.assertIn("line 1", err)

    def test_exec_invalid_task_65(self):
        rc, r, _ = run_exec({"id": "x", "command": ["true"], "bogus": 1})
        self.assertEqual(rc, 65)
        self.assertEqual(r["error"]["code"], "invalid_task")
        self.assertEqual(r["error"]["field"], "bogus")

    def test_exec_task_file_path(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "from-file.json")
            with open(p, "w") as f:
                json.dump({"command": ["echo", "file"]}, f)
            proc = subprocess.run([BIN, "exec", p], capture_output=True, timeout=10 * SLOW)
            self.assertEqual(proc.returncode, 0)
            r = json.loads(proc.stdout)
            self.assertEqual(r["id"], "from-file")
            self.assertEqual(r["stdout"], "file\n")

    def test_exec_unreadable_66(self):
        p = run_cli("exec", "/nonexistent/task.json")
        self.assertEqual(p.returncode, 66)
        self.assertEqual(p.stdout, "")
        self.assertIn("/nonexistent/task.json", p.stderr)


class Cli(unittest.TestCase):
    def test_version(self):
        for flag in ("--version", "-V"):
            p = run_cli(flag)
            self.assertEqual(p.returncode, 0)
            self.assertRegex(p.stdout, r"^spoolrun \d+\.\d+")
            self.assertEqual(p.stderr, "")

    def test_help(self):
        for args in (["--help"], ["-h"], ["watch", "--help"], ["exec", "--help"]):
            p = run_cli(*args)
            self.assertEqual(p.returncode, 0, args)
            self.assertIn("usage: spoolrun", p.stdout)
            self.assertIn("exec", p.stdout)

    def assert_usage_error(self, *args):
        p = run_cli(*args)
        self.assertEqual(p.returncode, 2, (args, p.stderr))
        self.assertEqual(p.stdout, "")
        lines = p.stderr.splitlines()
        self.assertEqual(len(lines), 1, f"one-line message, got {p.stderr!r}")
        self.assertTrue(lines[0].startswith("spoolrun: "), lines[0])
        return lines[0]

    def test_unknown_command(self):
        self.assertIn("frobnicate", self.assert_usage_error("frobnicate"))

    def test_no_command(self):
        self.assert_usage_error()

    def test_unknown_option(self):
        self.assertIn("--bogus", self.assert_usage_error("watch", "--bogus"))
        self.assertIn("--bogus", self.assert_usage_error("exec", "--bogus", "-"))

    def test_option_missing_value(self):
        self.assertIn("--config", self.assert_usage_error("watch", "--config"))

    def test_exec_needs_one_operand(self):
        self.assert_usage_error("exec")
        self.assert_usage_error("exec", "a.json", "b.json")

    def test_exec_takes_no_spool(self):
        self.assert_usage_error("exec", "--spool", "/tmp", "-")

    def test_watch_takes_no_operands(self):
        self.assertIn("extra", self.assert_usage_error("watch", "extra"))


class ConfigErrors(unittest.TestCase):
    def watch_with(self, config):
        s = Spool(config)
        self.addCleanup(s.cleanup)
        p = subprocess.run([BIN, "watch", *s.args()], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=10 * SLOW)
        return s, p

    def test_unknown_key(self):
        s, p = self.watch_with("[task]\ntimeout = 5\nflavour = vanilla\n")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(s.config, p.stderr)
        self.assertIn("[task]", p.stderr)
        self.assertIn("flavour", p.stderr)
        self.assertFalse(os.path.exists(s.root), "nothing created with a bad config")

    def test_bad_value(self):
        s, p = self.watch_with("[output]\nmax_output = lots\n")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(s.config, p.stderr)
        self.assertIn("[output]", p.stderr)
        self.assertIn("max_output", p.stderr)
        self.assertIn("lots", p.stderr)

    def test_bad_bool(self):
        s, p = self.watch_with("[spool]\nfsync = maybe\n")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("[spool]", p.stderr)
        self.assertIn("fsync", p.stderr)

    def test_bad_seconds(self):
        s, p = self.watch_with("[task]\nkill_grace = -1\n")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("kill_grace", p.stderr)

    def test_unknown_section(self):
        s, p = self.watch_with("[tasks]\ntimeout = 5\n")
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(s.config, p.stderr)
        self.assertIn("tasks", p.stderr)

    def test_missing_config_file(self):
        s = Spool()
        self.addCleanup(s.cleanup)
        missing = os.path.join(s.tmp, "nope.ini")
        p = run_cli("watch", "--spool", s.root, "--config", missing)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn(missing, p.stderr)

    def test_exec_bad_config_78(self):
        s = Spool("[log]\nlevel = loud\n")
        self.addCleanup(s.cleanup)
        p = run_cli("exec", "--config", s.config, "-", input='{"command": ["true"]}')
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("level", p.stderr)

    def test_config_from_environment(self):
        s = Spool("[task]\nbogus_key = 1\n")
        self.addCleanup(s.cleanup)
        env = dict(os.environ, SPOOLRUN_CONFIG=s.config)
        p = run_cli("watch", "--spool", s.root, env=env)
        self.assertEqual(p.returncode, 78, p.stderr)
        self.assertIn("bogus_key", p.stderr)


class Permissions(unittest.TestCase):
    def spool_777(self, config=None):
        s = Spool(config)
        self.addCleanup(s.cleanup)
        os.mkdir(s.root)
        os.chmod(s.root, 0o777)
        return s

    def test_world_writable_spool_refused(self):
        s = self.spool_777()
        p = subprocess.run([BIN, "watch", *s.args()], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=10 * SLOW)
        self.assertEqual(p.returncode, 74, p.stderr)
        self.assertIn(s.root, p.stderr)
        self.assertIn("writable", p.stderr)
        self.assertIn("check_permissions", p.stderr)

    def test_group_writable_subdir_refused(self):
        s = Spool()
        self.addCleanup(s.cleanup)
        os.makedirs(s.path("results"))
        os.chmod(s.path("results"), 0o775)
        p = subprocess.run([BIN, "watch", *s.args()], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=10 * SLOW)
        self.assertEqual(p.returncode, 74, p.stderr)
        self.assertIn("results", p.stderr)

    def test_check_permissions_no_allows_it(self):
        s = self.spool_777("[spool]\ncheck_permissions = no\nfsync = no\n")
        s.start()
        s.submit({"id": "lax", "command": ["echo", "ran"]})
        self.assertEqual(s.result("lax")["stdout"], "ran\n")
        self.assertEqual(s.stop(), 0)
