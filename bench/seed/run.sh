#!/usr/bin/env bash
# Seeding a folder of many small files (issue 15): how long `harp-cli seed` takes from its start until every file is
# offered to its swarm, its peak RSS, its listening sockets and its connections to the signaling server.
#
#   bench/seed/run.sh                          # 2,000 files of 64 KiB, 3 runs
#   FILES=200 RUNS=1 bench/seed/run.sh         # to try things out
#   HARP_CLI=/path/to/harp-cli bench/seed/run.sh
#
# Set-up (not timed): DevCloud and the signaling server on 127.0.0.1 (port 0), FILES files of SIZE_KIB KiB of random
# bytes in one folder, known to DevCloud as /Seed/ (hard links into its data folder: no upload) and to the seeder as
# its local copy. Each run starts with a fresh seeder store and no sidecars on the server, so every file is compared
# with the server's bytes (this device never downloaded or uploaded them) and gets its sidecar and manifest published:
# the most a first `seed` of a folder has to do. Figures: seconds from the seed process's start to its last `seeding`
# event (polled every 0.2 s), peak RSS (VmHWM), listening TCP sockets of the process, TCP connections to the signaling
# server, and DevCloud's request count.
#
# Parameters (environment): FILES (2000), SIZE_KIB (64), RUNS (3), WORK (/var/tmp/harp-seed-bench), HARP_CLI, TIMEOUT
# (seconds per run, 600). Traffic goes only to 127.0.0.1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../lib.sh
. "$repo/bench/lib.sh"

FILES=${FILES:-2000}
SIZE_KIB=${SIZE_KIB:-64}
RUNS=${RUNS:-3}
WORK=${WORK:-/var/tmp/harp-seed-bench}
TIMEOUT=${TIMEOUT:-600}
HARP_BIN=${HARP_CLI:-}
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(HARP_|XDG_)' || true)
need_tools curl:curl python3:python3 ss:iproute2
find_harp "$repo" "$HARP_BIN"

rm -rf "$WORK"
mkdir -p "$WORK/logs" "$WORK/source"
LOGS=$WORK/logs
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$HARP" devcloud serve --data "$WORK/dc" --listen 127.0.0.1:0 --user alice:pw \
    >"$LOGS/devcloud.out" 2>"$LOGS/devcloud.err" &
PIDS+=($!)
wait_line "$LOGS/devcloud.out" '^http' 60 $! || { cat "$LOGS/devcloud.err" >&2; exit 1; }
DC_URL=$(head -n 1 "$LOGS/devcloud.out")
"$HARP" signal serve --listen 127.0.0.1:0 --data "$WORK/signal" --log-level warning \
    >"$LOGS/signal.out" 2>"$LOGS/signal.err" &
PIDS+=($!)
wait_line "$LOGS/signal.out" '^wss?://' 60 $! || { cat "$LOGS/signal.err" >&2; exit 1; }
SIG_URL=$(head -n 1 "$LOGS/signal.out")
SIG_PORT=$(python3 -c "import sys, urllib.parse; print(urllib.parse.urlparse(sys.argv[1]).port)" "$SIG_URL")

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "making $FILES files of $SIZE_KIB KiB in /Seed"
mkdir -p "$WORK/dc/files/alice/Seed"
python3 - "$WORK/source" "$FILES" "$SIZE_KIB" <<'PY'
import os, sys
folder, count, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    with open(os.path.join(folder, "f%05d.bin" % i), "wb") as f:
        f.write(os.urandom(kib * 1024))
PY
for f in "$WORK/source"/*; do ln -f "$f" "$WORK/dc/files/alice/Seed/"; done
listed=$(curl -sS -f -u alice:pw -X PROPFIND -H 'Depth: 1' "$DC_URL/remote.php/dav/files/alice/Seed/" | grep -o 'f[0-9]*\.bin' | sort -u | wc -l)
[ "$listed" -eq "$FILES" ] || { echo "DevCloud lists $listed of $FILES files" >&2; exit 1; }

results=()
for run in $(seq 1 "$RUNS"); do
    d=$WORK/run$run
    mkdir -p "$d"
    rm -rf "$WORK/dc/files/alice/Seed/.harp"
    curl -sS -o /dev/null -u alice:pw -X DELETE "$DC_URL/remote.php/dav/files/alice/Seed/.harp" || true
    start=$(date +%s.%N)
    done_at=""
    env HARP_SERVER="$DC_URL" HARP_USER=alice HARP_APP_PASSWORD=pw HARP_SIGNAL="$SIG_URL" HARP_LISTEN=127.0.0.1 \
        HARP_CONFIG_DIR="$d/config" HARP_STORE="$d/store.sqlite" XDG_STATE_HOME="$d/state" \
        "$HARP" seed "$WORK/source" --remote /Seed --json --rescan 3600 >"$d/stdout" 2>"$d/stderr" &
    pid=$!
    peak_sockets=0
    while :; do
        n=$(grep -c '"event":"seeding"' "$d/stdout" 2>/dev/null || true)
        if [ "${n:-0}" -ge "$FILES" ]; then done_at=$(date +%s.%N); break; fi
        kill -0 "$pid" 2>/dev/null || { echo "seed exited early" >&2; tail -5 "$d/stderr" >&2; exit 1; }
        if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" \
            "$(python3 -c "import time; print(time.time() - $start)")" "$TIMEOUT"; then
            echo "timeout: $n of $FILES seeding after $TIMEOUT s" >&2
            done_at=$(date +%s.%N)
            break
        fi
        sleep 0.2
    done
    listening=$(ss -ltnpH | grep -c "pid=$pid," || true)
    to_signal=$(ss -tnpH state established "( dport = :$SIG_PORT )" | grep -c "pid=$pid," || true)
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat")
    curl -sS -u alice:pw "$DC_URL/harp-devcloud/stats" >"$d/devcloud-stats.json" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    line=$(python3 - "$d/stdout" "$start" "$FILES" "$hwm" "$listening" "$to_signal" "$done_at" "$cpu" "$d/devcloud-stats.json" <<'PY'
import json, sys
path, start, files, hwm, listening, to_signal, done_at = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], float(sys.argv[7])
cpu, stats_path = float(sys.argv[8]), sys.argv[9]
try:
    requests = json.load(open(stats_path)).get("requestsByMethod")
except Exception:
    requests = None
events = [json.loads(l) for l in open(path) if l.startswith("{")]
seeding = [e for e in events if e.get("event") == "seeding"]
bases = {}
for e in seeding:
    bases[e.get("basis")] = bases.get(e.get("basis"), 0) + 1
print(json.dumps({"seeding": len(seeding), "files": files, "lastSeconds": round(done_at - start, 2),
                  "peakRSSMiB": round(hwm / 1024, 1), "listeningSockets": int(listening),
                  "signalingConnections": int(to_signal), "bases": bases, "seedCPUSeconds": cpu,
                  "devcloudRequestsSoFar": requests}))
PY
)
    echo "run $run: $line"
    results+=("$line")
done
python3 - "${results[@]}" <<'PY'
import json, statistics, sys
rows = [json.loads(a) for a in sys.argv[1:]]
print("median: every file seeding %.1f s after start; peak RSS %.1f MiB; listening sockets %s; signaling connections %s" % (
    statistics.median(r["lastSeconds"] for r in rows), statistics.median(r["peakRSSMiB"] for r in rows),
    sorted({r["listeningSockets"] for r in rows}), sorted({r["signalingConnections"] for r in rows})))
PY
