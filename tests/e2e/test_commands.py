"""The users' commands against a real watcher: submit, wait, cancel,
validate, status, tail, and the JSON output modes."""
import json
import os
import subprocess
import threading

from harness import BIN, SLOW, SpoolTest, run_cli, wait_for


class Commands(SpoolTest):
    def cli(self, *args, input=None, timeout=30):
        return run_cli(args[0], "--spool", self.spool.root, *args[1:], input=input, timeout=timeout)

    def test_submit_command_form_prints_sortable_id(self):
        ids = []
        for _ in range(5):
            p = self.cli("submit", "--", "true")
            self.assertEqual(p.returncode, 0, p.stderr)
            ids.append(p.stdout.strip())
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 5)
        for i in ids:
            self.assertEqual(self.spool.result(i)["status"], "succeeded")

    def test_submit_options_reach_the_task(self):
        d = os.path.join(self.spool.tmp, "work")
        os.mkdir(d)
        p = self.cli("submit", "--id", "opts", "--timeout", "7.5", "--priority", "3",
                     "--env", "GREETING=hi there", "--cwd", d, "--",
                     "sh", "-c", 'echo "$GREETING"; pwd')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "opts")
        r = self.spool.result("opts")
        self.assertEqual(r["stdout"], f"hi there\n{d}\n")
        self.assertEqual(r["task"]["timeout"], 7.5)
        self.assertEqual(r["task"]["priority"], 3)

    def test_submit_wait_exits_with_task_code(self):
        p = self.cli("submit", "--wait", "--", "sh", "-c", "echo out; exit 7")
        self.assertEqual(p.returncode, 7)
        lines = p.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1)  # the result on one line; the id went to stderr
        r = json.loads(lines[0])
        self.assertEqual((r["id"], r["status"], r["stdout"]), (p.stderr.strip(), "failed", "out\n"))

    def test_submit_wait_codes_for_timeout_and_missing_program(self):
        p = self.cli("submit", "--wait", "--timeout", "0.2", "--", "sleep", "30")
        self.assertEqual(p.returncode, 124)
        p = self.cli("submit", "--wait", "--", "no-such-program-xyz")
        self.assertEqual(p.returncode, 127)

    def test_submit_file_and_stdin(self):
        f = os.path.join(self.spool.tmp, "t.json")
        with open(f, "w") as fh:
            json.dump({"id": "from-file", "command": ["echo", "f"]}, fh)
        p = self.cli("submit", f)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "from-file"))
        self.assertEqual(self.spool.result("from-file")["stdout"], "f\n")
        p = self.cli("submit", "-", input=json.dumps({"command": ["echo", "s"]}))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.spool.result(p.stdout.strip())["stdout"], "s\n")

    def test_submit_refuses_invalid_task_and_writes_nothing(self):
        p = self.cli("submit", "-", input='{"command": ["x"], "timeout": "soon"}')
        self.assertEqual(p.returncode, 65)
        self.assertIn('"timeout"', p.stderr)
        self.assertEqual([n for n in os.listdir(self.spool.path("incoming"))], [])
        p = self.cli("submit", "-", input='{"command": ["x"], "id": "../escape"}')
        self.assertEqual(p.returncode, 65)
        self.assertFalse(os.path.exists(os.path.join(self.spool.root, "escape.json")))

    def test_submit_same_id_while_queued_is_refused(self):
        self.spool.stop()
        self.assertEqual(self.cli("submit", "--id", "twice", "--", "true").returncode, 0)
        p = self.cli("submit", "--id", "twice", "--", "true")
        self.assertEqual(p.returncode, 73)
        self.assertIn("already queued", p.stderr)

    def test_submit_usage_errors(self):
        self.assertEqual(self.cli("submit").returncode, 2)
        self.assertEqual(self.cli("submit", "a.json", "b.json").returncode, 2)
        self.assertEqual(self.cli("submit", "--id", "x", "a.json").returncode, 2)
        self.assertEqual(self.cli("submit", "--priority", "high", "--", "true").returncode, 2)
        self.assertEqual(self.cli("submit", "--env", "NOEQUALS", "--", "true").returncode, 2)
        self.assertEqual(self.cli("submit", "/no/such/file.json").returncode, 66)

    def test_wait_many_and_timeout(self):
        a = self.cli("submit", "--", "true").stdout.strip()
        b = self.cli("submit", "--", "sh", "-c", "exit 4").stdout.strip()
        p = self.cli("wait", a, b)
        self.assertEqual(p.returncode, 4)
        got = sorted(json.loads(line)["id"] for line in p.stdout.splitlines())
        self.assertEqual(got, sorted([a, b]))
        p = self.cli("wait", "--timeout", "0.3", a, "never-submitted")
        self.assertEqual(p.returncode, 69)
        self.assertIn("never-submitted", p.stderr)
        self.assertEqual(self.cli("wait", "../bad").returncode, 2)

    def test_wait_blocks_until_the_result_arrives(self):
        self.spool.stop()
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("p", self.cli("wait", "later", timeout=60)))
        t.start()
        self.spool.submit({"id": "later", "command": ["echo", "x"]})
        self.spool.start()
        t.join(30 * SLOW)
        self.assertEqual(out["p"].returncode, 0)
        self.assertEqual(json.loads(out["p"].stdout)["stdout"], "x\n")

    def test_cancel_running_with_wait(self):
        self.cli("submit", "--id", "long", "--", "sleep", "30")
        wait_for(lambda: os.listdir(self.spool.path("active")), what="the task to start")
        p = self.cli("cancel", "--wait", "long")
        self.assertEqual(p.returncode, 125)
        r = json.loads(p.stdout)
        self.assertEqual((r["status"], r["error"]["code"]), ("cancelled", "cancelled"))
        wait_for(lambda: not os.path.exists(self.spool.path("cancel", "long")),
                 what="the cancel request to be removed")

    def test_validate(self):
        good = os.path.join(self.spool.tmp, "good.json")
        bad = os.path.join(self.spool.tmp, "bad.json")
        with open(good, "w") as f:
            json.dump({"command": ["true"]}, f)
        with open(bad, "w") as f:
            f.write('{"command": ["true"], "colour": 1}')
        p = run_cli("validate", good)
        self.assertEqual((p.returncode, p.stdout.strip()), (0, f"{good}: ok"))
        p = run_cli("validate", good, bad)
        self.assertEqual(p.returncode, 65)
        self.assertIn('"colour"', p.stderr)
        self.assertEqual(run_cli("validate", "/no/such.json").returncode, 66)

    def test_status_json_and_text(self):
        self.spool.submit({"id": "runs", "command": ["sh", "-c", "echo partial; sleep 30"]})
        wait_for(lambda: os.listdir(self.spool.path("active")), what="the task to start")
        os.makedirs(self.spool.path("cancel"), exist_ok=True)
        self.spool.submit({"id": "low", "command": ["true"], "priority": -1})
        self.spool.submit({"id": "high", "command": ["true"], "priority": 9})
        st = {}

        def running_with_output():
            st.update(json.loads(self.cli("status", "--json").stdout))
            return st["running"] and st["running"][0].get("stdout_bytes") == 8
        wait_for(running_with_output, what="status to show the running task's output")
        self.assertTrue(st["watcher"]["running"])
        self.assertEqual(st["watcher"]["pid"], self.spool.proc.pid)
        self.assertEqual(st["running"][0]["id"], "runs")
        self.assertIsInstance(st["running"][0]["pid"], int)
        self.assertGreaterEqual(st["running"][0]["elapsed_ms"], 0)
        self.assertEqual([q["id"] for q in st["queued"]], ["high", "low"])
        text = self.cli("status").stdout
        rows = [line.split() for line in text.splitlines()[2:]]
        self.assertEqual([r[:2] for r in rows], [["runs", "running"], ["high", "queued"],
                                                 ["low", "queued"]], text)
        self.cli("cancel", "runs")
        self.spool.result("low")
        st = json.loads(self.cli("status", "--json").stdout)
        self.assertEqual(st["running"], [])
        self.assertEqual({r["id"] for r in st["recent"]}, {"runs", "low", "high"})

    def test_status_without_watcher(self):
        self.spool.stop()
        st = json.loads(self.cli("status", "--json").stdout)
        self.assertFalse(st["watcher"]["running"])
        self.assertIsNone(st["watcher"]["pid"])

    def test_tail_and_follow(self):
        self.spool.submit({"id": "talk", "command": ["sh", "-c", "echo one; echo err >&2; echo two"]})
        self.spool.result("talk")
        p = self.cli("tail", "talk")
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "one\ntwo\n", "err\n"))
        self.assertEqual(self.cli("tail", "nothing-here").returncode, 66)
        gate = os.path.join(self.spool.tmp, "gate")
        self.spool.submit({"id": "slow", "command": ["sh", "-c",
                           f"echo first; while [ ! -e {gate} ]; do sleep 0.01; done; echo last"]})
        f = subprocess.Popen([BIN, "tail", "-f", "--spool", self.spool.root, "slow"],
                             stdout=subprocess.PIPE, text=True)
        self.addCleanup(f.kill)
        self.assertEqual(f.stdout.readline(), "first\n")
        open(gate, "w").close()
        out, _ = f.communicate(timeout=20 * SLOW)
        self.assertEqual(out, "last\n")
        self.assertEqual(f.returncode, 0)

    def test_each_command_has_help(self):
        for cmd in ("watch", "drain", "exec", "submit", "wait", "cancel", "status", "tail",
                    "validate"):
            p = run_cli(cmd, "--help")
            self.assertEqual(p.returncode, 0, cmd)
            self.assertIn("usage:", p.stdout, cmd)


class OutputModes(SpoolTest):
    def script(self, body):
        path = os.path.join(self.spool.tmp, "emit.py")
        with open(path, "w") as f:
            f.write(body)
        return ["/usr/bin/python3", path]

    def test_jsonl_events_and_summary(self):
        cmd = self.script(
            "import json\n"
            "print(json.dumps({'type': 'system', 'subtype': 'init', 'session_id': 's1'}))\n"
            "print('plain text line')\n"
            "print()\n"
            "print(json.dumps({'type': 'result', 'subtype': 'success', 'is_error': False,\n"
            "      'result': 'done', 'num_turns': 3, 'duration_ms': 12, 'total_cost_usd': 0.5,\n"
            "      'usage': {'input_tokens': 1}, 'session_id': 's1'}), end='')\n")
        r = self.run_task({"id": "jl", "command": cmd, "output": "jsonl"})
        self.assertEqual(r["output"], "jsonl")
        self.assertEqual(r["events"][0]["subtype"], "init")
        self.assertEqual(r["events"][1], "plain text line")
        self.assertEqual((r["events_total"], r["non_json_lines"], r["events_omitted"]), (3, 1, 0))
        s = r["summary"]
        self.assertTrue(s["complete"])
        self.assertEqual((s["result"], s["num_turns"], s["session_id"], s["total_cost_usd"]),
                         ("done", 3, "s1", 0.5))
        self.assertEqual(s["usage"], {"input_tokens": 1})

    def test_jsonl_without_result_event_says_why(self):
        cmd = self.script("import json, time\nprint(json.dumps({'type': 'system'}), flush=True)\ntime.sleep(30)\n")
        r = self.run_task({"id": "cut", "command": cmd, "output": "jsonl", "timeout": 0.5})
        self.assertEqual(r["status"], "timeout")
        self.assertFalse(r["summary"]["complete"])
        self.assertIn("timeout", r["summary"]["reason"])

    def test_jsonl_bounded_head_and_tail(self):
        cmd = self.script("import json\nfor i in range(20000): print(json.dumps({'type': 'x', 'i': i}))\n"
                          "print(json.dumps({'type': 'result', 'result': 'end'}))\n"
                          "print('z' * 200000)\n")
        r = self.run_task({"id": "many", "command": cmd, "output": "jsonl"}, timeout=30)
        self.assertEqual(r["events_total"], 20002)
        self.assertGreater(r["events_omitted"], 0)
        self.assertEqual(len(r["events"]) + r["events_omitted"], 20002)
        self.assertEqual(r["events"][0]["i"], 0)
        self.assertTrue(r["summary"]["complete"])
        self.assertEqual(r["summary"]["result"], "end")
        self.assertIn("200000 bytes", r["events"][-1])

    def test_json_document(self):
        r = self.run_task({"id": "doc", "command": ["echo", '{"a": [1, 2]}'], "output": "json"})
        self.assertEqual(r["events"], [{"a": [1, 2]}])
        self.assertIsNone(r["output_error"])
        r = self.run_task({"id": "notdoc", "command": ["echo", "{nope"], "output": "json"})
        self.assertEqual(r["events"], [])
        self.assertIn("line 1", r["output_error"])

    def test_bad_output_mode_rejected(self):
        r = self.run_task({"id": "badmode", "command": ["true"], "output": "yaml"})
        self.assertEqual((r["status"], r["error"]["field"]), ("rejected", "output"))


Commands.CONFIG = "[output]\nmax_output = 64K\n"
OutputModes.CONFIG = "[output]\nmax_output = 256K\n"


class SubmitAfterResult(SpoolTest):
    def test_submit_of_an_id_with_a_result_is_refused(self):
        p = run_cli("submit", "--spool", self.spool.root, "--wait", "--id", "once", "--", "true")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = run_cli("submit", "--spool", self.spool.root, "--id", "once", "--", "false")
        self.assertEqual(p.returncode, 73)
        self.assertIn("already exists", p.stderr)
        self.assertEqual(os.listdir(self.spool.path("incoming")), [])


class WatcherKilled(SpoolTest):
    def test_task_dies_with_a_killed_watcher(self):
        """kill -9 of the watcher takes its running task with it, so the
        rerun after recovery never overlaps the old run."""
        pidfile = os.path.join(self.spool.tmp, "pid")
        self.spool.submit({"id": "orphan", "command": ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"]})
        pid = int(wait_for(lambda: open(pidfile).read().strip() if os.path.exists(pidfile) else None,
                           what="the task to start"))
        self.spool.proc.kill()
        self.spool.proc.wait()

        def gone():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().split(")")[-1].split()[0] == "Z"
            except FileNotFoundError:
                return True
        wait_for(gone, what="the task to die with its watcher")
