#!/usr/bin/env bash
# Many small files from the server alone (issue 15, item 2; DESIGN.md §10): `harp-cli get -R` of a folder of FILES
# files of SIZE_KIB KiB against `rclone copy --transfers 8` over WebDAV from the same server.
#
#   bench/folder/run.sh                                  # DevCloud on 127.0.0.1, 2,000 x 64 KiB, 3 runs
#   HARP_CLI=/path/to/harp-cli bench/folder/run.sh       # use that binary instead of building one
#   HARP_BEFORE=/path/to/old/harp-cli bench/folder/run.sh  # also time an older harp-cli ("harp-before")
#   FILES=200 RUNS=1 PARALLELS="8" bench/folder/run.sh   # a quick try
#   NEXTCLOUD_URL=http://127.0.0.1:8080 NEXTCLOUD_USER=alice NEXTCLOUD_APP_PASSWORD=... bench/folder/run.sh
#
# What is timed, RUNS times (default 3), each into a fresh empty folder, in this order per run:
#   rclone        `rclone copy --transfers 8` of the remote folder (a webdav remote with `vendor nextcloud`, set up
#                 through RCLONE_CONFIG_* environment variables: no config file is written)
#   harp          `harp-cli get -R FOLDER -o OUT` with its defaults, from the server alone (no signaling server)
#   harp-pN       the same with `--parallel N`, for each N in PARALLELS (default "4 8 16 32")
#   harp-before   HARP_BEFORE's `get -R` with its defaults, when HARP_BEFORE is set
#   harp-swarm    (DevCloud only, SWARM=1, the default) `get -R` with a signaling server and one seeder: the seeder
#                 (`harp-cli seed` of the source folder, started once before the first run, not timed) publishes the
#                 folder's bundle of small files; the fetcher takes them from it. The script prints the share of the
#                 copied bytes the server sent in file bodies (DevCloud's bytesSent), target under 0.1.
# Every copy is compared with the source (`diff -r`, byte for byte, and the same number of files); a run counts only
# when its client exited 0 and the copy is identical. Figures: wall time of the client process from start to exit
# (listing included), medians over the counted runs, files/s, and the ratio of the medians harp/rclone (time; below 1
# harp is faster). Against DevCloud the script also prints the requests each client sent per file, by method, from
# DevCloud's counters (`GET /harp-devcloud/stats`).
#
# Servers: DevCloud (`harp-cli devcloud serve`) on 127.0.0.1, port picked at random, with the account alice; the files
# are written into its data folder (DevCloud picks up files dropped there), which is the fastest set-up. With
# NEXTCLOUD_URL (and NEXTCLOUD_USER, NEXTCLOUD_APP_PASSWORD) the same comparison runs against that server too, in
# NEXTCLOUD_FOLDER (default /harp-folder-bench), uploaded once with `rclone copy` when it does not hold the same files;
# skipped when NEXTCLOUD_URL is unset. Only loopback addresses are used unless NEXTCLOUD_URL names another server.
#
# NESTED=1: FILES files of 4 KiB to SIZE_KIB KiB (random sizes, fixed seed) in 20 folders of 10 subfolders each.
# Parameters (environment): FILES (2000), SIZE_KIB (64), RUNS (3), PARALLELS ("4 8 16 32"), TRANSFERS (rclone's
# --transfers, 8), WORK (/var/tmp/harp-folder-bench), HARP_CLI (else built with `swift build -c release --product
# harp-cli --scratch-path .build-release`), HARP_BEFORE, INSTALL (1: apt-get rclone, python3, time when missing),
# TIMEOUT (seconds per copy, 900), DEVCLOUD (1; 0 skips DevCloud, for a run against NEXTCLOUD_URL alone).
#
# Processes started here are ended on exit, Ctrl-C or SIGTERM; the copies are removed, the logs and results.jsonl stay
# in WORK.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
FILES=${FILES:-2000}
SIZE_KIB=${SIZE_KIB:-64}
RUNS=${RUNS:-3}
PARALLELS=${PARALLELS:-"4 8 16 32"}
TRANSFERS=${TRANSFERS:-8}
WORK=${WORK:-/var/tmp/harp-folder-bench}
INSTALL=${INSTALL:-1}
TIMEOUT=${TIMEOUT:-900}
DEVCLOUD=${DEVCLOUD:-1}
SWARM=${SWARM:-1}
NESTED=${NESTED:-0}
HARP_BIN=${HARP_CLI:-}
BEFORE_BIN=${HARP_BEFORE:-}
NC_URL=${NEXTCLOUD_URL:-}
NC_USER=${NEXTCLOUD_USER:-}
NC_PASS=${NEXTCLOUD_APP_PASSWORD:-}
NC_FOLDER=${NEXTCLOUD_FOLDER:-/harp-folder-bench}
# The clients get their settings from the variables set below only.
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
    rm -rf "$WORK/out" "$WORK/dc" "$WORK/peers" 2>/dev/null
    [ -d "$WORK" ] && echo "logs and results: $WORK" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

mkdir -p "$WORK"
rm -rf "$WORK/out" "$WORK/dc" "$WORK/peers" "$WORK/logs"
mkdir -p "$WORK/out" "$WORK/logs" "$WORK/peers"
LOGS=$WORK/logs
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

# --- the source files -----------------------------------------------------------------------------------------------
# Incompressible and deterministic: one AES-256-CTR keystream cut into FILES pieces of SIZE_KIB KiB.
SRC=$WORK/src-$FILES-$SIZE_KIB$(if [ "$NESTED" = 1 ]; then echo -nested; fi)
if [ "$NESTED" = 1 ] && [ "$(find "$SRC" -type f 2>/dev/null | wc -l)" != "$FILES" ]; then
    # Sizes from 4 KiB to SIZE_KIB KiB, in 20 folders of 10 subfolders each (issue 15: 20,000 files of 4 to 64 KiB).
    rm -rf "$SRC"
    python3 - "$SRC" "$FILES" "$SIZE_KIB" <<'PY'
import os, random, sys
root, count, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(15)
for i in range(count):
    folder = os.path.join(root, "d%02d" % (i % 20), "e%02d" % ((i // 20) % 10))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "f%05d.bin" % i), "wb") as f:
        f.write(rng.randbytes(rng.randint(4 * 1024, kib * 1024)))
PY
elif [ "$(find "$SRC" -type f 2>/dev/null | wc -l)" != "$FILES" ]; then
    rm -rf "$SRC"
    mkdir -p "$SRC"
    head -c "$((FILES * SIZE_KIB * 1024))" /dev/zero |
        openssl enc -aes-256-ctr -pass pass:harp-folder-bench -nosalt -pbkdf2 2>/dev/null |
        (cd "$SRC" && split -a 5 -d -b "$((SIZE_KIB * 1024))" - f && for f in f*; do mv "$f" "$f.bin"; done)
fi
[ "$(find "$SRC" -type f | wc -l)" = "$FILES" ] || { echo "could not write $FILES files into $SRC" >&2; exit 1; }
find "$SRC" -type f -exec cat {} + >/dev/null

# --- one timed copy -------------------------------------------------------------------------------------------------
# Sets COPY_SECONDS, COPY_RC, COPY_OK, COPY_CPU, COPY_RSS_KIB.
timed_client() {  # label output-folder -- command...
    local label=$1 out=$2 t0 t1 rc=0 tfile=$LOGS/$1.time
    shift 3
    sync
    t0=$(now)
    timeout "$TIMEOUT" /usr/bin/time -f '%e %M %U %S' -o "$tfile" "$@" >"$LOGS/$label.stdout" 2>"$LOGS/$label.stderr" &
    CLIENT_PID=$!
    wait "$CLIENT_PID" || rc=$?
    CLIENT_PID=""
    t1=$(now)
    COPY_RC=$rc
    COPY_SECONDS=$(python3 -c "print('%.3f' % ($t1 - $t0))")
    COPY_RSS_KIB=$(awk 'END {print $2}' "$tfile" 2>/dev/null || echo "")
    COPY_CPU=$(awk 'END {printf "%.2f", $3 + $4}' "$tfile" 2>/dev/null || echo "")
    COPY_OK=0
    # The seeder of the harp-swarm series writes .harp/ (the folder's bundle) into the remote folder: rclone copies it,
    # harp does not; the copies are compared without it.
    if [ "$rc" = 0 ] && [ -d "$out" ] && [ "$(find "$out" -path '*/.harp' -prune -o -type f -print | wc -l)" = "$FILES" ] &&
        diff -r -q -x .harp "$SRC" "$out" >/dev/null 2>&1; then
        COPY_OK=1
    fi
}

STATS_URL=""
# Prints DevCloud's request counters as JSON ({} without DevCloud).
stats() {
    if [ -n "$STATS_URL" ]; then curl -sS -f "$STATS_URL" || echo '{}'; else echo '{}'; fi
}

# One client run against one server. SERVER_LABEL, REMOTE_URL (the WebDAV root of the user), REMOTE_USER, REMOTE_PASS,
# REMOTE_FOLDER and (for DevCloud) STATS_URL describe the server.
run_client() {  # tool run-number
    local tool=$1 number=$2 out=$WORK/out/$1-$2 label=$SERVER_LABEL-run$2-$1 peer=$WORK/peers/$1 before after
    rm -rf "$out" "$peer"
    mkdir -p "$peer"
    before=$(stats)
    case $tool in
        rclone)
            timed_client "$label" "$out" -- env RCLONE_CONFIG_HB_TYPE=webdav RCLONE_CONFIG_HB_URL="$REMOTE_URL" \
                RCLONE_CONFIG_HB_VENDOR=nextcloud RCLONE_CONFIG_HB_USER="$REMOTE_USER" \
                RCLONE_CONFIG_HB_PASS="$(rclone obscure "$REMOTE_PASS")" \
                rclone copy --config /dev/null --transfers "$TRANSFERS" "hb:${REMOTE_FOLDER#/}" "$out"
            ;;
        harp* )
            local binary=$HARP extra=()
            case $tool in
                harp-before) binary=$BEFORE_BIN ;;
                harp-p*) extra=(--parallel "${tool#harp-p}") ;;
            esac
            local swarm_env=()
            if [ "$tool" = harp-swarm ]; then
                swarm_env=(HARP_SIGNAL="$SIG_URL" HARP_LISTEN=127.0.0.1)
                extra=(--linger 0)
            fi
            timed_client "$label" "$out" -- env HARP_SERVER="$REMOTE_BASE" HARP_USER="$REMOTE_USER" \
                HARP_APP_PASSWORD="$REMOTE_PASS" HARP_CONFIG_DIR="$peer/config" HARP_STORE="$peer/store.sqlite" \
                XDG_STATE_HOME="$peer/state" "${swarm_env[@]}" \
                "$binary" get -R "$REMOTE_FOLDER" -o "$out" --quiet "${extra[@]}"
            ;;
    esac
    after=$(stats)
    local counts
    counts=$(python3 - "$before" "$after" "$FILES" <<'PY'
import json, sys
b, a, n = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
bm, am = b.get("requestsByMethod", {}), a.get("requestsByMethod", {})
if not am:
    print("{}")
else:
    print(json.dumps({m: am[m] - bm.get(m, 0) for m in sorted(am) if am[m] - bm.get(m, 0)}))
PY
)
    local sent=null
    if [ -n "$STATS_URL" ]; then
        sent=$(python3 -c "import json, sys; print(json.loads(sys.argv[2]).get('bytesSent', 0) - json.loads(sys.argv[1]).get('bytesSent', 0))" "$before" "$after")
    fi
    printf '   %-12s %8s s  %7.1f files/s  exit %s  %s  CPU %s s  peak RSS %s MiB  server sent %s B  requests %s\n' \
        "$tool" "$COPY_SECONDS" "$(python3 -c "print($FILES / $COPY_SECONDS)")" "$COPY_RC" \
        "$([ "$COPY_OK" = 1 ] && echo identical || echo DIFFERS)" "$COPY_CPU" \
        "$(python3 -c "print('%.1f' % (${COPY_RSS_KIB:-0} / 1024))")" "$sent" "$counts"
    echo "{\"server\":\"$SERVER_LABEL\",\"tool\":\"$tool\",\"run\":$number,\"files\":$FILES,\"kib\":$SIZE_KIB,\"seconds\":$COPY_SECONDS,\"rc\":$COPY_RC,\"identical\":$COPY_OK,\"cpuSeconds\":${COPY_CPU:-null},\"rssKiB\":${COPY_RSS_KIB:-null},\"bytesSent\":$sent,\"requests\":$counts}" >>"$RESULTS"
    rm -rf "$out" "$peer"
}

TOOLS=(rclone harp)
for p in $PARALLELS; do TOOLS+=("harp-p$p"); done
if [ -n "$BEFORE_BIN" ]; then TOOLS+=(harp-before); fi

run_series() {
    echo "== $SERVER_LABEL: $FILES files of $SIZE_KIB KiB in $REMOTE_FOLDER; load average $(load)"
    local number tool
    for number in $(seq 1 "$RUNS"); do
        echo " run $number (load $(load))"
        for tool in "${TOOLS[@]}"; do run_client "$tool" "$number"; done
    done
}

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); harp-cli $HARP"
echo "$(rclone version | head -n 1)"

# --- DevCloud -------------------------------------------------------------------------------------------------------
if [ "$DEVCLOUD" = 1 ]; then
    mkdir -p "$WORK/dc/files/alice/bench"
    cp -r "$SRC"/. "$WORK/dc/files/alice/bench/"
    "$HARP" devcloud serve --data "$WORK/dc" --listen 127.0.0.1:0 --user alice:alice-bench-pw \
        >"$LOGS/devcloud.out" 2>"$LOGS/devcloud.err" &
    PIDS+=($!)
    wait_line "$LOGS/devcloud.out" '^http' 60 $! || { cat "$LOGS/devcloud.err" >&2; echo "DevCloud did not start" >&2; exit 1; }
    DC_URL=$(head -n 1 "$LOGS/devcloud.out")
    SERVER_LABEL=devcloud
    REMOTE_BASE=$DC_URL
    REMOTE_URL=$DC_URL/remote.php/dav/files/alice
    REMOTE_USER=alice
    REMOTE_PASS=alice-bench-pw
    REMOTE_FOLDER=/bench
    STATS_URL=$DC_URL/harp-devcloud/stats
    listed=$(curl -sS -f -u "alice:$REMOTE_PASS" -X PROPFIND -H 'Depth: 1' "$REMOTE_URL/bench/" | grep -o '<d:response>' | wc -l)
    if [ "$NESTED" != 1 ]; then
        [ "$listed" = "$((FILES + 1))" ] || { echo "DevCloud lists $listed entries in /bench, not $((FILES + 1))" >&2; exit 1; }
    fi
    if [ "$SWARM" = 1 ]; then
        "$HARP" signal serve --listen 127.0.0.1:0 --data "$WORK/peers/signal" --log-level warning \
            >"$LOGS/signal.out" 2>"$LOGS/signal.err" &
        PIDS+=($!)
        wait_line "$LOGS/signal.out" '^wss?://' 60 $! || { cat "$LOGS/signal.err" >&2; exit 1; }
        SIG_URL=$(head -n 1 "$LOGS/signal.out")
        seeder=$WORK/peers/seeder
        mkdir -p "$seeder"
        t0=$(now)
        env HARP_SERVER="$DC_URL" HARP_USER=alice HARP_APP_PASSWORD=alice-bench-pw HARP_SIGNAL="$SIG_URL" \
            HARP_LISTEN=127.0.0.1 HARP_CONFIG_DIR="$seeder/config" HARP_STORE="$seeder/store.sqlite" \
            XDG_STATE_HOME="$seeder/state" "$HARP" seed "$SRC" --remote /bench --json --rescan 3600 \
            >"$LOGS/seeder.out" 2>"$LOGS/seeder.err" &
        PIDS+=($!)
        for _ in $(seq 1 "$TIMEOUT"); do
            n=$(grep -c '"event":"seeding"' "$LOGS/seeder.out" 2>/dev/null || true)
            [ "${n:-0}" -ge "$FILES" ] && break
            kill -0 "${PIDS[-1]}" 2>/dev/null || { tail -5 "$LOGS/seeder.err" >&2; echo "the seeder exited" >&2; exit 1; }
            sleep 1
        done
        echo "seeder: every file seeding after $(python3 -c "print('%.1f' % ($(now) - $t0))") s"
        TOOLS+=(harp-swarm)
    fi
    run_series
    STATS_URL=""
fi

# --- a Nextcloud given by URL ---------------------------------------------------------------------------------------
if [ -n "$NC_URL" ]; then
    [ -n "$NC_USER" ] && [ -n "$NC_PASS" ] || { echo "NEXTCLOUD_URL needs NEXTCLOUD_USER and NEXTCLOUD_APP_PASSWORD" >&2; exit 1; }
    SERVER_LABEL=nextcloud
    REMOTE_BASE=${NC_URL%/}
    REMOTE_URL=$REMOTE_BASE/remote.php/dav/files/$NC_USER
    REMOTE_USER=$NC_USER
    REMOTE_PASS=$NC_PASS
    REMOTE_FOLDER=$NC_FOLDER
    echo "uploading the files to $NC_URL $NC_FOLDER with rclone copy (skips files already there)"
    env RCLONE_CONFIG_HB_TYPE=webdav RCLONE_CONFIG_HB_URL="$REMOTE_URL" RCLONE_CONFIG_HB_VENDOR=nextcloud \
        RCLONE_CONFIG_HB_USER="$NC_USER" RCLONE_CONFIG_HB_PASS="$(rclone obscure "$NC_PASS")" \
        rclone copy --config /dev/null --transfers 4 "$SRC" "hb:${NC_FOLDER#/}" >"$LOGS/nextcloud-upload.log" 2>&1 ||
        { cat "$LOGS/nextcloud-upload.log" >&2; echo "the upload to $NC_URL failed" >&2; exit 1; }
    run_series
else
    echo "(NEXTCLOUD_URL unset: no run against a real Nextcloud)"
fi

# --- summary --------------------------------------------------------------------------------------------------------
python3 - "$RESULTS" "$FILES" "$SIZE_KIB" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
files, kib = int(sys.argv[2]), int(sys.argv[3])
for server in dict.fromkeys(r["server"] for r in rows):
    rs = [r for r in rows if r["server"] == server]
    tools = list(dict.fromkeys(r["tool"] for r in rs))
    print()
    print("summary (%s): %d files of %d KiB; wall time of the client, medians over the runs that exited 0 with an "
          "identical copy" % (server, files, kib))
    print("| tool | runs counted | seconds per run | median s | files/s | median / rclone | client CPU s | peak RSS MiB "
          "| requests per file |")
    print("|---|---|---|---|---|---|---|---|---|")
    med = {}
    for t in tools:
        good = [r for r in rs if r["tool"] == t and r["rc"] == 0 and r["identical"] == 1]
        every = [r for r in rs if r["tool"] == t]
        med[t] = statistics.median([r["seconds"] for r in good]) if good else None
    for t in tools:
        good = [r for r in rs if r["tool"] == t and r["rc"] == 0 and r["identical"] == 1]
        every = [r for r in rs if r["tool"] == t]
        reqs = good[-1]["requests"] if good and good[-1]["requests"] else {}
        per_file = ", ".join("%s %.3f" % (m, c / files) for m, c in sorted(reqs.items())) or "-"
        ratio = "%.2f" % (med[t] / med["rclone"]) if med.get(t) and med.get("rclone") else "-"
        print("| %s | %d of %d | %s | %s | %s | %s | %s | %s | %s |" % (
            t, len(good), len(every), " ".join("%.2f" % r["seconds"] for r in every),
            "%.2f" % med[t] if med[t] else "-", "%.0f" % (files / med[t]) if med[t] else "-", ratio,
            "%.1f" % statistics.median([r["cpuSeconds"] for r in good]) if good else "-",
            "%.0f" % (statistics.median([r["rssKiB"] for r in good]) / 1024) if good else "-", per_file))
    swarm = [r for r in rs if r["tool"] == "harp-swarm" and r["rc"] == 0 and r["identical"] == 1]
    if swarm and med.get("rclone"):
        share = statistics.median([r["bytesSent"] / (files * kib * 1024) for r in swarm if r.get("bytesSent") is not None])
        print("harp-swarm (one seeder) / rclone, time: %.2f -> %s (target: at most 1/3); server sent %.3f of the bytes "
              "(target: under 0.1)" % (med["harp-swarm"] / med["rclone"],
                                     "MET" if med["harp-swarm"] * 3 <= med["rclone"] else "NOT MET", share))
    if med.get("harp") and med.get("rclone"):
        ratio = med["harp"] / med["rclone"]
        print("harp (defaults) / rclone --transfers 8, time: %.2f -> %s (target: at most 1)" % (
            ratio, "MET" if ratio <= 1 else "NOT MET"))
PY
