#!/bin/sh
# Runs the unit tests (cmocka, TAP output) and the end-to-end suite against
# each build directory given, and ends with one line "N passed, N failed".
# usage: tests/run.sh [--unit-only|--e2e-only] BUILD_DIR...
set -u
cd "$(dirname "$0")/.." || exit 1
PYTHON=${PYTHON:-python3}
mode=all
case "${1:-}" in
--unit-only) mode=unit; shift ;;
--e2e-only) mode=e2e; shift ;;
esac

passed=0
failed=0
skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Runs one TAP-producing command, echoing its output and counting results;
# a command that fails without reporting a failing test counts as a failure.
run_suite() {
    label=$1
    shift
    echo "# $label"
    "$@" >"$log" 2>&1
    rc=$?
    cat "$log"
    ok=$(grep '^ok ' "$log" | grep -vc '# SKIP')
    notok=$(grep '^not ok ' "$log" | grep -vc '# SKIP')
    skip=$(grep -c '^\(not \)\?ok .*# SKIP' "$log")
    if [ "$rc" -ne 0 ] && [ "$notok" -eq 0 ]; then
        echo "not ok - $label exited with status $rc"
        notok=1
    fi
    passed=$((passed + ok))
    failed=$((failed + notok))
    skipped=$((skipped + skip))
}

for dir in "$@"; do
    if [ "$mode" != e2e ]; then
        for t in "$dir"/tests/test_*; do
            [ -x "$t" ] || continue
            case "$t" in *fuzz-replay) continue ;; esac
            CMOCKA_MESSAGE_OUTPUT=TAP run_suite "unit $t" "$t"
        done
        if [ -x "$dir/tests/fuzz-replay" ]; then
            run_suite "fuzz corpus" "$dir/tests/fuzz-replay" tests/fuzz/corpus/*
        fi
    fi
    if [ "$mode" != unit ]; then
        # Sanitizer builds run several times slower; deadlines scale.
        case "$dir" in *asan*) slow=3 ;; *) slow=1 ;; esac
        SPOOLRUN_TEST_SLOW=${SPOOLRUN_TEST_SLOW:-$slow} \
            run_suite "e2e $dir/spoolrun" "$PYTHON" tests/e2e/run.py --binary "$dir/spoolrun"
    fi
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
