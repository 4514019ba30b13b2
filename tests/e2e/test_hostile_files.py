"""Files that fight back: links, FIFOs, directories, oversized files, foreign
owners, unsafe spool permissions, a second watcher, ids that try to leave
results/."""
import json
import os
import stat
import subprocess

from harness import BIN, SLOW, wait_for
from hostile_util import HostileTest, listdir, move_in, stage

NOBODY = 65534


def write(path, data):
    with open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)


class HostileFiles(HostileTest):
    def rejected(self, rid, code="invalid_file", timeout=5.0):
        r = self.spool.result(rid, timeout)
        self.assertEqual(r["status"], "rejected", r)
        self.assertEqual(r["error"]["code"], code, r["error"])
        return r

    def kept(self, name):
        """Waits for rejected/NAME (moved there just after the result is
        published) and returns its path."""
        p = self.spool.path("rejected", name)
        wait_for(lambda: os.path.lexists(p), what=f"rejected/{name}")
        return p

    def still_works(self):
        r = self.run_task({"id": "after", "command": ["echo", "fine"]})
        self.assertEqual(r["stdout"], "fine\n")

    def test_hostile_files_symlink_not_followed(self):
        marker = os.path.join(self.spool.tmp, "ran")
        target = os.path.join(self.spool.tmp, "outside.json")
        body = json.dumps({"id": "outside", "command": ["touch", marker]})
        write(target, body)
        before = os.stat(target)
        link = stage(self.spool, "x.json")
        os.symlink(target, link)
        move_in(self.spool, link)
        r = self.rejected("x")
        self.assertIn("symbolic link", r["error"]["message"])
        self.assertIsNone(r["task"], "the link's target must not be parsed")
        kept = self.kept("x.json")
        self.assertTrue(os.path.islink(kept), "rejected/ keeps the link itself")
        self.assertEqual(os.readlink(kept), target)
        self.assertEqual(r["rejected_file"], kept)
        with open(target) as f:
            self.assertEqual(f.read(), body)
        after = os.stat(target)
        self.assertEqual((after.st_ino, after.st_mtime_ns, after.st_mode),
                         (before.st_ino, before.st_mtime_ns, before.st_mode))
        self.assertFalse(os.path.exists(self.spool.result_path("outside")))
        self.still_works()
        self.assertFalse(os.path.exists(marker), "the target task must never run")

    def test_hostile_files_planted_symlinks_not_written_through(self):
        """Symlinks planted where the watcher writes (a log, a result) are
        never followed: their targets stay untouched."""
        victim = os.path.join(self.spool.tmp, "victim")
        write(victim, "precious\n")
        os.symlink(victim, self.spool.path("logs", "v.stdout"))
        r = self.run_task({"id": "v", "command": ["echo", "overwrite"]})
        self.assertEqual(r["stdout"], "overwrite\n", "output is still kept inline")
        os.symlink(victim, self.spool.path("results", "w.json"))
        self.foreign_results.add("w.json")  # planted: not a result to check
        self.spool.submit({"id": "w", "command": ["echo", "overwrite"]})
        wait_for(lambda: len(self.spool.results()) == 3, what="a result for w")
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        # The planted log link is removed with the old logs (unlink removes
        # the link, never its target), and the new log is a plain file.
        self.assertFalse(os.path.islink(self.spool.path("logs", "v.stdout")))
        with open(self.spool.path("logs", "v.stdout")) as f:
            self.assertEqual(f.read(), "overwrite\n")
        self.assertTrue(os.path.islink(self.spool.path("results", "w.json")))

    def test_hostile_files_fifo_does_not_block(self):
        fifo = stage(self.spool, "f.json")
        os.mkfifo(fifo)
        move_in(self.spool, fifo)
        r = self.rejected("f", timeout=3)
        self.assertIn("FIFO", r["error"]["message"])
        self.assertTrue(stat.S_ISFIFO(os.lstat(self.kept("f.json")).st_mode))
        self.still_works()

    def test_hostile_files_directory_rejected(self):
        d = stage(self.spool, "d.json")
        os.mkdir(d)
        write(os.path.join(d, "inside"), "x")
        move_in(self.spool, d)
        r = self.rejected("d")
        self.assertIn("directory", r["error"]["message"])
        self.assertTrue(os.path.isdir(self.kept("d.json")))
        self.still_works()

    def test_hostile_files_hard_link_rejected(self):
        marker = os.path.join(self.spool.tmp, "ran")
        f = stage(self.spool, "h.json")
        write(f, json.dumps({"command": ["touch", marker]}))
        other = os.path.join(self.spool.tmp, "second-name")
        os.link(f, other)
        move_in(self.spool, f)
        r = self.rejected("h")
        self.assertIn("hard link", r["error"]["message"])
        self.assertTrue(os.path.exists(other), "the other name is left alone")
        self.still_works()
        self.assertFalse(os.path.exists(marker))

    def test_hostile_files_special_names_ignored(self):
        # Not task names: never claimed, never get a result.
        for n in (".hidden.json", "notes.txt", ".json"):
            write(stage(self.spool, n), json.dumps({"command": ["true"]}))
            move_in(self.spool, stage(self.spool, n))
        self.still_works()
        self.assertEqual(self.spool.results(), ["after.json"])
        self.assertEqual(listdir(self.spool.path("incoming")), [".hidden.json", ".json", "notes.txt"])

    def test_hostile_files_id_cannot_escape_results(self):
        for i, bad in enumerate(["../x", "a/b", "/etc/passwd", ".hidden", "x" * 129, "", "ok\u00e9"]):
            name = f"esc{i}.json"
            self.spool.submit({"id": bad, "command": ["true"]}, name)
            r = self.rejected(f"esc{i}", "invalid_task")
            self.assertEqual(r["error"]["field"], "id", r["error"])
            self.assertEqual(r["id"], f"esc{i}", "filed under the file name instead")
        self.assertFalse(os.path.exists(self.spool.path("x.json")))
        self.assertFalse(os.path.exists(self.spool.path("results", "a")))
        self.assertEqual(sorted(os.listdir(self.spool.path("results"))),
                         sorted(f"esc{i}.json" for i in range(7)))
        self.assertEqual(sorted(os.listdir(self.spool.path("logs"))), [])

    def test_hostile_files_filename_cannot_escape_results(self):
        # No "id": the file name is the id; a name that is not a valid id is
        # refused, and its result filed under a sanitised name.
        self.spool.submit({"command": ["true"]}, "we ird$name.json")
        r = self.rejected("we_ird_name", "invalid_task")
        self.assertEqual(r["error"]["field"], "id")


class TaskSize(HostileTest):
    CONFIG = "[spool]\nmax_task_bytes = 1K\n"

    def test_hostile_files_oversized_task_rejected(self):
        marker = os.path.join(self.spool.tmp, "ran")
        self.spool.submit({"id": "big", "command": ["touch", marker], "meta": {"pad": "p" * 2000}})
        r = self.spool.result("big")
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], "invalid_file")
        self.assertIn("max_task_bytes", r["error"]["message"])
        self.assertFalse(os.path.exists(marker))
        # Just under the limit is fine.
        r = self.run_task({"id": "small", "command": ["true"], "meta": {"pad": "p" * 900}})
        self.assertEqual(r["status"], "succeeded", r)


class OwnedTasks(HostileTest):
    def submit_owned(self, task, uid, name=None):
        name = name or task["id"] + ".json"
        p = stage(self.spool, name)
        write(p, json.dumps(task))
        os.chown(p, uid, uid)
        move_in(self.spool, p, name)
        return name


class Owners(OwnedTasks):
    def test_hostile_files_foreign_owner_rejected(self):
        marker = os.path.join(self.spool.tmp, "ran")
        self.submit_owned({"id": "foreign", "command": ["touch", marker]}, NOBODY)
        r = self.spool.result("foreign")
        self.assertEqual(r["status"], "rejected", r)
        self.assertEqual(r["error"]["code"], "invalid_owner")
        self.assertIn("allowed_owners", r["error"]["message"])
        self.assertFalse(os.path.exists(marker))


class AllowedOwners(OwnedTasks):
    CONFIG = "[spool]\nallowed_owners = nobody\n"

    def test_hostile_files_allowed_owner_runs(self):
        self.submit_owned({"id": "fromnobody", "command": ["id", "-u"]}, NOBODY)
        r = self.spool.result("fromnobody")
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["stdout"], "0\n", "without run_as_owner it runs as the runner")
        self.submit_owned({"id": "other", "command": ["true"]}, 12345)
        self.assertEqual(self.spool.result("other")["error"]["code"], "invalid_owner")


class RunAsOwner(OwnedTasks):
    CONFIG = "[spool]\nrun_as_owner = yes\nallowed_owners = nobody\n"

    def test_hostile_files_run_as_owner(self):
        self.submit_owned({"id": "asnobody", "cwd": "/",
                           "command": ["/bin/sh", "-c", "id -u; id -g; id -G; cat /etc/shadow"]},
                          NOBODY)
        r = self.spool.result("asnobody")
        self.assertEqual(r["stdout"].splitlines(), ["65534", "65534", "65534"], r)
        self.assertNotEqual(r["exit_code"], 0, "nobody must not read /etc/shadow")
        self.assertIn("shadow", r["stderr"])
        # The runner's files stay the runner's.
        self.assertEqual(os.stat(self.spool.result_path("asnobody")).st_uid, 0)

    def test_hostile_files_run_as_owner_refuses_root_tasks(self):
        marker = os.path.join(self.spool.tmp, "ran")
        self.submit_owned({"id": "asroot", "command": ["touch", marker]}, 0)
        r = self.spool.result("asroot")
        self.assertEqual(r["status"], "rejected", r)
        self.assertEqual(r["error"]["code"], "invalid_owner")
        self.assertIn("allow_root_tasks", r["error"]["message"])
        self.assertFalse(os.path.exists(marker))


class RunAsOwnerAllowRoot(OwnedTasks):
    CONFIG = "[spool]\nrun_as_owner = yes\nallow_root_tasks = yes\n"

    def test_hostile_files_run_as_owner_allow_root(self):
        self.submit_owned({"id": "asroot", "command": ["id", "-u"]}, 0)
        r = self.spool.result("asroot")
        self.assertEqual(r["status"], "succeeded", r)
        self.assertEqual(r["stdout"], "0\n")


class ModeBase(HostileTest):
    def modes(self, rid):
        paths = [self.spool.result_path(rid), self.spool.path("logs", rid + ".stdout"),
                 self.spool.path("logs", rid + ".stderr")]
        return [stat.S_IMODE(os.stat(p).st_mode) for p in paths]


class FileModes(ModeBase):
    def test_hostile_files_default_mode_0640(self):
        old = os.umask(0)  # the watcher's modes must not depend on the umask
        try:
            self.spool.stop()
            self.spool.start()
        finally:
            os.umask(old)
        self.run_task({"id": "m", "command": ["sh", "-c", "echo x; echo y >&2"]})
        self.assertEqual(self.modes("m"), [0o640] * 3)
        self.spool.submit({"id": "bad", "command": 1})
        self.spool.result("bad")
        self.assertEqual(stat.S_IMODE(os.stat(self.spool.result_path("bad")).st_mode), 0o640)


class FileMode0600(ModeBase):
    CONFIG = "[spool]\nfile_mode = 0600\n"

    def test_hostile_files_configured_mode(self):
        self.run_task({"id": "m", "command": ["sh", "-c", "echo x; echo y >&2"]})
        self.assertEqual(self.modes("m"), [0o600] * 3)


class SpoolPermissions(HostileTest):
    START = False

    def start_fails(self, code):
        p = self.spool.start(wait=False)
        try:
            rc = p.wait(10 * SLOW)
        except subprocess.TimeoutExpired:
            self.fail("the watcher should have exited")
        self.spool.stderr.close()
        self.spool.proc = None
        self.assertEqual(rc, code, self.spool.log())
        return self.spool.log()

    def test_hostile_files_world_writable_root_refused(self):
        os.makedirs(self.spool.root)
        os.chmod(self.spool.root, 0o777)
        log = self.start_fails(74)
        self.assertIn(self.spool.root, log)
        self.assertIn("0777", log)
        self.assertNotIn("watching", log)
        self.spool.config = os.path.join(self.spool.tmp, "lax.ini")
        write(self.spool.config, "[spool]\ncheck_permissions = no\n")
        self.spool.start()
        self.assertEqual(self.run_task({"id": "ok", "command": ["true"]})["status"], "succeeded")

    def test_hostile_files_group_writable_results_refused(self):
        os.makedirs(self.spool.path("results"))
        os.chmod(self.spool.path("results"), 0o775)
        log = self.start_fails(74)
        self.assertIn(self.spool.path("results"), log)
        self.assertIn("0775", log)

    def test_hostile_files_second_watcher_exits_75(self):
        self.spool.start()
        p = subprocess.run([BIN, "watch", *self.spool.args()], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=5 * SLOW)
        self.assertEqual(p.returncode, 75, p.stderr)
        self.assertIn(b"in use", p.stderr)
        self.assertIsNone(self.spool.proc.poll(), "the first watcher carries on")
        self.assertEqual(self.run_task({"id": "ok", "command": ["true"]})["status"], "succeeded")
