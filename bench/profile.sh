#!/bin/bash
# bench/profile.sh [N] — where spoolrun's per-task time goes (benchmark 1's
# workload: N /bin/true tasks, fsync = no). perf stat compares CPU and page
# faults of the watcher (children included) with baseline_runner on the same
# tasks; perf record --call-graph dwarf then folds the watcher's samples per
# function (bench/fold_perf.py). Needs perf (linux-perf) and root or
# perf_event_paranoid <= 1. Run after `make all` and once `make bench` built
# build/bench/. Cleans up after itself.
set -eu
n=${1:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bench
command -v perf >/dev/null || { echo "profile.sh: perf is not installed" >&2; exit 1; }
[ -x "$bin/waitn" ] || { echo "profile.sh: run make bench first (builds $bin)" >&2; exit 1; }
d=$(mktemp -d /tmp/spoolrun-profile-XXXXXX)
sp=""
cleanup() { [ -n "$sp" ] && kill "$sp" 2>/dev/null; wait 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT INT TERM
printf '[spool]\nfsync = no\n[log]\nlevel = warn\n' >"$d/c.ini"
stage() { mkdir -p "$1"; for i in $(seq -w "$n"); do
    printf '{"id":"t%s","command":["/bin/true"]}' "$i" >"$1/t$i.json"; done; }

echo "== perf stat: baseline_runner, $n tasks (children included)"
stage "$d/bs"; mkdir -p "$d/br" "$d/bt"
perf stat -e task-clock,page-faults,context-switches \
    "$bin/baseline_runner" "$d/bs" "$d/br" "$d/bt" 0 /bin/true 2>&1 | grep -E 'task-clock|faults|switches|elapsed'

run_watcher() {  # $1: perf mode (stat|record)
    rm -rf "$d/sp" "$d/st"; stage "$d/st"
    "$root/build/spoolrun" watch --spool "$d/sp" --config "$d/c.ini" & sp=$!
    while [ ! -d "$d/sp/results" ]; do sleep 0.05; done; sleep 0.2
    if [ "$1" = stat ]; then
        perf stat -e task-clock,page-faults,context-switches -p "$sp" -o "$d/perf.txt" & pp=$!
    else
        perf record -q -o "$d/perf.data" --call-graph dwarf,16384 -p "$sp" 2>/dev/null & pp=$!
    fi
    sleep 0.3
    "$bin/waitn" "$d/sp/results" "$n" 600 >"$d/wn" & wn=$!
    sleep 0.1
    mv "$d/st/"*.json "$d/sp/incoming/"
    wait "$wn"
    kill -INT "$pp"; wait "$pp" || true
    kill "$sp"; wait "$sp" || true; sp=""
}
echo "== perf stat: spoolrun watcher, $n tasks (children included)"
run_watcher stat
grep -E 'task-clock|faults|switches|elapsed' "$d/perf.txt"
echo "== perf record: spoolrun watcher, $n tasks, folded by function"
run_watcher record
perf script -i "$d/perf.data" -F comm,pid,ip,sym 2>/dev/null >"$d/script.txt"
/usr/bin/python3 "$root/bench/fold_perf.py" "$d/script.txt"
