"""A full disk: the watcher must keep the task in active/ and retry the
result until it can be published, never lose or half-write it."""
import errno
import json
import os
import signal
import unittest

from harness import wait_for
from hostile_util import HostileTest, listdir, mount_tmpfs, umount

TWO_MB = 2 * 1024 * 1024


class DiskFull(HostileTest):
    START = False
    CONFIG = "[task]\ntimeout = 30\n"

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to mount a tmpfs")
        why = mount_tmpfs(self.spool.root, "4m")
        if why:
            raise unittest.SkipTest(f"cannot mount a tmpfs ({why})")
        self.addCleanup(self.unmount)
        self.filler = self.spool.path("filler")
        # Staging must be on the same file system for the rename into incoming/.
        self.stage = self.spool.path("stage")
        os.mkdir(self.stage)

    def unmount(self):
        if self.spool.proc and self.spool.proc.poll() is None:
            self.spool.proc.kill()
            self.spool.proc.wait()
        umount(self.spool.root)

    def fill(self, leave):
        """Fills the file system, then frees `leave` bytes."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        size, chunk = 0, b"\0" * 65536
        try:
            while True:
                try:
                    n = os.write(fd, chunk)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC)
                    break
                if n <= 0:
                    break
                size += n
        finally:
            os.close(fd)
        os.truncate(self.filler, max(0, size - leave))

    def staged_task(self, tid):
        p = os.path.join(self.stage, tid + ".json")
        with open(p, "w") as f:
            json.dump({"id": tid, "command": ["/bin/sh", "-c", f"yes | head -c {TWO_MB}"]}, f)
        return p

    def publish_failures(self):
        self.spool.check_alive()
        # Either step of a publication: the completion record, or the rename.
        log = self.spool.log()
        return log.count("cannot publish the result") + log.count("cannot write its result")

    def test_hostile_diskfull_result_waits_for_space(self):
        self.spool.start()
        staged = self.staged_task("big")
        self.fill(leave=512 * 1024)
        os.rename(staged, self.spool.path("incoming", "big.json"))
        wait_for(lambda: self.publish_failures() >= 2, 15,
                 what="the watcher to report (and retry) the failed publish")
        self.assertIn("No space left on device", self.spool.log())
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), ["big.json"],
                         "the task stays in active/ until its result is safe")
        self.assertEqual(listdir(self.spool.path("results")), [], "no partial result")
        self.assertIsNone(self.spool.proc.poll())
        os.unlink(self.filler)
        r = self.spool.result("big", 15)
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["stdout_bytes"], TWO_MB)
        self.assertTrue(any("log incomplete" in w and "No space left" in w for w in r["warnings"]),
                        r["warnings"])
        self.assertLess(os.path.getsize(r["stdout_log"]), TWO_MB)
        wait_for(lambda: listdir(self.spool.path("active")) == [], what="active/ to be cleared")
        self.assertEqual(listdir(self.spool.path("tmp")), [], "no temporary left behind")
        self.assertEqual(self.spool.results(), ["big.json"])
        # And the watcher carries on normally.
        with open(os.path.join(self.stage, "next.json"), "w") as f:
            json.dump({"id": "next", "command": ["echo", "ok"]}, f)
        os.rename(os.path.join(self.stage, "next.json"), self.spool.path("incoming", "next.json"))
        self.assertEqual(self.spool.result("next")["stdout"], "ok\n")
        self.assertEqual(self.spool.stop(), 0)

    def test_hostile_diskfull_stop_while_retrying_keeps_task(self):
        self.spool.start()
        staged = self.staged_task("big")
        self.fill(leave=0)
        os.rename(staged, self.spool.path("incoming", "big.json"))
        wait_for(lambda: self.publish_failures() >= 1, 15, what="the failed publish")
        self.assertEqual(self.spool.stop(signal.SIGTERM, timeout=5), 0,
                         "a stop must not wait for the disk")
        self.assertEqual(listdir(self.spool.path("active"), hidden=False), ["big.json"])
        self.assertEqual(listdir(self.spool.path("results")), [])
        os.unlink(self.filler)
        self.spool.start()
        r = self.spool.result("big", 15)
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["attempt"], 2)
        self.assertEqual(r["stdout_bytes"], TWO_MB)
        wait_for(lambda: listdir(self.spool.path("active")) == [], what="active/ to be cleared")
        self.assertEqual(listdir(self.spool.path("tmp")), [])
