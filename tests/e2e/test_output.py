"""Output capture: inline head/tail truncation, logs, memory, invalid UTF-8."""
import hashlib
import json
import os
import re
import threading
import time

from harness import SpoolTest, rss_kib, sanitized

PY = "/usr/bin/python3"
MIB = 1 << 20
TEN_MIB = 10 * MIB

# 10 MiB per stream: stdout is numbered 10-byte lines, stderr is letters.
# Written interleaved in 64 KiB pieces so both pipes are busy at once.
BIG_WRITER = (
    "import sys\n"
    "out = b''.join(b'%09d\\n' % i for i in range(1048576))\n"
    "err = (bytes(65 + i // 10 for i in range(260)) * 40330)[:10485760]\n"
    "o, e = sys.stdout.buffer, sys.stderr.buffer\n"
    "for i in range(0, len(out), 65536):\n"
    "    o.write(out[i:i+65536]); o.flush(); e.write(err[i:i+65536]); e.flush()\n"
)


def expected_streams():
    out = b"".join(b"%09d\n" % i for i in range(1048576))
    err = (bytes(65 + i // 10 for i in range(260)) * 40330)[:TEN_MIB]
    return out, err


def marker(n):
    return f"\n[... spoolrun: {n} bytes omitted ...]\n"


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class BigOutput(SpoolTest):
    def test_ten_mib_each_stream(self):
        pid = self.spool.proc.pid
        # Let the watcher settle, then measure its baseline.
        self.run_task({"id": "warmup", "command": ["echo", "hi"]})
        base = rss_kib(pid)
        peak = [base]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], rss_kib(pid))
                except (FileNotFoundError, ProcessLookupError):
                    return
                time.sleep(0.002)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        try:
            r = self.run_task({"id": "big", "timeout": 60, "command": [PY, "-c", BIG_WRITER]},
                              timeout=30)
        finally:
            done.set()
            th.join()
        self.assertEqual(r["status"], "succeeded", r["error"])
        out, err = expected_streams()
        half = MIB // 2
        for name, data in (("stdout", out), ("stderr", err)):
            self.assertEqual(r[f"{name}_bytes"], TEN_MIB, name)
            self.assertTrue(r[f"{name}_truncated"], name)
            self.assertFalse(r[f"{name}_invalid_utf8"], name)
            want = data[:half].decode() + marker(TEN_MIB - MIB) + data[-half:].decode()
            self.assertEqual(len(r[name]), len(want), name)
            self.assertTrue(r[name].startswith(data[:1000].decode()), name)
            self.assertTrue(r[name].endswith(data[-1000:].decode()), name)
            self.assertEqual(r[name], want, f"{name}: head half, marker, tail half")
            log = r[f"{name}_log"]
            self.assertEqual(os.path.getsize(log), TEN_MIB, f"{name} log is full size")
            self.assertFalse(r[f"{name}_log_truncated"])
            self.assertEqual(sha(log), hashlib.sha256(data).hexdigest(), f"{name} log content")
        # The inline copies are capped (2 x 1 MiB, plus rendering), so the
        # watcher's memory must not track the 20 MiB the task wrote.
        # AddressSanitizer's shadow memory and quarantine roughly double it.
        limit = (64 if sanitized() else 30) * 1024
        self.assertLess(peak[0], limit,
                        f"runner RSS peaked at {peak[0]} KiB (base {base}) for 20 MiB of output")
        self.assertLess(peak[0] - base, limit - 4096)


class SmallLimits(SpoolTest):
    CONFIG = "[output]\nmax_output = 64K\nmax_log = 100K\n"

    def test_max_output_and_max_log(self):
        n = 300_000
        r = self.run_task({"id": "lim", "command": [PY, "-c",
                           f"import sys; sys.stdout.write('a' * 1000 + 'b' * {n - 2000} + 'z' * 1000)"]})
        self.assertEqual(r["stdout_bytes"], n)
        self.assertTrue(r["stdout_truncated"])
        k = 32 * 1024
        self.assertEqual(r["stdout"], "a" * 1000 + "b" * (k - 1000) + marker(n - 2 * k) +
                         "b" * (k - 1000) + "z" * 1000)
        self.assertTrue(r["stdout_log_truncated"])
        self.assertEqual(os.path.getsize(r["stdout_log"]), 100 * 1024)
        with open(r["stdout_log"], "rb") as f:
            self.assertEqual(f.read(1000), b"a" * 1000)
        # stderr was empty: nothing truncated.
        self.assertFalse(r["stderr_truncated"])
        self.assertFalse(r["stderr_log_truncated"])

    def test_exactly_max_output_is_not_truncated(self):
        r = self.run_task({"id": "exact", "command": [PY, "-c",
                           "import sys; sys.stdout.write('q' * 65536)"]})
        self.assertEqual(r["stdout_bytes"], 65536)
        self.assertFalse(r["stdout_truncated"])
        self.assertEqual(r["stdout"], "q" * 65536)


class Binary(SpoolTest):
    def test_invalid_utf8_output(self):
        raw = b"ok \xff\xfe bad \xc3( \x00nul \xe2\x82\xac euro\n"
        r = self.run_task({"id": "bin", "command": [PY, "-c",
                           f"import sys; sys.stdout.buffer.write({raw!r}); sys.stderr.write('fine\\n')"]})
        self.assertEqual(r["status"], "succeeded")
        # The published file is strict, valid UTF-8 JSON.
        with open(self.spool.result_path("bin"), "rb") as f:
            doc = json.loads(f.read().decode("utf-8", errors="strict"))
        self.assertEqual(doc["stdout"], r["stdout"])
        self.assertTrue(r["stdout_invalid_utf8"])
        self.assertFalse(r["stderr_invalid_utf8"])
        self.assertEqual(r["stdout_bytes"], len(raw))
        self.assertIn("\ufffd", r["stdout"])
        self.assertTrue(r["stdout"].startswith("ok "))
        self.assertIn("\x00nul", r["stdout"])
        self.assertIn("\u20ac euro\n", r["stdout"], "valid sequences survive")
        self.assertEqual(r["stderr"], "fine\n")
        with open(r["stdout_log"], "rb") as f:
            self.assertEqual(f.read(), raw, "the log keeps the raw bytes")

    def test_random_binary_output(self):
        r = self.run_task({"id": "rand", "command": [PY, "-c",
                           "import sys, random; random.seed(7); "
                           "sys.stdout.buffer.write(bytes(random.randrange(256) for _ in range(200000)))"]})
        self.assertEqual(r["stdout_bytes"], 200000)
        self.assertTrue(r["stdout_invalid_utf8"])
        self.assertEqual(os.path.getsize(r["stdout_log"]), 200000)



class OddLimit(SpoolTest):
    CONFIG = "[output]\nmax_output = 1001\n"

    def test_truncation_does_not_split_utf8(self):
        # Multi-byte characters straddling the head/tail cut points.
        r = self.run_task({"id": "euros", "command": [PY, "-c",
                           "import sys; sys.stdout.write('\u20ac' * 5000)"]})
        self.assertEqual(r["stdout_bytes"], 15000)
        self.assertTrue(r["stdout_truncated"])
        self.assertFalse(r["stdout_invalid_utf8"], "cut points must not create invalid UTF-8")
        m = re.search(r"\n\[\.\.\. spoolrun: (\d+) bytes omitted \.\.\.\]\n", r["stdout"])
        self.assertIsNotNone(m)
        head, tail = r["stdout"][:m.start()], r["stdout"][m.end():]
        self.assertEqual(set(head), {"\u20ac"})
        self.assertEqual(set(tail), {"\u20ac"})
        self.assertEqual(len(head.encode()) + len(tail.encode()) + int(m.group(1)), 15000)


class NoInline(SpoolTest):
    CONFIG = "[output]\nmax_output = 0\n"

    def test_max_output_zero_keeps_only_marker_and_log(self):
        r = self.run_task({"id": "zero", "command": ["echo", "hello"]})
        self.assertEqual(r["stdout"], marker(6))
        self.assertEqual(r["stdout_bytes"], 6)
        self.assertTrue(r["stdout_truncated"])
        with open(r["stdout_log"], "rb") as f:
            self.assertEqual(f.read(), b"hello\n")
