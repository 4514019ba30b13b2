"""The docs move with the code: the man page is lint-clean, and every
command and config key the program knows is documented."""
import os
import re
import shutil
import subprocess
import unittest

from harness import run_cli

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


class Docs(unittest.TestCase):
    @unittest.skipUnless(shutil.which("mandoc"), "mandoc is not installed")
    def test_man_page_is_lint_clean(self):
        p = subprocess.run(["mandoc", "-T", "lint", os.path.join(ROOT, "docs", "spoolrun.1")],
                           capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_every_command_is_documented(self):
        usage = run_cli("--help").stdout
        commands = sorted(set(re.findall(r"^(?:usage:)? +spoolrun (\w+)", usage, re.M)))
        self.assertGreaterEqual(len(commands), 9, usage)
        man, readme = read("docs", "spoolrun.1"), read("README.md")
        for c in commands:
            self.assertIn(c, man, f"spoolrun {c} missing from docs/spoolrun.1")
            self.assertIn(f"spoolrun {c}", readme, f"spoolrun {c} missing from README.md")
            self.assertEqual(run_cli(c, "--help").returncode, 0, c)

    def test_every_config_key_is_documented(self):
        src = read("src", "config.c")
        keys = re.findall(r'KEY\("(\w+):(\w+)"', src) + \
            [("limits", k) for k in re.findall(r'LIMIT\("(\w+)"', src)]
        self.assertGreater(len(keys), 20)
        man, ini = read("docs", "spoolrun.1"), read("conf", "spoolrun.ini")
        # The reference lives in README.md or in docs/*.md, which it links.
        readme = read("README.md") + "".join(read("docs", n) for n in sorted(os.listdir(os.path.join(ROOT, "docs")))
                                             if n.endswith(".md"))
        for section, key in keys:
            self.assertIn(key, readme, f"[{section}] {key} missing from README.md and docs/*.md")
            self.assertIn(key, man, f"[{section}] {key} missing from docs/spoolrun.1")
            self.assertIn(key, ini, f"[{section}] {key} missing from conf/spoolrun.ini")
