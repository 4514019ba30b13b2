"""Signals to the watcher (stop, finish, reload) and the signal state a task
starts with."""
import json
import os
import shlex
import signal
import unittest

from harness import wait_for
from hostile_util import HostileTest, listdir, pid_alive, read_pid


def sh(script):
    return ["/bin/sh", "-c", script]


class StopSignals(HostileTest):
    CONFIG = "[task]\nkill_grace = 2\n"

    def gated_task(self, tid):
        """A task that records its pid, then waits for a gate file."""
        pidfile = os.path.join(self.spool.tmp, tid + ".pid")
        gate = os.path.join(self.spool.tmp, tid + ".gate")
        name = self.spool.submit({"id": tid, "command": sh(
            f"echo $$ > {shlex.quote(pidfile)}; "
            f"while [ ! -e {shlex.quote(gate)} ]; do sleep 0.01; done; echo done")})
        pid = read_pid(pidfile)
        return name, pid, gate

    def test_hostile_signals_sigterm_requeues_running_task(self):
        name, pid, _ = self.gated_task("t")
        self.assertTrue(pid_alive(pid))
        self.assertEqual(self.spool.stop(signal.SIGTERM), 0)
        self.assertEqual(listdir(self.spool.path("incoming")), [name], "the task goes back to incoming/")
        self.assertEqual(listdir(self.spool.path("active")), [])
        self.assertEqual(self.spool.results(), [], "an interrupted task has no result")
        self.assertFalse(pid_alive(pid), "the task's process must not outlive the watcher")
        self.assertIn("put back in incoming", self.spool.log())

    def test_hostile_signals_sigint_requeues_too(self):
        name, pid, _ = self.gated_task("t")
        self.assertEqual(self.spool.stop(signal.SIGINT), 0)
        self.assertEqual(listdir(self.spool.path("incoming")), [name])
        self.assertEqual(self.spool.results(), [])
        self.assertFalse(pid_alive(pid))


class FinishOnStop(HostileTest):
    CONFIG = "[task]\non_stop = finish\nkill_grace = 2\n"

    gated_task = StopSignals.gated_task

    def test_hostile_signals_on_stop_finish_lets_task_end(self):
        name, pid, gate = self.gated_task("t")
        other = self.spool.submit({"id": "next", "command": ["true"]})
        self.spool.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "letting the running task finish" in self.spool.log(),
                 what="the watcher to acknowledge the stop")
        self.assertIsNone(self.spool.proc.poll(), "it must wait for the task")
        self.assertTrue(pid_alive(pid), "the task must not be killed")
        open(gate, "w").close()
        r = self.spool.result("t")
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["stdout"], "done\n")
        self.assertEqual(self.spool.proc.wait(10), 0)
        self.assertEqual(listdir(self.spool.path("incoming")), [other], "no new task after a stop")
        self.assertEqual(self.spool.results(), ["t.json"])
        self.assertEqual(listdir(self.spool.path("active")), [])

    def test_hostile_signals_on_stop_finish_second_sigterm_interrupts(self):
        # A second task waits in incoming/ and must stay there.
        name, pid, _ = self.gated_task("t")
        other = self.spool.submit({"id": "next", "command": ["true"]})
        self.spool.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "letting the running task finish" in self.spool.log(),
                 what="the watcher to acknowledge the first stop")
        self.assertEqual(self.spool.stop(signal.SIGTERM), 0)
        self.assertEqual(listdir(self.spool.path("incoming")), sorted([name, other]))
        self.assertEqual(listdir(self.spool.path("active")), [])
        self.assertEqual(self.spool.results(), [])
        self.assertFalse(pid_alive(pid))


class Reload(HostileTest):
    CONFIG = "[task]\ntimeout = 60\n"

    def rewrite(self, text):
        tmp = self.spool.config + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.spool.config)

    def test_hostile_signals_sighup_applies_new_config(self):
        r = self.run_task({"id": "before", "command": ["true"]})
        self.assertEqual(r["status"], "succeeded")
        self.rewrite("[task]\ntimeout = 0.3\nkill_grace = 0.5\n")
        self.spool.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: reloaded" in self.spool.log(), what="the reload")
        r = self.run_task({"id": "slow", "command": ["sleep", "5"]})
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["error"]["code"], "timeout")
        self.assertLess(r["duration_ms"], 3000)
        self.assertIsNone(self.spool.proc.poll())

    def test_hostile_signals_sighup_bad_config_keeps_old(self):
        self.rewrite("[task]\ntimeout = 0.3\nkill_grace = 0.5\n")
        self.spool.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP: reloaded" in self.spool.log(), what="the first reload")
        self.rewrite("[task]\ntimeout = banana\n")
        self.spool.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the running config" in self.spool.log(),
                 what="the bad config to be refused")
        self.assertIn("timeout", self.spool.log().split("keeping the running config", 1)[1])
        self.assertIsNone(self.spool.proc.poll(), "a bad config must not stop the watcher")
        r = self.run_task({"id": "slow", "command": ["sleep", "5"]})
        self.assertEqual(r["status"], "timeout", "the previous config (timeout 0.3) still applies")
        self.assertEqual(r["error"]["code"], "timeout")


class TaskSignalState(HostileTest):
    CONFIG = "[task]\ntimeout = 20\n"

    def test_hostile_signals_task_has_no_ignored_or_blocked_signals(self):
        r = self.run_task({"id": "sigs", "command": ["grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status"]})
        self.assertEqual(r["status"], "succeeded", r)
        got = dict(line.split(":\t") for line in r["stdout"].splitlines())
        self.assertEqual(set(got), {"SigIgn", "SigBlk"}, r["stdout"])
        for k, v in got.items():
            self.assertEqual(int(v, 16), 0, f"{k} must be empty for a task, got {v}")

    def test_hostile_signals_task_gets_default_sigpipe(self):
        # With SIGPIPE ignored, `yes` would see EPIPE and complain on stderr.
        r = self.run_task({"id": "pipe", "command": sh("yes | head -1")})
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["stdout"], "y\n")
        self.assertEqual(r["stderr"], "")
        self.assertLess(r["duration_ms"], 5000)
        # The writer itself dies of SIGPIPE (128 + 13), as in a terminal.
        r = self.run_task({"id": "pipe2", "command": [
            "bash", "-c", 'yes | head -1 >/dev/null; echo "${PIPESTATUS[0]}"']})
        self.assertEqual(r["stdout"], "141\n", r)
        self.assertEqual(r["stderr"], "")


class InheritedIgnores(unittest.TestCase):
    @unittest.skipUnless(os.uname().machine == "x86_64", "uses x86_64's rt_sigaction number")
    def test_signals_ignored_by_the_runners_parent_are_reset(self):
        """nohup (SIGHUP) or a parent ignoring glibc's reserved signal 32
        must not leave those ignored in tasks: exec keeps SIG_IGN."""
        import ctypes
        import subprocess

        from harness import BIN, SLOW

        class KernelSigaction(ctypes.Structure):
            _fields_ = [("handler", ctypes.c_void_p), ("flags", ctypes.c_ulong),
                        ("restorer", ctypes.c_void_p), ("mask", ctypes.c_uint64)]

        def ignore_some():
            libc = ctypes.CDLL(None, use_errno=True)
            ign = KernelSigaction(1, 0, None, 0)  # SIG_IGN
            for sig in (1, 32):  # SIGHUP, and one glibc's sigaction() refuses
                libc.syscall(13, sig, ctypes.byref(ign), None, 8)  # rt_sigaction

        task = {"command": ["grep", "SigIgn", "/proc/self/status"]}
        p = subprocess.run([BIN, "exec", "-"], input=json.dumps(task).encode(),
                           capture_output=True, preexec_fn=ignore_some, timeout=30 * SLOW)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["stdout"].split()[1], "0" * 16)
