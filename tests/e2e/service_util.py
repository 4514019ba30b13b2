"""Helpers for the service tests (hooks, events, metrics, systemd): reading
the JSON-lines event log and starting a watcher with extra environment."""
import json
import os

from harness import environ, schema_errors, wait_for


def read_events(path):
    """Every line of the event log, parsed; each must match
    docs/events.schema.json and be a whole line."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for n, line in enumerate(data.split(b"\n")[:-1], 1):
        doc = json.loads(line)
        errs = schema_errors("events", doc)
        if errs:
            raise AssertionError(f"{path}:{n} does not match docs/events.schema.json: {errs}: {line!r}")
        out.append(doc)
    if not data.endswith(b"\n") and data:
        raise AssertionError(f"{path}: last line is not whole: {data[-200:]!r}")
    return out


def events_of(events, tid):
    """The events of one id, as (event, attempt, status) tuples, in order."""
    return [(e["event"], e.get("attempt"), e.get("status")) for e in events if e.get("id") == tid]


def wait_event(path, pred, timeout=10.0, what="an event"):
    return wait_for(lambda: [e for e in read_events(path) if pred(e)], timeout, what=what)


def start_with_env(spool, env):
    """spool.start() with extra environment variables (None removes one)."""
    with environ(env):
        return spool.start()