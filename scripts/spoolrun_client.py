#!/usr/bin/env python3
"""spoolrun_client: submit tasks to a spoolrun spool and wait for their
results. Standard library only; importable, and usable as a command:

    python3 scripts/spoolrun_client.py run --spool DIR [--timeout S] -- cmd args...
    python3 scripts/spoolrun_client.py submit --spool DIR TASKFILE|-
    python3 scripts/spoolrun_client.py wait --spool DIR [--wait-timeout S] ID
    python3 scripts/spoolrun_client.py claude --spool DIR [--tools a,b] [--model M] < prompt

`run`, `wait` and `claude` print the result JSON and exit like
`spoolrun exec`: the task's exit code, 124 for a timeout, 65 when the task
was rejected, 128+N for a signal, 125 when cancelled, 75 when interrupted,
126/127 when it could not start; 3 when waiting timed out.

The API (all functions take spool="spool", the spool root):

    submit(task) -> id             write a task into incoming/, atomically
    wait(id, timeout=None) -> dict  wait for results/<id>.json
    run(task, timeout=None) -> dict submit + wait
    execute_task(prompt, ...) -> dict  run the `claude` CLI on a prompt

Errors: SpoolError is the base of every exception raised here.
InvalidTask (also a ValueError): the task failed the client-side shape
check and was not submitted. TaskRejected: the runner refused the task
(result status "rejected"); it carries the result, the error code, message
and field. SpoolTimeout (also a TimeoutError): no result within the
deadline; the task may still run later. Every other status (succeeded,
failed, timeout, killed, error, cancelled, interrupted) is returned as the
result dict: callers inspect result["status"].
"""
import argparse
import ctypes
import ctypes.util
import datetime
import errno
import json
import os
import re
import secrets
import sys
import threading
import time

__all__ = ["SpoolError", "InvalidTask", "TaskRejected", "SpoolTimeout", "new_id", "submit",
           "wait", "run", "claude_task", "execute_task"]

ID_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")


class SpoolError(Exception):
    """Base class of every error raised by this module."""


class InvalidTask(SpoolError, ValueError):
    """The task does not have the basic shape of a task (a dict with a
    non-empty "command", a valid "id" if any, JSON-serialisable); it was not
    submitted."""


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
_last_us = 0


def new_id(prefix=None):
    """A new unique task id: UTC time to the microsecond, then 8 random hex
    digits, e.g. "20260102T030405.123456Z-9f3a0c1d". Ids made by one process
    sort in the order they were made (the time part never repeats or goes
    back within a process); the random part keeps ids of different
    processes apart. Only [A-Za-z0-9._-]. With prefix, "<prefix>-<id>"."""
    global _last_us
    with _id_lock:
        us = time.time_ns() // 1000
        if us <= _last_us:
            us = _last_us + 1
        _last_us = us
    t = datetime.datetime.fromtimestamp(us // 1000000, datetime.timezone.utc)
    tid = f"{t:%Y%m%dT%H%M%S}.{us % 1000000:06d}Z-{secrets.token_hex(4)}"
    if prefix:
        tid = f"{prefix}-{tid}"
    if not ID_RE.match(tid):
        raise InvalidTask(f"prefix {prefix!r} makes an invalid id {tid!r}")
    return tid


# --- submit ---------------------------------------------------------------

def _check_task(task):
    if not isinstance(task, dict):
        raise InvalidTask(f"a task must be a dict, got {type(task).__name__}")
    cmd = task.get("command")
    if isinstance(cmd, str):
        ok = cmd != ""
    elif isinstance(cmd, (list, tuple)):
        ok = len(cmd) > 0 and all(isinstance(a, str) for a in cmd) and cmd[0] != ""
    else:
        ok = False
    if not ok:
        raise InvalidTask('a task needs "command": a non-empty string, or a non-empty list of '
                          f'strings whose first is not empty; got {cmd!r}')
    if "id" in task and not (isinstance(task["id"], str) and ID_RE.match(task["id"])):
        raise InvalidTask(f'"id" must be 1 to 128 of A-Z a-z 0-9 . _ - not starting with ".", '
                          f'got {task["id"]!r}')


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


def _results_dir(spool, results_dir):
    return results_dir or os.path.join(spool, "results")


def submit(task, spool="spool", results_dir=None, fsync=True):
    """Submits task (a dict) to the spool and returns its id.

    Checks the basic shape first (a dict with a non-empty "command", a valid
    "id" if given, JSON-serialisable) and raises InvalidTask otherwise; the
    runner validates the rest and rejects what is wrong (see wait). When the
    task has no "id", a unique sortable one is generated (new_id()) and
    added to the copy that is written; the caller's dict is not modified.

    The JSON is written to spool/incoming/.<id>.json.tmp (a dot name, which
    the runner ignores), fsynced, then renamed to incoming/<id>.json without
    replacing an existing file, and incoming/ is fsynced (fsync=False skips
    both fsyncs). Raises SpoolError if incoming/<id>.json is already there,
    or if results/<id>.json already exists (the runner would reject the task
    as a duplicate id, and wait(id) would find the old result). results_dir:
    where results are published, when [spool] results_dir moves them."""
    _check_task(task)
    task = dict(task)
    if "id" not in task:
        task["id"] = new_id()
    tid = task["id"]
    try:
        data = (json.dumps(task, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    except (TypeError, ValueError) as e:
        raise InvalidTask(f"task {tid} is not serialisable as JSON: {e}") from None
    if os.path.exists(os.path.join(_results_dir(spool, results_dir), tid + ".json")):
        raise SpoolError(f"a result for id {tid} already exists in "
                         f"{_results_dir(spool, results_dir)}: ids must be unique")
    incoming = os.path.join(spool, "incoming")
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
            raise SpoolError(f"{incoming}/{tid}.json already exists: id {tid} is already queued") from None
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

def wait(task_id, timeout=None, spool="spool", results_dir=None, interval=0.05):
    """Waits for spool/results/<task_id>.json and returns it parsed.

    Polls every `interval` seconds at most (starting faster) against a
    monotonic deadline: timeout seconds, or forever when None. Raises
    SpoolTimeout (a TimeoutError) naming the id and the spool when the
    deadline passes, and TaskRejected when the result's status is
    "rejected". Any other result is returned as is: check result["status"]
    ("succeeded", "failed", "timeout", "killed", "error", "cancelled",
    "interrupted"). Results are published by atomic rename, so a file that
    exists is complete."""
    path = os.path.join(_results_dir(spool, results_dir), task_id + ".json")
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = min(0.005, interval)
    while True:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = None
        if data is not None:
            try:
                result = json.loads(data)
            except ValueError as e:
                raise SpoolError(f"{path} is not valid JSON: {e}") from None
            if result.get("status") == "rejected":
                raise TaskRejected(result)
            return result
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise SpoolTimeout(task_id, spool, timeout, results_dir)
        pause = delay if deadline is None else min(delay, deadline - now)
        time.sleep(max(pause, 0))
        delay = min(delay * 2, interval)


def run(task, timeout=None, spool="spool", results_dir=None):
    """submit(task) then wait(id, timeout): returns the result dict; raises
    InvalidTask, TaskRejected or SpoolTimeout as they do. timeout bounds
    the wait (queueing included), not the task: set the task's own
    "timeout" field for that."""
    tid = submit(task, spool=spool, results_dir=results_dir)
    return wait(tid, timeout=timeout, spool=spool, results_dir=results_dir)


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


def execute_task(task_text, timeout=600, tools=None, model=None, cwd=None, spool="spool",
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
    return 127 if (result.get("error") or {}).get("not_found") else 126


def _print(result):
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return exit_code(result)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="spoolrun_client.py",
                                 description="Submit tasks to a spoolrun spool and wait for results.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--spool", default="spool", help="the spool root (default: ./spool)")
        p.add_argument("--results-dir", help="where results are published, if not SPOOL/results")
        p.add_argument("--wait-timeout", type=float, help="seconds to wait for the result")

    p = sub.add_parser("run", help="run a command: run [options] -- cmd args...")
    common(p)
    p.add_argument("--id")
    p.add_argument("--timeout", type=float, help="the task's timeout in seconds")
    p.add_argument("--cwd")
    p.add_argument("--stdin", help="text for the task's stdin")
    p.add_argument("--shell", action="store_true", help="run one string through /bin/sh -c")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = sub.add_parser("submit", help="submit a task file (or - for stdin); prints the id")
    common(p)
    p.add_argument("file")
    p = sub.add_parser("wait", help="wait for a task's result")
    common(p)
    p.add_argument("id")
    p = sub.add_parser("claude", help="run the claude CLI on the prompt read from stdin")
    common(p)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--tools", help="allowed tools, comma-separated")
    p.add_argument("--model")
    p.add_argument("--cwd")
    p.add_argument("--claude", default="claude", help="the claude program (default: claude)")
    a = ap.parse_args(argv)
    kw = {"spool": a.spool, "results_dir": a.results_dir}
    try:
        if a.cmd == "submit":
            f = sys.stdin if a.file == "-" else open(a.file, encoding="utf-8")
            with f:
                task = json.load(f)
            print(submit(task, **kw))
            return 0
        if a.cmd == "wait":
            return _print(wait(a.id, timeout=a.wait_timeout, **kw))
        if a.cmd == "run":
            cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
            if not cmd:
                ap.error("run: no command given (run [options] -- cmd args...)")
            task = {"command": " ".join(cmd) if a.shell else cmd}
            for k in ("id", "timeout", "stdin"):
                if getattr(a, k) is not None:
                    task[k] = getattr(a, k)
            if a.cwd is not None:
                task["cwd"] = os.path.abspath(a.cwd)
            return _print(run(task, timeout=a.wait_timeout, **kw))
        if a.cmd == "claude":
            tools = [t for t in a.tools.split(",") if t] if a.tools else None
            return _print(execute_task(sys.stdin.read(), timeout=a.timeout, tools=tools,
                                       model=a.model, cwd=a.cwd, claude=a.claude,
                                       wait_timeout=a.wait_timeout, **kw))
    except TaskRejected as e:
        print(f"spoolrun_client: {e}", file=sys.stderr)
        return _print(e.result)
    except SpoolTimeout as e:
        print(f"spoolrun_client: {e}", file=sys.stderr)
        return 3
    except (SpoolError, OSError, ValueError) as e:
        print(f"spoolrun_client: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
