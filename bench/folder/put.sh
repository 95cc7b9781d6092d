#!/usr/bin/env bash
# Many small files up (issue 15, item 1): `harp-cli put -R` of a folder of FILES files of SIZE_KIB KiB against
# `rclone copy --transfers 8` over WebDAV to the same server (DevCloud on 127.0.0.1).
#
#   bench/folder/put.sh                                   # 2,000 x 64 KiB, 3 runs
#   HARP_CLI=/path/to/harp-cli bench/folder/put.sh        # use that binary instead of building one
#   HARP_BEFORE=/path/to/old/harp-cli bench/folder/put.sh # also time an older harp-cli ("harp-before")
#   FILES=200 RUNS=1 bench/folder/put.sh                  # a quick try
#
# What is timed, RUNS times (default 3), each into a new remote folder, in this order per run:
#   rclone        `rclone copy --transfers 8 SRC remote:FOLDER` (a webdav remote with `vendor nextcloud`, set up
#                 through RCLONE_CONFIG_* environment variables: no config file is written)
#   harp          `harp-cli put -R SRC FOLDER` without a signaling server (the server alone)
#   harp-bundle   the same with a signaling server: it also publishes the folder's bundle of small files (one folder
#                 sidecar and one bundle manifest), so the next `get -R` takes them through one swarm
#   harp-before   HARP_BEFORE's `put -R` with a signaling server, when HARP_BEFORE is set (the per-file path: a sidecar,
#                 a manifest and a swarm for every file)
# Every upload is compared with the source in DevCloud's data folder (`diff -r`, byte for byte, `.harp/` left out); a
# run counts only when its client exited 0 and the copy is identical. Figures: wall time of the client process from
# start to exit, medians over the counted runs, files/s, the ratio of the medians to rclone's, the client's CPU and
# peak RSS, and the requests each client sent per file, by method (DevCloud's counters, `GET /harp-devcloud/stats`).
#
# Parameters (environment): FILES (2000), SIZE_KIB (64), RUNS (3), TRANSFERS (rclone's --transfers, 8), WORK
# (/var/tmp/harp-folder-put-bench), HARP_CLI (else built with `swift build -c release --product harp-cli
# --scratch-path .build-release`), HARP_BEFORE, TIMEOUT (seconds per upload, 900), TOOLS (the tools to time, in order,
# default "rclone harp harp-bundle", plus harp-before with HARP_BEFORE; the per-file path takes minutes per run).
# Only loopback addresses are used. Processes started here are ended on exit, Ctrl-C or SIGTERM.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
FILES=${FILES:-2000}
SIZE_KIB=${SIZE_KIB:-64}
RUNS=${RUNS:-3}
TRANSFERS=${TRANSFERS:-8}
WORK=${WORK:-/var/tmp/harp-folder-put-bench}
TIMEOUT=${TIMEOUT:-900}
HARP_BIN=${HARP_CLI:-}
BEFORE_BIN=${HARP_BEFORE:-}
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(HARP_|XDG_|RCLONE_)' || true)

export PATH="$PATH:/usr/sbin:/sbin"
. "$here/../lib.sh"
need_tools rclone:rclone python3:python3 curl:curl diff:diffutils timeout:coreutils openssl:openssl || exit 1
[ -x /usr/bin/time ] || need_tools /usr/bin/time:time || exit 1

if [ -n "$HARP_BIN" ]; then
    HARP=$HARP_BIN
else
    (cd "$repo" && swift build -c release --product harp-cli --scratch-path .build-release >&2)
    HARP="$(cd "$repo" && swift build -c release --scratch-path .build-release --show-bin-path)/harp-cli"
fi
[ -x "$HARP" ] || { echo "no harp-cli at $HARP" >&2; exit 1; }
if [ -n "$BEFORE_BIN" ] && [ ! -x "$BEFORE_BIN" ]; then echo "no harp-cli at $BEFORE_BIN" >&2; exit 1; fi

PIDS=()
CLIENT_PID=""
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    [ -n "$CLIENT_PID" ] && kill -TERM "$CLIENT_PID" 2>/dev/null
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$WORK/dc" "$WORK/peers" 2>/dev/null
    [ -d "$WORK" ] && echo "logs and results: $WORK" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

mkdir -p "$WORK"
rm -rf "$WORK/dc" "$WORK/peers" "$WORK/logs"
mkdir -p "$WORK/logs" "$WORK/peers" "$WORK/dc/files/alice"
LOGS=$WORK/logs
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

# Incompressible and deterministic: one AES-256-CTR keystream cut into FILES pieces of SIZE_KIB KiB.
SRC=$WORK/src-$FILES-$SIZE_KIB/up
if [ "$(find "$SRC" -type f 2>/dev/null | wc -l)" != "$FILES" ]; then
    rm -rf "$SRC"
    mkdir -p "$SRC"
    head -c "$((FILES * SIZE_KIB * 1024))" /dev/zero |
        openssl enc -aes-256-ctr -pass pass:harp-folder-put-bench -nosalt -pbkdf2 2>/dev/null |
        (cd "$SRC" && split -a 5 -d -b "$((SIZE_KIB * 1024))" - f && for f in f*; do mv "$f" "$f.bin"; done)
fi
[ "$(find "$SRC" -type f | wc -l)" = "$FILES" ] || { echo "could not write $FILES files into $SRC" >&2; exit 1; }
find "$SRC" -type f -exec cat {} + >/dev/null

"$HARP" devcloud serve --data "$WORK/dc" --listen 127.0.0.1:0 --user alice:alice-bench-pw \
    >"$LOGS/devcloud.out" 2>"$LOGS/devcloud.err" &
PIDS+=($!)
wait_line "$LOGS/devcloud.out" '^http' 60 $! || { cat "$LOGS/devcloud.err" >&2; echo "DevCloud did not start" >&2; exit 1; }
DC_URL=$(head -n 1 "$LOGS/devcloud.out")
STATS_URL=$DC_URL/harp-devcloud/stats
"$HARP" signal serve --listen 127.0.0.1:0 --data "$WORK/peers/signal" --log-level warning \
    >"$LOGS/signal.out" 2>"$LOGS/signal.err" &
PIDS+=($!)
wait_line "$LOGS/signal.out" '^wss?://' 60 $! || { cat "$LOGS/signal.err" >&2; exit 1; }
SIG_URL=$(head -n 1 "$LOGS/signal.out")

run_client() {  # tool run-number
    local tool=$1 number=$2 label=$1-run$2 folder=$1-$2 peer=$WORK/peers/$1-$2 before after rc=0 t0 t1
    local tfile=$LOGS/$label.time
    mkdir -p "$peer"
    before=$(curl -sS -f "$STATS_URL")
    local command=()
    case $tool in
        rclone)
            command=(env RCLONE_CONFIG_HB_TYPE=webdav RCLONE_CONFIG_HB_URL="$DC_URL/remote.php/dav/files/alice"
                RCLONE_CONFIG_HB_VENDOR=nextcloud RCLONE_CONFIG_HB_USER=alice
                RCLONE_CONFIG_HB_PASS="$(rclone obscure alice-bench-pw)"
                rclone copy --config /dev/null --transfers "$TRANSFERS" "$SRC" "hb:$folder/up")
            ;;
        harp*)
            local binary=$HARP signal=()
            [ "$tool" = harp-before ] && binary=$BEFORE_BIN
            [ "$tool" != harp ] && signal=(HARP_SIGNAL="$SIG_URL" HARP_LISTEN=127.0.0.1)
            command=(env HARP_SERVER="$DC_URL" HARP_USER=alice HARP_APP_PASSWORD=alice-bench-pw
                HARP_CONFIG_DIR="$peer/config" HARP_STORE="$peer/store.sqlite" XDG_STATE_HOME="$peer/state"
                "${signal[@]}" "$binary" put -R "$SRC" "/$folder" --quiet)
            ;;
    esac
    sync
    t0=$(now)
    timeout "$TIMEOUT" /usr/bin/time -f '%e %M %U %S' -o "$tfile" "${command[@]}" \
        >"$LOGS/$label.stdout" 2>"$LOGS/$label.stderr" &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    t1=$(now)
    after=$(curl -sS -f "$STATS_URL")
    local seconds ok=0 rss cpu counts bundle=0
    seconds=$(python3 -c "print('%.3f' % ($t1 - $t0))")
    rss=$(awk 'END {print $2}' "$tfile" 2>/dev/null || echo 0)
    cpu=$(awk 'END {printf "%.2f", $3 + $4}' "$tfile" 2>/dev/null || echo 0)
    local copy=$WORK/dc/files/alice/$folder/up
    if [ "$rc" = 0 ] && [ "$(find "$copy" -path '*/.harp' -prune -o -type f -print | wc -l)" = "$FILES" ] &&
        diff -r -q -x .harp "$SRC" "$copy" >/dev/null 2>&1; then
        ok=1
    fi
    [ -f "$copy/.harp/folder.harp" ] && bundle=1
    counts=$(python3 -c "
import json, sys
b, a = json.loads(sys.argv[1]).get('requestsByMethod', {}), json.loads(sys.argv[2]).get('requestsByMethod', {})
print(json.dumps({m: a[m] - b.get(m, 0) for m in sorted(a) if a[m] - b.get(m, 0)}))" "$before" "$after")
    printf '   %-12s %8s s  %7.1f files/s  exit %s  %s  bundle %s  CPU %s s  peak RSS %s MiB  requests %s\n' \
        "$tool" "$seconds" "$(python3 -c "print($FILES / $seconds)")" "$rc" \
        "$([ "$ok" = 1 ] && echo identical || echo DIFFERS)" "$bundle" "$cpu" \
        "$(python3 -c "print('%.1f' % (${rss:-0} / 1024))")" "$counts"
    echo "{\"tool\":\"$tool\",\"run\":$number,\"files\":$FILES,\"kib\":$SIZE_KIB,\"seconds\":$seconds,\"rc\":$rc,\"identical\":$ok,\"bundle\":$bundle,\"cpuSeconds\":$cpu,\"rssKiB\":${rss:-0},\"requests\":$counts}" >>"$RESULTS"
    rm -rf "$peer"
}

if [ -n "${TOOLS:-}" ]; then
    read -r -a TOOLS <<<"$TOOLS"
else
    TOOLS=(rclone harp harp-bundle)
    [ -n "$BEFORE_BIN" ] && TOOLS+=(harp-before)
fi
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); harp-cli $HARP"
echo "$(rclone version | head -n 1)"
echo "== devcloud: $FILES files of $SIZE_KIB KiB up; load average $(load)"
for number in $(seq 1 "$RUNS"); do
    echo " run $number (load $(load))"
    for tool in "${TOOLS[@]}"; do run_client "$tool" "$number"; done
done

python3 - "$RESULTS" "$FILES" "$SIZE_KIB" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
files, kib = int(sys.argv[2]), int(sys.argv[3])
tools = list(dict.fromkeys(r["tool"] for r in rows))
print()
print("summary: put of %d files of %d KiB to DevCloud; wall time of the client, medians over the runs that exited 0 "
      "with an identical copy" % (files, kib))
print("| tool | runs counted | seconds per run | median s | files/s | median / rclone | client CPU s | peak RSS MiB "
      "| bundle published | requests per file |")
print("|---|---|---|---|---|---|---|---|---|---|")
med = {}
for t in tools:
    good = [r for r in rows if r["tool"] == t and r["rc"] == 0 and r["identical"] == 1]
    med[t] = statistics.median([r["seconds"] for r in good]) if good else None
for t in tools:
    good = [r for r in rows if r["tool"] == t and r["rc"] == 0 and r["identical"] == 1]
    every = [r for r in rows if r["tool"] == t]
    reqs = good[-1]["requests"] if good else {}
    per_file = ", ".join("%s %.2f" % (m, c / files) for m, c in sorted(reqs.items())) or "-"
    ratio = "%.2f" % (med[t] / med["rclone"]) if med.get(t) and med.get("rclone") else "-"
    print("| %s | %d of %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        t, len(good), len(every), " / ".join("%.1f" % r["seconds"] for r in every),
        "%.1f" % med[t] if med[t] else "-", "%.0f" % (files / med[t]) if med[t] else "-", ratio,
        "%.1f" % statistics.median([r["cpuSeconds"] for r in good]) if good else "-",
        "%.1f" % (statistics.median([r["rssKiB"] for r in good]) / 1024) if good else "-",
        "yes" if good and all(r["bundle"] for r in good) else "no", per_file))
PY
