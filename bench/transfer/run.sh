#!/usr/bin/env bash
# One seeder to one peer over loopback, and the memory of one peer moving a large file (DESIGN.md §10).
#
#   bench/transfer/run.sh                              # 2 GiB vs curl/scp/rsync, 3 runs; then 10 GiB once (memory)
#   HARP_CLI=/path/to/harp-cli bench/transfer/run.sh   # use that binary instead of building one
#   PHASES=transfer RUNS=5 bench/transfer/run.sh       # only the 2 GiB comparison, 5 runs
#   SIZE_MIB=256 BIG_MIB=1024 bench/transfer/run.sh    # a quick try
#
# Phases (PHASES, space-separated):
#   transfer  a SIZE_MIB file (default 2048) moved over 127.0.0.1 and written to a file, RUNS times (default 3), each
#             run in this order: curl from nginx (plain HTTP, sendfile), scp and rsync -e ssh from a throwaway sshd,
#             then harp: one `harp-cli seed` peer holding the file, one `harp-cli get --no-server` peer fetching it
#             (Noise-encrypted, every chunk verified with SHA-256, the content root checked before the rename)
#   memory    a BIG_MIB file (default 10240) fetched the same way from one seeder, BIG_RUNS times (default 1): peak RSS
#             of the fetching and of the seeding process; its time, and (when curl is among TOOLS) the time of curl
#             writing the same file, for information
#
# Figures: wall time of each client process from start to exit (start-up, handshakes and, for harp, the PROPFIND,
# the signaling join and the manifest included), throughput = size / that time in MB/s (10^6 bytes/s), medians over
# the runs, and the ratio harp / reference of the medians (above 1: harp is faster). Every copy is compared with the
# original (cmp); a harp run counts only when its file-done line says every byte came from the peer. After each
# copy the time of `sync -d` on it is measured too (not part of the figure): harp fdatasyncs its partial file every
# 64 MiB and renames only durable data, the references leave the data in the page cache. Peak RSS: `/usr/bin/time -f
# %M` of each client; VmHWM from /proc for the seeder (its whole life: start-up, indexing, serving).
#
# Set-up that is not timed: DevCloud (`harp-cli devcloud serve`) and the signaling server (`harp-cli signal serve`)
# on 127.0.0.1, the file made known to DevCloud by a hard link into its data folder (DevCloud picks up files
# dropped there), the seeder started for each run in a folder that holds another hard link to the file (it indexes
# it once, publishes the sidecar and manifest, and prints `seeding`). nginx and sshd run from configurations written
# under WORK, on free ports of 127.0.0.1 (sshd with a throwaway host key and client key, removed at the end).
#
# Parameters (environment): SIZE_MIB (2048), RUNS (3), HARP_AGAIN (1: in each transfer run, after the first fetch, a
# second fresh fetcher from the same seeder process, which has then sent every chunk once and no longer super-seeds;
# 0: only the first), BIG_MIB (10240), BIG_RUNS (1), PHASES ("transfer memory"), TOOLS (references, "curl scp rsync"),
# WORK (/var/tmp/harp-transfer-bench), HARP_CLI (a harp-cli binary; else built with `swift build -c release`),
# INSTALL (1: apt-get nginx, openssh-server, rsync, curl, time when missing), TIMEOUT (seconds per copy, 1800),
# VERBOSE (1: harp-cli -v, logs in WORK/logs), WAIT_FOR (a pattern for `pgrep -f`: before each phase and run, wait
# until no such process runs; default bench/swarm/run.sh, empty: do not wait), SSH_CIPHER (a cipher for scp and
# rsync's ssh, e.g. aes128-gcm@openssh.com; default: OpenSSH's own choice).
#
# Only 127.0.0.1 is used. Processes started here and the data files are removed on exit, Ctrl-C or SIGTERM; the logs
# and results.jsonl stay in WORK.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
SIZE_MIB=${SIZE_MIB:-2048}
RUNS=${RUNS:-3}
BIG_MIB=${BIG_MIB:-10240}
BIG_RUNS=${BIG_RUNS:-1}
PHASES=${PHASES:-"transfer memory"}
TOOLS=${TOOLS:-"curl scp rsync"}
WORK=${WORK:-/var/tmp/harp-transfer-bench}
INSTALL=${INSTALL:-1}
TIMEOUT=${TIMEOUT:-1800}
VERBOSE=${VERBOSE:-0}
WAIT_FOR=${WAIT_FOR-bench/swarm/run.sh}
SSH_CIPHER=${SSH_CIPHER:-}
AGAIN=${HARP_AGAIN:-1}    # kept under another name: the HARP_ variables are cleared below
SEEDER_PID=""
SEEDER_READY=""
SEEDER_READY_HWM=""
HARP_BIN=${HARP_CLI:-}
# The peers get their settings from the variables below only, as in the end-to-end tests.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(HARP_|XDG_)' || true)

# --- tools ----------------------------------------------------------------------------------------------------------
export PATH="$PATH:/usr/sbin:/sbin"
. "$here/../lib.sh"
need_tools curl:curl python3:python3 openssl:openssl cmp:diffutils timeout:coreutils sync:coreutils || exit 1
[ -x /usr/bin/time ] || need_tools /usr/bin/time:time || exit 1
case " $PHASES " in *" transfer "*)
    case " $TOOLS " in *" curl "*) need_tools nginx:nginx || exit 1 ;; esac
    case " $TOOLS " in *" scp "* | *" rsync "*) need_tools sshd:openssh-server ssh:openssh-client scp:openssh-client \
        ssh-keygen:openssh-client || exit 1 ;; esac
    case " $TOOLS " in *" rsync "*) need_tools rsync:rsync || exit 1 ;; esac
    ;;
esac

find_harp "$repo" "$HARP_BIN"
V=()
if [ "$VERBOSE" = 1 ]; then V=(-v); fi

# --- clean-up -------------------------------------------------------------------------------------------------------
PIDS=()         # long-running processes started here: DevCloud, signaling, nginx, sshd, seeders
CLIENT_PID=""   # the client being timed, if any
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    echo "cleaning up: processes started here, the test data" >&2
    [ -n "$CLIENT_PID" ] && kill -TERM "$CLIENT_PID" 2>/dev/null
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$WORK/data" "$WORK/out" "$WORK/dc" "$WORK/seed" "$WORK/ssh" "$WORK/peers" "$WORK/nginx" "$WORK/signal" 2>/dev/null
    [ -d "$WORK" ] && echo "logs and results: $WORK" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

# --- helpers --------------------------------------------------------------------------------------------------------
now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }


wait_quiet() {  # phase name
    if [ -z "$WAIT_FOR" ]; then return 0; fi
    local waited=0
    while pgrep -f "$WAIT_FOR" >/dev/null 2>&1; do
        if [ "$waited" = 0 ]; then echo "waiting until no process matches '$WAIT_FOR' (load $(load))"; fi
        sleep 10
        waited=$((waited + 10))
    done
    if [ "$waited" -gt 0 ]; then echo "waited $waited s for '$WAIT_FOR'"; fi
    echo "== phase $1: load average $(load) at the start"
}

make_file() {  # path MiB
    # Incompressible, deterministic test data: AES-256-CTR keystream (CTR output is as long as its input).
    head -c "$(($2 * 1024 * 1024))" /dev/zero | openssl enc -aes-256-ctr -pass pass:harp-transfer-bench -nosalt \
        -pbkdf2 2>/dev/null >"$1"
    [ "$(stat -c %s "$1")" = "$(($2 * 1024 * 1024))" ] || { echo "could not write $1" >&2; exit 1; }
    # Warm the page cache: every source reads the same inode.
    cat "$1" >/dev/null
}

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat" 2>/dev/null || echo ""
}
vm_hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo ""; }

# --- servers --------------------------------------------------------------------------------------------------------
mkdir -p "$WORK"
rm -rf "$WORK/data" "$WORK/out" "$WORK/dc" "$WORK/seed" "$WORK/ssh" "$WORK/peers" "$WORK/logs" "$WORK/nginx" \
    "$WORK/signal"
mkdir -p "$WORK/data" "$WORK/out" "$WORK/logs" "$WORK/peers"
chmod 755 "$WORK" "$WORK/data"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
LOGS=$WORK/logs

DC_URL=""
SIG_URL=""
start_harp_servers() {
    "$HARP" devcloud serve --data "$WORK/dc" --listen 127.0.0.1:0 --user alice:pw \
        >"$LOGS/devcloud.out" 2>"$LOGS/devcloud.err" &
    PIDS+=($!)
    wait_line "$LOGS/devcloud.out" '^http' 60 $! || { cat "$LOGS/devcloud.err" >&2; echo "DevCloud did not start" >&2; exit 1; }
    DC_URL=$(head -n 1 "$LOGS/devcloud.out")
    "$HARP" signal serve --listen 127.0.0.1:0 --data "$WORK/signal" --log-level warning \
        >"$LOGS/signal.out" 2>"$LOGS/signal.err" &
    PIDS+=($!)
    wait_line "$LOGS/signal.out" '^wss?://' 60 $! || { cat "$LOGS/signal.err" >&2; echo "signaling did not start" >&2; exit 1; }
    SIG_URL=$(head -n 1 "$LOGS/signal.out")
}

# Makes FILE known to DevCloud as /FOLDER/NAME and to the seeder as WORK/seed/FOLDER/NAME (hard links, no copies).
publish_file() {  # file folder
    local name
    name=$(basename "$1")
    mkdir -p "$WORK/dc/files/alice/$2" "$WORK/seed/$2"
    ln -f "$1" "$WORK/dc/files/alice/$2/$name"
    ln -f "$1" "$WORK/seed/$2/$name"
    curl -sS -f -u alice:pw -X PROPFIND -H 'Depth: 1' "$DC_URL/remote.php/dav/files/alice/$2/" | grep -q "$name" ||
        { echo "DevCloud does not list /$2/$name" >&2; exit 1; }
}

harp_env() {  # peer-dir
    echo "HARP_SERVER=$DC_URL HARP_USER=alice HARP_APP_PASSWORD=pw HARP_SIGNAL=$SIG_URL HARP_LISTEN=127.0.0.1" \
        "HARP_CONFIG_DIR=$1/config HARP_STORE=$1/store.sqlite XDG_STATE_HOME=$1/state"
}

NGINX_PORT=""
start_nginx() {
    NGINX_PORT=$(free_port)
    mkdir -p "$WORK/nginx/tmp"
    cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $LOGS/nginx-error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/data;
    }
}
EOF
    nginx -e "$LOGS/nginx-error.log" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
        >"$LOGS/nginx.out" 2>&1 &
    PIDS+=($!)
    local t=0
    until curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/"; do
        sleep 0.1
        t=$((t + 1))
        if [ "$t" -ge 100 ]; then cat "$LOGS/nginx.out" "$LOGS/nginx-error.log" >&2; echo "nginx did not start" >&2; exit 1; fi
    done
    echo "nginx $(nginx -v 2>&1 | sed 's#.*/##') on 127.0.0.1:$NGINX_PORT (sendfile on)"
}

SSH_PORT=""
SSH_OPTS=()
SSH_BASE=()
SSH_USER=$(id -un)
start_sshd() {
    local d=$WORK/ssh sshd_bin
    sshd_bin=$(command -v sshd)
    mkdir -p "$d"
    chmod 700 "$d"
    ssh-keygen -q -t ed25519 -N '' -f "$d/host_key" -C harp-transfer-bench-host
    ssh-keygen -q -t ed25519 -N '' -f "$d/client_key" -C harp-transfer-bench-client
    cp "$d/client_key.pub" "$d/authorized_keys"
    SSH_PORT=$(free_port)
    local sftp=internal-sftp
    cat >"$d/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $d/host_key
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
AllowUsers $SSH_USER
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp $sftp
EOF
    # sshd wants its privilege separation folder to exist.
    if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi
    "$sshd_bin" -D -e -f "$d/sshd_config" >"$LOGS/sshd.log" 2>&1 &
    PIDS+=($!)
    SSH_BASE=(-i "$d/client_key" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
        -o BatchMode=yes)
    if [ -n "$SSH_CIPHER" ]; then SSH_BASE+=(-c "$SSH_CIPHER"); fi
    SSH_OPTS=("${SSH_BASE[@]}" -o LogLevel=ERROR)
    local t=0
    until ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" "$SSH_USER@127.0.0.1" true 2>/dev/null; do
        sleep 0.2
        t=$((t + 1))
        if [ "$t" -ge 50 ]; then cat "$LOGS/sshd.log" >&2; echo "sshd did not start" >&2; return 1; fi
    done
    local kex
    kex=$(ssh -v "${SSH_BASE[@]}" -p "$SSH_PORT" "$SSH_USER@127.0.0.1" true 2>&1 |
        grep -m1 'server->client cipher' | sed 's/.*cipher: //' || true)
    echo "sshd on 127.0.0.1:$SSH_PORT ($(ssh -V 2>&1 | cut -d, -f1); scp speaks SFTP from OpenSSH 9.0 on), cipher $kex"
    if command -v rsync >/dev/null; then echo "$(rsync --version | head -n 1)"; fi
}

# --- one timed copy -------------------------------------------------------------------------------------------------
# Runs a client under /usr/bin/time, records wall time, its CPU and peak RSS, then cmp and sync -d of the copy.
# Sets COPY_SECONDS, COPY_OK, COPY_RSS_KIB, COPY_CPU, COPY_SYNC_SECONDS.
timed_client() {  # label copy-path -- command...
    local label=$1 copy=$2 t0 t1 rc=0 tfile=$LOGS/$1.time
    shift 3
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
    COPY_SYNC_SECONDS=""
    if [ "$rc" = 0 ] && [ -f "$copy" ]; then
        t0=$(now)
        sync -d "$copy"
        t1=$(now)
        COPY_SYNC_SECONDS=$(python3 -c "print('%.3f' % ($t1 - $t0))")
        if cmp -s "$FILE" "$copy"; then COPY_OK=1; fi
    fi
}

record() {  # JSON object (one line)
    echo "$1" >>"$RESULTS"
}

# A reference copy: curl, scp or rsync.
run_reference() {  # tool run-number
    local tool=$1 number=$2 copy=$WORK/out/$NAME
    rm -f "$copy"
    case $tool in
        curl) timed_client "$PHASE-run$number-curl" "$copy" -- curl -sS -f -o "$copy" "http://127.0.0.1:$NGINX_PORT/$NAME" ;;
        scp) timed_client "$PHASE-run$number-scp" "$copy" -- scp -q "${SSH_OPTS[@]}" -P "$SSH_PORT" \
            "$SSH_USER@127.0.0.1:$FILE" "$copy" ;;
        rsync) timed_client "$PHASE-run$number-rsync" "$copy" -- rsync -e "ssh ${SSH_OPTS[*]} -p $SSH_PORT" \
            "$SSH_USER@127.0.0.1:$FILE" "$copy" ;;
    esac
    local mbs
    mbs=$(python3 -c "print('%.1f' % ($F / $COPY_SECONDS / 1e6))")
    printf '   %-10s %8s s  %7s MB/s  exit %s  %s  client CPU %s s, peak RSS %s MiB; then sync -d %s s\n' "$tool" \
        "$COPY_SECONDS" "$mbs" "$COPY_RC" "$([ "$COPY_OK" = 1 ] && echo identical || echo DIFFERS)" "$COPY_CPU" \
        "$(python3 -c "print('%.1f' % (${COPY_RSS_KIB:-0} / 1024))")" "${COPY_SYNC_SECONDS:--}"
    record "{\"phase\":\"$PHASE\",\"tool\":\"$tool\",\"run\":$number,\"bytes\":$F,\"seconds\":$COPY_SECONDS,\"rc\":$COPY_RC,\"identical\":$COPY_OK,\"cpuSeconds\":${COPY_CPU:-null},\"rssKiB\":${COPY_RSS_KIB:-null},\"syncSeconds\":${COPY_SYNC_SECONDS:-null}}"
    rm -f "$copy"
    sync
}

# One harp run: a fresh seeder process (same store, so the file is indexed only once), then a fresh fetcher; with
# HARP_AGAIN=1 a second fresh fetcher from the same seeder, which by then has sent every chunk once and no longer
# super-seeds (tool "harp-again").
run_harp() {  # run-number remote-folder again(0|1)
    local number=$1 folder=$2 again=$3 s=$WORK/peers/seeder
    mkdir -p "$s"
    local t0 t1
    t0=$(now)
    # shellcheck disable=SC2046
    env $(harp_env "$s") "$HARP" seed "$WORK/seed/$folder" --remote "/$folder" --rescan 3600 --json "${V[@]}" \
        >"$LOGS/$PHASE-run$number-seeder.stdout" 2>"$LOGS/$PHASE-run$number-seeder.stderr" &
    SEEDER_PID=$!
    PIDS+=("$SEEDER_PID")
    if ! wait_line "$LOGS/$PHASE-run$number-seeder.stdout" '"event":"seeding"' 1800 "$SEEDER_PID"; then
        cat "$LOGS/$PHASE-run$number-seeder.stdout" "$LOGS/$PHASE-run$number-seeder.stderr" >&2
        echo "the seeder did not start seeding" >&2
        exit 1
    fi
    t1=$(now)
    SEEDER_READY=$(python3 -c "print('%.2f' % ($t1 - $t0))")
    SEEDER_READY_HWM=$(vm_hwm_kib "$SEEDER_PID")
    harp_fetch "$number" "$folder" harp
    if [ "$again" = 1 ]; then harp_fetch "$number" "$folder" harp-again; fi
    kill -TERM "$SEEDER_PID" 2>/dev/null || true
    wait "$SEEDER_PID" 2>/dev/null || true
    unset 'PIDS[${#PIDS[@]}-1]'
    SEEDER_PID=""
}

harp_fetch() {  # run-number remote-folder tool
    local number=$1 folder=$2 tool=$3 f=$WORK/peers/fetcher copy=$WORK/out/$NAME
    rm -rf "$copy" "$f"
    mkdir -p "$f"
    local cpu0
    cpu0=$(cpu_seconds "$SEEDER_PID")
    # shellcheck disable=SC2046
    timed_client "$PHASE-run$number-$tool" "$copy" -- env $(harp_env "$f") "$HARP" get "/$folder/$NAME" \
        -o "$WORK/out/" --no-server --json "${V[@]}"
    local seeder_hwm cpu1
    seeder_hwm=$(vm_hwm_kib "$SEEDER_PID")
    cpu1=$(cpu_seconds "$SEEDER_PID")
    local line
    line=$(python3 - "$LOGS/$PHASE-run$number-$tool.stdout" "$F" "$number" "$PHASE" "$COPY_SECONDS" "$COPY_RC" "$COPY_OK" \
        "${COPY_CPU:-}" "${COPY_RSS_KIB:-}" "${COPY_SYNC_SECONDS:-}" "$SEEDER_READY" \
        "${SEEDER_READY_HWM:-}" "${seeder_hwm:-}" "${cpu0:-}" "${cpu1:-}" "$tool" <<'PY'
import json, sys
(path, F, number, phase, seconds, rc, ok, cpu, rss, sync_s, seeder_ready, ready_hwm, seeder_hwm, cpu0, cpu1, tool) = sys.argv[1:17]
num = lambda s: float(s) if s not in ("", None) else None
r = {"phase": phase, "tool": tool, "run": int(number), "bytes": int(F), "seconds": float(seconds), "rc": int(rc),
     "identical": int(ok), "cpuSeconds": num(cpu), "rssKiB": num(rss), "syncSeconds": num(sync_s),
     "seederReadySeconds": num(seeder_ready), "seederRssAtReadyKiB": num(ready_hwm), "seederRssKiB": num(seeder_hwm),
     "seederCpuSeconds": round(num(cpu1) - num(cpu0), 2) if num(cpu0) is not None and num(cpu1) is not None else None}
for raw in open(path):
    try:
        e = json.loads(raw)
    except ValueError:
        continue
    if e.get("event") == "file-done":
        for k in ("method", "bytesFromPeers", "bytesFromServer", "bytesFromLocal", "peersUsed", "badChunks"):
            r[k] = e.get(k)
        r["harpSeconds"] = e.get("seconds")
    elif e.get("event") == "error":
        r["error"] = e.get("message")
r["fromPeer"] = r.get("bytesFromPeers") == int(F) and r.get("method") == "swarm"
r["valid"] = r["rc"] == 0 and r["identical"] == 1 and r["fromPeer"]
print(json.dumps(r))
PY
)
    record "$line"
    python3 - "$line" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
mib = lambda k: "%.1f" % (r[k] / 1024) if r.get(k) is not None else "-"
print("   %-10s %8.3f s  %7.1f MB/s  exit %d  %s  from the peer %s (%s, %s bad chunks; harp's own time %s s)" % (
    "harp" if r["tool"] == "harp" else "harp again", r["seconds"], r["bytes"] / r["seconds"] / 1e6, r["rc"],
    "identical" if r["identical"] else "DIFFERS",
    "%.0f %%" % (100 * (r.get("bytesFromPeers") or 0) / r["bytes"]), r.get("method", "no file-done line"),
    r.get("badChunks", "?"), r.get("harpSeconds", "?")))
print("         fetcher CPU %s s, peak RSS %s MiB; seeder CPU during the copy %s s, peak RSS %s MiB (%s MiB when ready,"
      " after %s s of set-up); then sync -d %s s%s" % (
    r["cpuSeconds"], mib("rssKiB"), r["seederCpuSeconds"], mib("seederRssKiB"), mib("seederRssAtReadyKiB"),
    r["seederReadySeconds"], r["syncSeconds"], "" if r["valid"] else "  ** NOT COUNTED **"))
if r.get("error"):
    print("         error: " + r["error"])
PY
    rm -rf "$copy" "$f"
    sync
}

# --- phases ---------------------------------------------------------------------------------------------------------
echo "transfer benchmark: phases '$PHASES'; $SIZE_MIB MiB × $RUNS runs against '$TOOLS'; memory: $BIG_MIB MiB × $BIG_RUNS"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), kernel $(uname -r); harp-cli: $HARP"
echo "work: $WORK ($(df -h --output=avail "$WORK" | tail -n 1 | xargs) free)"
start_harp_servers
echo "DevCloud $DC_URL, signaling $SIG_URL"

for PHASE in $PHASES; do
    case $PHASE in
        transfer)
            NAME=f.bin
            FILE=$WORK/data/$NAME
            F=$((SIZE_MIB * 1024 * 1024))
            REFS=()
            for tool in $TOOLS; do
                case $tool in
                    curl) [ -n "$NGINX_PORT" ] || start_nginx; REFS+=(curl) ;;
                    scp | rsync)
                        if [ -z "$SSH_PORT" ]; then start_sshd || SSH_PORT=none; fi
                        if [ "$SSH_PORT" = none ]; then echo "sshd could not be started: no $tool figures"; else REFS+=("$tool"); fi
                        ;;
                    *) echo "unknown reference $tool" >&2; exit 1 ;;
                esac
            done
            make_file "$FILE" "$SIZE_MIB"
            publish_file "$FILE" transfer
            wait_quiet "transfer ($SIZE_MIB MiB)"
            for number in $(seq 1 "$RUNS"); do
                if [ "$number" -gt 1 ]; then wait_quiet "transfer ($SIZE_MIB MiB), run $number"; fi
                echo "-- run $number of $RUNS, $SIZE_MIB MiB (load $(load))"
                for tool in "${REFS[@]}"; do run_reference "$tool" "$number"; done
                run_harp "$number" transfer "$AGAIN"
            done
            rm -f "$FILE" "$WORK/dc/files/alice/transfer/$NAME" "$WORK/seed/transfer/$NAME"
            rm -rf "$WORK/peers/seeder"
            ;;
        memory)
            NAME=big.bin
            FILE=$WORK/data/$NAME
            F=$((BIG_MIB * 1024 * 1024))
            echo "writing the $BIG_MIB MiB file"
            make_file "$FILE" "$BIG_MIB"
            publish_file "$FILE" memory
            wait_quiet "memory ($BIG_MIB MiB)"
            for number in $(seq 1 "$BIG_RUNS"); do
                if [ "$number" -gt 1 ]; then wait_quiet "memory ($BIG_MIB MiB), run $number"; fi
                echo "-- memory run $number of $BIG_RUNS, $BIG_MIB MiB (load $(load))"
                # The same amount written by curl from nginx, to tell harp's own costs from the machine's.
                case " $TOOLS " in *" curl "*) [ -n "$NGINX_PORT" ] || start_nginx; run_reference curl "$number" ;; esac
                run_harp "$number" memory 0
            done
            rm -f "$FILE" "$WORK/dc/files/alice/memory/$NAME" "$WORK/seed/memory/$NAME"
            rm -rf "$WORK/peers/seeder"
            ;;
        *) echo "unknown phase $PHASE" >&2; exit 1 ;;
    esac
done
echo "load average at the end: $(load)"

# --- summary --------------------------------------------------------------------------------------------------------
python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
med = lambda xs: statistics.median(xs) if xs else None
def ok(r):
    return r["rc"] == 0 and r["identical"] == 1 and (r["tool"] != "harp" or r.get("fromPeer"))
def mbs(r):
    return r["bytes"] / r["seconds"] / 1e6
transfer = [r for r in rows if r["phase"] == "transfer"]
if transfer:
    print()
    size = transfer[0]["bytes"]
    print("summary: %d MiB over 127.0.0.1 written to a file; MB/s = 10^6 bytes/s of client wall time; medians" % (size >> 20))
    print("| tool | runs counted | MB/s per run | median MB/s | median s | + sync -d s | client CPU s | client peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    tools = []
    for r in transfer:
        if r["tool"] not in tools:
            tools.append(r["tool"])
    medians = {}
    for t in tools:
        rs = [r for r in transfer if r["tool"] == t]
        good = [r for r in rs if ok(r)]
        medians[t] = med([mbs(r) for r in good])
        print("| %s | %d/%d | %s | %s | %s | %s | %s | %s |" % (
            t, len(good), len(rs), " / ".join("%.0f" % mbs(r) if ok(r) else "(%.0f, not counted)" % mbs(r) for r in rs),
            "%.1f" % medians[t] if medians[t] else "-", "%.2f" % med([r["seconds"] for r in good]) if good else "-",
            "%.2f" % med([r["syncSeconds"] for r in good if r["syncSeconds"] is not None]) if good else "-",
            "%.1f" % med([r["cpuSeconds"] for r in good if r["cpuSeconds"] is not None]) if good else "-",
            "%.1f" % (med([r["rssKiB"] for r in good if r["rssKiB"] is not None]) / 1024) if good else "-"))
    refs = [t for t in tools if not t.startswith("harp") and medians.get(t)]
    for h_tool in ("harp", "harp-again"):
        if not medians.get(h_tool):
            continue
        print()
        for t in refs:
            per_run = []
            for h in [r for r in transfer if r["tool"] == h_tool]:
                same = [r for r in transfer if r["tool"] == t and r["run"] == h["run"]]
                if ok(h) and same and ok(same[0]):
                    per_run.append(mbs(h) / mbs(same[0]))
            print("%s / %-5s = %.3f (ratio of the medians); per run %s" % (
                h_tool, t, medians[h_tool] / medians[t], " / ".join("%.3f" % x for x in per_run)))
    harp = [r for r in transfer if r["tool"] == "harp"]
    if medians.get("harp"):
        print()
        if refs:
            best = max(refs, key=lambda t: medians[t])
            ratio = medians["harp"] / medians[best]
            print("fastest reference: %s, %.1f MB/s; harp (fresh seeder) %.1f MB/s; ratio %.3f: target (at least as fast) %s" % (
                best, medians[best], medians["harp"], ratio, "MET" if ratio >= 1 else "NOT MET"))
            if medians.get("harp-again"):
                print("harp again (the seeder no longer super-seeding) %.1f MB/s: ratio %.3f" % (
                    medians["harp-again"], medians["harp-again"] / medians[best]))
        good = [r for r in transfer if r["tool"].startswith("harp") and ok(r)]
        print("harp peak RSS: fetcher %s MiB, seeder %s MiB (medians; the seeder's over its whole life)" % (
            "%.1f" % (med([r["rssKiB"] for r in good]) / 1024) if good else "-",
            "%.1f" % (med([r["seederRssKiB"] for r in good if r["seederRssKiB"]]) / 1024) if good else "-"))
memory = [r for r in rows if r["phase"] == "memory" and r["tool"] == "harp"]
memory_curl = [r for r in rows if r["phase"] == "memory" and r["tool"] == "curl"]
if memory:
    size = memory[0]["bytes"]
    print()
    print("memory: %d MiB fetched from one seeder (target: under 150 MiB for one peer)" % (size >> 20))
    for r in memory:
        f, s = (r["rssKiB"] or 0) / 1024, (r["seederRssKiB"] or 0) / 1024
        print("   run %d: %s, %.1f s (%.1f MB/s); fetcher peak RSS %.1f MiB, seeder peak RSS %.1f MiB (%.1f MiB when "
              "ready): %s" % (r["run"], "valid" if ok(r) else "NOT VALID", r["seconds"], r["bytes"] / r["seconds"] / 1e6,
                              f, s, (r["seederRssAtReadyKiB"] or 0) / 1024,
                              "MET" if ok(r) and f < 150 and s < 150 else "NOT MET"))
for r in memory_curl:
    print("   run %d, for comparison: curl from nginx to a file, %.1f s (%.1f MB/s), %s" % (
        r["run"], r["seconds"], r["bytes"] / r["seconds"] / 1e6, "identical" if ok(r) else "NOT VALID"))
PY
