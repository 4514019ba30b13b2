"""What a new user runs into (issue 11, and issue 10 point 9 for the
clients): submit's id rules and --wait, --cwd, read-only commands that
create nothing, cancel and tail that say what they did, errors that name
the option, a readable status, and clients that never block on a FIFO."""
import json
import os
import pty
import re
import select
import stat
import subprocess
import tempfile
import time
import unittest

from harness import BIN, REPO, SLOW, Spool, SpoolTest, run_cli, wait_for


class CliTest(SpoolTest):
    def cli(self, *args, input=None, timeout=30, cwd=None, env=None):
        return subprocess.run([BIN, args[0], "--spool", self.spool.root, *args[1:]], input=input,
                              capture_output=True, text=True, timeout=timeout * SLOW, cwd=cwd,
                              env=env)

    def gate(self, name="gate"):
        """A command that runs until self.open_gate(name) is called."""
        path = os.path.join(self.spool.tmp, name)
        return path, ["sh", "-c", f"while [ ! -e {path} ]; do sleep 0.01; done"]

    def running(self, rid):
        wait_for(lambda: os.path.exists(self.spool.path("active", rid + ".json")),
                 what=f"{rid} to start")


class SubmitIds(CliTest):
    """Point 1: an id is used once; --wait returns only its own result."""

    def test_submit_refuses_an_id_that_is_running(self):
        gate, cmd = self.gate()
        self.assertEqual(self.cli("submit", "--id", "dupr", "--", *cmd).returncode, 0)
        self.running("dupr")
        p = self.cli("submit", "--id", "dupr", "--wait", "--", "echo", "SECOND")
        self.assertEqual(p.returncode, 73, p.stdout + p.stderr)
        self.assertIn("already running", p.stderr)
        self.assertEqual(p.stdout, "", "no result may be printed for a refused submit")
        open(gate, "w").close()
        self.assertEqual(self.spool.result("dupr")["status"], "succeeded")
        self.assertEqual(self.spool.results(), ["dupr.json"], "nothing rejected as dupr@2")

    def test_submit_refuses_an_id_queued_under_another_file_name(self):
        self.spool.stop()
        self.spool.submit({"id": "inside", "command": ["true"]}, name="other-name.json")
        p = self.cli("submit", "--id", "inside", "--", "true")
        self.assertEqual(p.returncode, 73)
        self.assertIn("already queued", p.stderr)
        self.assertIn("other-name.json", p.stderr)

    def test_submit_refuses_an_id_that_is_deferred(self):
        p = self.cli("submit", "-", input=json.dumps(
            {"id": "later", "command": ["false"], "retries": 2, "retry_backoff": 600}))
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: [n for n in os.listdir(self.spool.path("deferred")) if n[0] != "."],
                 what="the task to be deferred")
        p = self.cli("submit", "--id", "later", "--", "true")
        self.assertEqual(p.returncode, 73)
        self.assertIn("already deferred", p.stderr)

    def test_python_client_refuses_a_taken_id_the_same_way(self):
        gate, cmd = self.gate()
        self.cli("submit", "--id", "pyd", "--", *cmd)
        self.running("pyd")
        p = py_client("run", "--spool", self.spool.root, "--id", "pyd", "--", "echo", "x")
        self.assertEqual(p.returncode, 73, p.stderr)
        self.assertIn("already running", p.stderr)
        open(gate, "w").close()


class Defaults(unittest.TestCase):
    def test_plain_make_builds_the_program(self):
        """Point 2: the default goal is the program, not the library."""
        p = subprocess.run(["make", "-n", "-B", "-C", REPO], capture_output=True, text=True,
                           timeout=60 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"-o build/spoolrun ")
        p = subprocess.run(["make", "-n", "-p", "-C", REPO], capture_output=True, text=True,
                           timeout=60 * SLOW)
        self.assertIn(".DEFAULT_GOAL := all", p.stdout)


class SubmitCwd(CliTest):
    """Point 3: --cwd is the caller's; without it a command runs where submit ran."""

    def test_relative_cwd_is_the_callers(self):
        d = os.path.join(self.spool.tmp, "uxd")
        os.mkdir(d)
        os.mkdir(os.path.join(d, "sub"))
        p = self.cli("submit", "--cwd", "sub", "--wait", "--", "pwd", cwd=d)
        self.assertEqual(json.loads(p.stdout)["stdout"], os.path.join(d, "sub") + "\n", p.stderr)
        p = self.cli("submit", "--cwd", ".", "--wait", "--", "pwd", cwd=d)
        self.assertEqual(json.loads(p.stdout)["stdout"], d + "\n")

    def test_without_cwd_a_command_runs_where_submit_ran(self):
        d = os.path.join(self.spool.tmp, "here")
        os.mkdir(d)
        p = self.cli("submit", "--wait", "--", "pwd", cwd=d)
        r = json.loads(p.stdout)
        self.assertEqual((r["stdout"], r["task"]["cwd"]), (d + "\n", d))


class ReadOnlyCommands(unittest.TestCase):
    """Point 4: status, wait, tail, cancel (and submit) never create a spool."""

    def test_missing_spool_is_an_error_and_nothing_is_created(self):
        with tempfile.TemporaryDirectory() as t:
            missing = os.path.join(t, "typo", "path")
            for args in (["status"], ["wait", "--timeout", "0", "x"], ["tail", "x"],
                         ["cancel", "x"], ["submit", "--", "true"], ["clean", "--dry-run"]):
                p = run_cli(args[0], "--spool", missing, *args[1:])
                self.assertEqual(p.returncode, 66, (args, p.stderr))
                self.assertIn(missing, p.stderr)
            self.assertEqual(os.listdir(t), [])

    def test_half_a_spool_is_not_completed(self):
        with tempfile.TemporaryDirectory() as t:
            os.chmod(t, 0o755)
            os.mkdir(os.path.join(t, "incoming"))
            p = run_cli("status", "--spool", t)
            self.assertEqual(p.returncode, 66)
            self.assertEqual(os.listdir(t), ["incoming"])

    def test_a_spool_refused_for_permissions_is_left_as_found(self):
        with tempfile.TemporaryDirectory() as t:
            os.chmod(t, 0o755)
            os.mkdir(os.path.join(t, "tmp"))
            os.chmod(os.path.join(t, "tmp"), 0o1777)
            p = subprocess.run([BIN, "watch", "--spool", t], capture_output=True, text=True,
                               timeout=30 * SLOW)
            self.assertEqual(p.returncode, 74, p.stderr)
            self.assertIn("is writable by", p.stderr)
            self.assertEqual(os.listdir(t), ["tmp"], "nothing created before the refusal")


class OptionValues(CliTest):
    """Points 5 and 7: a value is never "--"; errors name the option."""

    def test_the_separator_is_never_a_value(self):
        p = self.cli("submit", "--id", "--", "true")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--id needs a value", p.stderr)
        self.assertFalse(os.path.exists(self.spool.path("results", "--.json")))
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])

    def test_ids_never_start_with_a_dash(self):
        p = self.cli("submit", "--id", "-x", "--", "true")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--id", p.stderr)
        self.spool.submit({"id": "-x", "command": ["true"]}, name="dash.json")
        r = self.spool.result("dash")
        self.assertEqual((r["status"], r["error"]["field"]), ("rejected", "id"))
        self.assertEqual(self.cli("wait", "--timeout", "0", "--", "-x").returncode, 2)

    def test_every_bad_value_names_its_option(self):
        cases = [(["submit", "--timeout", "-1"], "--timeout: '-1'"),
                 (["submit", "--priority", "abc"], "--priority: 'abc'"),
                 (["submit", "--env", "FOO"], "--env: 'FOO'"),
                 (["status", "-n", "many"], "--last: 'many'"),
                 (["wait", "--timeout", "soon"], "--timeout: 'soon'")]
        for args, want in cases:
            p = self.cli(*args, "--", "true") if args[0] == "submit" else self.cli(*args, "x")
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(want, p.stderr, args)

    def test_errors_name_only_what_the_user_named(self):
        p = self.cli("submit", "--output", "xml", "--", "true")
        self.assertEqual(p.returncode, 65)
        self.assertIn("--output", p.stderr)
        self.assertNotRegex(p.stderr, r"\d{8}T\d{6}", "a generated file name in the message")
        bad = os.path.join(self.spool.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"command": ["true"], "timout": 1}')
        p = run_cli("validate", bad)
        self.assertEqual(p.returncode, 65)
        self.assertEqual(p.stderr.count("bad.json"), 1, p.stderr)
        self.assertIn('"timout"', p.stderr)


class CancelSays(CliTest):
    """Point 6: cancel says what it did and leaves nothing behind."""

    def requests(self):
        return os.listdir(self.spool.path("cancel"))

    def test_unknown_id(self):
        p = self.cli("cancel", "nobody")
        self.assertEqual(p.returncode, 66)
        self.assertIn("no such task nobody", p.stderr)
        self.assertEqual(self.requests(), [])

    def test_finished_id(self):
        self.cli("submit", "--id", "done", "--wait", "--", "sh", "-c", "exit 3")
        p = self.cli("cancel", "done")
        self.assertEqual(p.returncode, 0)
        self.assertIn("already finished (failed)", p.stdout)
        self.assertEqual(self.requests(), [])
        # ... so a later task reusing the id (once its result is moved away) runs.
        os.rename(self.spool.result_path("done"), os.path.join(self.spool.tmp, "done.json"))
        self.assertEqual(self.cli("submit", "--id", "done", "--wait", "--", "true").returncode, 0)

    def test_queued_and_running(self):
        gate, cmd = self.gate()
        self.cli("submit", "--id", "first", "--", *cmd)
        self.running("first")
        self.cli("submit", "--id", "second", "--", "true")
        p = self.cli("cancel", "second")
        self.assertEqual(p.returncode, 0)
        self.assertIn("second: cancelled (queued)", p.stdout)
        p = self.cli("cancel", "--wait", "first")
        self.assertEqual(p.returncode, 125)
        self.assertIn("first: cancelling (running)", p.stderr)
        self.assertEqual(json.loads(p.stdout)["status"], "cancelled")
        self.assertEqual(self.spool.result("second")["status"], "cancelled")

    def test_ahead_only_with_the_flag(self):
        p = self.cli("cancel", "--ahead", "future")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("not submitted yet", p.stdout)
        self.spool.submit({"id": "future", "command": ["true"]})
        self.assertEqual(self.spool.result("future")["status"], "cancelled")


class TailSays(CliTest):
    """Point 8: silent task vs no such task; -f on an unknown id fails at once."""

    def test_silent_task_unknown_task_and_follow(self):
        self.cli("submit", "--id", "quiet", "--wait", "--", "true")
        p = self.cli("tail", "quiet")
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        p = self.cli("tail", "ghost")
        self.assertEqual(p.returncode, 66)
        self.assertIn("no such task ghost", p.stderr)
        t0 = time.monotonic()
        p = self.cli("tail", "-f", "ghost", timeout=10)
        self.assertEqual(p.returncode, 66)
        self.assertLess(time.monotonic() - t0, 5 * SLOW)

    def test_output_from_the_result_when_logs_are_gone(self):
        self.cli("submit", "--id", "said", "--wait", "--", "echo", "kept")
        for n in os.listdir(self.spool.path("logs")):
            os.unlink(self.spool.path("logs", n))
        p = self.cli("tail", "said")
        self.assertEqual((p.returncode, p.stdout), (0, "kept\n"))


class NoWatcher(CliTest):
    """Point 9: --wait without a watcher says so; stdout is the result alone."""
    START = False

    def test_submit_wait_says_no_watcher_and_pipes_cleanly(self):
        os.makedirs(self.spool.root)
        os.chmod(self.spool.tmp, 0o755)
        self.spool.start()
        self.spool.stop()
        proc = subprocess.Popen([BIN, "submit", "--spool", self.spool.root, "--wait", "--",
                                 "echo", "hi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        self.addCleanup(proc.kill)
        err = ""
        deadline = time.monotonic() + 15 * SLOW
        while "no watcher" not in err and time.monotonic() < deadline:
            r, _, _ = select.select([proc.stderr], [], [], 1)
            if r:
                err += os.read(proc.stderr.fileno(), 4096).decode()
        self.assertIn("no watcher is running", err)
        self.assertIsNone(proc.poll(), "it keeps waiting")
        self.spool.start()
        out, _ = proc.communicate(timeout=20 * SLOW)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(json.loads(out)["stdout"], "hi\n")  # one JSON document: jq reads it


class ConfigErrors(unittest.TestCase):
    """Point 10: $SPOOLRUN_CONFIG named; duplicate keys refused naming both lines."""

    def test_missing_config_from_the_environment_names_the_variable(self):
        env = dict(os.environ, SPOOLRUN_CONFIG="/nonexistent/spoolrun.ini")
        for args in (["status"], ["watch"], ["validate", "/dev/null"]):
            p = run_cli(*args, env=env)
            self.assertEqual(p.returncode, 78, args)
            self.assertIn("$SPOOLRUN_CONFIG", p.stderr, args)

    def test_a_key_set_twice_is_refused(self):
        with tempfile.TemporaryDirectory() as t:
            ini = os.path.join(t, "x.ini")
            with open(ini, "w") as f:
                f.write("[task]\ntimeout = 5\n; note\n[Task]\nTIMEOUT = 6\n")
            p = run_cli("validate", "--config", ini, "/dev/null")
            self.assertEqual(p.returncode, 78)
            self.assertIn("lines 2 and 5", p.stderr)
            self.assertIn("timeout", p.stderr.lower())

    def test_level_and_on_stop_ignore_case_as_documented(self):
        with tempfile.TemporaryDirectory() as t:
            ini = os.path.join(t, "x.ini")
            with open(ini, "w") as f:
                f.write("[log]\nlevel = WARN\n[task]\non_stop = Finish\n")
            f = os.path.join(t, "ok.json")
            with open(f, "w") as fh:
                fh.write('{"command": "true"}')
            self.assertEqual(run_cli("validate", "--config", ini, f).returncode, 0)
        with open(os.path.join(REPO, "docs", "config.md")) as fh:
            self.assertIn("case-insensitive", fh.read())


class NotFoundNotRetried(SpoolTest):
    """Point 11: a program that does not exist can never succeed."""

    def test_missing_program_is_not_retried(self):
        r = self.run_task({"id": "nf", "command": ["spoolrun-no-such-program"], "retries": 3,
                           "retry_backoff": 0.01})
        self.assertEqual((r["status"], r["error"]["code"], len(r["attempts"])),
                         ("error", "exec_failed", 1))


class StatusTable(CliTest):
    """Point 12: a table a person can read."""

    def table(self, *args, env=None):
        p = self.cli("status", *args, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_columns_labels_cancel_and_finished_views(self):
        gate, cmd = self.gate()
        self.cli("submit", "-", input=json.dumps({"id": "lab", "command": cmd,
                                                  "meta": {"label": "nightly build"}}))
        self.running("lab")
        self.cli("submit", "--id", "waits", "--", "true")
        self.cli("cancel", "waits")
        text = self.table()
        head = text.splitlines()[1].split()
        self.assertEqual(head, ["ID", "STATE", "EXIT", "TIME", "WHEN", "LABEL", "COMMAND"])
        self.assertIn("nightly build", text)
        self.assertRegex(text, r"lab +running")
        lines = text.splitlines()[1:]
        col = lines[0].index("STATE")
        self.assertTrue(all(line[col - 2:col] == "  " for line in lines if line.strip()), text)
        open(gate, "w").close()
        self.spool.result("lab")
        self.spool.result("waits")
        for i in range(3):
            self.cli("submit", "--id", f"f{i}", "--wait", "--", "sh", "-c", f"exit {i}")
        text = self.table("-n", "2")
        self.assertIn("2 of 5 finished shown", text)
        self.assertRegex(text, r"f2 +failed +2 ")
        self.assertNotIn("f0 ", text)
        text = self.table("--failed", "--all")
        self.assertNotIn("f0 ", text)
        self.assertIn("f1 ", text)
        self.assertRegex(text, r"just now|\d+ s ago")
        st = json.loads(self.cli("status", "--json", "--all").stdout)
        self.assertEqual(len(st["recent"]), 5)
        self.assertEqual({r["id"]: r["exit_code"] for r in st["recent"]}["f2"], 2)
        self.assertEqual({r["id"]: r["label"] for r in st["recent"]}["lab"], "nightly build")

    def test_interrupted_not_pid_0(self):
        self.spool.stop()
        os.rename(self._plant(), self.spool.path("active", "left.json"))
        text = self.table()
        self.assertIn("interrupted", text)
        self.assertIn("watcher not running", text)
        self.assertNotIn("pid 0", text)
        st = json.loads(self.cli("status", "--json").stdout)
        self.assertEqual((st["running"][0]["state"], st["running"][0]["pid"]), ("interrupted", None))

    def _plant(self):
        p = self.spool.stage("left.json")
        with open(p, "w") as f:
            json.dump({"id": "left", "command": ["true"]}, f)
        return p

    def test_colour_only_on_a_terminal_and_never_with_no_color(self):
        self.cli("submit", "--id", "ok", "--wait", "--", "true")
        self.assertNotIn("\033[", self.table())
        def on_tty(extra):
            env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
            env.update(extra, TERM="xterm")
            pid, fd = pty.fork()
            if pid == 0:
                os.execve(BIN, [BIN, "status", "--spool", self.spool.root], env)
            out = b""
            while True:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            os.waitpid(pid, 0)
            os.close(fd)
            return out.decode()
        self.assertIn("\033[32m", on_tty({}))
        self.assertNotIn("\033[", on_tty({"NO_COLOR": "1"}))


class NeverBlock(CliTest):
    """Issue 10 point 9: a FIFO, a link or garbage where a result or log
    should be is reported, naming the file, at once."""

    def plant_fifo(self, *parts):
        os.mkfifo(self.spool.path(*parts))

    def test_wait_on_a_fifo_symlink_or_garbage_result(self):
        self.plant_fifo("results", "fifo.json")
        os.symlink("/etc/passwd", self.spool.path("results", "link.json"))
        with open(self.spool.path("results", "junk.json"), "w") as f:
            f.write("{not json")
        self.foreign_results |= {"fifo.json", "link.json", "junk.json"}
        for rid, why in (("fifo", "FIFO"), ("link", "symbolic link"), ("junk", "bad JSON")):
            p = self.cli("wait", rid, timeout=10)
            self.assertEqual(p.returncode, 74, (rid, p.stderr))
            self.assertIn(f"{rid}.json", p.stderr)
            self.assertIn(why, p.stderr)

    def test_tail_and_status_on_fifos(self):
        self.cli("submit", "--id", "t", "--wait", "--", "echo", "x")
        os.unlink(self.spool.path("logs", "t.stdout"))
        self.plant_fifo("logs", "t.stdout")
        p = self.cli("tail", "t", timeout=10)
        self.assertEqual(p.returncode, 74)
        self.assertIn("t.stdout", p.stderr)
        p = self.cli("tail", "-f", "t", timeout=10)
        self.assertEqual(p.returncode, 74)
        self.plant_fifo("results", "zz.json")
        self.foreign_results.add("zz.json")
        p = self.cli("status", timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertIn("t ", p.stdout)


def py_client(*args, env=None, input=None):
    return subprocess.run(["python3", os.path.join(REPO, "scripts", "spoolrun_client.py"), *args],
                          capture_output=True, text=True, timeout=60 * SLOW, env=env, input=input)


class PythonClient(CliTest):
    """Point 14: the Python client matches the CLI."""

    def test_same_id_format_as_the_cli(self):
        cli_id = self.cli("submit", "--", "true").stdout.strip()
        p = py_client("submit", "--spool", self.spool.root, "-", input='{"command": ["true"]}')
        self.assertEqual(p.returncode, 0, p.stderr)
        shape = r"^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}$"
        self.assertRegex(cli_id, shape)
        self.assertRegex(p.stdout.strip(), shape)

    def test_unknown_field_refused_before_writing(self):
        p = py_client("submit", "--spool", self.spool.root, "-",
                      input='{"command": ["true"], "timout": 5}')
        self.assertEqual(p.returncode, 65, p.stderr)
        self.assertIn("timout", p.stderr)
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])
        self.assertEqual(self.spool.results(), [])

    def test_spoolrun_config_and_results_dir_honoured(self):
        results = os.path.join(self.spool.tmp, "elsewhere")
        ini = os.path.join(self.spool.tmp, "c.ini")
        with open(ini, "w") as f:
            f.write(f"[spool]\nroot = {self.spool.root}\nresults_dir = {results}\n")
        self.spool.stop()
        self.spool.config = ini
        self.spool.start()
        env = dict(os.environ, SPOOLRUN_CONFIG=ini)
        p = py_client("run", "--id", "viaconf", "--", "echo", "conf", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["stdout"], "conf\n")
        self.assertTrue(os.path.exists(os.path.join(results, "viaconf.json")))
        p = py_client("run", "--id", "viaconf", "--", "true", env=env)
        self.assertEqual(p.returncode, 73)
        self.assertIn("already", p.stderr)


class RoughEdges(CliTest):
    """Beyond the issue's list: what a pueue or task-spooler user tries next."""

    def test_cancel_several_ids_at_once(self):
        self.spool.stop()
        for rid in ("a1", "a2"):
            self.cli("submit", "--id", rid, "--", "true")
        p = self.cli("cancel", "a1", "a2", "zz")
        self.assertEqual(p.returncode, 66)
        self.assertIn("a1: cancelled (queued)", p.stdout)
        self.assertIn("a2: cancelled (queued)", p.stdout)
        self.assertIn("no such task zz", p.stderr)
        self.spool.start()
        self.assertEqual(self.spool.result("a2")["status"], "cancelled")
        p = self.cli("cancel", "--wait", "a1", "a2")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(len(p.stdout.splitlines()), 2, "both results printed")

    def test_a_mistyped_command_gets_a_suggestion(self):
        p = run_cli("stat")
        self.assertEqual(p.returncode, 2)
        self.assertIn("did you mean 'status'", p.stderr)

    def test_submit_without_the_separator_says_how(self):
        p = self.cli("submit", "echo")
        self.assertEqual(p.returncode, 66)
        self.assertIn("put it after --", p.stderr)
        p = self.cli("submit", "echo", "hi")
        self.assertEqual(p.returncode, 2)
        self.assertIn("put it after --", p.stderr)

    def test_wait_on_an_unknown_id_says_so_and_keeps_waiting(self):
        p = self.cli("wait", "--timeout", "0.2", "not-yet")
        self.assertEqual(p.returncode, 69)
        self.assertIn("no task not-yet", p.stderr)
        self.assertIn("waiting for it to be submitted", p.stderr)

    def test_status_shows_the_signal_that_killed_a_task(self):
        self.cli("submit", "--id", "shot", "--wait", "--", "sh", "-c", "kill -KILL $$")
        self.assertRegex(self.cli("status").stdout, r"shot +killed +SIGKILL ")

    def test_tail_last_lines(self):
        self.cli("submit", "--id", "ten", "--wait", "--", "seq", "1", "10")
        self.assertEqual(self.cli("tail", "-n", "3", "ten").stdout, "8\n9\n10\n")
        self.assertEqual(self.cli("tail", "--lines", "0", "ten").stdout, "")
        self.assertEqual(self.cli("tail", "-n", "99", "ten").stdout.count("\n"), 10)
        p = self.cli("tail", "-n", "-1", "ten")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--lines: '-1'", p.stderr)

    def test_status_of_some_ids(self):
        for rid in ("s1", "s2"):
            self.cli("submit", "--id", rid, "--wait", "--", "true")
        p = self.cli("status", "s2")
        self.assertEqual(p.returncode, 0)
        self.assertIn("s2 ", p.stdout)
        self.assertNotIn("s1 ", p.stdout)
        p = self.cli("status", "s1", "ghost")
        self.assertEqual(p.returncode, 66)
        self.assertIn("no such task ghost", p.stderr)

    def test_a_cleaned_id_submitted_again_is_waited_for(self):
        self.cli("submit", "--id", "again", "--wait", "--", "echo", "one")
        self.assertEqual(self.cli("clean").returncode, 0, "clean removes every result")
        p = self.cli("wait", "again", timeout=20)
        self.assertEqual(p.returncode, 66)
        p = self.cli("submit", "--id", "again", "--wait", "--", "echo", "two", timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["stdout"], "two\n")

    def test_python_wait_on_a_cleaned_result_says_so(self):
        self.cli("submit", "--id", "gone", "--wait", "--", "true")
        self.cli("clean")
        p = py_client("wait", "--spool", self.spool.root, "--wait-timeout", "20", "gone")
        self.assertEqual(p.returncode, 66, p.stderr)
        self.assertIn("removed by spoolrun clean", p.stderr)

    def test_ctrl_c_stops_the_wait_not_the_task(self):
        gate, cmd = self.gate()
        proc = subprocess.Popen([BIN, "submit", "--spool", self.spool.root, "--id", "bg",
                                 "--wait", "--", *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        self.running("bg")
        proc.send_signal(2)
        out, err = proc.communicate(timeout=20 * SLOW)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("stopped waiting; bg goes on", err)
        self.assertTrue(os.path.exists(self.spool.path("active", "bg.json")), "the task runs on")
        open(gate, "w").close()
        self.assertEqual(self.spool.result("bg")["status"], "succeeded")
