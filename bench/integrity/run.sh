#!/usr/bin/env bash
# What comparing a fetched file with the server's bytes costs (DESIGN.md §4, "Sampling"; docs/threat-model.md,
# mechanism 8): one seeder holds a file, fetchers take it from the swarm, with the default check (64 random 4 KiB
# ranges of the server's version) and with `--verify-server` (every byte), and the figures of each `file-done` line's
# `check` object are set against the whole fetch.
#
#   bench/integrity/run.sh                              # 1 GiB, 3 runs of each mode, a release harp-cli built here
#   HARP_CLI=/path/to/harp-cli SIZE_MIB=256 RUNS=1 bench/integrity/run.sh
#
# Printed per mode: the fetch's wall time (median; the `seconds` of file-done: PROPFIND, swarm join, transfer, check,
# rename), the check's own seconds, bytes and Range requests, and the bytes DevCloud sent in file bodies during the
# fetch (from its /harp-devcloud/stats). Only 127.0.0.1 is used; everything started here is stopped on exit.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
SIZE_MIB=${SIZE_MIB:-1024}
RUNS=${RUNS:-3}
WORK=${WORK:-/var/tmp/harp-integrity-bench}
HARP_BIN=${HARP_CLI:-}
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(HARP_|XDG_)' || true)

. "$here/../lib.sh"
need_tools curl:curl python3:python3 openssl:openssl cmp:diffutils || exit 1
find_harp "$repo" "$HARP_BIN"

PIDS=()
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null
    rm -rf "$WORK/dc" "$WORK/peers" "$WORK/signal" "$WORK/f.bin" 2>/dev/null
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


rm -rf "$WORK"
mkdir -p "$WORK/logs" "$WORK/peers"
LOGS=$WORK/logs
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/zero | openssl enc -aes-256-ctr -pass pass:harp-integrity-bench -nosalt \
    -pbkdf2 2>/dev/null >"$WORK/f.bin"

"$HARP" devcloud serve --data "$WORK/dc" --listen 127.0.0.1:0 --user alice:pw >"$LOGS/devcloud.out" \
    2>"$LOGS/devcloud.err" &
PIDS+=($!)
wait_line "$LOGS/devcloud.out" '^http' 60 $! || { cat "$LOGS/devcloud.err" >&2; exit 1; }
DC_URL=$(head -n 1 "$LOGS/devcloud.out")
"$HARP" signal serve --listen 127.0.0.1:0 --data "$WORK/signal" --log-level warning >"$LOGS/signal.out" \
    2>"$LOGS/signal.err" &
PIDS+=($!)
wait_line "$LOGS/signal.out" '^wss?://' 60 $! || { cat "$LOGS/signal.err" >&2; exit 1; }
SIG_URL=$(head -n 1 "$LOGS/signal.out")
mkdir -p "$WORK/dc/files/alice"
ln -f "$WORK/f.bin" "$WORK/dc/files/alice/f.bin"

peer() {  # name args...: runs harp-cli as that peer in its own folder
    local name=$1
    shift
    mkdir -p "$WORK/peers/$name"
    (cd "$WORK/peers/$name" && env HARP_SERVER="$DC_URL" HARP_USER=alice HARP_APP_PASSWORD=pw HARP_SIGNAL="$SIG_URL" \
        HARP_LISTEN=127.0.0.1 HARP_CONFIG_DIR="$WORK/peers/$name/config" HARP_STORE="$WORK/peers/$name/store.sqlite" \
        XDG_STATE_HOME="$WORK/peers/$name/state" "$HARP" "$@")
}
served() { curl -sS "$DC_URL/harp-devcloud/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytesSent"])'; }

# The seeder fetches the file from the server (publishing sidecar and manifest) and keeps seeding it.
peer seeder get /f.bin -o copy/ --seed --json >"$LOGS/seeder.out" 2>"$LOGS/seeder.err" &
PIDS+=($!)
wait_line "$LOGS/seeder.out" '"event":"file-done"' 1800 $! || { cat "$LOGS/seeder.err" >&2; exit 1; }
sleep 1

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
    for mode in samples every-byte; do
        extra=()
        [ "$mode" = every-byte ] && extra=(--verify-server)
        name="$mode-$run"
        before=$(served)
        peer "$name" get /f.bin -o copy/ --json --linger 0 "${extra[@]}" >"$LOGS/$name.out" 2>"$LOGS/$name.err" ||
            { cat "$LOGS/$name.err" >&2; exit 1; }
        after=$(served)
        cmp -s "$WORK/f.bin" "$WORK/peers/$name/copy/f.bin" || { echo "$name: the copy differs" >&2; exit 1; }
        grep '"event":"file-done"' "$LOGS/$name.out" | python3 -c '
import json, sys
done = json.loads(sys.stdin.readline())
check = done.get("check") or {}
print(json.dumps({"mode": sys.argv[1], "seconds": done["seconds"], "method": done["method"],
    "checkSeconds": check.get("seconds"), "checkBytes": check.get("bytes"), "checkRequests": check.get("requests"),
    "serverBodyBytes": int(sys.argv[2]) - int(sys.argv[3])}))' "$mode" "$after" "$before" >>"$RESULTS"
        rm -rf "$WORK/peers/$name"
    done
done

python3 - "$RESULTS" "$SIZE_MIB" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
size = int(sys.argv[2]) * 1024 * 1024
print(f"file {sys.argv[2]} MiB, {len(rows) // 2} run(s) of each mode, medians")
print(f"{'mode':<12} {'fetch s':>8} {'check s':>8} {'check/fetch':>11} {'check bytes':>12} {'requests':>8} {'server bodies':>14}")
for mode in ("samples", "every-byte"):
    r = [x for x in rows if x["mode"] == mode]
    if any(x["method"] != "swarm" for x in r):
        print(f"{mode}: a fetch did not use the swarm: {r}")
    fetch = statistics.median(x["seconds"] for x in r)
    check = statistics.median(x["checkSeconds"] for x in r)
    cbytes = statistics.median(x["checkBytes"] for x in r)
    reqs = statistics.median(x["checkRequests"] for x in r)
    served = statistics.median(x["serverBodyBytes"] for x in r)
    print(f"{mode:<12} {fetch:8.2f} {check:8.3f} {check / fetch:11.3f} {cbytes:12.0f} {reqs:8.0f} "
          f"{served / size:13.4f}F")
EOF
