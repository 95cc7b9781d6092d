#!/usr/bin/env bash
# Version log figures (issue 16, docs/proofs.md):
#  1. appends per second on one signaling server with two witnesses, all three real processes on loopback, and the
#     time from the last append to a checkpoint cosigned by both and published;
#  2. the size of a proof bundle for a file of 1,000 versions in a log of 1,000,000 entries (harp-log-bench, in
#     memory) and the time of `harp-cli verify-proof` on that bundle (median of RUNS).
#   bench/proof/run.sh
#   COUNT=4000 LINEAGES=16 RUNS=5 bench/proof/run.sh
#   BIN=.build/debug PARTS=server COUNT=200 bench/proof/run.sh    # a quick check of the script with debug binaries
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
if [ -z "${BIN:-}" ]; then
    scratch=${SCRATCH:-.build-release}
    swift build -c release --product harp-cli --scratch-path "$scratch" >&2
    swift build -c release --product harp-log-bench --scratch-path "$scratch" >&2
    BIN="$scratch/release"
fi
bin=$BIN
parts=${PARTS:-server,memory}
work=$(mktemp -d)
# Each server's pid is kept in a file: `serve` runs in a command substitution (a subshell), whose variables are lost.
cleanup() {
    for file in "$work"/*.pid; do
        [ -e "$file" ] && kill "$(cat "$file")" 2>/dev/null || true
    done
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

# Starts `harp-cli signal serve` with the given extra arguments; prints its http://127.0.0.1:PORT.
serve() {
    local name=$1
    shift
    "$bin/harp-cli" signal serve --listen 127.0.0.1:0 --data "$work/$name" --log-level warning "$@" \
        >"$work/$name.out" 2>"$work/$name.err" &
    echo $! >"$work/$name.pid"
    for _ in $(seq 1 200); do
        if [ -s "$work/$name.out" ]; then
            head -1 "$work/$name.out" | sed -e 's#^ws://#http://#' -e 's#/v1/ws$##'
            return
        fi
        sleep 0.05
    done
    echo "server $name did not start: $(cat "$work/$name.err")" >&2
    exit 1
}

vkey() { awk -v kind="$2" '$1 == kind { print $2 }' "$work/$1.keys"; }
for name in log w1 w2; do "$bin/harp-cli" signal keys --data "$work/$name" --name "$name.bench" >"$work/$name.keys"; done
# The witnesses trust the log's key (they never send it anything: the URL is not used).
echo "server http://127.0.0.1:1 $(vkey log log) $(vkey log witness)" >"$work/witnesses.federation"
w1=$(serve w1 --federation "$work/witnesses.federation" --witness-quorum 0)
w2=$(serve w2 --federation "$work/witnesses.federation" --witness-quorum 0)
{
    echo "# the log's witnesses"
    echo "server $w1 $(vkey w1 log) $(vkey w1 witness)"
    echo "server $w2 $(vkey w2 log) $(vkey w2 witness)"
} >"$work/log.federation"
device=$("$bin/harp-log-bench" device bench-seed)
"$bin/harp-cli" signal enroll --data "$work/log" --user bench --device "$device" >/dev/null
# The benchmark appends from one address far above the default per-address limit of /v1/log/*.
log=$(serve log --federation "$work/log.federation" --log-requests-per-second 1000000)

if [[ $parts == *server* ]]; then
echo "== one server, two witnesses (2 of 2), loopback"
"$bin/harp-log-bench" append "$log" "${COUNT:-2000}" bench-seed "${LINEAGES:-8}"
fi
[[ $parts == *memory* ]] || exit 0

echo "== 1,000 versions in a log of 1,000,000 entries (in memory)"
HARP_LOG_BENCH_OUT="$work" "$bin/harp-log-bench"
ls -l "$work/bundle.json" | awk '{ print "bundle file: " $5 " bytes" }'
times=()
for _ in $(seq 1 "${RUNS:-5}"); do
    start=$(date +%s%N)
    "$bin/harp-cli" verify-proof "$work/bundle.json" --policy "$work/policy" >/dev/null
    end=$(date +%s%N)
    times+=($(((end - start) / 1000000)))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
echo "harp-cli verify-proof on that bundle, whole process, ${RUNS:-5} runs (ms, sorted): $sorted"
