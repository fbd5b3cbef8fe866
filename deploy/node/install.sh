#!/bin/sh
# semble node installer: run by the semble-node DaemonSet (deploy/kubernetes), or by hand.
#
# Copies semble-shim, semble-init and runsc (when present) into HOST/usr/local/bin, with the
# handler links containerd's BinaryName needs (semble-shim-runc, -runsc, -embedded); the policies
# into HOST/etc/semble/policies; each policy's seccomp profile where the kubelet looks for
# `Localhost` profiles (HOST/var/lib/kubelet/seccomp/semble/POLICY.json); the containerd
# handlers drop-in into HOST/etc/containerd/conf.d/semble.toml, with the `imports` line added to
# config.toml when missing; then restarts containerd on the host (nsenter into PID 1) if
# anything changed. Idempotent: a second run changes nothing and restarts nothing.
#
#   HOST=/host SRC=/opt/semble install.sh          (in the DaemonSet: the node's / at /host)
#   SEMBLE_NO_RESTART=1 ...                        (never restart containerd; tests, image builds)
set -eu
HOST="${HOST:-/host}"
SRC="${SRC:-/opt/semble}"
changed=0

say() { echo "semble-node: $*"; }
die() { echo "semble-node: error: $*" >&2; exit 1; }

[ -d "$HOST" ] || die "the host root $HOST is not mounted (hostPath / at $HOST)"
[ -x "$SRC/bin/semble-shim" ] || die "$SRC/bin/semble-shim is missing from the image"

# install FILE DEST MODE: copy atomically when the content differs.
put() {
    if [ -f "$2" ] && cmp -s "$1" "$2"; then return 0; fi
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2.semble-new" && chmod "$3" "$2.semble-new" && mv -f "$2.semble-new" "$2"
    say "installed $2"
    changed=1
}

for b in semble-shim semble-init runsc; do
    [ -x "$SRC/bin/$b" ] && put "$SRC/bin/$b" "$HOST/usr/local/bin/$b" 0755
done
for backend in runc runsc embedded; do
    link="$HOST/usr/local/bin/semble-shim-$backend"
    if [ "$(readlink "$link" 2>/dev/null || true)" != semble-shim ]; then
        ln -sfn semble-shim "$link"
        say "linked $link"
        changed=1
    fi
done

for p in "$SRC"/policies/*.yaml; do
    [ -f "$p" ] || continue
    name=$(basename "$p" .yaml)
    put "$p" "$HOST/etc/semble/policies/$name.yaml" 0644
    "$SRC/bin/semble-policy" compile "$p" --target seccomp > "/tmp/$name.seccomp.json" \
        || die "policy $p does not compile; fix it (semble-policy validate $p)"
    put "/tmp/$name.seccomp.json" "$HOST/var/lib/kubelet/seccomp/semble/$name.json" 0644
done

put "$SRC/containerd/semble.toml" "$HOST/etc/containerd/conf.d/semble.toml" 0644
cfg="$HOST/etc/containerd/config.toml"
if [ ! -f "$cfg" ]; then
    mkdir -p "$(dirname "$cfg")"
    printf 'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n' > "$cfg"
    say "wrote $cfg"
    changed=1
elif ! grep -q 'conf.d/\*\.toml' "$cfg"; then
    if grep -q '^imports' "$cfg"; then
        die "$cfg has an imports line without /etc/containerd/conf.d/*.toml; add it to that list"
    fi
    # `imports` must be a top-level key: put it before the first table.
    tmp="$cfg.semble-new"
    awk 'BEGIN{done=0} /^\[/ && !done {print "imports = [\"/etc/containerd/conf.d/*.toml\"]"; done=1} {print} END{if(!done) print "imports = [\"/etc/containerd/conf.d/*.toml\"]"}' "$cfg" > "$tmp"
    mv -f "$tmp" "$cfg"
    say "added the conf.d import to $cfg"
    changed=1
fi

if [ "$changed" = 1 ] && [ "${SEMBLE_NO_RESTART:-0}" != 1 ]; then
    say "restarting containerd on the host"
    nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd || die "cannot restart containerd on the host (is the pod privileged with hostPID?)"
fi
say "ready (changed: $changed)"
