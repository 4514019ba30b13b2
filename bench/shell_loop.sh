#!/bin/bash
# shell_loop.sh SPOOL — the "plain shell" peer of benchmark 5: inotifywait
# for files renamed into SPOOL/incoming/, claim each by mv into active/, run its
# command under timeout(1) with stdout/stderr in logs/, and publish a result
# JSON written with jq into tmp/ and renamed into results/ (atomic, no fsync).
# Files already in incoming/ at start are run first. Runs until killed.
set -u
spool=$1
cd "$spool" || exit 1
mkdir -p incoming active results logs tmp

run_one() {
    local name=$1 id t rc start end
    case $name in .*|*.tmp) return ;; *.json) ;; *) return ;; esac
    mv -- "incoming/$name" "active/$name" 2>/dev/null || return
    # One jq call reads id, timeout and the argv (a string runs under sh -c).
    local -a argv
    mapfile -t argv < <(jq -r '.id, (.timeout // 3600 | tostring),
        (.command | if type == "string" then ("sh", "-c", .) else .[] end)' "active/$name")
    id=${argv[0]} t=${argv[1]}
    argv=("${argv[@]:2}")
    start=$EPOCHREALTIME
    timeout -- "$t" "${argv[@]}" >"logs/$id.stdout" 2>"logs/$id.stderr" </dev/null
    rc=$?
    end=$EPOCHREALTIME
    jq -n --arg id "$id" --argjson rc "$rc" --arg s "$start" --arg e "$end" \
        '{id: $id, status: (if $rc == 0 then "succeeded" elif $rc == 124 then "timeout" else "failed" end),
          exit_code: $rc, started: ($s | tonumber), finished: ($e | tonumber)}' >"tmp/$id.json" &&
        mv -- "tmp/$id.json" "results/$id.json"
    rm -f -- "active/$name"
}

# Watch first, then scan: a file renamed in between is seen twice, and the
# second mv simply fails.
coproc WATCH { exec inotifywait -m -q -e moved_to --format '%f' incoming/; }
for f in incoming/*.json; do
    [ -e "$f" ] && run_one "${f#incoming/}"
done
while IFS= read -r name <&"${WATCH[0]}"; do
    run_one "$name"
done
