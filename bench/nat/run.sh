#!/usr/bin/env bash
# NAT traversal testbed (issue 17): an "internet" bridge with public-looking addresses (NET.0/24, 11.77.0.0/24 by
# default: see below) where the origin namespace runs DevCloud and the signaling server, and sites behind NAT routers, each a
# router namespace doing NAT with iptables and one peer namespace on a private /24 behind it. Needs root.
#
#   bench/nat/run.sh                                  # every pair of PAIRS once
#   PAIRS="eim1:eim2 upnp:sym1" bench/nat/run.sh      # seeder-site:fetcher-site pairs
#   PAIRS="eim1:eim2:10" bench/nat/run.sh             # ... whose routers drop each other's packets for the first
#                                                     # 10 s of the fetch (relay, then upgrade: docs/nat.md)
#   PROBE_ONLY=1 bench/nat/run.sh                     # build the network, print the reachability probes, exit
#   PAIRS= SWARM=upnp:eim1,eim2,pmp,sym1 RUNS=3 bench/nat/run.sh
#                                                     # a seeder and fetchers, each in its own site, all at once
#
# Sites (one peer namespace each, $PREFIX-<site>):
#   pub    no NAT: the peer sits on the internet bridge itself (NET.20)
#   eim1   NAT with endpoint-independent mapping: MASQUERADE (Linux keeps the source port when it is free, and one
#   eim2   internal address:port maps to the same external port whatever the destination); filtering is by conntrack
#   eim3   (a third, so that a swarm of four fetchers can sit behind NATs that all let a punch through)
#          (address- and port-dependent): an inbound connection with no matching outbound flow or mapping is refused
#   upnp   as eim, and the router runs miniupnpd with UPnP IGD only on its LAN side, so a peer can map a port
#   pmp    as eim, and the router runs miniupnpd with PCP and NAT-PMP only (no UPnP: harp maps through PCP; the
#          pair's "mappedBy" says which protocol the seeder's mapping came through)
#   eimx   endpoint-independent mapping that changes the port number: every flow from the peer port leaves from
#          that port + 10000 (SNAT), whatever the destination (as many NATs that do not keep port numbers do)
#   sym1   symmetric NAT: MASQUERADE --random-fully (a fresh random external port for every flow)
#   sym2
# Every uplink is shaped with `tc tbf` (RATE_MBIT): the origin's and the public peer's, each router's WAN side (the
# site's uplink) and each peer's link to its router.
#
# Each pair runs a seeder (`harp-cli get --seed`: it downloads the file from DevCloud, then seeds) in the first site
# and a fetcher (`harp-cli get --no-server --json -v`: peers only) in the second, and reports how the fetcher's peer
# connection went (direct or through the signaling server's relay, from its -v log and the server's
# harp_signal_relayed_bytes_total), the time to the first byte and to the end, and the relayed bytes as a fraction
# of the file.
#
# INBOUND (reset or drop, default drop): what a router does with a connection to its WAN address that matches no
# flow and no mapping. drop (what most home routers do) silently discards the SYN, so the dialler waits for its
# connect timeout and a hole punch succeeds when the peer's SYN, retransmitted a second later, finds the mapping open;
# reset lets the router's own stack answer with a TCP reset at once (nothing listens there), which also kills a
# punch whose SYN arrives before the other side's has left.
#
# Parameters (environment): SIZE_MIB (16), EXTRA_FILES (0: more files of the same size that each pair's seeder and
# fetcher get too, each its own swarm), RATE_MBIT (40), BURST (64kb), TBF_LATENCY (50ms), PAIRS, TIMEOUT (120 s
# per fetch), HARP_CLI (a harp-cli binary; else one is built in release into .build-release), HARP_ARGS (extra
# arguments for every harp-cli get, e.g. --no-port-mapping), WORK (/var/tmp/harp-nat-bench), INSTALL (1: apt-get
# the missing tools), PROBE_ONLY, SWARM (SEEDER:FETCHER,FETCHER,... run before the pairs), RUNS (of the swarm, 1),
# RECORD (1: every process of a swarm run records its engine with --record-engine, in WORK/swarm-RUN/SITE/engine.jsonl,
# for `harp-cli debug replay` and bench/nat/uploads.py), PROBE_PORT (the signaling server's second observation port,
# `signal serve --probe-port`, SIG_PORT + 1; empty: none, so that clients cannot tell a symmetric NAT).
#
# Why not a documentation range (198.51.100.0/24, RFC 5737): miniupnpd 2.3.1 refuses to map ports when its external
# address is in any reserved range (documentation, benchmarking, CGNAT, private: its addr_is_reserved list), so the
# "internet" uses 11.77.0.0/24, which is on no reserved list. The namespaces have no link to the host's network, so
# these addresses are reached only inside them.
# Traffic goes only to addresses inside the namespaces created here (NET.0/24, 10.<n>.0.0/24) and their loopback. The namespaces ($PREFIX-*), and every process started in them, are removed on exit, Ctrl-C or SIGTERM.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "bench/nat/run.sh needs root: it creates network namespaces, veth pairs, a bridge, iptables rules and tc" \
        "qdiscs" >&2
    exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
SIZE_MIB=${SIZE_MIB:-16}
EXTRA_FILES=${EXTRA_FILES:-0}
RATE_MBIT=${RATE_MBIT:-40}
BURST=${BURST:-64kb}
TBF_LATENCY=${TBF_LATENCY:-50ms}
TIMEOUT=${TIMEOUT:-120}
WORK=${WORK:-/var/tmp/harp-nat-bench}
INSTALL=${INSTALL:-1}
PROBE_ONLY=${PROBE_ONLY:-0}
INBOUND=${INBOUND:-drop}
case $INBOUND in reset | drop) ;; *) echo "INBOUND must be reset or drop" >&2; exit 1 ;; esac
PREFIX=${PREFIX:-hnt}
PAIRS=${PAIRS-"pub:eim1 eim1:pub eim1:eim2 upnp:eim1 eim1:upnp upnp:sym1 sym1:upnp eim1:sym1 sym1:eim1 sym1:sym2 pub:sym1"}
HARP_ARGS=${HARP_ARGS:-}
NET=${NET:-11.77.0}            # the "internet" (see above)
ORIGIN_IP=$NET.1
PUB_IP=$NET.20
DC_PORT=8080
SIG_PORT=7000
PROBE_PORT=${PROBE_PORT-$((SIG_PORT + 1))}
PEER_PORT=41000                # every peer listens here (--listen 0.0.0.0:PEER_PORT)
F=$((SIZE_MIB * 1024 * 1024))
SITES="eim1 eim2 eim3 eimx upnp sym1 sym2 pmp"
# The routers' rules go through iptables-legacy when there is one: miniupnpd-iptables edits the legacy tables (libiptc).
IPT=iptables
command -v iptables-legacy >/dev/null && IPT=iptables-legacy

. "$here/../lib.sh"
need_tools ip:iproute2 tc:iproute2 iptables:iptables curl:curl python3:python3 openssl:openssl cmp:diffutils \
    timeout:coreutils miniupnpd:miniupnpd-iptables upnpc:miniupnpc || exit 1
if [ -z "${HARP_CLI:-}" ]; then
    (cd "$repo" && swift build -c release --product harp-cli --scratch-path .build-release >&2)
    HARP_CLI="$repo/.build-release/release/harp-cli"
fi
find_harp "$repo" "$HARP_CLI"

# --- names and addresses ------------------------------------------------------------------------------------------
site_index() {
    case $1 in eim1) echo 1 ;; eim2) echo 2 ;; upnp) echo 3 ;; sym1) echo 4 ;; sym2) echo 5 ;; pmp) echo 6 ;; eim3) echo 7 ;; eimx) echo 8 ;; esac
}
wan_ip() { echo "$NET.$((10 + $(site_index "$1")))"; }
lan_net() { echo "10.$(site_index "$1").0"; }
peer_ip() { if [ "$1" = pub ]; then echo "$PUB_IP"; else echo "$(lan_net "$1").2"; fi; }
nat_kind() {
    case $1 in
        pub) echo "none" ;;
        eimx) echo "endpoint-independent, port changed" ;;
        eim*) echo "endpoint-independent" ;;
        upnp) echo "endpoint-independent + UPnP" ;;
        pmp) echo "endpoint-independent + PCP/NAT-PMP" ;;
        sym*) echo "symmetric (--random-fully)" ;;
    esac
}
nsx() { local ns=$1; shift; ip netns exec "$PREFIX-$ns" "$@"; }

existing_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-" || true; }
teardown_ns() {
    local ns pids
    for ns in $(existing_ns); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -n "$pids" ] && kill -TERM $pids 2>/dev/null || true
    done
    sleep 1
    for ns in $(existing_ns); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    done
    for ns in $(existing_ns); do ip netns del "$ns" 2>/dev/null || true; done
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    echo "cleaning up: processes in $PREFIX-* namespaces, the namespaces (bridge, routers, iptables rules with them)" >&2
    local jobs_left
    jobs_left=$(jobs -p)
    [ -n "$jobs_left" ] && kill -TERM $jobs_left 2>/dev/null
    teardown_ns
    wait 2>/dev/null
    rm -rf "$WORK/data" "$WORK"/pair*/*/out "$WORK"/pair*/*/store "$WORK"/swarm-*/*/out "$WORK"/swarm-*/*/store \
        "$WORK/origin/dc" 2>/dev/null
    [ -d "$WORK" ] && echo "logs and results: $WORK" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM

if [ -n "$(existing_ns)" ]; then
    echo "removing namespaces left by an earlier run: $(existing_ns | tr '\n' ' ')" >&2
    teardown_ns
fi

tbf() { nsx "$1" tc qdisc add dev "$2" root tbf rate "${RATE_MBIT}mbit" burst "$BURST" latency "$TBF_LATENCY"; }

# A namespace on the internet bridge: veth <name> in the bridge namespace, eth0 (or wan) inside.
attach_inet() {  # ns ifname ip
    local ns=$1 ifname=$2 ip=$3
    ip -n "$PREFIX-inet" link add "v-$ns" type veth peer name "$ifname" netns "$PREFIX-$ns"
    ip -n "$PREFIX-inet" link set "v-$ns" master br0 up
    ip -n "$PREFIX-$ns" addr add "$ip/24" dev "$ifname"
    ip -n "$PREFIX-$ns" link set "$ifname" up
    tbf "$ns" "$ifname"
}

setup_site() {  # site
    local s=$1 r="r-$1" lan wan
    lan=$(lan_net "$s")
    wan=$(wan_ip "$s")
    ip netns add "$PREFIX-$r"
    ip netns add "$PREFIX-$s"
    ip -n "$PREFIX-$r" link set lo up
    ip -n "$PREFIX-$s" link set lo up
    attach_inet "$r" wan "$wan"
    ip -n "$PREFIX-$r" link add lan0 type veth peer name eth0 netns "$PREFIX-$s"
    ip -n "$PREFIX-$r" addr add "$lan.1/24" dev lan0
    ip -n "$PREFIX-$r" link set lan0 up
    ip -n "$PREFIX-$s" addr add "$lan.2/24" dev eth0
    ip -n "$PREFIX-$s" link set eth0 up
    ip -n "$PREFIX-$s" route add default via "$lan.1"
    tbf "$s" eth0
    nsx "$r" sysctl -qw net.ipv4.ip_forward=1
    # Filtering: replies to flows the site opened, and (upnp) what miniupnpd's chain accepts; nothing else comes in.
    nsx "$r" "$IPT" -P FORWARD DROP
    nsx "$r" "$IPT" -A FORWARD -i lan0 -o wan -j ACCEPT
    nsx "$r" "$IPT" -A FORWARD -i wan -o lan0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    # Connections to the router itself from outside: dropped (INBOUND=drop), or reset by its stack (nothing listens).
    if [ "$INBOUND" = drop ]; then
        nsx "$r" "$IPT" -A INPUT -i wan -p tcp --syn -m conntrack --ctstate NEW -j DROP
    fi
    case $s in
        sym*) nsx "$r" "$IPT" -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully ;;
        eimx)
            nsx "$r" "$IPT" -t nat -A POSTROUTING -o wan -p tcp -s "$(peer_ip "$s")" --sport "$PEER_PORT" \
                -j SNAT --to-source "$(wan_ip "$s"):$((PEER_PORT + 10000))"
            nsx "$r" "$IPT" -t nat -A POSTROUTING -o wan -j MASQUERADE
            ;;
        *) nsx "$r" "$IPT" -t nat -A POSTROUTING -o wan -j MASQUERADE ;;
    esac
    if [ "$s" = upnp ] || [ "$s" = pmp ]; then
        # miniupnpd's chains (what its iptables_init.sh makes), inserted ahead of the rules above.
        nsx "$r" "$IPT" -t nat -N MINIUPNPD
        nsx "$r" "$IPT" -t nat -I PREROUTING -i wan -j MINIUPNPD
        nsx "$r" "$IPT" -t nat -N MINIUPNPD-POSTROUTING
        nsx "$r" "$IPT" -t nat -I POSTROUTING -o wan -j MINIUPNPD-POSTROUTING
        nsx "$r" "$IPT" -t mangle -N MINIUPNPD
        nsx "$r" "$IPT" -t mangle -I PREROUTING -i wan -j MINIUPNPD
        nsx "$r" "$IPT" -N MINIUPNPD
        nsx "$r" "$IPT" -I FORWARD -i wan ! -o wan -j MINIUPNPD
        # upnp speaks UPnP only and pmp PCP and NAT-PMP only, so each of harp's ways to map is exercised (harp asks
        # the gateway in PCP first: on upnp nothing listens on 5351 and the ICMP "port unreachable" sends it on to
        # UPnP at once).
        local upnp=yes natpmp=no
        [ "$s" = pmp ] && upnp=no natpmp=yes
        mkdir -p "$WORK/$s"
        cat >"$WORK/$s/miniupnpd.conf" <<EOF
ext_ifname=wan
listening_ip=lan0
port=5000
enable_upnp=$upnp
enable_natpmp=$natpmp
secure_mode=yes
system_uptime=yes
notify_interval=60
clean_ruleset_interval=600
uuid=3f1b8a3e-1a7e-4c6e-9d7e-2c5b0f6c170$(site_index "$s")
allow 1024-65535 $lan.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
        # (ip netns exec, not nsx: a backgrounded function would be a subshell, and $! its pid.)
        ip netns exec "$PREFIX-$r" miniupnpd -d -f "$WORK/$s/miniupnpd.conf" -P "$WORK/$s/miniupnpd.pid" \
            >"$WORK/$s/miniupnpd.log" 2>&1 &
    fi
}

setup_net() {
    ip netns add "$PREFIX-inet"
    ip -n "$PREFIX-inet" link set lo up
    ip -n "$PREFIX-inet" link add br0 type bridge
    ip -n "$PREFIX-inet" link set br0 up
    ip netns add "$PREFIX-origin"
    ip -n "$PREFIX-origin" link set lo up
    attach_inet origin eth0 "$ORIGIN_IP"
    ip netns add "$PREFIX-pub"
    ip -n "$PREFIX-pub" link set lo up
    attach_inet pub eth0 "$PUB_IP"
    local s
    for s in $SITES; do setup_site "$s"; done
}

# --- reachability probes --------------------------------------------------------------------------------------------
# A TCP listener in a namespace (python, one accept), and a connect from another namespace: "open" or "refused".
probe() {  # from-ns host port
    nsx "$1" python3 - "$2" "$3" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except socket.timeout:
    print("blocked (no answer in 3 s)")
except OSError as e:
    print("refused (%s)" % (e.strerror or type(e).__name__))
PY
}
# The probes' own processes, killed (SIGKILL: a caller may have SIGTERM blocked, which its children inherit) and
# waited for by pid at the end of the probes; never a bare `wait`, which would wait for miniupnpd too.
PROBE_PIDS=()
listen_once() {  # ns port
    ip netns exec "$PREFIX-$1" python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(8); s.settimeout(30)
try:
    while True: s.accept()[0].close()
except OSError: pass' "$2" &
    PROBE_PIDS+=($!)
    sleep 0.3
}
probes() {
    echo "reachability (a TCP listener on port 42000 in each site's peer namespace, dialled from the origin):"
    local s
    listen_once pub 42000
    echo "   pub  $PUB_IP:42000 (no NAT): $(probe origin "$PUB_IP" 42000)"
    for s in $SITES; do
        listen_once "$s" 42000
        echo "   $s behind $(wan_ip "$s") ($(nat_kind "$s")): $(probe origin "$(wan_ip "$s")" 42000)"
    done
    listen_once origin 42003
    echo "   outbound from eim1 to the origin: $(probe eim1 "$ORIGIN_IP" 42003)"
    # The external ports a NAT gives two flows from one internal source port to two destinations: the same port
    # twice (endpoint-independent mapping) or two (symmetric).
    local ports
    for s in eim1 sym1; do
        ip netns exec "$PREFIX-origin" python3 -c '
import socket, sys
ls = []
for port in (42001, 42002):
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port)); l.listen(1); l.settimeout(10); ls.append(l)
out = []
for l in ls:
    try:
        c, peer = l.accept(); out.append(str(peer[1])); c.close()
    except OSError:
        out.append("-")
open(sys.argv[1], "w").write(" ".join(out))' "$WORK/ports-$s" &
        local collector=$!
        sleep 0.3
        nsx "$s" python3 -c '
import socket, time
for dst in (42001, 42002):
    c = socket.socket(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); c.bind(("0.0.0.0", 43000))
    c.connect(("'"$ORIGIN_IP"'", dst)); c.close(); time.sleep(0.1)' 2>/dev/null || true
        wait "$collector" 2>/dev/null || true
        ports=$(cat "$WORK/ports-$s" 2>/dev/null || echo "-")
        echo "   $s: source port 43000 to two destinations leaves as port(s) $ports"
    done
    if [ -f "$WORK/upnp/miniupnpd.pid" ] || pgrep -f "$WORK/upnp/miniupnpd.conf" >/dev/null; then
        sleep 1
        echo "   upnp: mapping 42000 with upnpc (UPnP IGD) ..."
        nsx upnp upnpc -m eth0 -e harp-probe -a "$(peer_ip upnp)" 42000 42000 TCP >"$WORK/upnp/upnpc.log" 2>&1 || true
        grep -E 'ExternalIPAddress|is redirected|failed|No valid' "$WORK/upnp/upnpc.log" | head -3 | sed 's/^/      /' || true
        echo "   upnp behind $(wan_ip upnp) with the mapping: $(probe origin "$(wan_ip upnp)" 42000)"
        nsx upnp upnpc -m eth0 -d 42000 TCP >>"$WORK/upnp/upnpc.log" 2>&1 || true
        echo "   upnp behind $(wan_ip upnp) after deleting it: $(probe origin "$(wan_ip upnp)" 42000)"
    else
        echo "   miniupnpd is not running: $(tail -n 3 "$WORK/upnp/miniupnpd.log" 2>/dev/null | tr '\n' ' ')"
    fi
    local pid
    for pid in "${PROBE_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "${PROBE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PROBE_PIDS=()
}

# --- the origin ------------------------------------------------------------------------------------------------------
start_origin() {
    local o=$WORK/origin
    mkdir -p "$o"
    nsx origin "$HARP" devcloud serve --data "$o/dc" --listen "0.0.0.0:$DC_PORT" --allow-non-loopback --user alice:pw \
        >"$o/devcloud.out" 2>"$o/devcloud.err" &
    wait_line "$o/devcloud.out" '^http' 60 $! || { cat "$o/devcloud.err" >&2; echo "DevCloud did not start" >&2; exit 1; }
    DC_URL="http://$ORIGIN_IP:$DC_PORT"
    nsx origin "$HARP" signal serve --listen "0.0.0.0:$SIG_PORT" ${PROBE_PORT:+--probe-port "$PROBE_PORT"} --open \
        --data "$o/signal" --log-level warning >"$o/signal.out" 2>"$o/signal.err" &
    wait_line "$o/signal.out" '^wss?://' 60 $! || { cat "$o/signal.err" >&2; echo "signaling did not start" >&2; exit 1; }
    SIG_URL=$(head -n 1 "$o/signal.out" | sed -E "s#^(wss?://)[^/]*:$SIG_PORT#\1$ORIGIN_IP:$SIG_PORT#")
    METRICS_URL=$(echo "$SIG_URL" | sed -E 's#^ws#http#; s#/v1/ws$#/metrics#')
    nsx origin curl -sS -f -u alice:pw -T "$FILE" "$DC_URL/remote.php/dav/files/alice/f.bin" >/dev/null
    local extra
    for extra in "${EXTRA[@]}"; do
        nsx origin curl -sS -f -u alice:pw -T "$WORK/data/$extra" "$DC_URL/remote.php/dav/files/alice/$extra" >/dev/null
    done
}
metric() {  # name
    # (awk reads to the end: leaving early would make curl fail on a closed pipe.)
    nsx origin curl -sS -k --max-time 5 "$METRICS_URL" | awk -v n="$1" '$1 == n && v == "" {v = int($2)} END {print v}'
}
harp_env() {  # peer-dir
    echo "HARP_SERVER=$DC_URL HARP_USER=alice HARP_APP_PASSWORD=pw HARP_SIGNAL=$SIG_URL" \
        "HARP_CONFIG_DIR=$1/config HARP_STORE=$1/store/store.sqlite"
}
now() { date +%s.%N; }

# --- one pair -------------------------------------------------------------------------------------------------------
public_ip() { if [ "$1" = pub ]; then echo "$PUB_IP"; else wan_ip "$1"; fi; }
# Each router of the pair drops what comes from the other site's public address (-I) or stops doing so (-D): no
# direct dial and no punch gets through, the relay (through the origin) does. Dropped in the raw table, before
# connection tracking, as a loss upstream of the router would be: a drop in FORWARD would leave both routers a
# half-open entry of the listening ports' flow (SYN_SENT2, both SYNs seen) with the old sequence numbers, which makes
# every punch of the pair fail until it expires (120 s; docs/nat.md).
# While a pair is blocked, its routers also forget a half-open flow after 3 s instead of 120: the SYNs of the punch
# that failed during the block would otherwise leave each router a flow of the listening ports that lets the other
# side's next SYN in before the local punch has left, and the answer to it is then invalid for the router (docs/nat.md,
# "Relay, then upgrade").
half_open_timeout() {  # seconds site...
    local seconds=$1 site
    shift
    for site in "$@"; do
        [ "$site" != pub ] && nsx "r-$site" sysctl -qw "net.netfilter.nf_conntrack_tcp_timeout_syn_sent=$seconds"
    done
    return 0
}
block_pair() {  # -I|-D site-a site-b
    local op=$1 a=$2 b=$3
    [ "$a" != pub ] && nsx "r-$a" "$IPT" -t raw "$op" PREROUTING -i wan -s "$(public_ip "$b")" -j DROP
    [ "$b" != pub ] && nsx "r-$b" "$IPT" -t raw "$op" PREROUTING -i wan -s "$(public_ip "$a")" -j DROP
    return 0
}

# The port mappings miniupnpd holds for the peer port (its DNAT rules, whichever protocol asked).
router_mappings() {  # site
    nsx "r-$1" "$IPT" -t nat -S MINIUPNPD 2>/dev/null | grep -c -- "--dport $PEER_PORT " || true
}

run_pair() {  # seeder-site fetcher-site [seconds the two sites cannot reach each other]
    local a=$1 b=$2 block=${3:-0} dir=$WORK/pair-$1-$2 seeder_pid rc=0 t0 t1 r0 r1 first="" way unblock_pid=""
    [ "$block" != 0 ] && dir=$dir-blocked
    mkdir -p "$dir/seeder/out" "$dir/seeder/store" "$dir/fetcher/out" "$dir/fetcher/store"
    # shellcheck disable=SC2046,SC2086
    ip netns exec "$PREFIX-$a" env $(harp_env "$dir/seeder") "$HARP" get /f.bin "${EXTRA_REMOTE[@]}" \
        -o "$dir/seeder/out/" --seed --listen "0.0.0.0:$PEER_PORT" -v $HARP_ARGS \
        >"$dir/seeder/stdout" 2>"$dir/seeder/stderr" &
    seeder_pid=$!
    if ! wait_line "$dir/seeder/stdout" '^seeding' 300 "$seeder_pid"; then
        echo "   $a:$b: the seeder did not reach 'seeding' (logs in $dir/seeder)"
        kill -TERM "$seeder_pid" 2>/dev/null || true
        wait "$seeder_pid" 2>/dev/null || true
        return 0
    fi
    sleep 1
    r0=$(metric harp_signal_relayed_bytes_total)
    local pa0 ps0 pa1 ps1 sp0 sp1
    pa0=$(metric harp_signal_punch_attempts_total)
    ps0=$(metric harp_signal_punch_successes_total)
    sp0=$(metric harp_signal_spray_punches_total)
    if [ "$block" != 0 ]; then
        half_open_timeout 3 "$a" "$b"
        block_pair -I "$a" "$b"
        (sleep "$block"; block_pair -D "$a" "$b") &
        unblock_pid=$!
    fi
    t0=$(now)
    # shellcheck disable=SC2046,SC2086
    ip netns exec "$PREFIX-$b" env $(harp_env "$dir/fetcher") timeout "$TIMEOUT" "$HARP" get /f.bin \
        "${EXTRA_REMOTE[@]}" -o "$dir/fetcher/out/" --no-server --json -v --listen "0.0.0.0:$PEER_PORT" $HARP_ARGS \
        > >(while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$dir/fetcher/stdout") \
        2>"$dir/fetcher/stderr" || rc=$?
    t1=$(now)
    if [ -n "$unblock_pid" ]; then
        # A fetch that ended before the unblock: the rules go now.
        if kill -0 "$unblock_pid" 2>/dev/null; then kill "$unblock_pid" 2>/dev/null || true; block_pair -D "$a" "$b"; fi
        wait "$unblock_pid" 2>/dev/null || true
        half_open_timeout 120 "$a" "$b"
    fi
    sleep 0.5
    r1=$(metric harp_signal_relayed_bytes_total)
    pa1=$(metric harp_signal_punch_attempts_total)
    ps1=$(metric harp_signal_punch_successes_total)
    sp1=$(metric harp_signal_spray_punches_total)
    local maps_during="" maps_after="" mapped_by=""
    if [ "$a" = upnp ] || [ "$a" = pmp ]; then maps_during=$(router_mappings "$a"); fi
    kill -TERM "$seeder_pid" 2>/dev/null || true
    wait "$seeder_pid" 2>/dev/null || true
    if [ "$a" = upnp ] || [ "$a" = pmp ]; then
        maps_after=$(router_mappings "$a")
        # Which protocol the seeder's mapping came through (UPnP, PCP or NAT-PMP), from its log line's metadata.
        mapped_by=$(grep 'the router mapped the peer port' "$dir/seeder/stderr" | grep -o 'protocol=[A-Za-z-]*' |
            head -n 1 | cut -d= -f2 || true)
        echo "   the router's harp port mappings while the seeder ran: $maps_during; after it exited: $maps_after" \
            "(mapped through ${mapped_by:-nothing})"
    fi
    # The first progress line with bytes > 0.
    first=$(grep '"event":"progress"' "$dir/fetcher/stdout" | grep -v '"bytes":0[,}]' | head -n 1 | cut -d' ' -f1 || true)
    [ -z "$first" ] && first=$(grep '"event":"file-done"' "$dir/fetcher/stdout" | head -n 1 | cut -d' ' -f1 || true)
    local verified=no relayed=$((${r1:-0} - ${r0:-0}))
    cmp -s "$FILE" "$dir/fetcher/out/f.bin" && verified=yes
    local extra
    for extra in "${EXTRA[@]}"; do cmp -s "$WORK/data/$extra" "$dir/fetcher/out/$extra" || verified=no; done
    if grep -q "connected through the signaling server's relay\|accepted a relayed connection" "$dir/fetcher/stderr" \
        "$dir/seeder/stderr" && [ "$relayed" -gt $((F / 2)) ]; then
        way=relayed
    elif [ "$relayed" -lt $((F / 100)) ] && [ "$verified" = yes ]; then
        way=direct
    else
        way=mixed
    fi
    local how
    # The connection paths the fetcher's --json lines named, most often named first ("punched+relayed").
    how=$(grep -o '"connection":"[a-z]*"' "$dir/fetcher/stdout" | sort | uniq -c | sort -rn |
        grep -o '"[a-z]*"$' | tr -d '"' | paste -sd+ - || true)
    # The path of the last progress line that names one (after an upgrade: punched).
    local last
    last=$(grep '"connection":"' "$dir/fetcher/stdout" | tail -n 1 | grep -o '"connection":"[a-z]*"' |
        tr -d '"' | cut -d: -f2 | paste -sd+ - || true)
    # Why the fetcher's last relayed connection is relayed, as its --json lines say.
    local why
    why=$(grep -o '"why":"[^"]*"' "$dir/fetcher/stdout" | tail -n 1 | cut -d'"' -f4 || true)
    python3 - "$a" "$b" "$rc" "$verified" "$way" "${how:-}" "$t0" "$t1" "${first:-}" "$relayed" "$F" \
        "$(nat_kind "$a")" "$(nat_kind "$b")" "$((${pa1:-0} - ${pa0:-0}))" "$((${ps1:-0} - ${ps0:-0}))" \
        "$block" "${last:-}" "${maps_during:-}" "${maps_after:-}" "${mapped_by:-}" "${why:-}" \
        "$((${sp1:-0} - ${sp0:-0}))" >>"$RESULTS" <<'PY'
import json, sys
a, b, rc, verified, way, how, t0, t1, first, relayed, F, ka, kb, pa, ps, block, last, md, ma, mb, why, sp = sys.argv[1:]
t0, t1 = float(t0), float(t1)
print(json.dumps({
    "seeder": a, "fetcher": b, "seederNAT": ka, "fetcherNAT": kb, "exit": int(rc), "verified": verified == "yes",
    "blockedSeconds": int(block), "lastPath": last or None,
    "routerMappings": [int(md), int(ma)] if md and ma else None, "mappedBy": mb or None,
    "way": way, "how": how or None, "why": why or None, "seconds": round(t1 - t0, 2),
    "firstByte": round(float(first) - t0, 2) if first else None,
    "relayedBytes": int(relayed), "relayedFraction": round(int(relayed) / int(F), 4),
    "punchAttempts": int(pa), "punchSuccesses": int(ps), "sprayPunches": int(sp)}))
PY
    tail -n 1 "$RESULTS" | sed 's/^/   /'
}

# --- a swarm: one seeder, several fetchers at once -----------------------------------------------------------------
# Where the relayed bytes go: each fetcher's router counts the bytes its site sends to and receives from the
# signaling server's port (relay streams and control messages), in a chain of counting rules (HRELAY) consulted
# first in FORWARD; relay_bytes prints "up down" for a site.
relay_count_start() {  # site
    local r="r-$1"
    nsx "$r" "$IPT" -N HRELAY 2>/dev/null || nsx "$r" "$IPT" -F HRELAY
    nsx "$r" "$IPT" -A HRELAY -i lan0 -o wan -d "$ORIGIN_IP" -p tcp --dport "$SIG_PORT"
    nsx "$r" "$IPT" -A HRELAY -i wan -o lan0 -s "$ORIGIN_IP" -p tcp --sport "$SIG_PORT"
    nsx "$r" "$IPT" -C FORWARD -j HRELAY 2>/dev/null || nsx "$r" "$IPT" -I FORWARD 1 -j HRELAY
}
relay_bytes() {  # site
    nsx "r-$1" "$IPT" -L HRELAY -v -n -x | awk 'NR > 2 {printf "%s ", $2} END {print ""}'
}
# Each fetcher is `get --no-server` (peers only); its finish is the time of its file-done line (a finished fetcher
# lingers while others still fetch from it). The lower bound: every byte leaves the seeder's uplink once, F / RATE
# (the fetchers' uplinks add 4 x RATE, and downlinks are not shaped).
record_args() {  # dir
    [ "${RECORD:-0}" = 1 ] && echo "--record-engine $1/engine.jsonl"
    return 0
}
run_swarm() {  # seeder-site fetcher-sites(comma-separated) run
    local a=$1 fetchers=${2//,/ } n=$3 dir=$WORK/swarm-$3 seeder_pid t0 r0 r1 pa0 ps0 pa1 ps1 s pids=()
    mkdir -p "$dir/seeder/out" "$dir/seeder/store"
    # shellcheck disable=SC2046,SC2086
    ip netns exec "$PREFIX-$a" env $(harp_env "$dir/seeder") "$HARP" get /f.bin -o "$dir/seeder/out/" --seed \
        --listen "0.0.0.0:$PEER_PORT" -v $HARP_ARGS $(record_args "$dir/seeder") >"$dir/seeder/stdout" \
        2>"$dir/seeder/stderr" &
    seeder_pid=$!
    if ! wait_line "$dir/seeder/stdout" '^seeding' 300 "$seeder_pid"; then
        echo "   the seeder did not reach 'seeding' (logs in $dir/seeder)"
        kill -TERM "$seeder_pid" 2>/dev/null || true
        wait "$seeder_pid" 2>/dev/null || true
        return 0
    fi
    sleep 1
    r0=$(metric harp_signal_relayed_bytes_total)
    pa0=$(metric harp_signal_punch_attempts_total)
    ps0=$(metric harp_signal_punch_successes_total)
    sp0=$(metric harp_signal_spray_punches_total)
    for s in $fetchers; do [ "$s" != pub ] && relay_count_start "$s"; done
    t0=$(now)
    for s in $fetchers; do
        mkdir -p "$dir/$s/out" "$dir/$s/store"
        # shellcheck disable=SC2046,SC2086
        (ip netns exec "$PREFIX-$s" env $(harp_env "$dir/$s") timeout "$TIMEOUT" "$HARP" get /f.bin \
            -o "$dir/$s/out/" --no-server --json -v --listen "0.0.0.0:$PEER_PORT" $HARP_ARGS $(record_args "$dir/$s") \
            > >(while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$dir/$s/stdout") \
            2>"$dir/$s/stderr"
            echo $? >"$dir/$s/exit") &
        pids+=($!)
    done
    for s in "${pids[@]}"; do wait "$s" 2>/dev/null || true; done
    sleep 0.5
    r1=$(metric harp_signal_relayed_bytes_total)
    pa1=$(metric harp_signal_punch_attempts_total)
    ps1=$(metric harp_signal_punch_successes_total)
    sp1=$(metric harp_signal_spray_punches_total)
    kill -TERM "$seeder_pid" 2>/dev/null || true
    wait "$seeder_pid" 2>/dev/null || true
    local rows="" done_at verified how up down relayed_in
    for s in $fetchers; do
        up=0 down=0
        if [ "$s" != pub ]; then read -r up down <<<"$(relay_bytes "$s")"; fi
        # Of the bytes this fetcher verified, those that came over relayed links (as the fetcher counted them).
        relayed_in=$(grep '"event":"file-done"' "$dir/$s/stdout" | head -n 1 | grep -o '"bytesFromRelayedPeers":[0-9]*' |
            cut -d: -f2 || true)
        done_at=$(grep '"event":"file-done"' "$dir/$s/stdout" | head -n 1 | cut -d' ' -f1 || true)
        verified=no
        cmp -s "$FILE" "$dir/$s/out/f.bin" && verified=yes
        how=$(grep -o '"connection":"[a-z]*"' "$dir/$s/stdout" | sort | uniq -c | sort -rn |
            grep -o '"[a-z]*"$' | tr -d '"' | paste -sd+ - || true)
        rows="$rows $s=$(cat "$dir/$s/exit" 2>/dev/null || echo -),$verified,${done_at:-},${up:-0},${down:-0},${relayed_in:-},${how:-}"
    done
    # What the seeder sent to peers, as it printed it at exit ("sent 72.2 MiB to peers").
    local seeder_sent
    seeder_sent=$(grep -o '^sent [0-9.]* [KMG]iB' "$dir/seeder/stdout" | tail -n 1 | cut -d' ' -f2- || true)
    python3 - "$n" "$a" "$t0" "$((${r1:-0} - ${r0:-0}))" "$F" "$RATE_MBIT" "$((${pa1:-0} - ${pa0:-0}))" \
        "$((${ps1:-0} - ${ps0:-0}))" "${seeder_sent:--}" "$((${sp1:-0} - ${sp0:-0}))" $rows >>"$WORK/swarm.jsonl" <<'PY'
import json, sys
n, a, t0, relayed, F, rate, pa, ps, seeder_sent, sp = sys.argv[1:11]
t0, F = float(t0), int(F)
fetchers = {}
for item in sys.argv[11:]:
    site, fields = item.split("=", 1)
    code, verified, done, up, down, relayed_in, how = fields.split(",", 6)
    fetchers[site] = {"exit": int(code) if code.lstrip("-").isdigit() else None, "verified": verified == "yes",
                      "seconds": round(float(done) - t0, 2) if done else None, "how": how or None,
                      "toSignaling": int(up), "fromSignaling": int(down),
                      "bytesFromRelayedPeers": int(relayed_in) if relayed_in else None}
times = [f["seconds"] for f in fetchers.values()]
print(json.dumps({
    "run": int(n), "seeder": a, "seederSent": seeder_sent, "fetchers": fetchers,
    "seconds": max(times) if all(t is not None for t in times) else None,
    "lowerBound": round(F * 8 / (float(rate) * 1e6), 2),
    "relayedBytes": int(relayed), "relayedFraction": round(int(relayed) / (F * len(fetchers)), 4),
    "punchAttempts": int(pa), "punchSuccesses": int(ps), "sprayPunches": int(sp)}))
PY
    tail -n 1 "$WORK/swarm.jsonl" | sed 's/^/   /'
}

# --- main -------------------------------------------------------------------------------------------------------------
rm -rf "$WORK"/pair-* "$WORK"/swarm-* "$WORK/origin" "$WORK/upnp" "$WORK/pmp"
mkdir -p "$WORK/data"
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
FILE=$WORK/data/f.bin
head -c "$F" /dev/zero | openssl enc -aes-256-ctr -pass pass:harp-nat-bench -nosalt -pbkdf2 2>/dev/null >"$FILE"
# EXTRA_FILES more files of the same size for the pairs (each its own swarm; with channels they share the pair's one
# connection, so the pair punches once, not once per file).
EXTRA=()
EXTRA_REMOTE=()
for i in $(seq 1 "$EXTRA_FILES"); do
    head -c "$F" /dev/zero | openssl enc -aes-256-ctr -pass "pass:harp-nat-bench-$i" -nosalt -pbkdf2 2>/dev/null \
        >"$WORK/data/g$i.bin"
    EXTRA+=("g$i.bin")
    EXTRA_REMOTE+=("/g$i.bin")
done
echo "NAT testbed: F = $SIZE_MIB MiB, uplinks ${RATE_MBIT} Mbit/s (tbf burst $BURST latency $TBF_LATENCY)," \
    "unsolicited inbound: $INBOUND;" \
    "harp-cli: $HARP ${HARP_ARGS:+(extra: $HARP_ARGS)}; work: $WORK"
setup_net
probes
[ "$PROBE_ONLY" = 1 ] && exit 0
start_origin
SWARM=${SWARM:-}
RUNS=${RUNS:-1}
: >"$WORK/swarm.jsonl"
if [ -n "$SWARM" ]; then
    for run in $(seq 1 "$RUNS"); do
        echo "-- swarm run $run: seeder in ${SWARM%%:*}, fetchers in ${SWARM##*:} (each behind its own NAT)"
        run_swarm "${SWARM%%:*}" "${SWARM##*:}" "$run"
    done
    python3 - "$WORK/swarm.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
done = [r for r in rows if r["seconds"] is not None]
if done:
    median = statistics.median(r["seconds"] for r in done)
    bound = done[0]["lowerBound"]
    print()
    print("swarm: %d run(s), finish (last fetcher) median %.1f s = %.2fx the lower bound %.1f s; relayed / bytes "
          "fetched: median %.1f %%" % (len(done), median, median / bound, bound,
                                      100 * statistics.median(r["relayedFraction"] for r in done)))
    for r in rows:
        print("   run %d: %s s, relayed %.1f %%, punches %d (%d ok, %d spray), seeder sent %s; %s" % (
            r["run"], r["seconds"], 100 * r["relayedFraction"], r["punchAttempts"], r["punchSuccesses"],
            r.get("sprayPunches", 0),
            r.get("seederSent", "-"),
            "; ".join("%s %s s %s%s" % (site, f["seconds"], f["how"] or "-", "" if f["verified"] else " NOT VERIFIED")
                      for site, f in r["fetchers"].items())))
        # To and from the signaling server (relay and control), in MiB, per fetcher site.
        print("      signaling traffic MiB (site: sent/received [verified over relayed links]): " + "; ".join(
            "%s %.1f/%.1f%s" % (site, f.get("toSignaling", 0) / 2**20, f.get("fromSignaling", 0) / 2**20,
                                " [%.1f]" % (f["bytesFromRelayedPeers"] / 2**20)
                                if f.get("bytesFromRelayedPeers") is not None else "")
            for site, f in r["fetchers"].items()))
PY
fi
for pair in $PAIRS; do
    IFS=: read -r seeder_site fetcher_site blocked <<<"$pair"
    echo "-- seeder in $seeder_site ($(nat_kind "$seeder_site")), fetcher in $fetcher_site" \
        "($(nat_kind "$fetcher_site"))${blocked:+, unreachable from each other for the first $blocked s}"
    run_pair "$seeder_site" "$fetcher_site" "${blocked:-0}"
done
python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print()
print("| seeder (NAT) | fetcher (NAT) | verified | connection | last path | first byte s | total s | relayed / file "
      "| punches (ok, spray) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    blocked = " (blocked %d s)" % r["blockedSeconds"] if r.get("blockedSeconds") else ""
    print("| %s (%s) | %s (%s)%s | %s | %s%s | %s | %s | %.1f | %.1f %% | %d (%d, %d) |" % (
        r["seeder"], r["seederNAT"], r["fetcher"], r["fetcherNAT"], blocked,
        "yes" if r["verified"] else "NO (exit %d)" % r["exit"],
        r["way"], " (%s)" % r["how"] if r["how"] else "", r.get("lastPath") or "-",
        "%.1f" % r["firstByte"] if r["firstByte"] is not None else "-",
        r["seconds"], 100 * r["relayedFraction"], r.get("punchAttempts", 0), r.get("punchSuccesses", 0),
        r.get("sprayPunches", 0)))
PY
