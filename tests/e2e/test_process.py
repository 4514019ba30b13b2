"""Process control: timeouts, leftover descendants, stopping the watcher."""
import os
import signal
import subprocess
import time

from harness import BIN, SLOW, SpoolTest, pid_gone, read_pid, wait_for

LEFTOVER_WARNING = "processes left running after the main process exited were killed"


class Timeout(SpoolTest):
    def test_timeout_of_task_ignoring_sigterm(self):
        t0 = time.monotonic()
        r = self.run_task({"id": "stubborn", "timeout": 0.3, "kill_grace": 0.4,
                           "command": "trap '' TERM; echo started; sleep 30; echo never"})
        elapsed = time.monotonic() - t0
        self.assertEqual(r["status"], "timeout")
        self.assertIsNone(r["exit_code"])
        self.assertEqual(r["signal"], {"number": 9, "name": "SIGKILL"})
        self.assertEqual(r["error"]["code"], "timeout")
        self.assertEqual(r["stdout"], "started\n")
        # TERM at 0.3 s is ignored; KILL follows kill_grace later.
        self.assertGreaterEqual(r["duration_ms"], 650)
        self.assertLess(r["duration_ms"], 3000 * SLOW)
        self.assertLess(elapsed, 5 * SLOW, "the result must appear promptly")

    def test_timeout_of_task_obeying_sigterm(self):
        r = self.run_task({"id": "polite", "timeout": 0.2, "kill_grace": 20,
                           "command": ["sleep", "30"]})
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(r["signal"], {"number": 15, "name": "SIGTERM"})
        self.assertEqual(r["error"]["code"], "timeout")
        self.assertGreaterEqual(r["duration_ms"], 190)
        self.assertLess(r["duration_ms"], 5000 * SLOW, "SIGTERM first, not SIGKILL after the grace")

    def test_zero_timeout_means_none(self):
        r = self.run_task({"id": "notimeout", "timeout": 0, "command": ["sh", "-c", "sleep 0.3; echo ok"]})
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["stdout"], "ok\n")


class DefaultTimeout(SpoolTest):
    CONFIG = "[task]\ntimeout = 0.25\nkill_grace = 0.1\n"

    def test_default_timeout_from_config(self):
        # No timeout in the task: the [task] defaults apply.
        r = self.run_task({"id": "dflt", "command": "trap '' TERM; sleep 30"})
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(r["error"]["code"], "timeout")
        self.assertEqual(r["signal"]["name"], "SIGKILL")
        self.assertLess(r["duration_ms"], 3000 * SLOW)


class Leftovers(SpoolTest):
    def test_background_grandchild_is_killed_and_result_prompt(self):
        pidfile = os.path.join(self.spool.tmp, "gc.pid")
        t0 = time.monotonic()
        r = self.run_task({"id": "bg", "kill_grace": 10,
                           "command": f"sleep 30 & echo $! > '{pidfile}'; echo main done"})
        self.assertLess(time.monotonic() - t0, 5 * SLOW)
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["exit_code"], 0)
        self.assertEqual(r["stdout"], "main done\n")
        self.assertIn(LEFTOVER_WARNING, r["warnings"])
        gc = read_pid(pidfile)
        wait_for(lambda: pid_gone(gc), timeout=3, what=f"grandchild {gc} to be gone")

    def test_grandchild_ignoring_sigterm_is_killed_after_grace(self):
        pidfile = os.path.join(self.spool.tmp, "gc.pid")
        t0 = time.monotonic()
        r = self.run_task({"id": "bgstubborn", "kill_grace": 0.3,
                           "command": f"(trap '' TERM; exec sleep 30) & echo $! > '{pidfile}'"})
        self.assertLess(time.monotonic() - t0, 5 * SLOW)
        self.assertEqual(r["status"], "succeeded")
        self.assertIn(LEFTOVER_WARNING, r["warnings"])
        gc = read_pid(pidfile)
        wait_for(lambda: pid_gone(gc), timeout=3, what=f"grandchild {gc} to be gone")

    def test_setsid_grandchild_holding_stdout_does_not_hang(self):
        pidfile = os.path.join(self.spool.tmp, "daemon.pid")
        t0 = time.monotonic()
        r = self.run_task({"id": "daemon", "kill_grace": 0.5,
                           "command": f"setsid sh -c 'echo $$ > \"{pidfile}\"; echo daemon; exec sleep 30' & "
                                      f"while [ ! -s '{pidfile}' ]; do sleep 0.01; done; echo parent"},
                          timeout=8)
        self.assertLess(time.monotonic() - t0, 6 * SLOW, "the runner must not wait for the daemon")
        self.assertEqual(r["status"], "succeeded")
        self.assertIn("parent\n", r["stdout"])
        self.assertIn("daemon\n", r["stdout"])
        self.assertIn(LEFTOVER_WARNING, r["warnings"])
        d = read_pid(pidfile)
        wait_for(lambda: pid_gone(d), timeout=3, what=f"setsid grandchild {d} to be gone")
        # And the runner is still alive and serving.
        r2 = self.run_task({"id": "after", "command": ["echo", "next"]})
        self.assertEqual(r2["stdout"], "next\n")

    def test_double_fork_daemon_is_killed(self):
        pidfile = os.path.join(self.spool.tmp, "dd.pid")
        r = self.run_task({"id": "dfork", "kill_grace": 0.5,
                           "command": f"setsid sh -c '(sleep 30 >/dev/null 2>&1 </dev/null & echo $! > \"{pidfile}\")' ; "
                                      f"while [ ! -s '{pidfile}' ]; do sleep 0.01; done"},
                          timeout=8)
        self.assertEqual(r["status"], "succeeded")
        self.assertIn(LEFTOVER_WARNING, r["warnings"])
        d = read_pid(pidfile)
        wait_for(lambda: pid_gone(d), timeout=3, what=f"double-forked daemon {d} to be gone")

    def test_no_warning_without_leftovers(self):
        r = self.run_task({"id": "clean", "command": "sleep 0.01 & wait; echo ok"})
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["warnings"], [])


class Stop(SpoolTest):
    def test_sigterm_while_task_runs_requeues_it(self):
        pidfile = os.path.join(self.spool.tmp, "task.pid")
        marker = os.path.join(self.spool.tmp, "first-run")
        name = self.spool.submit({"id": "interrupted", "kill_grace": 2,
                                  "command": f"if [ -e '{marker}' ]; then echo second run; exit 0; fi; "
                                             f"touch '{marker}'; echo $$ > '{pidfile}'; sleep 30"})
        pid = read_pid(pidfile)
        self.assertTrue(os.path.exists(self.spool.path("active", name)))
        rc = self.spool.stop(signal.SIGTERM)
        self.assertEqual(rc, 0)
        self.assertTrue(os.path.exists(self.spool.path("incoming", name)), "task file back in incoming/")
        self.assertEqual(os.listdir(self.spool.path("active")), [])
        self.assertEqual(self.spool.results(), [], "an interrupted task publishes no result")
        wait_for(lambda: pid_gone(pid), timeout=3, what="the task to be gone")
        # It runs again at the next start, as a fresh run.
        self.spool.start()
        r = self.spool.result("interrupted")
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["stdout"], "second run\n")

    def test_sigint_idle_exits_zero(self):
        self.assertEqual(self.spool.stop(signal.SIGINT), 0)

    def test_second_watcher_exits_75(self):
        p = subprocess.run([BIN, "watch", *self.spool.args()], capture_output=True, text=True,
                           timeout=10 * SLOW)
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertIn("lock", p.stderr)
        # The first one is unaffected.
        self.assertIsNone(self.spool.proc.poll())
        r = self.run_task({"id": "still", "command": ["true"]})
        self.assertEqual(r["status"], "succeeded")
