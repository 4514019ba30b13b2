"""Helpers for the end-to-end tests: a real spoolrun watcher on a real
temporary spool. Every wait is on a condition with a deadline, never a
fixed sleep."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("SPOOLRUN_BIN", os.path.join(os.path.dirname(__file__), "../../build/spoolrun"))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCHEMAS = os.path.join(REPO, "docs")
# Sanitizer builds are several times slower; deadlines scale with this.
SLOW = float(os.environ.get("SPOOLRUN_TEST_SLOW", "1"))


def wait_for(cond, timeout=10.0, interval=0.005, what="condition"):
    """Polls cond() until it returns a true value, which is returned; fails
    the test with `what` once the deadline passes."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * SLOW:.1f}s waiting for {what}")
        time.sleep(interval)


@contextlib.contextmanager
def environ(changes):
    """os.environ with changes applied (a value of None removes the
    variable) for the duration of a with block, then as it was."""
    saved = {k: os.environ.get(k) for k in changes}
    try:
        for k, v in changes.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pid_gone(pid):
    """True once pid no longer names a live process (absent, or a zombie
    nobody has reaped yet, which can no longer run)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return st[st.rindex(")") + 2] in "ZX"


def read_pid(path, what="pid file"):
    """Waits for a task to write its pid (or any integer) to path."""
    def get():
        try:
            with open(path) as f:
                s = f.read().strip()
            return int(s) if s else None
        except (FileNotFoundError, ValueError):
            return None
    return wait_for(get, what=what)


def run_cli(*args, input=None, timeout=30, env=None):
    """Runs the spoolrun binary with args; returns the CompletedProcess
    (stdout and stderr as text)."""
    return subprocess.run([BIN, *args], input=input, capture_output=True, text=True,
                          timeout=timeout * SLOW, env=env)


_sanitized = None


def sanitized():
    """Whether BIN is an AddressSanitizer build (which needs more memory)."""
    global _sanitized
    if _sanitized is None:
        with open(BIN, "rb") as f:
            _sanitized = b"__asan_init" in f.read()
    return _sanitized


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


_validators = {}


def schema_validator(name):
    """A jsonschema Draft 2020-12 validator for docs/<name>.schema.json
    ("task" or "result"), loaded once. jsonschema is imported here, lazily:
    a missing module fails the calling test with how to install it."""
    if name not in _validators:
        try:
            import jsonschema
        except ImportError:
            raise AssertionError("the Python module jsonschema is missing (Debian package "
                                 "python3-jsonschema): run scripts/install-deps.sh")
        with open(os.path.join(SCHEMAS, f"{name}.schema.json")) as f:
            schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        _validators[name] = jsonschema.Draft202012Validator(schema)
    return _validators[name]


def schema_errors(name, doc):
    """Every violation of docs/<name>.schema.json by doc, one line each
    ("at /path: message"); empty when doc is valid."""
    errs = sorted(schema_validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    out = []
    for e in errs:
        where = "/" + "/".join(str(p) for p in e.absolute_path)
        msg = e.message if len(e.message) < 300 else e.message[:300] + "..."
        out.append(f"at {where}: {msg}")
        # oneOf/anyOf: the sub-errors say what actually failed.
        for c in (e.context or [])[:6]:
            cm = c.message if len(c.message) < 200 else c.message[:200] + "..."
            out.append(f"    ({'/'.join(str(p) for p in c.absolute_path)}: {cm})")
    return out


def assert_valid_result(doc, what="result"):
    """Fails unless doc validates against docs/result.schema.json."""
    errs = schema_errors("result", doc)
    if errs:
        raise AssertionError(f"{what} does not match docs/result.schema.json:\n  " + "\n  ".join(errs))


class Spool:
    """A temporary spool with an optional config and a watcher process."""

    def __init__(self, config=None):
        self.tmp = tempfile.mkdtemp(prefix="spoolrun-e2e-")
        os.chmod(self.tmp, 0o755)
        self.root = os.path.join(self.tmp, "spool")
        self.staging = os.path.join(self.tmp, "staging")
        os.mkdir(self.staging)
        self.config = None
        if config is not None:
            self.config = os.path.join(self.tmp, "spoolrun.ini")
            with open(self.config, "w") as f:
                f.write(config)
        self.proc = None
        self.stderr_path = os.path.join(self.tmp, "watch.stderr")
        self._n = 0

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def args(self):
        a = ["--spool", self.root]
        if self.config:
            a += ["--config", self.config]
        return a

    def start(self, wait=True):
        self.stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([BIN, "watch", *self.args()], stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr)
        if wait:
            wait_for(lambda: "watching" in self.log() or self.proc.poll() is not None,
                     what="the watcher to start")
            if self.proc.poll() is not None:
                raise AssertionError(f"watcher exited {self.proc.returncode}: {self.log()}")
        return self.proc

    def log(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def submit(self, task, name=None):
        """Writes a task (dict, str or bytes) in staging and renames it into
        incoming/, as producers must. Returns the file name."""
        self._n += 1
        if name is None:
            name = (task.get("id") if isinstance(task, dict) and "id" in task else f"task-{self._n:05d}") + ".json"
        data = task if isinstance(task, bytes) else (task if isinstance(task, str) else json.dumps(task)).encode()
        tmp = os.path.join(self.staging, name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.makedirs(self.path("incoming"), exist_ok=True)
        os.rename(tmp, self.path("incoming", name))
        return name

    def stage(self, name):
        """A path in the staging directory (same file system as the spool)."""
        return os.path.join(self.staging, name)

    def move_in(self, staged_name, name=None):
        """Renames staging/<staged_name> into incoming/<name>."""
        os.makedirs(self.path("incoming"), exist_ok=True)
        os.rename(self.stage(staged_name), self.path("incoming", name or staged_name))

    def result_path(self, rid):
        return self.path("results", rid + ".json")

    def wait(self, cond, timeout=10.0, what="condition"):
        """wait_for(cond), but fails at once if the watcher exits meanwhile."""
        v = wait_for(lambda: cond() or (self.proc is not None and self.proc.poll() is not None),
                     timeout, what=what)
        if self.proc is not None and self.proc.poll() is not None:
            v = cond()
            if not v:
                raise AssertionError(f"watcher exited {self.proc.returncode} while waiting for "
                                     f"{what}: {self.log()[-2000:]}")
        return v

    def result(self, rid, timeout=10.0):
        """Waits for results/<rid>.json and returns it parsed."""
        p = self.result_path(rid)
        # A watcher that died will never publish it: fail at once, with its log.
        wait_for(lambda: os.path.exists(p) or (self.proc is not None and self.proc.poll() is not None),
                 timeout, what=f"result {rid}")
        if not os.path.exists(p):
            raise AssertionError(f"watcher exited {self.proc.returncode} before publishing {rid}: "
                                 f"{self.log()[-2000:]}")
        with open(p) as f:
            return json.load(f)

    def results(self):
        d = self.path("results")
        return sorted(n for n in os.listdir(d) if not n.startswith(".")) if os.path.isdir(d) else []

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("watcher did not stop in time")
        rc = self.proc.returncode if self.proc else None
        if self.proc:
            self.stderr.close()
        self.proc = None
        return rc

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class SpoolTest(unittest.TestCase):
    """Base class: self.spool is a fresh spool; started unless START = False.
    tearDown checks every file in results/ against docs/result.schema.json,
    except names a test adds to self.foreign_results (files it planted or
    forged itself, not written by the runner)."""
    CONFIG = None
    START = True

    def setUp(self):
        self.foreign_results = set()
        self.spool = Spool(self.CONFIG)
        self.addCleanup(self.spool.cleanup)
        if self.START:
            self.spool.start()

    def tearDown(self):
        # Every result published by any test must be well-formed.
        d = self.spool.path("results")
        for n in (os.listdir(d) if os.path.isdir(d) else []):
            if n.startswith(".") or n in getattr(self, "foreign_results", ()):
                continue
            with open(os.path.join(d, n), "rb") as f:
                data = f.read()
            try:
                doc = json.loads(data)
            except ValueError as e:
                raise AssertionError(f"results/{n} is not valid JSON: {e}")
            self.assertEqual(doc.get("format"), 1, f"results/{n}: format")
            self.assertTrue(n.endswith(".json"), f"results/{n}: name")
            # ... and match the published schema (docs/result.schema.json).
            assert_valid_result(doc, f"results/{n}")

    def run_task(self, task, timeout=10.0, name=None):
        name = self.spool.submit(task, name)
        rid = task["id"] if isinstance(task, dict) and "id" in task else name[:-5]
        return self.spool.result(rid, timeout)


def run_exec(task, *args, input=None, timeout=30):
    """Runs `spoolrun exec` on a task given as a dict (via stdin)."""
    data = input if input is not None else json.dumps(task).encode()
    p = subprocess.run([BIN, "exec", *args, "-"], input=data, capture_output=True, timeout=timeout * SLOW)
    out = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, out, p.stderr.decode(errors="replace")
