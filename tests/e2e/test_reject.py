"""Refused task files: bad JSON, bad fields, duplicates, files that are not
plain task files. A refused file is moved to rejected/ unchanged and gets a
result with status "rejected"."""
import json
import os
import stat

from harness import SpoolTest, wait_for


def wait_kept(path):
    """Waits for a rejected file to land in rejected/ (it is moved there
    just after its result is published)."""
    wait_for(lambda: os.path.lexists(path), timeout=5, what=f"{path} in rejected/")


class Reject(SpoolTest):
    def assert_rejected(self, rid, code, name, original=None):
        r = self.spool.result(rid)
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], code, r["error"])
        self.assertIsNone(r["exit_code"])
        self.assertIsNone(r["pid"])
        self.assertEqual(r["task_file"], name)
        kept = self.spool.path("rejected", name)
        self.assertEqual(r["rejected_file"], kept)
        # The result is published first, then the file moved: wait for it.
        wait_kept(kept)
        self.assertFalse(os.path.lexists(self.spool.path("incoming", name)))
        self.assertFalse(os.path.lexists(self.spool.path("active", name)))
        if original is not None:
            with open(kept, "rb") as f:
                self.assertEqual(f.read(), original, "rejected file must be byte-identical")
        return r

    def test_malformed_json(self):
        data = b'{"id": "bad",\n  "command": ["true"]\n  "oops": 1}\n\xff trailing'
        name = self.spool.submit(data, name="broken.json")
        r = self.assert_rejected("broken", "invalid_json", name, data)
        msg = r["error"]["message"]
        self.assertIn("line 3", msg)
        self.assertRegex(msg, r"column \d+")
        self.assertIn("broken.json", msg)
        self.assertIsNone(r["task"])

    def test_not_an_object(self):
        name = self.spool.submit(b'["echo", "hi"]', name="array.json")
        r = self.assert_rejected("array", "invalid_task", name, b'["echo", "hi"]')
        self.assertIn("object", r["error"]["message"])

    def test_empty_file(self):
        name = self.spool.submit(b"", name="empty.json")
        self.assert_rejected("empty", "invalid_json", name, b"")

    def test_wrong_field_type(self):
        task = {"id": "wt", "command": ["true"], "timeout": "5"}
        name = self.spool.submit(task)
        r = self.assert_rejected("wt", "invalid_task", name, json.dumps(task).encode())
        self.assertEqual(r["error"]["field"], "timeout")
        self.assertIn('"timeout"', r["error"]["message"])
        self.assertEqual(r["task"], task, "the parsed task is echoed back")

    def test_wrong_types_name_their_field(self):
        cases = {
            "f-cmd": {"command": 42},
            "f-cmdelem": {"command": ["echo", 1]},
            "f-env": {"command": ["true"], "env": {"A": 1}},
            "f-stdin": {"command": ["true"], "stdin": ["x"]},
            "f-prio": {"command": ["true"], "priority": 1.5},
            "f-grace": {"command": ["true"], "kill_grace": -1},
            "f-cwd": {"command": ["true"], "cwd": ""},
            "f-format": {"command": ["true"], "format": 2},
        }
        expect = {"f-cmd": "command", "f-cmdelem": "command", "f-env": "env", "f-stdin": "stdin",
                  "f-prio": "priority", "f-grace": "kill_grace", "f-cwd": "cwd", "f-format": "format"}
        for rid, t in cases.items():
            self.spool.submit(dict(t, id=rid))
        for rid, field in expect.items():
            r = self.spool.result(rid)
            self.assertEqual(r["status"], "rejected", rid)
            self.assertEqual(r["error"]["code"], "invalid_task", rid)
            self.assertEqual(r["error"]["field"], field, rid)
            self.assertIn(f'"{field}"', r["error"]["message"], rid)

    def test_missing_command(self):
        name = self.spool.submit({"id": "nocmd"})
        r = self.assert_rejected("nocmd", "invalid_task", name)
        self.assertEqual(r["error"]["field"], "command")

    def test_unknown_field(self):
        marker = os.path.join(self.spool.tmp, "ran")
        task = {"id": "uf", "command": ["touch", marker], "colour": "red"}
        name = self.spool.submit(task)
        r = self.assert_rejected("uf", "invalid_task", name, json.dumps(task).encode())
        self.assertEqual(r["error"]["field"], "colour")
        self.assertIn("colour", r["error"]["message"])
        self.assertFalse(os.path.exists(marker), "a rejected task never runs")

    def test_duplicate_keys_rejected(self):
        data = b'{"id": "dupkey", "command": ["true"], "command": ["false"]}'
        name = self.spool.submit(data, name="dupkey.json")
        self.assert_rejected("dupkey", "invalid_json", name, data)

    def test_invalid_id_result_named_from_file(self):
        name = self.spool.submit({"id": "has space", "command": ["true"]}, name="badid.json")
        r = self.assert_rejected("badid", "invalid_task", name)
        self.assertEqual(r["error"]["field"], "id")
        self.assertEqual(r["id"], "badid")

    def test_rejection_filed_under_task_id(self):
        name = self.spool.submit({"id": "real-id", "command": 5}, name="file-name.json")
        r = self.assert_rejected("real-id", "invalid_task", name)
        self.assertEqual(r["id"], "real-id")
        self.assertFalse(os.path.exists(self.spool.result_path("file-name")))

    def test_duplicate_id(self):
        marker = os.path.join(self.spool.tmp, "second-ran")
        first = self.run_task({"id": "dup", "command": ["echo", "first"]})
        self.assertEqual(first["status"], "succeeded")
        with open(self.spool.result_path("dup"), "rb") as f:
            first_bytes = f.read()
        name2 = self.spool.submit({"id": "dup", "command": ["touch", marker]}, name="dup-again.json")
        r2 = self.spool.result("dup@2")
        self.assertEqual(r2["status"], "rejected")
        self.assertEqual(r2["id"], "dup")
        self.assertEqual(r2["error"]["code"], "duplicate_id")
        self.assertEqual(r2["error"]["field"], "id")
        self.assertEqual(r2["task_file"], name2)
        wait_kept(self.spool.path("rejected", name2))
        name3 = self.spool.submit({"id": "dup", "command": ["touch", marker]}, name="dup-third.json")
        r3 = self.spool.result("dup@3")
        self.assertEqual(r3["error"]["code"], "duplicate_id")
        self.assertEqual(r3["task_file"], name3)
        self.assertFalse(os.path.exists(marker), "a duplicate never runs")
        with open(self.spool.result_path("dup"), "rb") as f:
            self.assertEqual(f.read(), first_bytes, "the first result is untouched")
        self.assertEqual(self.spool.results(), ["dup.json", "dup@2.json", "dup@3.json"])

    def test_same_file_name_rejected_twice_kept_apart(self):
        self.spool.submit(b"{", name="twice.json")
        self.spool.result("twice")
        self.spool.submit(b"}", name="twice.json")
        r2 = self.spool.result("twice@2")
        self.assertEqual(r2["error"]["code"], "invalid_json")
        kept = r2["rejected_file"]
        wait_kept(kept)
        self.assertNotEqual(kept, self.spool.path("rejected", "twice.json"))
        with open(kept, "rb") as f:
            self.assertEqual(f.read(), b"}")
        with open(self.spool.path("rejected", "twice.json"), "rb") as f:
            self.assertEqual(f.read(), b"{")


class NotPlainFiles(SpoolTest):
    def test_symlink_rejected(self):
        marker = os.path.join(self.spool.tmp, "ran")
        target = os.path.join(self.spool.tmp, "real-task.json")
        with open(target, "w") as f:
            json.dump({"id": "viasymlink", "command": ["touch", marker]}, f)
        os.symlink(target, self.spool.stage("link.json"))
        self.spool.move_in("link.json")
        r = self.spool.result("link")
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], "invalid_file")
        self.assertIn("symbolic link", r["error"]["message"])
        kept = self.spool.path("rejected", "link.json")
        wait_kept(kept)
        self.assertTrue(os.path.islink(kept), "the link itself is moved to rejected/")
        self.assertEqual(os.readlink(kept), target)
        self.assertFalse(os.path.exists(marker))
        self.assertFalse(os.path.exists(self.spool.result_path("viasymlink")))

    def test_fifo_rejected_without_hanging(self):
        os.mkfifo(self.spool.stage("pipe.json"))
        self.spool.move_in("pipe.json")
        r = self.spool.result("pipe", timeout=5)
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], "invalid_file")
        self.assertIn("FIFO", r["error"]["message"])
        wait_kept(self.spool.path("rejected", "pipe.json"))
        self.assertTrue(stat.S_ISFIFO(os.lstat(self.spool.path("rejected", "pipe.json")).st_mode))
        # Still serving.
        self.assertEqual(self.run_task({"id": "afterfifo", "command": ["true"]})["status"], "succeeded")

    def test_directory_rejected(self):
        os.mkdir(self.spool.stage("x.json"))
        self.spool.move_in("x.json")
        r = self.spool.result("x")
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], "invalid_file")
        self.assertIn("directory", r["error"]["message"])
        wait_kept(self.spool.path("rejected", "x.json"))
        self.assertTrue(os.path.isdir(self.spool.path("rejected", "x.json")))
        self.assertFalse(os.path.lexists(self.spool.path("incoming", "x.json")))

    def test_hard_link_rejected(self):
        marker = os.path.join(self.spool.tmp, "ran")
        with open(self.spool.stage("hl.json"), "w") as f:
            json.dump({"id": "hl", "command": ["touch", marker]}, f)
        os.link(self.spool.stage("hl.json"), self.spool.stage("hl-other-name"))
        self.spool.move_in("hl.json")
        r = self.spool.result("hl")
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], "invalid_file")
        self.assertIn("hard link", r["error"]["message"])
        self.assertFalse(os.path.exists(marker))
        wait_kept(self.spool.path("rejected", "hl.json"))

    def test_ignored_names(self):
        dot = self.spool.submit({"id": "dotted", "command": ["true"]}, name=".hidden.json")
        txt = self.spool.submit({"id": "texty", "command": ["true"]}, name="notes.txt")
        bare = self.spool.submit({"id": "bare", "command": ["true"]}, name=".json")
        # A later task is a barrier: its events come after those above.
        self.run_task({"id": "barrier", "command": ["true"]})
        for n in (dot, txt, bare):
            self.assertTrue(os.path.exists(self.spool.path("incoming", n)), f"{n} left alone")
        self.assertEqual(self.spool.results(), ["barrier.json"])
        self.assertEqual(os.listdir(self.spool.path("rejected")), [])


class TooLarge(SpoolTest):
    CONFIG = "[spool]\nmax_task_bytes = 200\n"

    def test_task_larger_than_max_task_bytes(self):
        marker = os.path.join(self.spool.tmp, "ran")
        task = {"id": "big", "command": ["touch", marker], "meta": "x" * 300}
        name = self.spool.submit(task)
        r = self.spool.result("big")
        self.assertEqual(r["status"], "rejected")
        self.assertEqual(r["error"]["code"], "invalid_file")
        self.assertIn("max_task_bytes", r["error"]["message"])
        self.assertFalse(os.path.exists(marker))
        wait_kept(self.spool.path("rejected", name))
        with open(self.spool.path("rejected", name), "rb") as f:
            self.assertEqual(f.read(), json.dumps(task).encode())

    def test_task_at_limit_runs(self):
        task = {"id": "fits", "command": ["true"]}
        data = json.dumps(task).encode()
        data += b" " * (200 - len(data))
        self.assertEqual(len(data), 200)
        self.spool.submit(data, name="fits.json")
        self.assertEqual(self.spool.result("fits")["status"], "succeeded")
