"""A file's identity is not guessable from metadata a producer controls
(issue 10 point 4): on ext4, which hands a freed inode to the next file, a
task file re-submitted with its times preserved (cp -p) gets the finished
one's inode, mtime and size, and must still get a result of its own."""
import os
import shutil
import subprocess
import tempfile

from harness import Spool, SpoolTest, wait_for


def mount_ext4(image, mnt):
    """A small ext4 on a loop device; an error text, or None when mounted."""
    for argv in (["truncate", "-s", "32M", image], ["mkfs.ext4", "-q", "-F", image],
                 ["mount", "-o", "loop", image, mnt]):
        p = subprocess.run(argv, capture_output=True, text=True)
        if p.returncode:
            return f"{argv[0]}: {(p.stderr or p.stdout).strip()}"
    return None


class InodeReuse(SpoolTest):
    START = False

    def setUp(self):
        super().setUp()
        if not shutil.which("mkfs.ext4"):
            self.skipTest("mkfs.ext4 is not installed (apt-get install e2fsprogs)")
        self.work = tempfile.mkdtemp(prefix="spoolrun-ext4-")
        self.addCleanup(shutil.rmtree, self.work, True)
        mnt = os.path.join(self.work, "mnt")
        os.mkdir(mnt)
        err = mount_ext4(os.path.join(self.work, "fs.img"), mnt)
        if err:
            self.skipTest(f"cannot mount an ext4 image (needs root and loop devices): {err}")
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], capture_output=True)
        os.chmod(mnt, 0o755)
        self.spool = Spool()
        self.addCleanup(self.spool.cleanup)
        self.spool.root = os.path.join(mnt, "spool")
        self.spool.staging = os.path.join(mnt, "staging")
        os.mkdir(self.spool.staging)

    def test_resubmitted_copy_with_reused_inode_gets_its_own_result(self):
        runs = os.path.join(self.spool.tmp, "runs")
        task = f'{{"id": "same", "command": ["/bin/sh", "-c", "echo run >> {runs}"]}}'
        orig = self.spool.stage("orig.json")
        with open(orig, "w") as f:
            f.write(task)
        keep = os.path.join(self.work, "keep.json")  # off the spool's file system
        shutil.copy2(orig, keep)
        ino = os.stat(orig).st_ino
        self.spool.start()
        self.spool.move_in("orig.json", "same.json")
        self.assertEqual(self.spool.result("same")["status"], "succeeded")
        wait_for(lambda: not os.listdir(self.spool.path("active")), what="active/ to empty")
        again = self.spool.stage("again.json")
        shutil.copy2(keep, again)  # cp -p: same bytes, same mtime
        if os.stat(again).st_ino != ino:
            self.skipTest("the file system did not reuse the inode this time")
        self.spool.move_in("again.json", "same.json")
        r = self.spool.result("same@2")
        self.assertEqual((r["status"], r["error"]["code"]), ("rejected", "duplicate_id"))
        self.assertEqual(self.spool.results(), ["same.json", "same@2.json"])
        with open(runs) as f:
            self.assertEqual(f.read().split(), ["run"])
