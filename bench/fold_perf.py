#!/usr/bin/python3
"""Folds `perf script -F comm,pid,ip,sym` output of a spoolrun watcher (recorded
with --call-graph dwarf, children inherited) into per-function shares: each
sample is charged to the first of KEYS found on its stack (innermost first is
not needed: KEYS is ordered most specific first), with the three callees below
it. Samples of the task processes after exec are one line."""
import collections
import sys

KEYS = ["child_exec", "__libc_fork", "plan_build", "plan_clear", "read_report", "open_stdio",
        "pump_loop", "spawn_start", "run_task", "spool_open_logs", "fsync_log",
        "result_from_run", "spool_publish", "spool_finish", "spool_result_exists",
        "load_claimed", "start_attempt", "handle_claimed", "enqueue", "watch_read",
        "wait_for_event", "handle_next", "watch_loop"]
SKIP = ("asm_", "exc_", "__raw", "pvm", "entry_", "do_syscall")


def main(path):
    tot, sub = collections.Counter(), collections.defaultdict(collections.Counter)
    n = 0
    comm, frames = None, []

    def flush():
        nonlocal n
        if not frames:
            return
        n += 1
        if comm != "spoolrun":
            tot["(task processes, after exec)"] += 1
            return
        for k in KEYS:
            if k in frames:
                tot[k] += 1
                inner = [f for f in frames[:frames.index(k)] if not f.startswith(SKIP)]
                sub[k][" > ".join(inner[::-1][:3]) if inner else "(self)"] += 1
                return
        tot["(other)"] += 1

    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                flush()
                comm, frames = None, []
            elif not line[0].isspace():
                comm, frames = line.split()[0], []
            else:
                parts = line.split(None, 1)
                if len(parts) > 1:
                    frames.append(parts[1].strip().split("+")[0].replace(" (inlined)", ""))
    flush()
    print(f"{n} samples (spoolrun and its children)")
    for k, v in tot.most_common(20):
        print(f"{100 * v / n:6.2f}%  {k}")
        for s, c in sub[k].most_common(3):
            if 100 * c / n >= 0.2:
                print(f"          {100 * c / n:5.2f}%  {s}")


if __name__ == "__main__":
    main(sys.argv[1])
