#!/usr/bin/env python3
"""Runs the end-to-end suite (tests/e2e/test_*.py) against one spoolrun
binary and reports in TAP, one "ok"/"not ok" line per test."""
import argparse
import os
import sys
import unittest


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _line(self, ok, test, detail=None, directive=""):
        self.n += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} - {test.id()}{directive}", flush=True)
        if detail:
            for line in detail.rstrip().splitlines():
                print(f"#   {line}", flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test, self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test, self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, directive=f" # SKIP {reason}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("-k", dest="pattern", help="only tests whose id contains this")
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["SPOOLRUN_BIN"] = os.path.abspath(args.binary)
    sys.path.insert(0, here)
    suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
    if args.pattern:
        def flatten(s):
            for t in s:
                yield from (flatten(t) if isinstance(t, unittest.TestSuite) else [t])
        suite = unittest.TestSuite(t for t in flatten(suite) if args.pattern in t.id())
    result = TapResult()
    suite.run(result)
    print(f"1..{result.n}")
    return 0 if result.wasSuccessful() and result.n > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
