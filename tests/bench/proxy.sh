#!/usr/bin/env bash
# semble-proxy against Debian's squid and tinyproxy, side by side in one run, on this machine.
#
#   sudo tests/bench/proxy.sh [seconds-per-measurement]      (default 10)
#
# Everything runs inside a network namespace this script creates (only `lo`), so no packet can
# leave the machine. nginx serves a 1 KiB file on 127.0.0.1:8081; a byte source listens on
# 127.0.0.1:9000 and a sink on 127.0.0.1:9443. The three proxies get the same allow-list
# (origin.test on ports 8081, 9000, 9443; everything else refused) and the same name
# resolution (/etc/hosts of the namespace); squid's cache is off; every proxy logs each
# request. Figures:
#   1. requests/s, wrk -t2 -c64, 1 KiB GETs (absolute-form through the proxy), and direct;
#   2. added latency p50/p99, wrk -t1 -c4 --latency, minus direct;
#   3. CONNECT bulk throughput (one tunnel, download) vs direct;
#   4. RSS per idle CONNECT tunnel (after a TLS ClientHello), and RSS after they close.
# Logging: semble-proxy writes its JSON decision line, squid its access log, tinyproxy runs at
# `LogLevel Connect` (a line per connection, and it opens one connection per request). tinyproxy's
# logging is slow: at `LogLevel Warning` (no per-request line) it serves about 5x more.
#
# With SEMBLE_PROXY_BASELINE=/path/to/another/semble-proxy (e.g. main's build), that binary runs
# beside this one on :3131 with the same rules, and every figure is given for both, side by side.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-10}"
[[ $(id -u) == 0 ]] || { echo "run as root (it creates a network namespace)" >&2; exit 1; }

need=()
for p in squid tinyproxy nginx-light wrk; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then
    echo "installing ${need[*]}" >&2
    # The packages start their services on install where they can; the policy-rc.d stops that.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
# Every process of a run lives in the run's own network namespace and is ended with it (below);
# nothing else on the machine is touched.

if [[ -z "${SEMBLE_PROXY_PREBUILT:-}" ]]; then
    echo "building semble-proxy and the bench tool (release)…" >&2
    cargo build --release -q -p semble-proxy --bin semble-proxy -p semble-tests --bin semble-proxy-bench
fi
bin=target/release
work=$(mktemp -d /tmp/semble-proxy-bench.XXXX)
chmod 755 "$work"
mkdir -m 777 "$work/squid"
ns=semble-bench-$$
mkdir -p "/etc/netns/$ns"
printf '127.0.0.1 localhost\n127.0.0.1 origin.test\n' >"/etc/netns/$ns/hosts"
ip netns add "$ns"
cleanup() {
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    sleep 0.3
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns" "$work"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up

# --- upstreams ---
mkdir -p "$work/www"
head -c 1024 /dev/zero | tr '\0' 'a' >"$work/www/1k"
cat >"$work/nginx.conf" <<EOF
daemon off; worker_processes 1; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 75s;
  server { listen 127.0.0.1:8081 reuseport backlog=4096; root $work/www; } }
EOF
in_ns nginx -c "$work/nginx.conf" &
in_ns "$bin/semble-proxy-bench" source --listen 127.0.0.1:9000 &
in_ns "$bin/semble-proxy-bench" sink --listen 127.0.0.1:9443 &

# --- the three proxies, same allow-list ---
cat >"$work/rules.yaml" <<EOF
apiVersion: semble.dev/v1alpha1
kind: ProxyRules
metadata: {name: bench}
egress:
  - {host: origin.test, ports: [8081, 9000], tls: false}
  - {host: origin.test, ports: [9443], tls: true}
EOF
in_ns "$bin/semble-proxy" --rules "$work/rules.yaml" --listen 127.0.0.1:3128 --allow-cidr 127.0.0.1/32 \
    --nameserver 127.0.0.1:1 --max-connections 20000 --max-client-connections 20000 2>"$work/semble.log" &
semble_pid=$!
base_pid=
if [[ -n "${SEMBLE_PROXY_BASELINE:-}" ]]; then
    in_ns "$SEMBLE_PROXY_BASELINE" --rules "$work/rules.yaml" --listen 127.0.0.1:3131 --allow-cidr 127.0.0.1/32 \
        --nameserver 127.0.0.1:1 --max-connections 20000 2>"$work/base.log" &
    base_pid=$!
fi
proxies=(semble:3128 squid:3129 tinyproxy:3130)
[[ -n "$base_pid" ]] && proxies=(semble:3128 base:3131 squid:3129 tinyproxy:3130)

cat >"$work/squid.conf" <<EOF
http_port 127.0.0.1:3129
pid_filename $work/squid/squid.pid
cache deny all
cache_mem 8 MB
acl allowed dstdomain origin.test
acl allowed_ports port 8081 9000 9443
acl CONNECT method CONNECT
http_access deny !allowed_ports
http_access allow allowed
http_access deny all
hosts_file /etc/hosts
dns_nameservers 127.0.0.1
access_log stdio:$work/squid/access.log
cache_log $work/squid/cache.log
max_filedescriptors 20000
coredump_dir $work/squid
EOF
in_ns squid -N -f "$work/squid.conf" &
squid_pid=$!

echo '^origin\.test$' >"$work/tinyproxy.filter"
cat >"$work/tinyproxy.conf" <<EOF
Port 3130
Listen 127.0.0.1
Timeout 600
MaxClients 20000
LogFile "$work/tinyproxy.log"
LogLevel Connect
PidFile "$work/tinyproxy.pid"
Filter "$work/tinyproxy.filter"
FilterExtended On
FilterDefaultDeny Yes
ConnectPort 9000
ConnectPort 9443
EOF
in_ns tinyproxy -d -c "$work/tinyproxy.conf" &
tiny_pid=$!
sleep 2

for port in $(for p in "${proxies[@]}"; do echo "${p##*:}"; done); do
    code=$(in_ns curl -s -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$port" http://origin.test:8081/1k)
    deny=$(in_ns curl -s -o /dev/null -w '%{http_code}' -x "http://127.0.0.1:$port" http://elsewhere.test:8081/1k)
    echo "proxy :$port allowed=$code refused=$deny" >&2
    if [[ $code != 200 || $deny != 403 ]]; then
        echo "proxy on $port is not configured as the others" >&2
        tail -5 "$work"/semble.log "$work"/squid/cache.log "$work"/tinyproxy.log >&2 2>/dev/null || true
        exit 1
    fi
done

cat >"$work/proxy.lua" <<'EOF'
wrk.path = "http://origin.test:8081/1k"
wrk.headers["Host"] = "origin.test:8081"
EOF

rps() { awk '/Requests\/sec/ {print $2}'; }
pct() { awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}'; }

declare -A R P50 P99 BULK IDLE
echo "== requests/s (wrk -t2 -c64, ${secs}s, 1 KiB)" >&2
R[direct]=$(in_ns wrk -t2 -c64 -d"${secs}s" http://127.0.0.1:8081/1k | rps)
for name in "${proxies[@]}"; do
    R[${name%%:*}]=$(in_ns wrk -t2 -c64 -d"${secs}s" -s "$work/proxy.lua" "http://127.0.0.1:${name##*:}" | rps)
done
echo "== latency (wrk -t1 -c4 --latency, ${secs}s)" >&2
out=$(in_ns wrk -t1 -c4 -d"${secs}s" --latency http://127.0.0.1:8081/1k)
P50[direct]=$(pct 50% <<<"$out"); P99[direct]=$(pct 99% <<<"$out")
for name in "${proxies[@]}"; do
    out=$(in_ns wrk -t1 -c4 -d"${secs}s" --latency -s "$work/proxy.lua" "http://127.0.0.1:${name##*:}")
    P50[${name%%:*}]=$(pct 50% <<<"$out"); P99[${name%%:*}]=$(pct 99% <<<"$out")
done
echo "== CONNECT bulk throughput (${secs}s, one tunnel)" >&2
BULK[direct]=$(in_ns "$bin/semble-proxy-bench" bulk --target 127.0.0.1:9000 --seconds "$secs")
for name in "${proxies[@]}"; do
    BULK[${name%%:*}]=$(in_ns "$bin/semble-proxy-bench" bulk --proxy "127.0.0.1:${name##*:}" --host origin.test:9000 --seconds "$secs")
done
echo "== idle tunnels" >&2
n_small=2000
IDLE[semble]=$(in_ns "$bin/semble-proxy-bench" idle --proxy 127.0.0.1:3128 --host origin.test:9443 --count $n_small --pid $semble_pid --hello origin.test)
IDLE[squid]=$(in_ns "$bin/semble-proxy-bench" idle --proxy 127.0.0.1:3129 --host origin.test:9443 --count $n_small --pid $squid_pid --hello origin.test)
IDLE[tinyproxy]=$(in_ns "$bin/semble-proxy-bench" idle --proxy 127.0.0.1:3130 --host origin.test:9443 --count $n_small --pid $tiny_pid --hello origin.test)
if [[ -n "$base_pid" ]]; then
    IDLE[base]=$(in_ns "$bin/semble-proxy-bench" idle --proxy 127.0.0.1:3131 --host origin.test:9443 --count $n_small --pid $base_pid --hello origin.test)
fi
# 10,000 tunnels need 20,000 descriptors in the proxy; this machine's hard limit is $(ulimit -Hn).
n_big=$(( ($(ulimit -Hn) - 100) / 2 )); (( n_big > 10000 )) && n_big=10000
IDLE[semble_big]=$(in_ns "$bin/semble-proxy-bench" idle --proxy 127.0.0.1:3128 --host origin.test:9443 --count $n_big --pid $semble_pid --hello origin.test)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }
echo
echo "| measure | direct | semble-proxy | squid | tinyproxy | semble/squid |"
echo "|---|---|---|---|---|---|"
echo "| requests/s, 64 conns, 1 KiB | ${R[direct]} | ${R[semble]} | ${R[squid]} | ${R[tinyproxy]} | $(ratio "${R[semble]}" "${R[squid]}")x |"
echo "| added latency p50, 4 conns (ms) | ${P50[direct]} | $(added "${P50[semble]}" "${P50[direct]}") | $(added "${P50[squid]}" "${P50[direct]}") | $(added "${P50[tinyproxy]}" "${P50[direct]}") | |"
echo "| added latency p99, 4 conns (ms) | ${P99[direct]} | $(added "${P99[semble]}" "${P99[direct]}") | $(added "${P99[squid]}" "${P99[direct]}") | $(added "${P99[tinyproxy]}" "${P99[direct]}") | |"
echo "| CONNECT bulk (Gbit/s; ratio to direct) | ${BULK[direct]} | ${BULK[semble]} ($(ratio "${BULK[semble]}" "${BULK[direct]}")) | ${BULK[squid]} ($(ratio "${BULK[squid]}" "${BULK[direct]}")) | ${BULK[tinyproxy]} ($(ratio "${BULK[tinyproxy]}" "${BULK[direct]}")) | |"
read -r n b f a per <<<"${IDLE[semble]}"; s_line="$per KiB (RSS $b -> $f -> $a KiB)"
read -r n b f a per <<<"${IDLE[squid]}"; q_line="$per KiB (RSS $b -> $f -> $a KiB)"
read -r n b f a per <<<"${IDLE[tinyproxy]}"; t_line="$per KiB (RSS $b -> $f -> $a KiB)"
echo "| RSS per idle tunnel, $n_small tunnels (base -> open -> closed) | | $s_line | $q_line | $t_line | |"
read -r n b f a per <<<"${IDLE[semble_big]}"
echo "| RSS per idle tunnel, $n tunnels | | $per KiB (RSS $b -> $f -> $a KiB) | | | |"
echo
echo "tinyproxy runs a thread per connection: its per-tunnel figure above is RSS only; each thread also reserves a stack (ulimit -s)."
if [[ -n "$base_pid" ]]; then
    echo
    echo "This build against SEMBLE_PROXY_BASELINE ($SEMBLE_PROXY_BASELINE), same run:"
    echo
    echo "| measure | this build | baseline | this / baseline |"
    echo "|---|---|---|---|"
    echo "| requests/s, 64 conns, 1 KiB | ${R[semble]} | ${R[base]} | $(ratio "${R[semble]}" "${R[base]}") |"
    echo "| added latency p50, 4 conns (ms) | $(added "${P50[semble]}" "${P50[direct]}") | $(added "${P50[base]}" "${P50[direct]}") | |"
    echo "| added latency p99, 4 conns (ms) | $(added "${P99[semble]}" "${P99[direct]}") | $(added "${P99[base]}" "${P99[direct]}") | |"
    echo "| CONNECT bulk (Gbit/s) | ${BULK[semble]} | ${BULK[base]} | $(ratio "${BULK[semble]}" "${BULK[base]}") |"
    read -r n b f a per <<<"${IDLE[semble]}"; s_per=$per
    read -r n b f a per <<<"${IDLE[base]}"
    echo "| RSS per idle TLS tunnel, $n_small tunnels (KiB) | $s_per | $per | $(ratio "$s_per" "$per") |"
fi
