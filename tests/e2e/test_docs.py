"""The docs move with the code: the man page is lint-clean; every command
and config key the program knows is documented in the reference (docs/)
and the man page; every link in README.md and docs/ leads somewhere; the
README stays a short front door whose tour runs as written."""
import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BIN, SLOW, Spool, run_cli

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def reference():
    """Every page of docs/, one text."""
    return "\n".join(open(p).read() for p in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))))


def slug(title):
    """A heading's anchor, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text):
    out, fence = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


class Docs(unittest.TestCase):
    @unittest.skipUnless(shutil.which("mandoc"), "mandoc is not installed")
    def test_man_page_is_lint_clean(self):
        p = subprocess.run(["mandoc", "-T", "lint", os.path.join(ROOT, "docs", "spoolrun.1")],
                           capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_every_command_is_documented(self):
        """In the man page and with an entry (**`cmd ...`**) in a page of docs/."""
        usage = run_cli("--help").stdout
        commands = sorted(set(re.findall(r"^(?:usage:)? +spoolrun (\w+)", usage, re.M)))
        self.assertGreaterEqual(len(commands), 9, usage)
        man, docs = read("docs", "spoolrun.1"), reference()
        for c in commands:
            self.assertIn(c, man, f"spoolrun {c} missing from docs/spoolrun.1")
            self.assertRegex(docs, rf"\*\*`{c}\b|`spoolrun {c}\b", f"spoolrun {c} has no entry in docs/*.md")
            self.assertEqual(run_cli(c, "--help").returncode, 0, c)

    def test_every_option_of_every_command_is_documented(self):
        docs = reference()
        for c in ("submit", "wait", "cancel", "status", "tail", "validate"):
            for opt in set(re.findall(r"--[a-z][a-z-]+", run_cli(c, "--help").stdout)):
                self.assertIn(f"`{opt}", docs, f"spoolrun {c} {opt} missing from docs/*.md")

    def test_every_config_key_is_documented(self):
        """In a page of docs/ (as `key`), the man page and conf/spoolrun.ini."""
        src = read("src", "config.c")
        keys = re.findall(r'KEY\("(\w+):(\w+)"', src) + \
            [("limits", k) for k in re.findall(r'LIMIT\("(\w+)"', src)]
        self.assertGreater(len(keys), 20)
        man, docs, ini = read("docs", "spoolrun.1"), reference(), read("conf", "spoolrun.ini")
        for section, key in keys:
            self.assertRegex(docs, rf"`(\[{section}\] )?{key}( = [^`]*)?`",
                             f"[{section}] {key} missing from docs/*.md")
            self.assertIn(key, man, f"[{section}] {key} missing from docs/spoolrun.1")
            self.assertIn(key, ini, f"[{section}] {key} missing from conf/spoolrun.ini")

    def test_every_link_leads_somewhere(self):
        pages = [os.path.join(ROOT, "README.md")] + glob.glob(os.path.join(ROOT, "docs", "*.md"))
        for page in pages:
            with open(page) as f:
                text = f.read()
            for target in re.findall(r"\]\(([^)\s]+)\)", text):
                if re.match(r"[a-z]+:", target):
                    continue
                path, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
                where = f"{os.path.relpath(page, ROOT)}: link {target}"
                self.assertTrue(os.path.exists(dest), f"{where}: no such file")
                if anchor and dest.endswith(".md"):
                    with open(dest) as f:
                        self.assertIn(anchor, anchors(f.read()), f"{where}: no such heading")

    def test_readme_is_a_short_front_door(self):
        readme = read("README.md")
        self.assertLess(len(readme.splitlines()), 150, "the reference belongs in docs/")
        for words in ("make run", "make test", "## Reference", "docs/cli.md", "docs/config.md"):
            self.assertIn(words, readme)


class Tour(unittest.TestCase):
    """The README's five-minute tour, run as written against a temporary
    spool (its config and build directory substituted)."""

    @unittest.skipUnless(shutil.which("jq"), "jq is not installed (scripts/install-deps.sh installs it)")
    def test_tour_runs_as_written(self):
        block = re.search(r"<!-- tour.*?-->\n```sh\n(.*?)```", read("README.md"), re.S).group(1)
        spool = Spool()
        self.addCleanup(spool.cleanup)
        ini = os.path.join(spool.tmp, "tour.ini")
        with open(ini, "w") as f:
            f.write(f"[spool]\nroot = {spool.root}\n")
        spool.start()
        script = (block.replace("$PWD/conf/spoolrun.ini", ini)
                  .replace("$PWD/build", os.path.dirname(os.path.abspath(BIN))))
        p = subprocess.run(["bash", "-c", script], cwd=spool.tmp, capture_output=True, text=True,
                           timeout=120 * SLOW)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lines = p.stdout.splitlines()
        for want in ("hello, world", "exit 3", "cancelled", "succeeded"):
            self.assertIn(want, lines, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"\.tmp: ok")
        self.assertRegex(p.stdout, r"cancell(ed|ing)")
        self.assertIn("ID", p.stdout)

    def test_python_example_runs_as_written(self):
        block = re.search(r"```python\n(.*?)```", read("docs", "python.md"), re.S).group(1)
        spool = Spool()
        self.addCleanup(spool.cleanup)
        spool.start()
        script = block.replace('spool="spool"', f'spool="{spool.root}"')
        p = subprocess.run(["python3", "-c", script], cwd=ROOT, capture_output=True, text=True,
                           timeout=120 * SLOW)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines(), ["failed 3 hello",
                                                 "FAKE:echo Summarise README.md."], p.stderr)
