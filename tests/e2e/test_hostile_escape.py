"""Tasks that try to escape: daemons that outlive their main process,
silence, endless runs, and resource limits."""
import os
import shlex
import time

from harness import SLOW, wait_for
from hostile_util import HostileTest, pid_alive, read_pid


def sh(script):
    return ["/bin/sh", "-c", script]


class Daemons(HostileTest):
    CONFIG = "[task]\ntimeout = 30\nkill_grace = 1\n"

    def daemon_script(self, pidfile, then="echo started"):
        """Starts a setsid daemon that keeps stdout open and sleeps 60 s,
        waits until it has written its pid, then runs `then`."""
        q = shlex.quote(pidfile)
        return (f"setsid sh -c 'echo $$ > {q}; exec sleep 60' & "
                f"while [ ! -s {q} ]; do sleep 0.01; done; {then}")

    def test_hostile_escape_setsid_daemon_is_killed(self):
        pidfile = os.path.join(self.spool.tmp, "daemon.pid")
        t0 = time.monotonic()
        r = self.run_task({"id": "d", "command": sh(self.daemon_script(pidfile))}, timeout=5)
        self.assertLess(time.monotonic() - t0, 5 * SLOW, "published promptly")
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["stdout"], "started\n")
        self.assertTrue(any("left running" in w for w in r["warnings"]), r["warnings"])
        pid = read_pid(pidfile)
        wait_for(lambda: not pid_alive(pid), 2, what=f"daemon {pid} to be dead")

    def test_hostile_escape_double_fork_daemon_is_killed(self):
        pidfile = os.path.join(self.spool.tmp, "daemon.pid")
        code = (
            "import os, sys, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            f"        open({pidfile!r} + '.tmp', 'w').write(str(os.getpid()))\n"
            f"        os.rename({pidfile!r} + '.tmp', {pidfile!r})\n"
            "        time.sleep(60)\n"
            "    os._exit(0)\n"
            f"while not os.path.exists({pidfile!r}): time.sleep(0.01)\n"
            "print('parent done', flush=True)\n")
        t0 = time.monotonic()
        r = self.run_task({"id": "dd", "command": ["/usr/bin/python3", "-c", code]}, timeout=5)
        self.assertLess(time.monotonic() - t0, 5 * SLOW)
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["stdout"], "parent done\n")
        pid = read_pid(pidfile)
        wait_for(lambda: not pid_alive(pid), 2, what=f"daemon {pid} to be dead")

    def test_hostile_escape_daemon_of_timed_out_task_is_killed(self):
        pidfile = os.path.join(self.spool.tmp, "daemon.pid")
        t0 = time.monotonic()
        r = self.run_task({"id": "dt", "timeout": 0.5, "kill_grace": 1,
                           "command": sh(self.daemon_script(pidfile, "exec sleep 60"))}, timeout=6)
        self.assertLess(time.monotonic() - t0, 6 * SLOW)
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["error"]["code"], "timeout")
        pid = read_pid(pidfile)
        wait_for(lambda: not pid_alive(pid), 2, what=f"daemon {pid} to be dead")
        # The watcher is free for the next task.
        self.assertEqual(self.run_task({"id": "next", "command": ["true"]})["status"], "succeeded")

    def test_hostile_escape_timeout_daemon_gets_sigterm_first(self):
        """kill_grace is the time between SIGTERM and SIGKILL: a daemon of a
        timed-out task must get the SIGTERM too, and once it has exited on it
        the result must not wait out the rest of the grace period."""
        d = self.spool.tmp
        got, pidfile = os.path.join(d, "got"), os.path.join(d, "daemon.pid")
        daemon = (f"trap 'echo TERM >> {shlex.quote(got)}; exit 0' TERM; "
                  f"echo $$ > {shlex.quote(pidfile)}; while :; do sleep 0.05; done")
        # The main process cleans up for 0.2 s on SIGTERM, so its daemon is
        # orphaned (and inherited by the watcher) after the SIGTERM went out.
        script = (f"setsid sh -c {shlex.quote(daemon)} & "
                  f"while [ ! -s {shlex.quote(pidfile)} ]; do sleep 0.01; done; "
                  f"trap 'sleep 0.2; exit 1' TERM; while :; do sleep 0.05; done")
        t0 = time.monotonic()
        r = self.run_task({"id": "dterm", "timeout": 0.5, "kill_grace": 3, "command": sh(script)},
                          timeout=15)
        elapsed = time.monotonic() - t0
        self.assertEqual(r["status"], "timeout", r)
        pid = read_pid(pidfile)
        wait_for(lambda: not pid_alive(pid), 2, what=f"daemon {pid} to be dead")
        self.assertEqual(open(got).read() if os.path.exists(got) else "", "TERM\n",
                         "the daemon was SIGKILLed without ever getting SIGTERM")
        # Not scaled by SLOW: the margin to kill_grace (3 s) is the point.
        self.assertLess(elapsed, 2.5, "the result waited out kill_grace for nothing")


class Timeouts(HostileTest):
    CONFIG = "[task]\nkill_grace = 1\n"

    def test_hostile_escape_idle_timeout(self):
        r = self.run_task({"id": "idle", "idle_timeout": 0.5, "command": sh("echo a; sleep 30")})
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["error"]["code"], "idle_timeout")
        self.assertEqual(r["stdout"], "a\n")
        self.assertLess(r["duration_ms"], 5000)

    def test_hostile_escape_idle_timeout_reset_by_output(self):
        # Output every 0.1 s for ~1 s: never idle for 0.5 s.
        r = self.run_task({"id": "chatty", "idle_timeout": 0.5, "command": sh(
            "i=0; while [ $i -lt 10 ]; do echo $i; sleep 0.1; i=$((i+1)); done")})
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(len(r["stdout"].splitlines()), 10)

    def test_hostile_escape_wall_clock_timeout(self):
        r = self.run_task({"id": "wall", "timeout": 0.3, "command": ["sleep", "30"]})
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["error"]["code"], "timeout")
        self.assertEqual(r["signal"]["name"], "SIGTERM")
        self.assertLess(r["duration_ms"], 5000)

    def test_hostile_escape_timeout_escalates_to_sigkill(self):
        r = self.run_task({"id": "stubborn", "timeout": 0.3, "kill_grace": 0.3, "command": sh(
            "trap '' TERM; while :; do sleep 0.05; done")})
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["signal"]["name"], "SIGKILL")


class Limits(HostileTest):
    CONFIG = "[task]\ntimeout = 20\nkill_grace = 1\n"

    def test_hostile_escape_cpu_limit(self):
        r = self.run_task({"id": "cpu", "limits": {"cpu_seconds": 1},
                           "command": sh("while :; do :; done")}, timeout=15)
        self.assertEqual(r["status"], "killed", r)
        self.assertEqual(r["limit_exceeded"], "cpu_seconds")
        self.assertEqual(r["error"]["code"], "limit_exceeded")
        self.assertIn(r["signal"]["name"], ("SIGXCPU", "SIGKILL"))

    def test_hostile_escape_file_size_limit(self):
        out = os.path.join(self.spool.tmp, "big")
        r = self.run_task({"id": "fsz", "limits": {"file_size_mb": 1},
                           "command": ["dd", "if=/dev/zero", f"of={out}", "bs=1M", "count=5"]})
        self.assertEqual(r["status"], "killed", r)
        self.assertEqual(r["signal"]["name"], "SIGXFSZ")
        self.assertEqual(r["limit_exceeded"], "file_size_mb")
        self.assertLessEqual(os.path.getsize(out), 1 << 20)

    def test_hostile_escape_open_files_limit(self):
        r = self.run_task({"id": "nofile", "limits": {"open_files": 20}, "command": sh("ulimit -n")})
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["stdout"].strip(), "20")

    def test_hostile_escape_memory_limit(self):
        r = self.run_task({"id": "mem", "limits": {"memory_mb": 64}, "command": [
            "/usr/bin/python3", "-c", "b = bytearray(200 * 1024 * 1024); print('allocated')"]})
        self.assertNotEqual(r["exit_code"], 0, r)
        self.assertNotIn("allocated", r["stdout"])
        self.assertIn("MemoryError", r["stderr"])
        # Within the limit it works: the limit, not python, made it fail.
        r = self.run_task({"id": "mem-ok", "limits": {"memory_mb": 256}, "command": [
            "/usr/bin/python3", "-c", "b = bytearray(32 * 1024 * 1024); print('allocated')"]})
        self.assertEqual(r["status"], "succeeded", r)

    def test_hostile_escape_bad_limit_rejected(self):
        r = self.run_task({"id": "badlim", "limits": {"bogus": 1}, "command": ["true"]})
        self.assertEqual(r["status"], "rejected", r)
        self.assertEqual(r["error"]["code"], "invalid_task")
        self.assertEqual(r["error"]["field"], "limits")
        self.assertIn("limits", r["error"]["message"])
        self.assertIn("bogus", r["error"]["message"])
        r = self.run_task({"id": "neglim", "limits": {"open_files": -1}, "command": ["true"]})
        self.assertEqual(r["status"], "rejected", r)
        self.assertEqual(r["error"]["field"], "limits")


class ConfigLimits(HostileTest):
    CONFIG = "[limits]\nopen_files = 33\n"

    def test_hostile_escape_config_limit_default(self):
        r = self.run_task({"id": "dflt", "command": sh("ulimit -n")})
        self.assertEqual(r["stdout"].strip(), "33", "the [limits] default applies")
        r = self.run_task({"id": "own", "limits": {"open_files": 40}, "command": sh("ulimit -n")})
        self.assertEqual(r["stdout"].strip(), "40", "a task's own limit overrides the default")
        r = self.run_task({"id": "lifted", "limits": {"open_files": 0}, "command": sh("ulimit -n")})
        self.assertNotEqual(r["stdout"].strip(), "33", "0 lifts the default limit")
