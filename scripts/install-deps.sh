#!/bin/sh
# Install, only where missing, the Debian packages that building, running and
# testing spoolrun need (and jq, which the examples in README.md and docs/ use).
# Safe to run again: it does nothing when all are present.
set -eu

packages="gcc make libc6-dev libjansson-dev libiniparser-dev libcmocka-dev jq \
python3 python3-jsonschema mandoc \
slurm-wlm munge"
# slurm-wlm and munge: the Slurm tests start a real single-node cluster.
# `make fuzz` needs clang's libFuzzer; nothing else does.
if [ "${1:-}" = "--fuzz" ]; then
    packages="$packages clang libclang-rt-dev"
fi
# `make test` also checks the service side with the real tools: promtool
# (prometheus), node_exporter, systemd-analyze (systemd) and man (man-db,
# which systemd-analyze verify uses for Documentation=man:).
if [ "${1:-}" = "--test" ]; then
    packages="$packages prometheus prometheus-node-exporter systemd man-db"
fi
# `make bench` compares against peers and profiles; nothing else needs these.
if [ "${1:-}" = "--bench" ]; then
    packages="$packages task-spooler nq inotify-tools jq coreutils liburing-dev linux-perf valgrind"
fi

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "install-deps: need root or sudo to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# An install from a stale package list fails; refresh it once, then install.
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
