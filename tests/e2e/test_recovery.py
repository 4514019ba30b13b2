"""Restarts: a runner killed mid-task, a result published just before a
crash, config reload on SIGHUP, results_dir."""
import json
import os
import signal

from harness import SpoolTest, read_pid, wait_for


class Recovery(SpoolTest):
    def test_task_interrupted_by_crash_is_run_again(self):
        pidfile = os.path.join(self.spool.tmp, "task.pid")
        marker = os.path.join(self.spool.tmp, "first-run")
        name = self.spool.submit({"id": "crashy",
                                  "command": f"if [ -e '{marker}' ]; then echo second; exit 0; fi; "
                                             f"touch '{marker}'; echo $$ > '{pidfile}'; exec sleep 30"})
        pid = read_pid(pidfile)
        self.spool.proc.kill()  # SIGKILL: no chance to requeue
        self.spool.proc.wait()
        self.spool.stop()
        os.kill(pid, signal.SIGKILL)  # the orphaned task is ours to clean up
        self.assertTrue(os.path.exists(self.spool.path("active", name)))
        self.spool.start()
        r = self.spool.result("crashy")
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["stdout"], "second\n")
        self.assertEqual(r["attempt"], 2)
        self.assertTrue(any("interrupted" in w for w in r["warnings"]), r["warnings"])
        wait_for(lambda: os.listdir(self.spool.path("active")) == [], timeout=5, what="active/ to empty")

    def test_completion_record_left_by_a_stop_is_published_not_run(self):
        """A stop between recording a task's completion and letting its file
        go: the next start publishes the record and never runs the task."""
        self.spool.stop()
        marker = os.path.join(self.spool.tmp, "ran")
        task = {"id": "once", "command": ["touch", marker]}
        with open(self.spool.path("active", "once.json"), "w") as f:
            json.dump(task, f)
        record = {"format": 1, "id": "once", "status": "succeeded", "task_file": "once.json"}
        self.foreign_results.add("once.json")  # forged, deliberately minimal: not schema-checked
        with open(self.spool.path("tmp", "done-once.json"), "w") as f:
            json.dump(record, f)
        self.spool.start()
        self.run_task({"id": "barrier", "command": ["true"]})
        self.assertFalse(os.path.exists(marker), "a completed task must not run twice")
        wait_for(lambda: os.listdir(self.spool.path("active")) == [], what="active/ to empty")
        with open(self.spool.result_path("once")) as f:
            self.assertEqual(json.load(f), record)
        self.assertEqual(os.listdir(self.spool.path("tmp")), [])
        self.assertEqual(self.spool.results(), ["barrier.json", "once.json"])
        self.assertIn("completed before the last stop", self.spool.log())

    def test_forged_stamp_does_not_make_a_task_vanish(self):
        """inode, mtime and size are a producer's to choose (cp -p, touch -r):
        a result naming them must not make a new file be taken for a
        finished one and dropped without a result."""
        self.spool.stop()
        marker = os.path.join(self.spool.tmp, "ran")
        task = {"id": "once", "command": ["touch", marker]}
        p = self.spool.path("active", "once.json")
        with open(p, "w") as f:
            json.dump(task, f)
        st = os.stat(p)
        stamp = f"{st.st_ino}:{st.st_mtime_ns // 10**9}.{st.st_mtime_ns % 10**9:09d}:{st.st_size}"
        published = {"format": 1, "id": "once", "status": "succeeded", "task_file_stamp": stamp}
        self.foreign_results.add("once.json")
        with open(self.spool.result_path("once"), "w") as f:
            json.dump(published, f)
        self.spool.start()
        r = self.spool.result("once@2")
        self.assertEqual((r["status"], r["error"]["code"]), ("rejected", "duplicate_id"))
        self.assertFalse(os.path.exists(marker))
        wait_for(lambda: os.listdir(self.spool.path("active")) == [], what="active/ to empty")


class Reload(SpoolTest):
    CONFIG = "[output]\nmax_output = 1M\n"

    def test_sighup_reloads_config(self):
        r1 = self.run_task({"id": "before", "command": ["sh", "-c", "printf '%0200d' 0"]})
        self.assertFalse(r1["stdout_truncated"])
        with open(self.spool.config, "w") as f:
            f.write("[output]\nmax_output = 100\n")
        self.spool.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in self.spool.log(), timeout=5, what="the reload")
        r2 = self.run_task({"id": "after", "command": ["sh", "-c", "printf '%0200d' 0"]})
        self.assertTrue(r2["stdout_truncated"])
        self.assertEqual(r2["stdout_bytes"], 200)

    def test_sighup_with_bad_config_keeps_running(self):
        with open(self.spool.config, "w") as f:
            f.write("[output]\nmax_output = nonsense\n")
        self.spool.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the running config" in self.spool.log(), timeout=5,
                 what="the reload to be refused")
        r = self.run_task({"id": "still", "command": ["echo", "ok"]})
        self.assertEqual(r["stdout"], "ok\n")
        self.assertIsNone(self.spool.proc.poll())


class ResultsDir(SpoolTest):
    START = False

    def test_results_dir_elsewhere(self):
        other = os.path.join(self.spool.tmp, "elsewhere")
        with open(os.path.join(self.spool.tmp, "rd.ini"), "w") as f:
            f.write(f"[spool]\nresults_dir = {other}\n")
        self.spool.config = os.path.join(self.spool.tmp, "rd.ini")
        self.spool.start()
        self.spool.submit({"id": "rd", "command": ["echo", "x"]})
        p = os.path.join(other, "rd.json")
        self.spool.wait(lambda: os.path.exists(p), what="result in results_dir")
        with open(p) as f:
            r = json.load(f)
        self.assertEqual(r["format"], 1)
        self.assertEqual(r["stdout"], "x\n")
        self.assertFalse(os.path.exists(self.spool.result_path("rd")))
