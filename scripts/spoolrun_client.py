#!/usr/bin/env python3
"""spoolrun_client: submit tasks to a spoolrun spool and wait for their
results. Standard library only; importable, and usable as a command:

    python3 scripts/spoolrun_client.py run [--spool DIR] [--timeout S] -- cmd args...
    python3 scripts/spoolrun_client.py submit [--spool DIR] TASKFILE|-
    python3 scripts/spoolrun_client.py wait [--spool DIR] [--wait-timeout S] ID
    python3 scripts/spoolrun_client.py claude [--spool DIR] [--tools a,b] [--model M] < prompt

Like `spoolrun`, the spool and results directory come from --spool, else
from the config named by --config or $SPOOLRUN_CONFIG ([spool] root and
results_dir), else ./spool. `run` runs the command in --cwd or the current
directory, as `spoolrun submit` does.

`run`, `wait` and `claude` print the result JSON and exit like
`spoolrun exec`: the task's exit code, 124 for a timeout, 65 when the task
was rejected, 128+N for a signal, 125 when cancelled, 75 when interrupted,
122 when skipped (dependencies), 126/127 when it could not start; 3 when
waiting timed out. Like `spoolrun
submit`: 65 for an invalid task (nothing written), 66 when there is no
spool, 73 when the id is taken.

The API (every function takes spool=None: the spool root, by default from
$SPOOLRUN_CONFIG or "spool"; and results_dir=None, likewise):

    submit(task) -> id             write a task into incoming/, atomically
                                   (lifecycle fields: after, after_policy,
                                   not_before, label, timeout "auto",
                                   history_key: docs/lifecycle.md)
    resubmit(id, new_id=None) -> id  submit the task of results/<id>.json again
    pause(wait=False), resume()    stop / restart starting tasks
    wait_all(timeout=None) -> list wait for everything unfinished now
    not_before(when) -> str        an RFC 3339 time from a datetime or seconds
    wait(id, timeout=None) -> dict  wait for results/<id>.json
    run(task, timeout=None) -> dict submit + wait
    execute_task(prompt, ...) -> dict  run the `claude` CLI on a prompt

Errors: SpoolError is the base of every exception raised here.
InvalidTask (also a ValueError): the task failed the client-side check
(the runner's own rules: known fields, types, ranges) and was not
submitted. IdTaken: the id is queued, running, deferred or has a result.
TaskRejected: the runner refused the task (result status "rejected"); it
carries the result, the error code, message and field. SpoolTimeout (also
a TimeoutError): no result within the deadline; the task may still run
later. ResultRemoved: `spoolrun clean` removed the result (exit 66, as
`spoolrun wait`). Every other status (succeeded,
failed, timeout, killed, error, cancelled, interrupted) is returned as the
result dict: callers inspect result["status"].
"""
import argparse
import configparser
import ctypes
import ctypes.util
import datetime
import errno
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import threading
import time

__all__ = ["SpoolError", "InvalidTask", "IdTaken", "ResultRemoved", "TaskRejected", "SpoolTimeout", "new_id",
           "submit", "wait", "run", "claude_task", "execute_task", "spool_paths", "resubmit",
           "pause", "resume", "wait_all", "not_before"]

# The runner's id rule (src/task.c task_id_valid): never ".hidden", never "-option".
ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


class SpoolError(Exception):
    """Base class of every error raised by this module."""


class InvalidTask(SpoolError, ValueError):
    """The task does not have the basic shape of a task (a dict with a
    non-empty "command", a valid "id" if any, JSON-serialisable); it was not
    submitted."""


class NoSpool(SpoolError, FileNotFoundError):
    """There is no spool (no incoming/ directory) where one was expected."""


class IdTaken(SpoolError):
    """The id is already used: a task with it is queued, running or
    deferred, or a result for it exists. Attributes: id, place ("queued",
    "running", "deferred" or "finished") and path."""

    def __init__(self, task_id, place, path):
        self.id, self.place, self.path = task_id, place, path
        what = (f"a result for it already exists ({path})" if place == "finished"
                else f"a task with that id is already {place} ({path})")
        super().__init__(f"id {task_id} is taken: {what}; ids must be unique")


class ResultRemoved(SpoolError):
    """The result was removed by `spoolrun clean` (a marker cleaned/ID says
    so) and the id is not queued, running or deferred again: it will not
    come. Attribute: id."""

    def __init__(self, task_id, marker):
        self.id = task_id
        super().__init__(f"{task_id}: its result was removed by spoolrun clean ({marker}); "
                         f"it will not appear again")


class TaskRejected(SpoolError):
    """The runner refused the task file and did not run it (result status
    "rejected"). Attributes: result (the whole result dict), id, code
    (e.g. "invalid_task", "invalid_json", "duplicate_id"), field (the
    offending task field, or None) and message (the runner's message)."""

    def __init__(self, result):
        self.result = result
        err = result.get("error") or {}
        self.id = result.get("id")
        self.code = err.get("code")
        self.field = err.get("field")
        self.message = err.get("message", "")
        super().__init__(f"task {self.id} rejected ({self.code}): {self.message}")


class SpoolTimeout(SpoolError, TimeoutError):
    """No result appeared before the deadline. Attributes: id, spool,
    timeout. The task is not withdrawn: it may still run and publish later."""

    def __init__(self, task_id, spool, timeout, results_dir=None):
        self.id = task_id
        self.spool = spool
        self.timeout = timeout
        where = results_dir or os.path.join(spool, "results")
        super().__init__(f"no result for task {task_id} in {where} after {timeout:g} s "
                         f"(spool {spool}; is a spoolrun watcher running on it?)")


# --- ids ------------------------------------------------------------------

_id_lock = threading.Lock()
_last_ms = 0


def new_id(prefix=None):
    """A new unique task id in the format `spoolrun submit` uses: UTC time
    to the millisecond, then 8 random hex digits, e.g.
    "20260102T030405.123Z-9f3a0c1d". Ids made by one process sort in the
    order they were made (the time part never repeats or goes back within a
    process); the random part keeps ids of different processes apart. Only
    [A-Za-z0-9._-]. With prefix, "<prefix>-<id>"."""
    global _last_ms
    with _id_lock:
        ms = time.time_ns() // 1000000
        if ms <= _last_ms:
            ms = _last_ms + 1
        _last_ms = ms
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    tid = f"{t:%Y%m%dT%H%M%S}.{ms % 1000:03d}Z-{secrets.token_hex(4)}"
    if prefix:
        tid = f"{prefix}-{tid}"
    if not ID_RE.match(tid):
        raise InvalidTask(f"prefix {prefix!r} makes an invalid id {tid!r}")
    return tid


# --- submit ---------------------------------------------------------------

# The runner's task rules (src/task.c), checked before anything is written
# so a mistake is an InvalidTask here, not a "rejected" result later. Keep
# in step with task.c when a field is added.
_MAX_SECONDS = 10.0 * 365 * 24 * 3600
_LIMITS = ("memory_mb", "cpu_seconds", "open_files", "processes", "file_size_mb")
_OUTPUTS = ("text", "jsonl", "json")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and v == v and v not in (float("inf"), float("-inf")))


def _check_command(cmd):
    if isinstance(cmd, str):
        return cmd != "" and "\0" not in cmd
    return (isinstance(cmd, (list, tuple)) and len(cmd) > 0 and cmd[0] != ""
            and all(isinstance(a, str) and "\0" not in a for a in cmd))


def _check_retry_on(v):
    if not isinstance(v, dict):
        return "must be an object"
    for k, x in v.items():
        if k == "exit_codes":
            if not isinstance(x, list) or not all(_is_int(c) and 0 <= c <= 255 for c in x):
                return ".exit_codes: must be an array of integers from 0 to 255"
        elif k in ("timeout", "signal"):
            if not isinstance(x, bool):
                return f".{k}: must be true or false"
        elif k == "output_patterns":
            if not isinstance(x, list) or not all(isinstance(p, str) for p in x):
                return ".output_patterns: must be an array of regular expressions"
        else:
            return f".{k}: unknown key (known: exit_codes, timeout, signal, output_patterns)"
    return None


def _field_problem(key, v):
    """What is wrong with task field key = v, or None."""
    if key == "format":
        return None if _is_int(v) and v == 1 else "must be 1 (the only task format)"
    if key == "command":
        return None if _check_command(v) else (
            'must be a non-empty string, or a non-empty list of strings whose first is not empty')
    if key in ("id", "limit_key"):
        return None if isinstance(v, str) and ID_RE.match(v) else (
            "must be 1 to 128 of A-Z a-z 0-9 . _ - not starting with '.' or '-'")
    if key == "cwd":
        return None if isinstance(v, str) and v and "\0" not in v else "must be a non-empty string"
    if key == "env":
        if not isinstance(v, dict):
            return "must be an object of strings or nulls"
        for name, x in v.items():
            if not name or "=" in name or "\0" in name:
                return f'variable name "{name}" must be non-empty and contain no "=" or NUL'
            if x is not None and not (isinstance(x, str) and "\0" not in x):
                return f".{name}: must be a string without NUL bytes or null"
        return None
    if key == "stdin":
        return None if isinstance(v, str) else "must be a string"
    if key == "timeout" and v == "auto":
        return None
    if key in ("timeout", "kill_grace", "idle_timeout", "retry_backoff", "retry_backoff_max"):
        return None if _is_num(v) and 0 <= v <= _MAX_SECONDS else (
            f"must be a number of seconds from 0 to {_MAX_SECONDS:.0f}")
    if key == "limits":
        if not isinstance(v, dict):
            return "must be an object"
        for k, n in v.items():
            if k not in _LIMITS:
                return f".{k}: unknown limit (known: {', '.join(_LIMITS)})"
            if not (_is_int(n) and 0 <= n <= 1 << 40):
                return f".{k}: must be a whole number from 0 (no limit) to {1 << 40}"
        return None
    if key == "priority":
        return None if _is_int(v) and -10**9 <= v <= 10**9 else (
            "must be an integer from -1000000000 to 1000000000")
    if key == "retries":
        return None if _is_int(v) and 0 <= v <= 1000 else "must be an integer from 0 to 1000"
    if key == "retry_on":
        return _check_retry_on(v)
    if key == "output":
        return None if v in _OUTPUTS else 'must be "text", "jsonl" or "json"'
    if key == "meta":
        return None
    if key in _LIFECYCLE_FIELDS:
        return _lifecycle_problem(key, v)
    return ("unknown field (known: format, id, command, cwd, env, stdin, timeout, kill_grace, "
            "idle_timeout, limits, priority, meta, retries, retry_backoff, retry_backoff_max, "
            "retry_on, limit_key, output, after, after_policy, not_before, label, history_key)")


_LIFECYCLE_FIELDS = ("after", "after_policy", "not_before", "label", "history_key")
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _lifecycle_problem(key, v):
    """The lifecycle fields (docs/lifecycle.md), checked as the runner does."""
    if key == "after":
        ok = (isinstance(v, (list, tuple)) and 1 <= len(v) <= 100 and
              all(isinstance(a, str) and ID_RE.match(a) for a in v) and len(set(v)) == len(v))
        return None if ok else "must be a list of 1 to 100 distinct task ids"
    if key == "after_policy":
        return None if v in ("succeeded", "finished") else 'must be "succeeded" or "finished"'
    if key == "not_before":
        ok = (isinstance(v, str) and _RFC3339_RE.match(v)) or \
            (_is_num(v) and 0 <= v <= 253402300799)
        return None if ok else "must be an RFC 3339 time or Unix seconds"
    if key == "label":
        ok = isinstance(v, str) and 1 <= len(v) <= 128 and \
            not any(ord(c) < 0x20 or ord(c) == 0x7f for c in v)
        return None if ok else "must be 1 to 128 characters without control characters"
    ok = isinstance(v, str) and v and "\0" not in v and len(v.encode()) <= 4096
    return None if ok else "must be a string of 1 to 4096 bytes"


def not_before(when):
    """An RFC 3339 UTC time for a task's "not_before": when is a datetime
    (naive ones are taken as UTC) or Unix seconds."""
    if isinstance(when, datetime.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        when = when.timestamp()
    t = datetime.datetime.fromtimestamp(float(when), datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _spoolrun_program():
    """The spoolrun program whose validator to use: $SPOOLRUN_BIN, else
    spoolrun on PATH, else build/spoolrun beside this script; None."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "spoolrun")
    for cand in (os.environ.get("SPOOLRUN_BIN"), shutil.which("spoolrun"), here):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _validate(data):
    """Checks the task bytes with `spoolrun validate` itself when the
    program is at hand (the watcher's own rules, whatever fields a newer
    runner knows): True when it judged them (raising InvalidTask when
    invalid), False when it could not be asked."""
    prog = _spoolrun_program()
    if not prog:
        return False
    try:
        p = subprocess.run([prog, "validate", "-"], input=data, capture_output=True,
                           timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    if p.returncode == 0:
        return True
    if p.returncode == 65:
        msg = p.stderr.decode(errors="replace").strip()
        raise InvalidTask(msg[3:] if msg.startswith("-: ") else msg)
    return False


def _check_task(task):
    """The runner's rules, in Python: for when spoolrun itself cannot be
    asked (see _validate)."""
    if not isinstance(task, dict):
        raise InvalidTask(f"a task must be a dict, got {type(task).__name__}")
    if "command" not in task:
        raise InvalidTask('field "command": missing (an array of strings or a string)')
    for key, v in task.items():
        problem = _field_problem(key, v)
        if problem:
            raise InvalidTask(f'field "{key}": {problem}; got {v!r}'[:500])


# --- where things are ---------------------------------------------------------

def _config_spool(config=None):
    """[spool] root and results_dir from config (else $SPOOLRUN_CONFIG), as
    absolute paths (relative ones are relative to the config file, as the
    runner reads them); (None, None) without a config."""
    from_env = config is None
    path = config if config is not None else os.environ.get("SPOOLRUN_CONFIG") or None
    if not path:
        return None, None
    cp = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
    except OSError as e:
        where = f"$SPOOLRUN_CONFIG ({path})" if from_env else path
        raise SpoolError(f"{where}: {e.strerror}") from None
    except configparser.Error as e:
        raise SpoolError(f"{path}: {e}") from None
    base = os.path.dirname(os.path.abspath(path))
    sec = cp["spool"] if cp.has_section("spool") else {}

    def resolve(key):
        v = sec.get(key, "").strip().strip('"')
        return os.path.join(base, v) if v else None
    return resolve("root"), resolve("results_dir")


def spool_paths(spool=None, results_dir=None, config=None):
    """(spool root, results directory) as spoolrun resolves them: the
    arguments, else the config (config, else $SPOOLRUN_CONFIG), else
    "spool" and "<spool>/results"."""
    if spool is None or results_dir is None:
        conf_root, conf_results = _config_spool(config)
        if spool is None:
            spool = conf_root or "spool"
            results_dir = results_dir or conf_results
    return spool, results_dir or os.path.join(spool, "results")


def _task_id_of(dirfd, name):
    """The id of the task file dirfd/name as the runner sees it: its "id"
    field, else its name without ".json". Read without blocking."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dirfd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            doc = json.loads(f.read(1 << 20))
        v = doc.get("id") if isinstance(doc, dict) else None
        return v if isinstance(v, str) else None
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


def _where_taken(spool, results, tid):
    """(place, path) when tid is taken, else None (see IdTaken)."""
    if os.path.lexists(os.path.join(results, tid + ".json")):
        return "finished", os.path.join(results, tid + ".json")
    own = tid + ".json"
    for sub, place in (("active", "running"), ("deferred", "deferred"), ("incoming", "queued")):
        d = os.path.join(spool, sub)
        try:
            dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            for name in os.listdir(dfd):
                if name.startswith(".") or (sub == "incoming" and not name.endswith(".json")):
                    continue
                if name == own or name.startswith(own + ".") or _task_id_of(dfd, name) == tid:
                    return place, os.path.join(d, name)
        finally:
            os.close(dfd)
    return None


_renameat2 = None


def _rename_noreplace(dirfd, src, dst):
    """renameat2(RENAME_NOREPLACE) within dirfd; FileExistsError if dst
    exists. Falls back to check-then-rename where renameat2 is missing.
    (Not link+unlink: for an instant the file would have two links, and
    the runner refuses task files with more than one.)"""
    global _renameat2
    if _renameat2 is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fn = libc.renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
        except (OSError, AttributeError):
            _renameat2 = False
    if _renameat2:
        if _renameat2(dirfd, os.fsencode(src), dirfd, os.fsencode(dst), 1) == 0:
            return
        e = ctypes.get_errno()
        if e not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: the file system lacks it
            raise OSError(e, os.strerror(e), dst)
    try:
        os.stat(dst, dir_fd=dirfd, follow_symlinks=False)
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    except FileNotFoundError:
        pass
    os.rename(src, dst, src_dir_fd=dirfd, dst_dir_fd=dirfd)


def submit(task, spool=None, results_dir=None, fsync=True):
    """Submits task (a dict) to the spool and returns its id.

    Checks the task by the runner's rules first (known fields, their types
    and ranges, JSON-serialisable) and raises InvalidTask otherwise, writing
    nothing: with `spoolrun validate` itself when the program is found
    ($SPOOLRUN_BIN, PATH, or build/ beside this script), else with the same
    rules written here. When the
    task has no "id", a unique sortable one is generated (new_id()) and
    added to the copy that is written; the caller's dict is not modified.

    The JSON is written to spool/incoming/.<id>.json.tmp (a dot name, which
    the runner ignores), fsynced, then renamed to incoming/<id>.json without
    replacing an existing file, and incoming/ is fsynced (fsync=False skips
    both fsyncs). Raises IdTaken (a SpoolError) when a task with the id is
    queued, running or deferred, or a result for it exists (the runner would
    reject the task as a duplicate id, and wait(id) would find the other
    task's result). spool and results_dir: see spool_paths()."""
    spool, results = spool_paths(spool, results_dir)
    if not isinstance(task, dict):
        raise InvalidTask(f"a task must be a dict, got {type(task).__name__}")
    task = dict(task)
    if "id" not in task:
        task["id"] = new_id()
    try:
        data = (json.dumps(task, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except (TypeError, ValueError) as e:
        raise InvalidTask(f"the task is not serialisable as JSON: {e}") from None
    if not _validate(data):
        _check_task(task)
    tid = task["id"]
    incoming = os.path.join(spool, "incoming")
    if not os.path.isdir(incoming):
        raise NoSpool(f"cannot open {incoming}: no such directory (is {spool} a spoolrun "
                         f"spool? start `spoolrun watch` on it once to create it)")
    taken = _where_taken(spool, results, tid)
    if taken:
        raise IdTaken(tid, *taken)
    try:
        dfd = os.open(incoming, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SpoolError(f"cannot open {incoming}: {e.strerror} (is {spool} a spoolrun spool?)") from None
    tmp = f".{tid}.json.tmp"
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644,
                         dir_fd=dfd)
        except FileExistsError:
            raise SpoolError(f"{incoming}/{tmp} exists: is id {tid} being submitted twice?") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            _rename_noreplace(dfd, tmp, tid + ".json")
        except FileExistsError:
            os.unlink(tmp, dir_fd=dfd)
            raise IdTaken(tid, "queued", f"{incoming}/{tid}.json") from None
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
        if fsync:
            os.fsync(dfd)
    finally:
        os.close(dfd)
    return tid


# --- wait -----------------------------------------------------------------

def _read_result(path):
    """The bytes of the result at path; None while it is absent. Never
    follows a link or blocks on a FIFO: anything but a regular file is a
    SpoolError naming it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise SpoolError(f"{path}: is a symbolic link, not a result; not followed") from None
        raise SpoolError(f"{path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SpoolError(f"{path}: is not a regular file, not a result; not read")
        return f.read()


def wait(task_id, timeout=None, spool=None, results_dir=None, interval=0.05):
    """Waits for spool/results/<task_id>.json and returns it parsed.

    Polls every `interval` seconds at most (starting faster) against a
    monotonic deadline: timeout seconds, or forever when None. Raises
    SpoolTimeout (a TimeoutError) naming the id and the spool when the
    deadline passes, and TaskRejected when the result's status is
    "rejected". Any other result is returned as is: check result["status"]
    ("succeeded", "failed", "timeout", "killed", "error", "cancelled",
    "interrupted"). Results are published by atomic rename, so a file that
    exists is complete."""
    spool, results = spool_paths(spool, results_dir)
    path = os.path.join(results, task_id + ".json")
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = min(0.005, interval)
    while True:
        data = _read_result(path)
        if data is not None:
            try:
                result = json.loads(data)
            except ValueError as e:
                raise SpoolError(f"{path}: is not a result: bad JSON: {e}") from None
            if not isinstance(result, dict) or not isinstance(result.get("status"), str):
                raise SpoolError(f'{path}: is not a result (no "status")')
            if result.get("status") == "rejected":
                raise TaskRejected(result)
            return result
        marker = os.path.join(spool, "cleaned", task_id)
        if os.path.lexists(marker) and not _where_taken(spool, results, task_id):
            raise ResultRemoved(task_id, marker)
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise SpoolTimeout(task_id, spool, timeout, results)
        pause = delay if deadline is None else min(delay, deadline - now)
        time.sleep(max(pause, 0))
        delay = min(delay * 2, interval)


def run(task, timeout=None, spool=None, results_dir=None):
    """submit(task) then wait(id, timeout): returns the result dict; raises
    InvalidTask, TaskRejected or SpoolTimeout as they do. timeout bounds
    the wait (queueing included), not the task: set the task's own
    "timeout" field for that."""
    tid = submit(task, spool=spool, results_dir=results_dir)
    return wait(tid, timeout=timeout, spool=spool, results_dir=results_dir)


# --- lifecycle: resubmit, pause, resume, wait_all ----------------------------

def _taken(spool, results_dir, tid):
    spool, results_dir = spool_paths(spool, results_dir)
    name = tid + ".json"
    dirs = [os.path.join(spool, d) for d in ("incoming", "active", "deferred")]
    dirs.append(results_dir)
    return any(os.path.lexists(os.path.join(d, name)) for d in dirs)


def resubmit(task_id, new_id=None, spool=None, results_dir=None):
    """Submits again the task echoed in results/<task_id>.json (which is
    kept) and returns the new id: new_id, or by default <task_id>.r2, .r3,
    ... (the first free one; resubmitting X.r2 gives X.r3), as `spoolrun
    resubmit` does. Raises SpoolError when there is no such result or it
    holds no task object, InvalidTask when the task is not valid."""
    spool, results_dir = spool_paths(spool, results_dir)
    path = os.path.join(results_dir, task_id + ".json")
    try:
        with open(path, "rb") as f:
            result = json.loads(f.read())
    except FileNotFoundError:
        raise SpoolError(f"no result for {task_id} in {results_dir}") from None
    task = result.get("task")
    if not isinstance(task, dict):
        raise SpoolError(f"{task_id} was rejected before it could be read as a JSON object: "
                         "there is no task to submit again")
    if new_id is None:
        base = re.sub(r"\.r\d+$", "", task_id)
        for n in range(2, 100000):
            suffix = f".r{n}"
            new_id = base[:128 - len(suffix)] + suffix
            if not _taken(spool, results_dir, new_id):
                break
    elif _taken(spool, results_dir, new_id):
        raise SpoolError(f"{new_id} is already queued, running, deferred or finished")
    return submit(dict(task, id=new_id), spool=spool, results_dir=results_dir)


def _watcher_running(spool):
    import fcntl
    try:
        fd = os.open(os.path.join(spool, ".lock"), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _task_names(spool, sub):
    try:
        return [n for n in os.listdir(os.path.join(spool, sub)) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def pause(spool=None, wait=False, timeout=None, interval=0.05):
    """Creates spool/pause: the watcher starts no new task. With wait,
    returns once nothing runs any more (at once when no watcher runs);
    raises SpoolTimeout after timeout seconds (the spool stays paused)."""
    spool = spool_paths(spool)[0]
    with open(os.path.join(spool, "pause"), "a"):
        pass
    deadline = None if timeout is None else time.monotonic() + timeout
    while wait and _task_names(spool, "active") and _watcher_running(spool):
        if deadline is not None and time.monotonic() >= deadline:
            raise SpoolTimeout("(pause --wait)", spool, timeout)
        time.sleep(interval)


def resume(spool=None):
    """Removes spool/pause (nothing happens when it is not there)."""
    spool = spool_paths(spool)[0]
    try:
        os.unlink(os.path.join(spool, "pause"))
    except FileNotFoundError:
        pass


def _ids_in(spool, sub):
    ids = []
    for name in _task_names(spool, sub):
        if not name.endswith(".json"):
            continue
        tid = name[:-5]
        try:
            with open(os.path.join(spool, sub, name), "rb") as f:
                doc = json.loads(f.read())
            if isinstance(doc, dict) and isinstance(doc.get("id"), str) and ID_RE.match(doc["id"]):
                tid = doc["id"]
        except (OSError, ValueError):
            pass
        ids.append(tid)
    return ids


def wait_all(timeout=None, spool=None, results_dir=None):
    """Waits for every task queued, deferred or running now (not those
    submitted later) and returns their results, as `spoolrun wait --all`.
    A rejected one is returned like the others (no TaskRejected here);
    SpoolTimeout when timeout seconds pass first."""
    spool, results_dir = spool_paths(spool, results_dir)
    ids = []
    for sub in ("incoming", "active", "deferred", "active"):
        ids += [i for i in _ids_in(spool, sub) if i not in ids]
    deadline = None if timeout is None else time.monotonic() + timeout
    results = []
    for tid in ids:
        left = None if deadline is None else max(deadline - time.monotonic(), 0)
        try:
            results.append(wait(tid, timeout=left, spool=spool, results_dir=results_dir))
        except TaskRejected as e:
            results.append(e.result)
    return results


# --- claude ---------------------------------------------------------------

def claude_task(task_text, timeout=600, tools=None, model=None, cwd=None, claude="claude",
                env=None, extra=None):
    """The task dict execute_task submits: the claude CLI in print mode with
    stream-json output,

        [claude, "-p", "--output-format", "stream-json", "--verbose"]
        + ["--allowedTools", ",".join(tools)] if tools
        + ["--model", model] if model

    as an argv (no shell), the prompt on stdin, "output": "jsonl" (the
    runner parses the event stream into "events" and "summary"), the given
    timeout, and cwd and env when given. cwd and a claude path containing
    "/" are made absolute here, since the runner resolves relative paths
    against its own directory. extra: more task fields (e.g. "retries",
    "limit_key", "id", "meta"), added last."""
    if not isinstance(task_text, str):
        raise InvalidTask(f"the prompt must be a str, got {type(task_text).__name__}")
    if "/" in claude:
        claude = os.path.abspath(claude)
    cmd = [claude, "-p", "--output-format", "stream-json", "--verbose"]
    if tools:
        if isinstance(tools, str):
            tools = [tools]
        cmd += ["--allowedTools", ",".join(tools)]
    if model:
        cmd += ["--model", model]
    task = {"command": cmd, "stdin": task_text, "output": "jsonl", "timeout": timeout}
    if cwd is not None:
        task["cwd"] = os.path.abspath(cwd)
    if env is not None:
        task["env"] = dict(env)
    if extra:
        task.update(extra)
    return task


def execute_task(task_text, timeout=600, tools=None, model=None, cwd=None, spool=None,
                 claude="claude", env=None, extra=None, wait_timeout=None, results_dir=None):
    """Runs the claude CLI on the prompt task_text through the spool and
    returns the result (see claude_task for the task it builds).

    timeout is the task's own timeout in seconds (the runner kills claude
    then: status "timeout"); wait_timeout bounds how long this call waits
    for the result, queueing included (None: as long as it takes; on expiry
    SpoolTimeout). tools: allowed tools (list of names); model: the model
    name; cwd: where claude runs; env: variables to set (str) or unset
    (None); extra: more task fields such as {"retries": 1, "limit_key":
    "claude"} so that a usage limit defers and retries the task.

    The result carries "summary" (from claude's final result event:
    complete, result, is_error, subtype, num_turns, duration_ms,
    total_cost_usd, usage, session_id, api_error_status, stop_reason,
    terminal_reason; or complete false with a reason; and model, models and
    the last rate_limit_info either way) and "events" (the stream-json
    events). With a limit_key (or retries) in extra, a usage limit, a 429
    or a 529 defers the task without spending retries; attempts[] then says
    which limit and until when (docs/claude.md). Raises TaskRejected if the runner
    refuses the task (for instance a runner too old for "output": "jsonl"),
    SpoolTimeout as above; every other status is returned."""
    task = claude_task(task_text, timeout=timeout, tools=tools, model=model, cwd=cwd,
                       claude=claude, env=env, extra=extra)
    return run(task, timeout=wait_timeout, spool=spool, results_dir=results_dir)


# --- command line -----------------------------------------------------------

def exit_code(result):
    """The exit status `spoolrun exec` would give for result."""
    s = result.get("status")
    if s in ("succeeded", "failed"):
        return result.get("exit_code") or 0
    if s == "timeout":
        return 124
    if s == "killed":
        return 128 + ((result.get("signal") or {}).get("number") or 15)
    if s == "rejected":
        return 65
    if s == "interrupted":
        return 75
    if s == "cancelled":
        return 125
    if s == "skipped":
        return 122
    return 127 if (result.get("error") or {}).get("not_found") else 126


def _print(result):
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return exit_code(result)



# The command line's exit status for each failure, the first match winning
# (a NoSpool is a FileNotFoundError, a SpoolTimeout an OSError).
_EXIT_CODES = (
    (SpoolTimeout, 3),
    (InvalidTask, 65),
    (IdTaken, 73),
    (ResultRemoved, 66),
    (FileNotFoundError, 66),
    ((SpoolError, OSError, ValueError), 2),
)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="spoolrun_client.py",
                                 description="Submit tasks to a spoolrun spool and wait for results.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--spool", help="the spool root (default: [spool] root of the config, "
                       "else ./spool)")
        p.add_argument("--config", help="spoolrun config (default: $SPOOLRUN_CONFIG)")
        p.add_argument("--results-dir", help="where results are published (default: [spool] "
                       "results_dir of the config, else SPOOL/results)")
        p.add_argument("--wait-timeout", type=float, help="seconds to wait for the result")

    p = sub.add_parser("run", help="run a command: run [options] -- cmd args...")
    common(p)
    p.add_argument("--id")
    p.add_argument("--timeout", type=float, help="the task's timeout in seconds")
    p.add_argument("--cwd")
    p.add_argument("--stdin", help="text for the task's stdin")
    p.add_argument("--shell", action="store_true", help="run one string through /bin/sh -c")
    p.add_argument("--after", action="append", help="a task id it waits for (repeatable)")
    p.add_argument("--delay", type=float, help="start no sooner than this many seconds from now")
    p.add_argument("--label")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = sub.add_parser("submit", help="submit a task file (or - for stdin); prints the id")
    common(p)
    p.add_argument("file")
    p = sub.add_parser("wait", help="wait for a task's result")
    common(p)
    p.add_argument("id")
    p = sub.add_parser("resubmit", help="submit again the task of a result; prints the new id")
    common(p)
    p.add_argument("id")
    p.add_argument("--id", dest="new_id", help="the new id (default ID.r2, ID.r3, ...)")
    p = sub.add_parser("pause", help="stop starting tasks")
    common(p)
    p.add_argument("--wait", action="store_true", help="return once nothing runs")
    p = sub.add_parser("resume", help="start tasks again")
    common(p)
    p = sub.add_parser("claude", help="run the claude CLI on the prompt read from stdin")
    common(p)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--tools", help="allowed tools, comma-separated")
    p.add_argument("--model")
    p.add_argument("--cwd")
    p.add_argument("--claude", default="claude", help="the claude program (default: claude)")
    a = ap.parse_args(argv)
    try:
        spool, results = spool_paths(a.spool, a.results_dir, a.config)
        kw = {"spool": spool, "results_dir": results}
        if a.cmd == "submit":
            f = sys.stdin if a.file == "-" else open(a.file, encoding="utf-8")
            with f:
                task = json.load(f)
            print(submit(task, **kw))
            return 0
        if a.cmd == "wait":
            return _print(wait(a.id, timeout=a.wait_timeout, **kw))
        if a.cmd == "resubmit":
            print(resubmit(a.id, new_id=a.new_id, **kw))
            return 0
        if a.cmd == "pause":
            pause(spool=kw.get("spool"), wait=a.wait, timeout=a.wait_timeout)
            return 0
        if a.cmd == "resume":
            resume(spool=kw.get("spool"))
            return 0
        if a.cmd == "run":
            cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
            if not cmd:
                ap.error("run: no command given (run [options] -- cmd args...)")
            task = {"command": " ".join(cmd) if a.shell else cmd}
            for k in ("id", "timeout", "stdin", "after", "label"):
                if getattr(a, k) is not None:
                    task[k] = getattr(a, k)
            if a.delay is not None:
                task["not_before"] = not_before(time.time() + a.delay)
            # Where the caller is, as `spoolrun submit` (and pueue, tsp) do.
            task["cwd"] = os.path.abspath(a.cwd if a.cwd is not None else ".")
            return _print(run(task, timeout=a.wait_timeout, **kw))
        if a.cmd == "claude":
            tools = [t for t in a.tools.split(",") if t] if a.tools else None
            return _print(execute_task(sys.stdin.read(), timeout=a.timeout, tools=tools,
                                       model=a.model, cwd=a.cwd, claude=a.claude,
                                       wait_timeout=a.wait_timeout, **kw))
    except TaskRejected as e:
        print(f"spoolrun_client: {e}", file=sys.stderr)
        return _print(e.result)
    except (SpoolError, OSError, ValueError) as e:
        what = "invalid task: " if isinstance(e, InvalidTask) else ""
        print(f"spoolrun_client: {what}{e}", file=sys.stderr)
        return next(code for kinds, code in _EXIT_CODES if isinstance(e, kinds))
    return 2


if __name__ == "__main__":
    sys.exit(main())
