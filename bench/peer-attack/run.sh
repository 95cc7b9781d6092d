#!/usr/bin/env bash
# A seeder under a hostile peer (DESIGN.md §10: "a seeder under any peer's input stays under 150 MiB").
#
#   bench/peer-attack/run.sh                                  # every attack, 3 runs each, 20 s per run
#   HARP_CLI=... HOSTILE=... bench/peer-attack/run.sh         # use these binaries instead of building them
#   ATTACKS="manifest-flood" RUNS=1 SECONDS_PER_RUN=10 bench/peer-attack/run.sh
#
# Set-up (not measured): DevCloud and the signaling server on 127.0.0.1, a SIZE_MIB file (default 256) published
# to DevCloud, and one `harp-cli seed` process serving it (it indexes the file, publishes the sidecar and manifest,
# prints `seeding`). The hostile peer (`harp-hostile-peer`, Sources/harp-hostile-peer) derives K from the published
# sidecar as any member does, finds the seeder's peer port (the one TCP port that process listens on, from `ss`),
# completes the real Noise handshake and then runs one ATTACK for SECONDS_PER_RUN seconds, or until the seeder closes
# the connection: manifest-flood, request-flood, cancel-flood, have-flood, stall (see the tool's header).
#
# Figures per attack, medians over RUNS: the seeder's RSS before the run, its peak RSS during the run (VmRSS sampled
# every 50 ms), its RSS 3 s after the run, how long the connection lasted and whether the seeder closed it.
# Everything stays on 127.0.0.1; processes started here are stopped on exit. Logs and results.jsonl stay in WORK.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
SIZE_MIB=${SIZE_MIB:-256}
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
ATTACKS=${ATTACKS:-"manifest-flood request-flood cancel-flood have-flood stall"}
WORK=${WORK:-/var/tmp/harp-peer-attack-bench}
INSTALL=${INSTALL:-1}
HARP_BIN=${HARP_CLI:-}
HOSTILE=${HOSTILE:-}
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(HARP_|XDG_)' || true)

export PATH="$PATH:/usr/sbin:/sbin"
. "$here/../lib.sh"
need_tools curl:curl python3:python3 openssl:openssl ss:iproute2 || exit 1
find_harp "$repo" "$HARP_BIN"
if [ -z "$HOSTILE" ]; then
    (cd "$repo" && swift build -c release --product harp-hostile-peer >&2)
    HOSTILE="$(cd "$repo" && swift build -c release --show-bin-path)/harp-hostile-peer"
fi
[ -x "$HOSTILE" ] || { echo "no harp-hostile-peer at $HOSTILE" >&2; exit 1; }

PIDS=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$WORK/dc" "$WORK/seed" "$WORK/peers" "$WORK/signal" 2>/dev/null
    [ -d "$WORK" ] && echo "logs and results: $WORK" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
median() { python3 -c 'import sys, statistics; v = [float(x) for x in sys.argv[1:]]; print("%.1f" % statistics.median(v))' "$@"; }

rm -rf "$WORK"
mkdir -p "$WORK/logs" "$WORK/seed/attack" "$WORK/dc/files/alice/attack" "$WORK/peers/seeder"
LOGS=$WORK/logs
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

"$HARP" devcloud serve --data "$WORK/dc" --listen 127.0.0.1:0 --user alice:pw >"$LOGS/devcloud.out" 2>"$LOGS/devcloud.err" &
PIDS+=($!)
wait_line "$LOGS/devcloud.out" '^http' 60 $! || { cat "$LOGS/devcloud.err" >&2; echo "DevCloud did not start" >&2; exit 1; }
DC_URL=$(head -n 1 "$LOGS/devcloud.out")
"$HARP" signal serve --listen 127.0.0.1:0 --data "$WORK/signal" --log-level warning \
    >"$LOGS/signal.out" 2>"$LOGS/signal.err" &
PIDS+=($!)
wait_line "$LOGS/signal.out" '^wss?://' 60 $! || { cat "$LOGS/signal.err" >&2; echo "signaling did not start" >&2; exit 1; }
SIG_URL=$(head -n 1 "$LOGS/signal.out")

FILE=$WORK/seed/attack/attacked.bin
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/zero | openssl enc -aes-256-ctr -pass pass:harp-peer-attack -nosalt \
    -pbkdf2 2>/dev/null >"$FILE"
ln -f "$FILE" "$WORK/dc/files/alice/attack/attacked.bin"

s=$WORK/peers/seeder
env HARP_SERVER="$DC_URL" HARP_USER=alice HARP_APP_PASSWORD=pw HARP_SIGNAL="$SIG_URL" HARP_LISTEN=127.0.0.1 \
    HARP_CONFIG_DIR="$s/config" HARP_STORE="$s/store.sqlite" XDG_STATE_HOME="$s/state" \
    "$HARP" seed "$WORK/seed/attack" --remote /attack --rescan 3600 --json >"$LOGS/seeder.stdout" 2>"$LOGS/seeder.stderr" &
SEEDER=$!
PIDS+=("$SEEDER")
wait_line "$LOGS/seeder.stdout" '"event":"seeding"' 600 "$SEEDER" ||
    { cat "$LOGS/seeder.stdout" "$LOGS/seeder.stderr" >&2; echo "the seeder did not start seeding" >&2; exit 1; }
SIDECAR=$(find "$WORK/dc/files/alice/attack/.harp" -type f -name '*.harp' | head -n 1)
[ -n "$SIDECAR" ] || { echo "no sidecar was published" >&2; exit 1; }
PORT=$(ss -Hltnp | awk -v pid="pid=$SEEDER," 'index($0, pid) { n = split($4, a, ":"); print a[n]; exit }')
[ -n "$PORT" ] || { echo "the seeder listens on no TCP port" >&2; exit 1; }
echo "seeder pid $SEEDER on 127.0.0.1:$PORT, ${SIZE_MIB} MiB file, RSS $(($(rss_kib "$SEEDER") / 1024)) MiB after indexing"

printf '%-16s %10s %12s %12s %10s %s\n' attack "before MiB" "peak MiB" "after MiB" "lasted s" "closed by seeder"
for attack in $ATTACKS; do
    befores=() peaks=() afters=() lasted=() closed=0
    for run in $(seq 1 "$RUNS"); do
        before=$(rss_kib "$SEEDER")
        "$HOSTILE" "$attack" "127.0.0.1:$PORT" "$SIDECAR" "$SECONDS_PER_RUN" >"$LOGS/$attack-$run.out" 2>&1 &
        hp=$!
        peak=$before
        while kill -0 "$hp" 2>/dev/null; do
            r=$(rss_kib "$SEEDER")
            [ "$r" -gt "$peak" ] && peak=$r
            sleep 0.05
        done
        status=0
        wait "$hp" || status=$?
        [ "$status" -le 1 ] || { cat "$LOGS/$attack-$run.out" >&2; echo "the hostile peer failed" >&2; exit 1; }
        kill -0 "$SEEDER" 2>/dev/null || { echo "the seeder died under $attack" >&2; exit 1; }
        sleep 3
        after=$(rss_kib "$SEEDER")
        [ "$status" = 0 ] && closed=$((closed + 1))
        took=$(sed -n 's/.* after \([0-9.]*\) s.*/\1/p' "$LOGS/$attack-$run.out")
        befores+=("$((before / 1024))") peaks+=("$((peak / 1024))") afters+=("$((after / 1024))") lasted+=("${took:-0}")
        echo "{\"attack\":\"$attack\",\"run\":$run,\"before_kib\":$before,\"peak_kib\":$peak,\"after_kib\":$after,\"lasted_s\":${took:-0},\"closed_by_seeder\":$([ "$status" = 0 ] && echo true || echo false)}" >>"$RESULTS"
    done
    printf '%-16s %10s %12s %12s %10s %s\n' "$attack" "$(median "${befores[@]}")" "$(median "${peaks[@]}")" \
        "$(median "${afters[@]}")" "$(median "${lasted[@]}")" "$closed/$RUNS"
done
echo "seeder VmHWM over the whole run (start-up and indexing included): $(($(awk '/^VmHWM:/ {print $2}' "/proc/$SEEDER/status") / 1024)) MiB"
