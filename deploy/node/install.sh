#!/bin/sh
# semble node installer: run by the semble-node DaemonSet (deploy/kubernetes), or by hand.
#
# Copies semble-shim, semble-init and runsc (when present) into HOST/usr/local/bin, with the
# handler links containerd's BinaryName needs (semble-shim-runc, -runsc, -embedded); the policies
# into HOST/etc/semble/policies; each policy's seccomp profile where the kubelet looks for
# `Localhost` profiles (HOST/var/lib/kubelet/seccomp/semble/POLICY.json); the containerd
# runtime handlers (into config.toml between markers for containerd 1.x, a conf.d drop-in for
# containerd 2.x: see below); then restarts containerd on the host (nsenter into PID 1) if
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

# containerd's runtime handlers. containerd 1.6/1.7 (config version 2) merge `imports` by replacing
# each plugin's whole section: a drop-in naming only our handlers would reset the node's CRI
# settings (sandbox_image, SystemdCgroup, the runc handler itself). So for version 2 the handlers
# go into config.toml, between markers, replaced on each run; containerd 2.x (version 3) merges
# drop-ins key by key, so there they go into conf.d/semble.toml.
cfg="$HOST/etc/containerd/config.toml"
begin='# BEGIN semble runtime handlers (written by semble-node; edits between these lines are replaced)'
end='# END semble runtime handlers'
version=2
if [ -f "$cfg" ]; then
    # The top-level `version`, before the first table; none means a version 1 file.
    version=$(awk '/^[[:space:]]*\[/ {exit} /^[[:space:]]*version[[:space:]]*=/ {gsub(/[^0-9]/, ""); print; exit}' "$cfg")
    # A file without tables (empty, comments only) says nothing yet: make it version 2.
    if [ -z "$version" ] && ! grep -q '^[[:space:]]*\[' "$cfg"; then
        version=2
        grep -q '^[[:space:]]*version' "$cfg" || { printf 'version = 2\n' | cat - "$cfg" > "$cfg.semble-new" && mv -f "$cfg.semble-new" "$cfg"; }
    fi
fi
case "$version" in
2)
    new="$cfg.semble-new"
    mkdir -p "$(dirname "$cfg")"
    if [ -f "$cfg" ]; then
        awk -v b="$begin" -v e="$end" '$0 == b {skip = 1; next} skip && $0 == e {skip = 0; next} !skip {print}' "$cfg" > "$new"
    else
        printf 'version = 2\n' > "$new"
    fi
    if grep -q 'runtimes\.semble-\(runc\|gvisor\|embedded\)\]' "$new"; then
        rm -f "$new"
        die "$cfg defines a semble-* runtime handler outside semble's markers; remove it (semble-node manages them)"
    fi
    { printf '%s\n' "$begin"; grep -v '^[[:space:]]*#' "$SRC/containerd/semble.toml" | grep -v '^version'; printf '%s\n' "$end"; } >> "$new"
    if [ -f "$cfg" ] && cmp -s "$new" "$cfg"; then
        rm -f "$new"
    else
        mv -f "$new" "$cfg"
        say "wrote the semble runtime handlers into $cfg"
        changed=1
    fi
    # An earlier semble-node's drop-in (which reset the CRI section on containerd 1.x).
    if [ -f "$HOST/etc/containerd/conf.d/semble.toml" ]; then
        rm -f "$HOST/etc/containerd/conf.d/semble.toml"
        say "removed $HOST/etc/containerd/conf.d/semble.toml (the handlers are in $cfg now)"
        changed=1
    fi
    ;;
3)
    put "$SRC/containerd/semble-v3.toml" "$HOST/etc/containerd/conf.d/semble.toml" 0644
    if ! grep -q 'conf.d/\*\.toml' "$cfg"; then
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
    ;;
*)
    die "$cfg is a containerd config version ${version:-1} file; semble's handlers need version 2 (containerd 1.6/1.7) or 3 (containerd 2.x): add 'version = 2' at its top and name the CRI plugin \"io.containerd.grpc.v1.cri\""
    ;;
esac

if [ "$changed" = 1 ] && [ "${SEMBLE_NO_RESTART:-0}" != 1 ]; then
    say "restarting containerd on the host"
    nsenter -t 1 -m -u -i -n -p -- systemctl restart containerd || die "cannot restart containerd on the host (is the pod privileged with hostPID?)"
fi
say "ready (changed: $changed)"
