"""With several slots, a process a task leaves behind is still charged to
that task and killed with it, never with a task running beside it: by its
cgroup where the runner can create one (cgroup v2), else by its session."""
import os
import time

from harness import SpoolTest, read_pid, wait_for
from hostile_util import pid_alive


def cgroup_of(pid):
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except FileNotFoundError:
        pass
    return None


def daemon_cmd(pidfile, setsid=True):
    """A task that leaves a daemon behind (double fork, optionally setsid) and exits."""
    inner = f"echo $$ > '{pidfile}'; exec sleep 60"
    start = f"setsid sh -c \"{inner}\"" if setsid else f"sh -c \"{inner}\""
    return ["/bin/sh", "-c", f"( {start} & ) ; sleep 0.3; exit 0"]


class OrphansWithSlots(SpoolTest):
    CONFIG = "[runner]\nslots = 3\n[task]\nkill_grace = 0.5\n"

    def check(self, setsid):
        pidfile = os.path.join(self.spool.tmp, "daemon.pid")
        beside_done = os.path.join(self.spool.tmp, "beside.done")
        self.spool.submit({"id": "beside", "command": [
            "/bin/sh", "-c", f"sleep 2; touch '{beside_done}'"]})
        self.spool.submit({"id": "leaver", "command": daemon_cmd(pidfile, setsid)})
        daemon = read_pid(pidfile)
        group = cgroup_of(daemon)
        r = self.spool.result("leaver")
        self.assertEqual(r["status"], "succeeded")
        self.assertTrue(any("left running" in w for w in r["warnings"]), r["warnings"])
        wait_for(lambda: not pid_alive(daemon), 5, what="the daemon to be killed with its task")
        b = self.spool.result("beside")
        self.assertEqual(b["status"], "succeeded", "the task beside it is not touched")
        self.assertTrue(os.path.exists(beside_done))
        return group

    def test_setsid_daemon_is_charged_to_its_own_task(self):
        group = self.check(setsid=True)
        with open("/proc/self/mountinfo") as f:
            has_cgroup2 = " - cgroup2 " in f.read()
        if has_cgroup2 and group is not None:
            # Where cgroup v2 is mounted and writable (root here), the daemon
            # ran in its task's own cgroup.
            self.assertRegex(group, rf"/spoolrun-{self.spool.proc.pid}/task-\d+$")

    def test_daemon_in_the_session_is_charged_to_its_own_task(self):
        self.check(setsid=False)


class SessionFallback(OrphansWithSlots):
    """The same without cgroups (SPOOLRUN_CGROUP=off): orphans are told apart
    by their session id."""

    def setUp(self):
        os.environ["SPOOLRUN_CGROUP"] = "off"
        self.addCleanup(os.environ.pop, "SPOOLRUN_CGROUP", None)
        super().setUp()

    def test_setsid_daemon_is_charged_to_its_own_task(self):
        group = self.check(setsid=True)
        self.assertNotRegex(group or "", r"/spoolrun-\d+/task-")
