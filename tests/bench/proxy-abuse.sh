#!/usr/bin/env bash
# One abusive client at its per-client limits against a gateway-configured semble-proxy, while
# 64 normal connections keep working: their requests/s and p99 with and without the abuser,
# side by side in one run, and the proxy's peak RSS against the memory bound its limits imply.
#
#   sudo tests/bench/proxy-abuse.sh [seconds-per-measurement] [rounds]     (default 6, 2)
#
# Everything runs in a network namespace this script creates (only `lo`): two `origin` upstreams
# (semble-proxy-bench, 1 KiB answers) on 127.0.0.1:8081 (plain) and :8082 (behind an S3 SigV4
# credential, so uploads to it are read whole and signed), the proxy with the flags the
# Kubernetes gateway gets (ProxyLimits::gateway), the normal load from 127.0.0.1 and the abuser
# from 127.0.0.2. The abuser holds --max-client-connections - 1 unfinished ~30 KB heads (re-opened
# when --header-timeout closes them), one upload of a 32 MiB body that sends 31 MiB and stalls
# (holding its whole body budget), and tries a further connection and a further upload every
# 20 ms (refused at once with 429). Rounds alternate without and with the abuser.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-6}"
rounds="${2:-2}"
[[ $(id -u) == 0 ]] || { echo "run as root (it creates a network namespace)" >&2; exit 1; }
proxy_bin="${SEMBLE_PROXY:-target/release/semble-proxy}"
bench="${SEMBLE_PROXY_BENCH:-target/release/semble-proxy-bench}"
if [[ -z "${SEMBLE_PROXY:-}" ]]; then
    echo "building semble-proxy and the bench tool (release)…" >&2
    cargo build --release -q -p semble-proxy --bin semble-proxy -p semble-tests --bin semble-proxy-bench
fi
work=$(mktemp -d /tmp/semble-abuse-bench.XXXX)
ns=semble-abuse-$$
ip netns add "$ns"
cleanup() {
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    sleep 0.3
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up

in_ns "$bench" origin --listen 127.0.0.1:8081 --threads 1 &
in_ns "$bench" origin --listen 127.0.0.1:8082 --threads 1 &
cat >"$work/rules.yaml" <<RULES
apiVersion: semble.dev/v1alpha1
kind: ProxyRules
metadata: {name: abuse-bench}
egress:
  - {host: origin.test, ports: [8081], tls: false}
  - {host: signed.test, ports: [8082], tls: false, credential: results}
RULES
cat >"$work/creds.yaml" <<CREDS
apiVersion: semble.dev/v1alpha1
kind: ProxyCredentials
credentials:
  results:
    awsSigV4: {service: s3, region: us-east-1, from: environment}
CREDS
# The gateway's limits (semble_policy::compile::proxy::ProxyLimits::gateway).
limits=(--max-connections 1024 --max-client-connections 128 --max-header-bytes 32768 --max-signed-body 33554432
    --max-buffered-bytes 67108864 --max-client-buffered-bytes 33554432)
common=(--rules "$work/rules.yaml" --credentials "$work/creds.yaml" --allow-cidr 127.0.0.1/32 --nameserver 127.0.0.1:1
    --resolve origin.test:8081:127.0.0.1 --resolve signed.test:8082:127.0.0.1 "${limits[@]}")
export AWS_ACCESS_KEY_ID=AKIABENCH AWS_SECRET_ACCESS_KEY=bench-secret
bound=$("$proxy_bin" "${common[@]}" --check | sed -n 's/^memory bound: \([0-9]*\) MiB.*/\1/p')
in_ns "$proxy_bin" "${common[@]}" --listen 127.0.0.1:3128 2>"$work/proxy.log" &
sleep 1
pid=$(ip netns pids "$ns" | while read -r p; do [[ $(cat /proc/$p/comm) == semble-proxy ]] && echo "$p"; done | head -1)
code=$(in_ns curl -s -o /dev/null -w '%{http_code}' -x http://127.0.0.1:3128 http://origin.test:8081/ || true)
[[ $code == 200 ]] || { echo "the proxy does not serve (got $code)" >&2; tail -5 "$work/proxy.log" >&2; exit 1; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
base_rss=$(rss)

load() { in_ns "$bench" load --proxy 127.0.0.1:3128 --url http://origin.test:8081/ --conns 64 --seconds "$secs" --threads 2; }
echo "| round | abuser | requests/s | p50 (ms) | p99 (ms) | errors | abuser: heads held, uploads held, refused conns, refused uploads, other, proxy peak RSS (KiB) |"
echo "|---|---|---|---|---|---|---|"
declare -a RA RB PA PB QR QP
for r in $(seq 1 "$rounds"); do
    read -r rps p50 p99 err <<<"$(load)"
    RA+=("$rps"); PA+=("$p99")
    echo "| $r | no | $rps | $p50 | $p99 | $err | |"
    in_ns "$bench" abuse --proxy 127.0.0.1:3128 --from 127.0.0.2 --conns 128 --url http://origin.test:8081/ \
        --upload-url http://signed.test:8082/results/big --upload-bytes 33554432 --upload-send 32505856 \
        --seconds "$(awk -v s="$secs" 'BEGIN {print s + 5}')" --pid "$pid" --threads 1 >"$work/abuse.out" &
    abuser=$!
    sleep 3
    read -r rps p50 p99 err <<<"$(load)"
    RB+=("$rps"); PB+=("$p99")
    QR+=("$(awk -v a="$rps" -v b="${RA[-1]}" 'BEGIN {printf "%.3f", a / b}')")
    QP+=("$(awk -v a="$p99" -v b="${PA[-1]}" 'BEGIN {printf "%.3f", a / b}')")
    wait "$abuser"
    echo "| $r | yes | $rps | $p50 | $p99 | $err | $(cat "$work/abuse.out") |"
    sleep 2
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ra=$(med "${RA[@]}"); rb=$(med "${RB[@]}"); pa=$(med "${PA[@]}"); pb=$(med "${PB[@]}")
echo
echo "median requests/s without / with the abuser: $ra / $rb ($(awk -v a="$rb" -v b="$ra" 'BEGIN {printf "%.3f", a / b}')x); goal >= 0.90x"
echo "median p99 (ms) without / with the abuser: $pa / $pb ($(awk -v a="$pb" -v b="$pa" 'BEGIN {printf "%.3f", a / b}')x); goal <= 1.10x"
echo "per-round ratios (with / without, same round): requests/s ${QR[*]} (median $(med "${QR[@]}")); p99 ${QP[*]} (median $(med "${QP[@]}"))"
echo "proxy RSS: $base_rss KiB at start; memory bound of its limits: $bound MiB"
