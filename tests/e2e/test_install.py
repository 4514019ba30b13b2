"""`make install DESTDIR=... PREFIX=/usr/local` lays out every file; the
installed client imports with Debian's python3; the installed config
points at /var/spool/spoolrun and is never overwritten; the unit, the cron
example and the config name the same paths; systemd-analyze verify accepts
the installed unit."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import REPO, run_cli

PYTHON = "/usr/bin/python3"  # the python3 `make install` targets (Debian's)


def make_install(destdir, *extra):
    return subprocess.run(["make", "--no-print-directory", "-C", REPO, "install", f"DESTDIR={destdir}",
                           "PREFIX=/usr/local", f"PYTHON={PYTHON}", *extra],
                          capture_output=True, text=True, timeout=600)


@unittest.skipUnless(os.access(PYTHON, os.X_OK), f"{PYTHON} is missing (Debian package python3)")
class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="spoolrun-install-")
        p = make_install(cls.dest)
        if p.returncode != 0:
            raise AssertionError(f"make install failed: {p.stdout[-2000:]}{p.stderr[-2000:]}")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def at(self, path):
        return os.path.join(self.dest, path.lstrip("/"))

    def read(self, path):
        with open(self.at(path)) as f:
            return f.read()

    def site_dir(self):
        return subprocess.run([PYTHON, "-c", "import site; print([p for p in site.getsitepackages() "
                               "if p.startswith('/usr/local/')][0])"],
                              capture_output=True, text=True, check=True).stdout.strip()

    def test_every_file_is_laid_out(self):
        files = {
            "/usr/local/bin/spoolrun": 0o755,
            "/usr/local/share/man/man1/spoolrun.1": 0o644,
            self.site_dir() + "/spoolrun_client.py": 0o644,
            "/usr/local/lib/systemd/system/spoolrun.service": 0o644,
            "/usr/local/lib/sysusers.d/spoolrun.conf": 0o644,
            "/usr/local/lib/tmpfiles.d/spoolrun.conf": 0o644,
            "/usr/local/share/doc/spoolrun/spoolrun.cron": 0o644,
            "/usr/local/share/doc/spoolrun/service.md": 0o644,
            "/etc/spoolrun/spoolrun.ini": 0o644,
        }
        for path, mode in files.items():
            st = os.stat(self.at(path))
            self.assertEqual(st.st_mode & 0o777, mode, path)
        p = subprocess.run([self.at("/usr/local/bin/spoolrun"), "--version"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith("spoolrun "))
        # Nothing is written outside DESTDIR's tree of these directories.
        top = sorted(os.listdir(self.dest))
        self.assertEqual(top, ["etc", "usr"])

    def test_installed_client_imports_where_python3_looks(self):
        site = self.site_dir()
        # The directory is on Debian python3's own path (no PYTHONPATH needed
        # once DESTDIR is the real root) ...
        path = subprocess.run([PYTHON, "-c", "import sys; print('\\n'.join(sys.path))"],
                              capture_output=True, text=True, check=True).stdout.split()
        self.assertIn(site, path)
        # ... and the file there imports and works.
        env = dict(os.environ, PYTHONPATH=self.at(site))
        p = subprocess.run([PYTHON, "-c", "import spoolrun_client as c; print(c.__file__); "
                            "print(callable(c.submit) and callable(c.execute_task))"],
                           capture_output=True, text=True, env=env, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), [self.at(site) + "/spoolrun_client.py", "True"])

    def test_system_config_points_at_the_system_spool(self):
        ini = self.read("/etc/spoolrun/spoolrun.ini")
        self.assertRegex(ini, r"(?m)^root = /var/spool/spoolrun$")
        self.assertNotIn("../spool", ini)
        # It is a valid config: exec loads it (and runs a task without a spool).
        p = subprocess.run([self.at("/usr/local/bin/spoolrun"), "exec", "--config",
                            self.at("/etc/spoolrun/spoolrun.ini"), "-"],
                           input='{"command": ["echo", "ok"]}', capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_config_is_never_overwritten(self):
        dest = tempfile.mkdtemp(prefix="spoolrun-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        self.assertEqual(make_install(dest).returncode, 0)
        conf = os.path.join(dest, "etc/spoolrun/spoolrun.ini")
        with open(conf, "w") as f:
            f.write("[spool]\nroot = /srv/mine\n")
        p = make_install(dest)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("keeping", p.stdout)
        with open(conf) as f:
            self.assertEqual(f.read(), "[spool]\nroot = /srv/mine\n")

    def test_unit_cron_and_config_name_the_same_paths(self):
        unit = self.read("/usr/local/lib/systemd/system/spoolrun.service")
        cron = self.read("/usr/local/share/doc/spoolrun/spoolrun.cron")
        tmpfiles = self.read("/usr/local/lib/tmpfiles.d/spoolrun.conf")
        ini = self.read("/etc/spoolrun/spoolrun.ini")
        exec_start = re.search(r"(?m)^ExecStart=(\S+) watch --config (\S+)$", unit)
        cron_line = re.search(r"(?m)^[^#].* (\S+) drain --config (\S+) ", cron)
        self.assertTrue(exec_start and cron_line, (unit, cron))
        self.assertEqual(exec_start.groups(), ("/usr/local/bin/spoolrun", "/etc/spoolrun/spoolrun.ini"))
        self.assertEqual(cron_line.groups(), exec_start.groups())
        self.assertTrue(os.path.exists(self.at(exec_start.group(1))))
        self.assertTrue(os.path.exists(self.at(exec_start.group(2))))
        spool = re.search(r"(?m)^root = (\S+)$", ini).group(1)
        self.assertIn(f"d {spool} 0755 spoolrun spoolrun", tmpfiles)
        self.assertIn("User=spoolrun", unit)
        self.assertIn(" spoolrun /usr/local/bin/spoolrun drain", cron)  # cron.d user field
        # The repository's own copies (and the README's cron line) say the same.
        for name in ("scripts/spoolrun.service", "scripts/spoolrun.cron", "docs/service.md", "README.md"):
            with open(os.path.join(REPO, name)) as f:
                text = f.read()
            for m in re.finditer(r"spoolrun (?:watch|drain) --config (/\S+)", text):
                self.assertEqual(m.group(1), "/etc/spoolrun/spoolrun.ini", f"{name}: {m.group(0)}")

    def test_other_paths_follow_the_variables(self):
        dest = tempfile.mkdtemp(prefix="spoolrun-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        p = make_install(dest, "PREFIX=/opt/sr", "SYSCONFDIR=/etc/opt/sr", "SPOOLDIR=/srv/spool")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(dest, "opt/sr/lib/systemd/system/spoolrun.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/opt/sr/bin/spoolrun watch --config /etc/opt/sr/spoolrun/spoolrun.ini", unit)
        with open(os.path.join(dest, "etc/opt/sr/spoolrun/spoolrun.ini")) as f:
            self.assertRegex(f.read(), r"(?m)^root = /srv/spool$")
        self.assertTrue(os.path.exists(os.path.join(dest, "opt/sr/lib/python3/dist-packages/spoolrun_client.py")))

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed (Debian package systemd)")
    def test_systemd_analyze_verify_accepts_the_installed_unit(self):
        # verify runs the unit's checks offline: ExecStart must exist (point it
        # into DESTDIR) and Documentation=man:spoolrun(1) must open (MANPATH).
        unit = self.read("/usr/local/lib/systemd/system/spoolrun.service").replace(
            "/usr/local/bin/spoolrun", self.at("/usr/local/bin/spoolrun"))
        tmp = tempfile.mkdtemp(prefix="spoolrun-unit-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "spoolrun.service")

        def verify(text):
            with open(path, "w") as f:
                f.write(text)
            args = ["systemd-analyze", "verify"]
            if not shutil.which("man"):
                args.append("--man=no")  # nothing to open man pages with
            env = dict(os.environ, MANPATH=self.at("/usr/local/share/man"))
            p = subprocess.run(args + [path], capture_output=True, text=True, env=env, timeout=120)
            return p.returncode, (p.stdout + p.stderr).strip()
        rc, out = verify(unit)
        if rc != 0 and "spoolrun.service" not in out:
            self.skipTest(f"systemd-analyze cannot run here: {out[:300]}")
        self.assertEqual((rc, out), (0, ""))
        # And it does check: a broken unit is refused.
        rc, out = verify(unit.replace("KillMode=mixed", "KillMode=sometimes"))
        self.assertIn("kill mode", out.lower())
