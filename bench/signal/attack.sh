#!/usr/bin/env bash
# Signaling server under attack (issue 13, part 4): starts `harp-cli signal serve` on 127.0.0.1 with its default
# limits and runs each attack of `harp-signal-load --attack` against it, from loopback addresses 127.0.0.2 and up,
# while a legitimate client on 127.0.0.9 measures /healthz and a whole join (connect, prove, join) before, during and
# after the attack. Prints each run's JSON line, then the medians per attack.
# Targets: /healthz and the join under 100 ms during the attack; server RSS under 500 MiB; after the attack no
# memberships or connections left and RSS back near where it started.
#   bench/signal/attack.sh                                    # every attack, 3 runs each, release build
#   ATTACKS="idle proofs" RUNS=1 CONFIG=debug bench/signal/attack.sh
#   SCRATCH=.build-release bench/signal/attack.sh             # build (or reuse) the release binaries there
#
# The attacks (sizes from the issue's reproduction):
#   idle    IDLE connections (default 19,990) from IDLE_ADDRESSES addresses, every other one with half an HTTP
#           request, re-opened as the server closes them
#   swarms  DEVICES devices (default 100) from one address, each joining SWARMS_PER_DEVICE (1,024) fresh swarms at
#           18 joins/s (under the message rate)
#   proofs  PROOFS connections (default 300) from one address all take their challenge, then each sends a wrong
#           join-key proof (the server runs with a join key)
#   relay   two devices from one address relay 60,000-byte frames to each other flat out, one end flooding frames
#           with no payload back
# Loopback only; every wait in the load tool has a deadline, and each run is killed after RUN_TIMEOUT seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
ATTACKS=${ATTACKS:-"idle swarms proofs relay"}
RUNS=${RUNS:-3}
CONFIG=${CONFIG:-release}
IDLE=${IDLE:-19990}
IDLE_ADDRESSES=${IDLE_ADDRESSES:-1}
DEVICES=${DEVICES:-100}
SWARMS_PER_DEVICE=${SWARMS_PER_DEVICE:-1024}
PROOFS=${PROOFS:-300}
HOLD=${HOLD:-10}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
# Each idle connection is a descriptor in the load tool and, until refused, one in the server.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n); config $CONFIG; load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
SCRATCH=${SCRATCH:-.build}   # another build folder (e.g. .build-release) keeps a release build apart from debug
swift build -c "$CONFIG" --scratch-path "$SCRATCH" --product harp-cli >&2
swift build -c "$CONFIG" --scratch-path "$SCRATCH" --product harp-signal-load >&2
bin="$(swift build -c "$CONFIG" --scratch-path "$SCRATCH" --show-bin-path)"
out=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT
for attack in $ATTACKS; do
    for run in $(seq 1 "$RUNS"); do
        data="$out/data-$attack-$run"
        key=""
        [ "$attack" = proofs ] && key="bench join key $RANDOM$RANDOM"
        HARP_SIGNAL_JOIN_KEY="$key" "$bin/harp-cli" signal serve --listen 127.0.0.1:0 --data "$data" \
            --log-level error >"$out/server.out" 2>"$out/server.err" &
        pid=$!
        url=""
        for _ in $(seq 1 100); do
            url=$(head -n 1 "$out/server.out" 2>/dev/null || true)
            [ -n "$url" ] && break
            sleep 0.1
        done
        [ -n "$url" ] || { echo "server did not start" >&2; cat "$out/server.err" >&2; exit 1; }
        case "$attack" in
            idle) size=(--attack-count "$IDLE" --attack-addresses "$IDLE_ADDRESSES") ;;
            swarms) size=(--attack-count "$DEVICES" --swarms-per-device "$SWARMS_PER_DEVICE") ;;
            proofs) size=(--attack-count "$PROOFS") ;;
            relay) size=(--attack-count 2) ;;
        esac
        HARP_SIGNAL_JOIN_KEY="$key" timeout "$RUN_TIMEOUT" "$bin/harp-signal-load" --url "$url" --attack "$attack" \
            "${size[@]}" --hold-seconds "$HOLD" --server-pid "$pid" | tee -a "$out/results.jsonl"
        kill -TERM "$pid"
        wait "$pid" || true
        pid=""
    done
done
python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
keys = ["healthz_before_p50_ms", "join_before_p50_ms", "healthz_during_p50_ms", "healthz_during_max_ms",
        "join_during_p50_ms", "join_during_max_ms", "probe_during_failures", "rss_before_mib", "rss_during_mib",
        "rss_after_mib", "memberships_after", "tcp_connections_after", "attack_accepted",
        "harp_signal_refused_connections_total", "harp_signal_request_timeouts_total",
        "harp_signal_refused_join_keys_total", "harp_signal_bans_total", "relay_mib_per_s"]
for attack in dict.fromkeys(row["attack"] for row in rows):
    group = [row for row in rows if row["attack"] == attack]
    print("%s: median of %d runs" % (attack, len(group)))
    for key in keys:
        values = [row[key] for row in group if isinstance(row.get(key), (int, float))]
        if values:
            print("  %-40s %s" % (key, round(statistics.median(values), 1)))
PY
