"""The lifecycle in scripts/spoolrun_client.py (docs/lifecycle.md): the
fields checked before writing, resubmit, pause/resume, wait_all, and the
exit status of a skipped result."""
import os
import subprocess

from harness import REPO, SLOW, SpoolTest, wait_for
from test_client import client

PY = "/usr/bin/python3"
CLIENT_PATH = os.path.join(REPO, "scripts", "spoolrun_client.py")


class ClientLifecycle(SpoolTest):
    def sp(self):
        return {"spool": self.spool.root}

    def test_fields_checked_before_writing(self):
        bad = [{"after": []}, {"after": ["a", "a"]}, {"after": ["bad id"]},
               {"after_policy": "always"}, {"not_before": "tomorrow"}, {"not_before": -1},
               {"label": ""}, {"label": "x" * 129}, {"label": "a\nb"}, {"timeout": "soon"},
               {"history_key": ""}]
        for extra in bad:
            with self.assertRaises(client.InvalidTask, msg=extra) as cm:
                client.submit(dict({"command": ["true"]}, **extra), **self.sp())
            self.assertIn(next(iter(extra)), str(cm.exception))
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])

    def test_dependencies_resubmit_and_skipped_exit(self):
        client.submit({"id": "a", "command": ["sh", "-c", "exit 2"]}, **self.sp())
        client.submit({"id": "b", "command": ["true"], "after": ["a"], "label": "L",
                       "not_before": client.not_before(0)}, **self.sp())
        b = client.wait("b", timeout=10 * SLOW, **self.sp())
        self.assertEqual((b["status"], b["error"]["code"], b["label"]),
                         ("skipped", "dependency_failed", "L"))
        self.assertEqual(client.exit_code(b), 122)
        new = client.resubmit("a", **self.sp())
        self.assertEqual(new, "a.r2")
        self.assertEqual(client.wait(new, timeout=10 * SLOW, **self.sp())["status"], "failed")
        self.assertEqual(client.resubmit("a", **self.sp()), "a.r3")
        with self.assertRaises(client.SpoolError):
            client.resubmit("a", new_id="a.r2", **self.sp())
        with self.assertRaises(client.SpoolError):
            client.resubmit("missing", **self.sp())
        p = subprocess.run([PY, CLIENT_PATH, "resubmit", "--spool", self.spool.root, "b",
                            "--id", "b2"], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout), (0, "b2\n"), p.stderr)

    def test_pause_resume_wait_all(self):
        client.pause(**self.sp())
        self.assertTrue(os.path.exists(self.spool.path("pause")))
        for i in range(3):
            client.submit({"id": f"p{i}", "command": ["true"]}, **self.sp())
        with self.assertRaises(client.SpoolTimeout):
            client.wait_all(timeout=0.2, **self.sp())
        client.resume(**self.sp())
        results = client.wait_all(timeout=20 * SLOW, **self.sp())
        self.assertEqual(sorted(r["id"] for r in results), ["p0", "p1", "p2"])
        self.assertEqual(client.wait_all(timeout=1, **self.sp()), [])
        # pause(wait=True) returns once nothing runs.
        gate = os.path.join(self.spool.tmp, "gate")
        open(gate, "w").close()
        client.submit({"id": "long", "command": ["sh", "-c", f"while [ -e '{gate}' ]; do sleep 0.02; done"]},
                      **self.sp())
        wait_for(lambda: [n for n in os.listdir(self.spool.path("active")) if n[0] != "."],
                 what="long to start")
        with self.assertRaises(client.SpoolTimeout):
            client.pause(wait=True, timeout=0.2, **self.sp())
        os.unlink(gate)
        client.pause(wait=True, timeout=20 * SLOW, **self.sp())
        self.assertEqual(client.wait("long", timeout=5 * SLOW, **self.sp())["status"], "succeeded")
