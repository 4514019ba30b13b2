"""inotify's event queue overflowing: the watcher must rescan incoming/ and
lose nothing. The queue's length is fixed when the watcher creates its
inotify instance, so the test lowers the system limit only for that
moment (it needs root; skipped otherwise)."""
import os
import signal

from harness import SpoolTest

LIMIT = "/proc/sys/fs/inotify/max_queued_events"


class Overflow(SpoolTest):
    START = False

    def start_with_small_queue(self, size):
        try:
            with open(LIMIT) as f:
                old = f.read().strip()
            with open(LIMIT, "w") as f:
                f.write(str(size))
        except OSError as e:
            self.skipTest(f"cannot lower {LIMIT}: {e}")
        try:
            self.spool.start()
        finally:
            with open(LIMIT, "w") as f:
                f.write(old)

    def test_overflow_rescans_and_loses_nothing(self):
        self.start_with_small_queue(8)
        # Stopped, the watcher reads no events while they pile up: far more
        # than the queue holds.
        self.spool.proc.send_signal(signal.SIGSTOP)
        try:
            ids = [f"t{i:03d}" for i in range(60)]
            for i in ids:
                self.spool.submit({"id": i, "command": ["true"]})
        finally:
            self.spool.proc.send_signal(signal.SIGCONT)
        for i in ids:
            self.assertEqual(self.spool.result(i, timeout=30)["status"], "succeeded")
        self.assertIn("overflowed", self.spool.log())
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])
