"""[hooks] on_result: the hook sees the published file and its
environment; a failing, a hanging and a missing hook change nothing, never
delay the next task, and are one warning line naming the id; a hanging
hook is killed with its descendants; its output is logged, bounded."""
import os
import re

from harness import SLOW, SpoolTest, pid_gone, read_pid, wait_for


def write_script(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


class HookSeesResult(SpoolTest):
    START = False

    def setUp(self):
        super().setUp()
        d = self.spool.tmp
        self.hook = write_script(os.path.join(d, "hook.sh"), f"""
out="{d}/hook-$SPOOLRUN_ID"
{{ env | grep '^SPOOLRUN_' | sort; echo "STDIN=$(readlink /proc/self/fd/0)"; }} > "$out.tmp"
cp "$SPOOLRUN_RESULT" "$out.result"
mv "$out.tmp" "$out.env"
echo "hook ran for $SPOOLRUN_ID"
""")
        with open(self.spool.config or os.path.join(d, "spoolrun.ini"), "w") as f:
            f.write(f"[hooks]\non_result = {self.hook}\n")
        self.spool.config = os.path.join(d, "spoolrun.ini")
        self.spool.start()

    def env_of(self, tid):
        p = os.path.join(self.spool.tmp, f"hook-{tid}.env")
        wait_for(lambda: os.path.exists(p), what=f"the hook of {tid}")
        with open(p) as f:
            return dict(line.rstrip("\n").split("=", 1) for line in f)

    def test_hook_gets_the_published_result_and_its_environment(self):
        self.spool.submit({"id": "h-ok", "command": ["true"]})
        self.spool.submit({"id": "h-fail", "command": ["sh", "-c", "exit 3"]})
        self.spool.submit(b"{not json", name="h-bad.json")
        root = os.path.realpath(self.spool.root)
        for tid, status, code in (("h-ok", "succeeded", "0"), ("h-fail", "failed", "3"),
                                  ("h-bad", "rejected", "")):
            env = self.env_of(tid)
            result = os.path.join(root, "results", tid + ".json")
            self.assertEqual(env["SPOOLRUN_RESULT"], result)
            self.assertEqual(env["SPOOLRUN_ID"], tid)
            self.assertEqual(env["SPOOLRUN_STATUS"], status)
            self.assertEqual(env["SPOOLRUN_EXIT_CODE"], code)
            self.assertEqual(env["SPOOLRUN_SPOOL"], root)
            self.assertEqual(env["STDIN"], "/dev/null")
            # The hook saw the whole, published file.
            with open(os.path.join(self.spool.tmp, f"hook-{tid}.result"), "rb") as a, \
                    open(result, "rb") as b:
                self.assertEqual(a.read(), b.read())
        # Its output is in the watcher's log, with the id.
        self.spool.wait(lambda: "h-ok: hook: hook ran for h-ok" in self.spool.log(),
                        what="the hook's output in the log")
        self.assertNotIn("on_result hook failed", self.spool.log())


class BadHooks(SpoolTest):
    """Each hook below fails its own way; the tasks around it do not notice."""
    START = False

    def start_with_hook(self, command, timeout=30):
        self.spool.config = os.path.join(self.spool.tmp, "spoolrun.ini")
        with open(self.spool.config, "w") as f:
            f.write(f"[hooks]\non_result = {command}\ntimeout = {timeout}\n")
        self.spool.start()

    def assert_untouched(self, r, tid):
        self.assertEqual((r["id"], r["status"], r["exit_code"], r["warnings"]),
                         (tid, "succeeded", 0, []))

    def test_failing_hook(self):
        self.start_with_hook(write_script(os.path.join(self.spool.tmp, "fail.sh"),
                                          "echo about to fail; exit 7\n"))
        r = self.run_task({"id": "bf-1", "command": ["echo", "x"]})
        self.assert_untouched(r, "bf-1")
        self.spool.wait(lambda: "bf-1: on_result hook failed: exit status 7" in self.spool.log(),
                        what="the failure warning")
        warn = [l for l in self.spool.log().splitlines() if "on_result hook" in l]
        self.assertEqual(len(warn), 1, warn)
        self.assertIn("[warn]", warn[0])

    def test_missing_hook(self):
        self.start_with_hook("/nonexistent/spoolrun-hook")
        r = self.run_task({"id": "bm-1", "command": ["true"]})
        self.assert_untouched(r, "bm-1")
        self.spool.wait(lambda: "bm-1: on_result hook failed: command not found" in self.spool.log(),
                        what="the not-found warning")

    def test_hanging_hook_never_delays_the_next_task_and_dies_with_its_descendants(self):
        d = self.spool.tmp
        timeout = 4 * SLOW
        hook = write_script(os.path.join(d, "hang.sh"), f"""
setsid sh -c 'echo $$ > "{d}/escaped-$SPOOLRUN_ID"; exec sleep 300' </dev/null >/dev/null 2>&1 &
echo $$ > "{d}/hook-$SPOOLRUN_ID"
sleep 300
touch "{d}/ended-$SPOOLRUN_ID"
""")
        self.start_with_hook(hook, timeout)
        r1 = self.run_task({"id": "bh-1", "command": ["true"]})
        self.assert_untouched(r1, "bh-1")
        hook_pid = read_pid(os.path.join(d, "hook-bh-1"), "the hook's pid")
        escaped = read_pid(os.path.join(d, "escaped-bh-1"), "the escaped child's pid")
        # The next task runs and is published while the first hook still hangs.
        r2 = self.run_task({"id": "bh-2", "command": ["echo", "next"]})
        self.assert_untouched(r2, "bh-2")
        self.assertFalse(pid_gone(hook_pid), "the hook ended before the next task was published")
        self.assertNotIn("bh-1: on_result hook timed out", self.spool.log())
        self.spool.wait(lambda: "bh-1: on_result hook timed out after" in self.spool.log(),
                        timeout=timeout + 20, what="the timeout warning")
        wait_for(lambda: pid_gone(hook_pid) and pid_gone(escaped), what="the hook's tree to die")
        self.assertFalse(os.path.exists(os.path.join(d, "ended-bh-1")))
        # The hook's supervisor is reaped by the watcher: no zombie is left.
        wait_for(lambda: not [p for p in self.children() if p[1] == "Z"], what="no zombie children")
        self.spool.wait(lambda: "bh-2: on_result hook timed out after" in self.spool.log(),
                        timeout=timeout + 20, what="the second timeout warning")
        self.assertEqual(self.spool.stop(), 0)

    def children(self):
        """(pid, state) of the watcher's children."""
        out = []
        wpid = self.spool.proc.pid
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rindex(")") + 2:].split()
            if int(rest[1]) == wpid:
                out.append((int(p), rest[0]))
        return out

    def test_hook_output_is_bounded_in_the_log(self):
        self.start_with_hook("yes xxxxxxxxxxxxxxxxxxxxxxxx | head -c 200000")
        self.run_task({"id": "bo-1", "command": ["true"]})
        self.spool.wait(lambda: "bo-1: hook:" in self.spool.log() and "not logged" in self.spool.log(),
                        what="the bounded hook output")
        logged = sum(len(l) for l in self.spool.log().splitlines() if "bo-1: hook: xxx" in l)
        self.assertLess(logged, 20000)
        self.assertTrue(re.search(r"bo-1: hook: \d+ more byte\(s\) of output not logged", self.spool.log()))
