#!/usr/bin/env bash
# The repeatable real-GPU check (issue 20): a CUDA program (device count, a 256 MiB cudaMalloc,
# a kernel, a read-back) on the host, then under examples/llm-server.yaml through semble-shim on
# the runc and embedded backends, then under a copy of the policy with the GPU grant missing
# (the same device nodes through `devices.allow`), which must fail with an explained Landlock
# denial. Prints one PASS/FAIL line per step and a summary; exits 1 if anything failed.
#
# usage: sudo tests/gpu/run.sh [--runc PATH] [--bin-dir DIR] [--keep]
#   needs: root, a loaded NVIDIA driver, nvcc (CUDA toolkit), python3, the static semble
#   binaries (dev/build; default target/semble/bin, or SEMBLE_BIN_DIR / --bin-dir).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${SEMBLE_BIN_DIR:-$repo/target/semble/bin}"
runc_bin="$(command -v runc || true)"
keep=0
while (($#)); do
    case "$1" in
        --runc) runc_bin="$2"; shift 2 ;;
        --bin-dir) bin="$2"; shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "usage: $0 [--runc PATH] [--bin-dir DIR] [--keep]" >&2; exit 2 ;;
    esac
done
work="$(mktemp -d /tmp/semble-gpu-check.XXXXXX)"
(( keep )) || trap 'rm -rf "$work"' EXIT
results=()
pass() { results+=("PASS  $1"); echo "PASS  $1"; }
fail() { results+=("FAIL  $1"); echo "FAIL  $1"; }
summary() {
    echo
    echo "== semble GPU check: summary =="
    printf '%s\n' "${results[@]}"
    if printf '%s\n' "${results[@]}" | grep -q '^FAIL'; then echo "RESULT: FAIL"; exit 1; fi
    echo "RESULT: PASS"; exit 0
}

echo "== host"
[[ $EUID -eq 0 ]] || { fail "run as root (containers, device nodes, audit)"; summary; }
for b in semble-shim semble-init; do
    [[ -x "$bin/$b" ]] || { fail "$bin/$b missing: run dev/build (or pass --bin-dir)"; summary; }
done
command -v nvcc >/dev/null || { fail "nvcc not on PATH (CUDA toolkit)"; summary; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/  gpu: /'
echo "  kernel: $(uname -r); landlock ABI and audit: see doctor below"
"$bin/semble-shim" --policy-dir "$repo/examples" doctor 2>/dev/null | grep -E "landlock|gpu|cdi" | sed 's/^/  /'

echo "== build"
arch_flag="-arch=native"
nvcc $arch_flag -O2 -o "$work/cuda-check" "$here/cuda_check.cu" 2>"$work/nvcc.log" \
    || nvcc -O2 -o "$work/cuda-check" "$here/cuda_check.cu" 2>>"$work/nvcc.log" \
    || { cat "$work/nvcc.log"; fail "nvcc could not build tests/gpu/cuda_check.cu"; summary; }
if out="$("$work/cuda-check")" && grep -q '^GPU OK' <<<"$out"; then
    pass "host: $out"
else
    fail "host (without semble): $out"; summary
fi

echo "== policies"
pol="$work/policies"; mkdir -p "$pol"
cp "$repo/examples/llm-server.yaml" "$pol/"
nodes="$(python3 "$here/bundle.py" --out "$work/probe-bundle" --binary "$work/cuda-check" --policy llm-server)" \
    || { fail "bundle recipe"; summary; }
# The missing grant: the same nodes, listed one by one, instead of `devices.gpu: nvidia`.
python3 - "$pol" $nodes <<'PY'
import sys
pol, nodes = sys.argv[1], sys.argv[2:]
src = open(pol + "/llm-server.yaml").read()
src = src.replace("name: llm-server", "name: llm-server-no-gpu-grant", 1)
allow = "".join("\n      - {path: %s, access: rw}" % n for n in nodes)
lines, out, skip = src.splitlines(), [], False
for l in lines:
    if l.startswith("  devices:"):
        out.append("  devices:\n    allow:" + allow); skip = True; continue
    if skip and (l.startswith("    ") or not l.strip()):
        continue
    skip = False; out.append(l)
open(pol + "/llm-server-no-gpu-grant.yaml", "w").write("\n".join(out) + "\n")
PY
echo "  nodes: $nodes"

shim() { "$bin/semble-shim" --root "$work/state" --policy-dir "$pol" --proxy-dir "$work/proxy" --enable-audit ${runc_bin:+--runc "$runc_bin"} "$@"; }

run_case() { # NAME BACKEND POLICY
    local name="$1" backend="$2" policy="$3" b="$work/bundle-$1"
    python3 "$here/bundle.py" --out "$b" --binary "$work/cuda-check" --policy "$policy" >/dev/null
    shim --backend "$backend" run -b "$b" "gpu-$name" >"$work/$name.out" 2>&1
    echo $? >"$work/$name.rc"
    sed 's/^/    /' "$work/$name.out"
}

echo "== llm-server, runc"
if [[ -z "$runc_bin" ]]; then
    fail "runc: not installed (pass --runc PATH to a runc binary)"
else
    run_case runc runc llm-server
    if grep -q '^GPU OK' "$work/runc.out"; then pass "runc: $(grep '^GPU OK' "$work/runc.out")"; else fail "runc: CUDA failed under llm-server (denials below)"; shim denials gpu-runc | sed 's/^/    /'; fi
fi

echo "== llm-server, embedded"
run_case embedded embedded llm-server
if grep -q '^GPU OK' "$work/embedded.out"; then pass "embedded: $(grep '^GPU OK' "$work/embedded.out")"; else fail "embedded: CUDA failed under llm-server (denials below)"; shim denials gpu-embedded | sed 's/^/    /'; fi

echo "== the GPU grant missing (devices.allow instead of devices.gpu), embedded"
run_case nogrant embedded llm-server-no-gpu-grant
sleep 1
shim denials gpu-nogrant --format json >"$work/nogrant.json" 2>"$work/nogrant.notes"
shim denials gpu-nogrant | sed 's/^/    /'
sed 's/^/    /' "$work/nogrant.notes"
python3 - "$work/nogrant.json" "$work/nogrant.out" <<'PY' && pass "missing grant: $(cat "$work/nogrant.verdict")" || fail "missing grant: $(cat "$work/nogrant.verdict" 2>/dev/null || echo 'no explained Landlock denial')"
import json, sys, os
rows = [r for r in json.load(open(sys.argv[1]))["denials"] if r.get("kind") == "landlock"]
out = open(sys.argv[2]).read()
verdict = os.path.join(os.path.dirname(sys.argv[1]), "nogrant.verdict")
cuda = "CUDA failed" if "GPU FAIL" in out else ("CUDA ran" if "GPU OK" in out else "no CUDA output")
comm = [r for r in rows if "/comm" in r.get("path", "") and "write" in r.get("access", "")]
if not rows:
    open(verdict, "w").write(f"{cuda}; no Landlock denial was explained")
    sys.exit(1)
first = rows[0]
why = "the thread-name write under /proc (the cause found for issue 20)" if comm else "see the rows above"
open(verdict, "w").write(f"{cuda}; {len(rows)} Landlock denial(s) explained, e.g. {first['access']} {first['path']}: {first['fix']} ({why})")
sys.exit(0)
PY

summary
