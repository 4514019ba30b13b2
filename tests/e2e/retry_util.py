"""Helpers for the retry, deferral, cancellation, pause and drain tests
(tests/e2e/test_retry_*.py). Every wait is on a condition with a deadline."""
import datetime
import json
import os
import time

from harness import run_cli, wait_for


def ts_ms(s):
    """Unix time in ms of an RFC 3339 timestamp as spoolrun writes them
    ("2024-05-01T12:00:00.123Z")."""
    assert isinstance(s, str) and s.endswith("Z"), f"not a UTC timestamp: {s!r}"
    dt = datetime.datetime.strptime(s[:-1], "%Y-%m-%dT%H:%M:%S.%f")
    return int(round(dt.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))


def now_ms():
    return int(time.time() * 1000)


def counter_cmd(tmp, name, script):
    """A shell command that bumps the counter file tmp/name, leaves its new
    value in $n, then runs script (which decides the outcome from $n)."""
    c = os.path.join(tmp, name)
    return f"n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'; {script}"


def succeed_at(tmp, name, k, fail_code=1):
    """Fails (exit fail_code) on runs 1..k-1, succeeds from run k."""
    return counter_cmd(tmp, name, f"[ $n -ge {k} ] || exit {fail_code}")


def count(tmp, name):
    """How many times a counter_cmd task ran (0 if never)."""
    try:
        with open(os.path.join(tmp, name)) as f:
            return int(f.read().strip() or 0)
    except FileNotFoundError:
        return 0


def listdir(spool, sub):
    d = spool.path(sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def deferred_tasks(spool):
    """Task files (not state files) waiting in deferred/."""
    return [n for n in listdir(spool, "deferred") if not n.startswith(".")]


def wait_deferred(spool, name, timeout=10.0):
    """Waits for deferred/name and its state file; returns the state."""
    def get():
        p = spool.path("deferred", "." + name + ".state")
        if not os.path.exists(spool.path("deferred", name)):
            return None
        try:
            with open(p) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None
    return spool.wait(get, timeout, what=f"{name} in deferred/ with its state")


def wait_log(spool, text, timeout=10.0, start=0):
    """Waits for text in the watcher's log after offset start."""
    return spool.wait(lambda: text in spool.log()[start:], timeout, what=f"{text!r} in the log")


def cancel(spool, rid):
    """Asks for rid to be cancelled, written elsewhere and renamed in."""
    os.makedirs(spool.path("cancel"), exist_ok=True)
    tmp = spool.stage("cancel-" + rid)
    with open(tmp, "w"):
        pass
    os.rename(tmp, spool.path("cancel", rid))


def drain(spool, timeout=30):
    """Runs `spoolrun drain` on this spool; returns the CompletedProcess."""
    return run_cli("drain", *spool.args(), timeout=timeout)


def wait_until_ms(t_ms, what="the clock"):
    """Waits until the wall clock reaches t_ms (a condition on the clock,
    not a fixed sleep: its length is the program's own schedule)."""
    wait_for(lambda: now_ms() >= t_ms, timeout=max(1.0, (t_ms - now_ms()) / 1000 + 2),
             interval=0.01, what=what)
