"""[log] events: the JSON-lines event log, in order, for a success, a retry,
a usage-limit deferral, a rejection, a cancel, a recovery and a requeue;
every line matches docs/events.schema.json; reopened on SIGHUP."""
import os
import signal
import time

from harness import SpoolTest, read_pid, run_cli, wait_for
from service_util import events_of, read_events, wait_event


class EventLog(SpoolTest):
    CONFIG = "[log]\nevents = events.jsonl\n"

    def setUp(self):
        super().setUp()
        self.events = os.path.join(self.spool.tmp, "events.jsonl")

    def published(self, tid):
        return wait_event(self.events, lambda e: e["event"] == "published" and e["id"] == tid,
                          what=f"the published event of {tid}")[0]

    def test_life_of_tasks_in_order(self):
        tmp = self.spool.tmp
        marker = os.path.join(tmp, "r1-ran")
        self.run_task({"id": "ev-ok", "command": ["true"]})
        self.run_task({"id": "ev-retry", "retries": 1, "retry_backoff": 0,
                       "command": f"[ -e '{marker}' ] || {{ touch '{marker}'; exit 1; }}"})
        self.spool.submit(b"{not json", name="ev-bad.json")
        self.spool.result("ev-bad")
        # A usage limit an hour away: deferred, no retry spent.
        later = int(time.time()) + 3600
        self.spool.submit({"id": "ev-limit", "retries": 1,
                           "command": f"echo 'usage limit reached|{later}' >&2; exit 1"})
        wait_event(self.events, lambda e: e["event"] == "deferred", what="the deferral")
        # A cancel while it runs.
        pidfile = os.path.join(tmp, "c.pid")
        self.spool.submit({"id": "ev-cancel", "command": f"echo $$ > '{pidfile}'; exec sleep 60"})
        read_pid(pidfile)
        self.assertEqual(run_cli("cancel", *self.spool.args(), "ev-cancel").returncode, 0)
        self.published("ev-cancel")
        # A crash while one runs, then the restart recovers it.
        kpid = os.path.join(tmp, "k.pid")
        kmark = os.path.join(tmp, "k-ran")
        self.spool.submit({"id": "ev-crash", "command":
                           f"[ -e '{kmark}' ] && exit 0; touch '{kmark}'; echo $$ > '{kpid}'; exec sleep 60"})
        pid = read_pid(kpid)
        self.spool.proc.kill()
        self.spool.proc.wait()
        self.spool.stop()
        wait_for(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z",
                 what="the task to die with the watcher")
        self.spool.start()
        self.published("ev-crash")
        # A stop while one runs: requeued.
        qpid = os.path.join(tmp, "q.pid")
        self.spool.submit({"id": "ev-requeue", "command": f"echo $$ > '{qpid}'; exec sleep 60"})
        read_pid(qpid)
        self.assertEqual(self.spool.stop(), 0)

        ev = read_events(self.events)
        self.assertEqual(events_of(ev, "ev-ok"),
                         [("queued", None, None), ("started", 1, None), ("published", 1, "succeeded")])
        self.assertEqual(events_of(ev, "ev-retry"),
                         [("queued", None, None), ("started", 1, None), ("retry_scheduled", 1, None),
                          ("started", 2, None), ("published", 2, "succeeded")])
        self.assertEqual(events_of(ev, "ev-bad"),
                         [("queued", None, None), ("rejected", None, None), ("published", 0, "rejected")])
        self.assertEqual(events_of(ev, "ev-limit"),
                         [("queued", None, None), ("started", 1, None), ("deferred", 1, None)])
        self.assertEqual(events_of(ev, "ev-cancel"),
                         [("queued", None, None), ("started", 1, None), ("cancelled", None, None),
                          ("published", 1, "cancelled")])
        self.assertEqual(events_of(ev, "ev-requeue"),
                         [("queued", None, None), ("started", 1, None), ("requeued", None, None)])
        # The crash: started once, then (after the restart) recovered and run again.
        crash = [e for e in ev if e.get("id") == "ev-crash" or
                 (e["event"] == "recovered" and e["task_file"] == "ev-crash.json")]
        self.assertEqual([(e["event"], e.get("attempt")) for e in crash],
                         [("queued", None), ("started", 1), ("recovered", None), ("started", 2),
                          ("published", 2)])
        # The watcher's own: two starts, two stops only for the clean ones.
        kinds = [e["event"] for e in ev if e["event"].startswith("watcher_")]
        self.assertEqual(kinds, ["watcher_started", "watcher_started", "watcher_stopped"])
        self.assertEqual(ev[-1]["reason"], "SIGTERM")
        # Details a consumer uses.
        pub = [e for e in ev if e["event"] == "published" and e["id"] == "ev-ok"][0]
        self.assertEqual((pub["exit_code"], pub["result_file"]), (0, "ev-ok.json"))
        self.assertGreaterEqual(pub["duration_ms"], 0)
        bad = [e for e in ev if e["event"] == "published" and e["id"] == "ev-bad"][0]
        self.assertIsNone(bad["exit_code"])
        self.assertEqual(bad["code"], "invalid_json")
        deferred = [e for e in ev if e["event"] == "deferred"][0]
        self.assertIn("not_before", deferred)
        # Times never go backwards.
        times = [e["time"] for e in ev]
        self.assertEqual(times, sorted(times))

    def test_reopened_on_sighup(self):
        self.run_task({"id": "ro-1", "command": ["true"]})
        self.published("ro-1")
        rotated = self.events + ".1"
        os.rename(self.events, rotated)
        self.spool.proc.send_signal(signal.SIGHUP)
        self.spool.wait(lambda: "SIGHUP: reloaded" in self.spool.log(), what="the reload")
        self.run_task({"id": "ro-2", "command": ["true"]})
        self.published("ro-2")
        old, new = read_events(rotated), read_events(self.events)
        self.assertIn("ro-1", [e.get("id") for e in old])
        self.assertNotIn("ro-2", [e.get("id") for e in old])
        self.assertEqual([e["event"] for e in new if e.get("id") == "ro-2"],
                         ["queued", "started", "published"])


class EventLogBadPath(SpoolTest):
    CONFIG = "[log]\nevents = no/such/dir/events.jsonl\n"

    def test_unopenable_event_log_is_a_warning_not_a_failure(self):
        r = self.run_task({"id": "bp-1", "command": ["true"]})
        self.assertEqual(r["status"], "succeeded")
        self.assertIn("[log] events: cannot open", self.spool.log())
        self.assertIn("no/such/dir/events.jsonl", self.spool.log())
