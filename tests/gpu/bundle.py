#!/usr/bin/env python3
"""The GPU check's bundle recipe: an OCI bundle that runs the CUDA check as an engine would
hand it to semble-shim, built from this host's own files (no image, no registry).

  bundle.py --out DIR --binary cuda-check --policy NAME

* rootfs: the check at /usr/local/bin/cuda-check, /etc/passwd and /etc/group (uid 1000), the
  directories the llm-server policy names; nothing else;
* the driver and C libraries: the host directories holding the check's libraries and
  libcuda.so.1, bind-mounted read-only at the same paths (what a CDI spec does), and the ELF
  interpreter; LD_LIBRARY_PATH names those directories;
* devices: every NVIDIA character device of the host (/dev/nvidia*, /dev/nvidia-caps/*), with
  its real type and numbers, and a device-cgroup rule for each (what `--device` or CDI adds);
* the annotation semble.dev/policy=NAME.
"""
import argparse, json, os, shutil, stat, subprocess, sys

def ldd(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    libs, interp = [], None
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            libs.append(parts[2])
        elif parts and parts[0].startswith("/"):
            interp = parts[0]
    return libs, interp

def libcuda(explicit=None):
    if explicit:
        return explicit
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("libcuda.so.1 ") and "=>" in line:
            return line.split("=>")[1].strip()
    sys.exit("bundle.py: libcuda.so.1 is not in the ldconfig cache: is the NVIDIA driver installed?")

def nvidia_nodes(dev="/dev"):
    """(path in the container, major, minor) of each NVIDIA character device under `dev`."""
    nodes = []
    for sub in ["", "nvidia-caps"]:
        d = os.path.join(dev, sub)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.startswith("nvidia"):
                continue
            st = os.lstat(os.path.join(d, name))
            if stat.S_ISCHR(st.st_mode):
                nodes.append((os.path.join("/dev", sub, name), os.major(st.st_rdev), os.minor(st.st_rdev)))
    return nodes

def main():
    a = argparse.ArgumentParser()
    a.add_argument("--out", required=True)
    a.add_argument("--binary", required=True)
    a.add_argument("--policy", required=True)
    a.add_argument("--libcuda", help="the driver library (default: libcuda.so.1 from the ldconfig cache)")
    a.add_argument("--dev", default="/dev", help="where the NVIDIA nodes are (a test's fake nodes)")
    args = a.parse_args()
    root = os.path.join(args.out, "rootfs")
    for d in ["usr/local/bin", "etc", "tmp", "proc", "sys", "dev", "home/ollama", "models", "lib64"]:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy(args.binary, os.path.join(root, "usr/local/bin/cuda-check"))
    os.chmod(os.path.join(root, "usr/local/bin/cuda-check"), 0o755)
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nollama:x:1000:1000:ollama:/home/ollama:/bin/sh\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write("root:x:0:\nollama:x:1000:\n")
    libs, interp = ldd(args.binary)
    cuda = libcuda(args.libcuda)
    cuda_libs, _ = ldd(cuda)
    dirs = sorted({os.path.dirname(os.path.realpath(p)) for p in libs + cuda_libs + [cuda]} | {os.path.dirname(cuda)})
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]
    for d in dirs:
        os.makedirs(os.path.join(root, d.lstrip("/")), exist_ok=True)
        mounts.append({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro", "nosuid", "nodev"]})
    if interp:
        dest = os.path.join(root, interp.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        open(dest, "a").close()
        mounts.append({"destination": interp, "type": "bind", "source": os.path.realpath(interp), "options": ["bind", "ro"]})
    nodes = nvidia_nodes(args.dev)
    if not nodes:
        sys.exit("bundle.py: no /dev/nvidia* character devices: is the NVIDIA driver loaded (run nvidia-smi once)?")
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
            "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["/usr/local/bin/cuda-check"],
            "env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LD_LIBRARY_PATH=" + ":".join(dirs)],
            "cwd": "/",
            "capabilities": {k: caps for k in ["bounding", "effective", "permitted"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "gpu-check",
        "mounts": mounts,
        "annotations": {"semble.dev/policy": args.policy},
        "linux": {
            "namespaces": [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount", "cgroup"]],
            "devices": [{"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666, "uid": 0, "gid": 0} for p, ma, mi in nodes],
            "resources": {"devices": [{"allow": False, "access": "rwm"}] +
                          [{"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"} for _, ma, mi in nodes]},
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        },
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(" ".join(p for p, _, _ in nodes))

if __name__ == "__main__":
    main()
