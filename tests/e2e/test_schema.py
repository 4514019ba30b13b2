"""docs/task.schema.json and docs/result.schema.json: both are valid Draft
2020-12 schemas, the fuzz corpus's task files are judged as the runner
judges them, and results of every kind the runner writes validate. (Every
result any e2e test leaves in results/ is also validated by
SpoolTest.tearDown.)"""
import glob
import json
import os
import unittest

from harness import (SCHEMAS, REPO, SpoolTest, assert_valid_result, run_exec, schema_errors,
                     schema_validator, wait_for)

CORPUS = os.path.join(REPO, "tests", "fuzz", "corpus")


def load_json_object(path):
    """The file's JSON object, or None when it is not a JSON object."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


class Schemas(unittest.TestCase):
    def test_schemas_are_valid_draft_2020_12(self):
        import jsonschema
        for name in ("task", "result"):
            with open(os.path.join(SCHEMAS, f"{name}.schema.json")) as f:
                schema = json.load(f)
            self.assertEqual(schema["$schema"], "https://json-schema.org/draft/2020-12/schema")
            jsonschema.Draft202012Validator.check_schema(schema)

    def test_valid_corpus_files_validate(self):
        files = sorted(glob.glob(os.path.join(CORPUS, "valid-*.json")))
        self.assertTrue(files, "no valid-*.json in the corpus")
        for path in files:
            doc = load_json_object(path)
            self.assertIsNotNone(doc, f"{path} is not a JSON object")
            self.assertEqual(schema_errors("task", doc), [], os.path.basename(path))

    def test_valid_corpus_files_are_accepted_by_the_runner(self):
        # The schema and the runner agree on them: exec does not reject them.
        for path in sorted(glob.glob(os.path.join(CORPUS, "valid-*.json"))):
            doc = load_json_object(path)
            doc = dict(doc, command=["true"], cwd="/")
            doc.pop("stdin", None)
            rc, out, err = run_exec(doc)
            self.assertNotEqual(out["status"], "rejected", f"{path}: {out['error']}")

    def test_bad_corpus_files_fail(self):
        must_fail = {
            "bad-unknown.json": "unknown",          # unknown field
            "bad-id.json": "id",                    # "../etc"
            "bad-timeout.json": "timeout",          # negative
            "bad-empty-command.json": "command",    # []
            "bad-array.json": "",                   # not an object
            "bad-env.json": "env",                  # name with '='
            "bad-huge.json": "timeout",             # 1e400
            "bad-limit.json": "limits",             # unknown limit
            "bad-nul.json": "command",              # NUL in argv
            "bad-priority.json": "priority",        # 1.5
        }
        for name, field in must_fail.items():
            path = os.path.join(CORPUS, name)
            with open(path, "rb") as f:
                doc = json.loads(f.read())
            errors = list(schema_validator("task").iter_errors(doc))
            self.assertTrue(errors, f"{name} validates but the runner refuses it")
            if field:
                paths = {e.absolute_path[0] if e.absolute_path else None for e in errors}
                unknown = any(field in e.message for e in errors)
                self.assertTrue(field in paths or unknown, f"{name}: {[e.message for e in errors]}")
        # Every other bad-*.json that is a JSON object should mostly fail too;
        # the exceptions are what JSON Schema cannot see (duplicate keys).
        schema_blind = {"bad-dup-key.json"}
        for path in sorted(glob.glob(os.path.join(CORPUS, "bad-*.json"))):
            name = os.path.basename(path)
            doc = load_json_object(path)
            if doc is None or name in must_fail or name in schema_blind:
                continue
            self.assertTrue(schema_errors("task", doc), f"{name} validates")

    def test_task_schema_details(self):
        ok = [
            {"command": "echo hi"},
            {"command": ["x"], "id": "a.b_c-1", "format": 1, "timeout": 0.5, "kill_grace": 0,
             "idle_timeout": 3, "priority": -1000000000, "meta": [1, {"x": None}],
             "env": {"A": "1", "B": None}, "stdin": "a\u0000b", "cwd": "/tmp",
             "limits": {"memory_mb": 0, "cpu_seconds": 1, "open_files": 2, "processes": 3,
                        "file_size_mb": 1099511627776},
             "retries": 1000, "retry_backoff": 1, "retry_backoff_max": 2,
             "retry_on": {"exit_codes": [0, 255], "timeout": True, "signal": False,
                          "output_patterns": ["a|b"]},
             "limit_key": "claude", "output": "jsonl"},
        ]
        bad = [
            {}, {"command": ""}, {"command": ["", "x"]}, {"command": [1]},
            {"command": "x", "id": ".hidden"}, {"command": "x", "id": "a" * 129},
            {"command": "x", "format": 2}, {"command": "x", "timeout": 315360001},
            {"command": "x", "cwd": ""}, {"command": "x", "env": {"": "x"}},
            {"command": "x", "env": {"A": 1}}, {"command": "x", "priority": 1000000001},
            {"command": "x", "retries": -1}, {"command": "x", "retries": 1001},
            {"command": "x", "retry_on": {"exit_codes": [256]}},
            {"command": "x", "retry_on": {"other": True}},
            {"command": "x", "limit_key": "a/b"}, {"command": "x", "limits": {"memory_mb": -1}},
            {"command": "x", "output": "xml"}, {"command": "x", "stdin": 3},
        ]
        for doc in ok:
            self.assertEqual(schema_errors("task", doc), [], doc)
        for doc in bad:
            self.assertTrue(schema_errors("task", doc), f"{doc} validates")

    def test_exec_results_validate(self):
        # `spoolrun exec` prints the same document (no logs, no stamp).
        cases = [
            ({"command": ["true"]}, "succeeded"),
            ({"command": "exit 3"}, "failed"),
            ({"command": "kill -TERM $$"}, "killed"),
            ({"command": ["sleep", "5"], "timeout": 0.2, "kill_grace": 0}, "timeout"),
            ({"command": ["/nonexistent/prog"]}, "error"),
            ({"command": ["true"], "cwd": "/nonexistent"}, "error"),
            ({"command": ["true"], "bogus": 1}, "rejected"),
        ]
        for task, status in cases:
            rc, out, err = run_exec(task)
            self.assertEqual(out["status"], status, out)
            assert_valid_result(out, f"exec of {task}")
        rc, out, err = run_exec(None, input=b"[1, 2]")
        self.assertEqual(out["status"], "rejected")
        assert_valid_result(out, "exec of a JSON array")
        rc, out, err = run_exec(None, input=b"{not json")
        self.assertIsNone(out["task"])
        assert_valid_result(out, "exec of bad JSON")


class WatcherResults(SpoolTest):
    """One result of each kind the watcher publishes; tearDown validates
    them all against the schema, these tests check the kinds."""

    def test_every_status(self):
        kinds = {
            "s-ok": ({"command": ["true"]}, "succeeded"),
            "s-fail": ({"command": "exit 4"}, "failed"),
            "s-kill": ({"command": "kill -USR2 $$"}, "killed"),
            "s-timeout": ({"command": ["sleep", "5"], "timeout": 0.2, "kill_grace": 0}, "timeout"),
            "s-idle": ({"command": ["sleep", "5"], "idle_timeout": 0.2, "kill_grace": 0}, "timeout"),
            "s-noexec": ({"command": ["/nonexistent/prog"]}, "error"),
            "s-cpu": ({"command": "while :; do :; done", "limits": {"cpu_seconds": 1},
                       "timeout": 10}, "killed"),
            "s-bad": ({"command": ["true"], "timeout": -1}, "rejected"),
            "s-retried": ({"command": "exit 7", "retries": 1, "retry_backoff": 0}, "failed"),
        }
        for rid, (task, _) in kinds.items():
            self.spool.submit(dict(task, id=rid))
        for rid, (task, status) in kinds.items():
            r = self.spool.result(rid, timeout=20)
            self.assertEqual(r["status"], status, r)
        r = self.spool.result("s-cpu")
        self.assertEqual(r["limit_exceeded"], "cpu_seconds")
        self.assertEqual(r["error"]["code"], "limit_exceeded")
        r = self.spool.result("s-retried")
        self.assertEqual(len(r["attempts"]), 2, r["attempts"])
        self.assertIsNotNone(r["attempts"][0]["retry_reason"])
        # Files that are not task objects, and a duplicate id.
        self.spool.submit(b"[1, 2]", name="s-array.json")
        self.spool.submit(b"{nope", name="s-badjson.json")
        self.spool.submit({"id": "s-ok", "command": ["true"]}, name="s-dup.json")
        for rid in ("s-array", "s-badjson", "s-ok@2"):
            self.assertEqual(self.spool.result(rid)["status"], "rejected")

    def test_cancelled(self):
        os.makedirs(self.spool.path("cancel"), exist_ok=True)
        self.spool.submit({"id": "c-run", "command": ["sleep", "30"], "kill_grace": 0})
        wait_for(lambda: os.listdir(self.spool.path("active")), what="c-run to start")
        # One waiting behind it, cancelled before it ever runs (the
        # request is acted on once the running task is over).
        with open(self.spool.path("cancel", "c-queued"), "w"):
            pass
        self.spool.submit({"id": "c-queued", "command": ["true"]})
        with open(self.spool.path("cancel", "c-run"), "w"):
            pass
        r = self.spool.result("c-run", timeout=20)
        self.assertEqual(r["status"], "cancelled", r)
        self.assertEqual(r["error"]["code"], "cancelled")
        q = self.spool.result("c-queued", timeout=20)
        self.assertEqual(q["status"], "cancelled", q)
