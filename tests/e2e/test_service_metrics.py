"""[metrics] textfile: the Prometheus text file, checked by the real tools:
promtool accepts it, and a real prometheus-node-exporter started here with
--collector.textfile.directory serves the spoolrun_* series over HTTP."""
import os
import re
import shutil
import socket
import subprocess
import time
import unittest
import urllib.request

from harness import SLOW, SpoolTest, read_pid, wait_for

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"


def series(text, name):
    """{labels: value} of one metric name in Prometheus text."""
    out = {}
    for m in re.finditer(r"^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$", text, re.M):
        out[m.group(1) or ""] = float(m.group(2))
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Metrics(SpoolTest):
    CONFIG = "[metrics]\ntextfile = textfile/spoolrun.prom\n"
    START = False

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(self.spool.tmp, "textfile")
        os.mkdir(self.dir)
        self.prom = os.path.join(self.dir, "spoolrun.prom")
        self.spool.start()

    def text(self):
        try:
            with open(self.prom) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_value(self, name, labels, value, timeout=10.0):
        return self.spool.wait(lambda: series(self.text(), name).get(labels) == value, timeout,
                               what=f"{name}{labels} == {value} in {self.prom}: {self.text()[-600:]}")

    @unittest.skipUnless(os.access(PROMTOOL, os.X_OK), "promtool is not installed (Debian package prometheus)")
    def test_promtool_accepts_the_file_and_counts_are_right(self):
        self.run_task({"id": "m-ok1", "command": ["true"]})
        self.run_task({"id": "m-ok2", "command": ["sleep", "0.2"]})
        self.run_task({"id": "m-fail", "command": ["sh", "-c", "exit 2"]})
        self.wait_value("spoolrun_tasks_published_total", '{status="succeeded"}', 2)
        self.wait_value("spoolrun_tasks_published_total", '{status="failed"}', 1)
        t = self.text()
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=t, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual((p.stdout + p.stderr).strip(), "", "promtool lint warnings")
        for name in ("spoolrun_tasks_queued", "spoolrun_tasks_running", "spoolrun_tasks_deferred",
                     "spoolrun_slots", "spoolrun_task_retries_total",
                     "spoolrun_usage_limit_deferrals_total", "spoolrun_last_result_timestamp_seconds",
                     "spoolrun_watcher_start_time_seconds"):
            self.assertIn(f"# TYPE {name} ", t)
            self.assertIn(f"# HELP {name} ", t)
        h = series(t, "spoolrun_task_duration_seconds_count")
        self.assertEqual(h['{status="succeeded"}'], 2)
        b = series(t, "spoolrun_task_duration_seconds_bucket")
        self.assertEqual(b['{status="succeeded",le="0.1"}'], 1)  # `true`, not the 0.2 s sleep
        self.assertEqual(b['{status="succeeded",le="+Inf"}'], 2)
        self.assertGreater(series(t, "spoolrun_last_result_timestamp_seconds")[""], time.time() - 60)
        self.assertEqual(series(t, "spoolrun_slots")[""], 1)
        # No temporary file is left beside it.
        self.assertEqual(os.listdir(self.dir), ["spoolrun.prom"])

    def test_gauges_follow_a_running_task_and_the_queue(self):
        pidfile = os.path.join(self.spool.tmp, "t.pid")
        self.spool.submit({"id": "g-run", "command": f"echo $$ > '{pidfile}'; exec sleep 60"})
        read_pid(pidfile)
        # While it runs (nothing else happens), the file catches up by itself.
        self.wait_value("spoolrun_tasks_running", "", 1)
        for i in range(3):
            self.spool.submit({"id": f"g-q{i}", "command": ["true"]})
        self.wait_value("spoolrun_tasks_queued", "", 3)
        self.assertEqual(self.spool.stop(), 0)
        # Written at stop: nothing runs any more.
        self.assertEqual(series(self.text(), "spoolrun_tasks_running")[""], 0)

    def test_retries_counted(self):
        self.spool.submit({"id": "rc-1", "retries": 1, "retry_backoff": 3600, "command": ["false"]})
        self.wait_value("spoolrun_task_retries_total", "", 1)
        self.wait_value("spoolrun_tasks_deferred", "", 1)

    @unittest.skipUnless(os.access(NODE_EXPORTER, os.X_OK),
                         "prometheus-node-exporter is not installed (Debian package prometheus-node-exporter)")
    def test_node_exporter_serves_the_series(self):
        self.run_task({"id": "ne-1", "command": ["true"]})
        self.wait_value("spoolrun_tasks_published_total", '{status="succeeded"}', 1)
        port = free_port()
        ne = subprocess.Popen([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                               "--collector.disable-defaults", "--collector.textfile",
                               f"--collector.textfile.directory={self.dir}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop():
            ne.terminate()
            try:
                ne.wait(10 * SLOW)
            except subprocess.TimeoutExpired:
                ne.kill()
                ne.wait()
            ne.stderr.close()
        self.addCleanup(stop)

        def scrape():
            if ne.poll() is not None:
                raise AssertionError(f"node_exporter exited {ne.returncode}: {ne.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                return None
        body = wait_for(scrape, timeout=20, interval=0.1, what="node_exporter to answer")
        self.assertEqual(series(body, "spoolrun_tasks_published_total").get('{status="succeeded"}'), 1, body[-3000:])
        self.assertIn("spoolrun_task_duration_seconds_bucket", body)
        self.assertIn("spoolrun_watcher_start_time_seconds", body)
        self.assertEqual(series(body, "node_textfile_scrape_error").get(""), 0, body[-3000:])
        # The next result shows on the next scrape.
        self.run_task({"id": "ne-2", "command": ["true"]})
        wait_for(lambda: series(scrape() or "", "spoolrun_tasks_published_total").get('{status="succeeded"}') == 2,
                 timeout=10, interval=0.2, what="the second result through node_exporter")


class MetricsSlots(SpoolTest):
    CONFIG = "[runner]\nslots = 3\n[metrics]\ntextfile = spoolrun.prom\n[hooks]\non_result = sleep 2\n"

    def test_gauges_come_from_the_loop(self):
        prom = os.path.join(self.spool.tmp, "spoolrun.prom")

        def text():
            try:
                with open(prom) as f:
                    return f.read()
            except FileNotFoundError:
                return ""
        pids = []
        for i in range(2):
            p = os.path.join(self.spool.tmp, f"s{i}.pid")
            self.spool.submit({"id": f"ms-{i}", "command": f"echo $$ > '{p}'; exec sleep 60"})
            pids.append(read_pid(p))
        self.spool.wait(lambda: series(text(), "spoolrun_tasks_running").get("") == 2,
                        what=f"2 running: {text()[-500:]}")
        self.assertEqual(series(text(), "spoolrun_slots")[""], 3)
        # Results published beside running tasks, their hooks still running:
        # neither the tasks nor the hooks are charged to each other.
        r = self.run_task({"id": "ms-quick", "command": ["echo", "q"]})
        self.assertEqual((r["status"], r["warnings"]), ("succeeded", []))
        for pid in pids:
            os.kill(pid, 9)
        for i in range(2):
            r = self.spool.result(f"ms-{i}")
            self.assertEqual(r["status"], "killed")
        self.spool.wait(lambda: series(text(), "spoolrun_tasks_running").get("") == 0
                        and series(text(), "spoolrun_tasks_published_total").get('{status="killed"}') == 2,
                        what="the gauges to settle")
        self.assertNotIn("on_result hook failed", self.spool.log())
