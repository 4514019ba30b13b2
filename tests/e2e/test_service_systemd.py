"""systemd integration on the real binary: READY=1 and STATUS= reach a
notify socket (path and abstract), NOTIFY_SOCKET is hidden from tasks, log
lines carry <N> priorities when stderr is the journal stream. (The
installed unit is verified in test_install.py.)"""
import os
import socket
import unittest

from harness import REPO, SLOW, Spool, SpoolTest
from service_util import start_with_env


class Notify(SpoolTest):
    START = False

    def listen(self, abstract):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        if abstract:
            name = f"spoolrun-e2e-notify-{os.getpid()}-{id(self)}"
            s.bind("\0" + name)
            addr = "@" + name
        else:
            addr = os.path.join(self.spool.tmp, "notify.sock")
            s.bind(addr)
        s.settimeout(10 * SLOW)
        return s, addr

    def messages_until(self, s, want):
        got = []
        while not any(want in m for m in got):
            got.append(s.recv(4096).decode())
        return got

    def check(self, abstract):
        s, addr = self.listen(abstract)
        start_with_env(self.spool, {"NOTIFY_SOCKET": addr})
        msgs = self.messages_until(s, "READY=1")
        ready = [m for m in msgs if "READY=1" in m][0]
        # One datagram: READY=1 and the counts together.
        self.assertRegex(ready, r"^READY=1\nSTATUS=0 queued, 0 running, 0 deferred; 0 result\(s\) published$")
        # Tasks never see the socket.
        r = self.run_task({"id": "nt-1", "command": ["sh", "-c", "echo \"[${NOTIFY_SOCKET-unset}]\""]})
        self.assertEqual(r["stdout"], "[unset]\n")
        self.messages_until(s, "1 result(s) published")
        self.assertEqual(self.spool.stop(), 0)
        self.messages_until(s, "STOPPING=1")

    def test_ready_reaches_a_path_socket(self):
        self.check(abstract=False)

    def test_ready_reaches_an_abstract_socket(self):
        self.check(abstract=True)

    def test_no_socket_no_noise(self):
        start_with_env(self.spool, {"NOTIFY_SOCKET": None})
        self.run_task({"id": "nn-1", "command": ["true"]})
        self.assertNotIn("NOTIFY_SOCKET", self.spool.log())


class JournalPriorities(unittest.TestCase):
    def run_watcher(self, journal_stream):
        sp = Spool("[hooks]\non_result = exit 4\n")
        self.addCleanup(sp.cleanup)
        open(sp.stderr_path, "ab").close()
        st = os.stat(sp.stderr_path)
        value = f"{st.st_dev}:{st.st_ino}" if journal_stream == "match" else "1:2"
        start_with_env(sp, {"JOURNAL_STREAM": value})
        sp.submit({"id": "jp-1", "command": ["true"]})
        sp.result("jp-1")
        sp.wait(lambda: "on_result hook failed" in sp.log(), what="the hook warning")
        self.assertEqual(sp.stop(), 0)
        return sp.log().splitlines()

    def test_priority_prefixes_when_stderr_is_the_journal(self):
        lines = self.run_watcher("match")
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>spoolrun\[(error|warn|info|debug)\]: ")
        self.assertTrue([l for l in lines if l.startswith("<6>spoolrun[info]: ") and "watching" in l])
        self.assertTrue([l for l in lines if l.startswith("<4>spoolrun[warn]: jp-1: on_result hook failed")])

    def test_no_prefixes_when_journal_stream_is_another_file(self):
        lines = self.run_watcher("other")
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT[\d:.]+Z spoolrun\[")


class UnitFile(unittest.TestCase):
    def test_unit_is_what_the_issue_asks(self):
        with open(os.path.join(REPO, "scripts", "spoolrun.service")) as f:
            unit = f.read()
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=mixed",
                     "User=spoolrun", "ExecStart=/usr/local/bin/spoolrun watch --config /etc/spoolrun/spoolrun.ini"):
            self.assertIn("\n" + line + "\n", unit)
