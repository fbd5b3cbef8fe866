//! GPU containers as the Container Device Interface delivers them, on a host without a GPU:
//! fake NVIDIA device nodes made with `mknod` and the driver's real major (195), a fake driver
//! library, a fake `nvidia-ctk` hook that writes down what it got, and a CDI spec naming them —
//! through Podman (`--device nvidia.com/gpu=all`) and, with the same edits Podman makes, straight
//! through the shim. Opening a node reaches the (absent) driver: `ENXIO` means the device cgroup
//! and Landlock let it through; `EACCES` means Landlock refused it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::scenarios::*;
use crate::*;

/// Where Podman 4.x (and containerd) look for CDI specs besides `/etc/cdi`, with a higher
/// priority; Podman 4.3 has no option to name another directory.
pub const CDI_DIR: &str = "/var/run/cdi";

/// The fake GPU: nodes, library, hook and where the hook writes.
#[derive(Debug)]
pub struct FakeGpu {
    dir: tempfile::TempDir,
}

impl FakeGpu {
    /// Make the nodes (`c 195:0` nvidia0, `c 195:255` nvidiactl, `c 195:254` nvidia-modeset, and
    /// a block device `b 7:0` (a loop disk) to pass off as `/dev/nvidia1`), the library and the
    /// hook.
    pub fn new() -> FakeGpu {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let g = FakeGpu { dir };
        std::fs::create_dir_all(g.path("dev")).unwrap();
        std::fs::create_dir_all(g.path("lib")).unwrap();
        for (name, kind, major, minor) in [
            ("nvidia0", "c", 195, 0),
            ("nvidiactl", "c", 195, 255),
            ("nvidia-modeset", "c", 195, 254),
            ("disk", "b", 7, 0),
        ] {
            let kind = if kind == "c" { nix::sys::stat::SFlag::S_IFCHR } else { nix::sys::stat::SFlag::S_IFBLK };
            nix::sys::stat::mknod(
                &g.path("dev").join(name),
                kind,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(major, minor),
            )
            .unwrap();
        }
        std::fs::write(g.lib(), "fake libcuda\n").unwrap();
        let script = format!("#!/bin/sh\n{{ echo \"argv: $*\"; env; }} > {}\n", g.marker().display());
        std::fs::write(g.hook(), script).unwrap();
        std::fs::set_permissions(g.hook(), std::fs::Permissions::from_mode(0o755)).unwrap();
        g
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The fake driver library.
    pub fn lib(&self) -> PathBuf {
        self.path("lib/libcuda.so.1")
    }

    /// The fake `nvidia-ctk`.
    pub fn hook(&self) -> PathBuf {
        self.path("nvidia-ctk")
    }

    /// What the hook wrote (its arguments and environment), when it ran.
    pub fn marker(&self) -> PathBuf {
        self.path("hook-ran")
    }

    /// A fake node.
    pub fn node(&self, name: &str) -> PathBuf {
        self.path("dev").join(name)
    }

    /// A CDI spec (kind `nvidia.com/gpu`) as `nvidia-ctk cdi generate` writes one: devices `0`
    /// and `all` (the per-GPU node), common edits (the control nodes, the library read-only,
    /// an environment variable, the ldcache hook); plus `evil`, a disk under an NVIDIA name.
    /// `hook_env`: an environment the hook entry names.
    pub fn cdi_spec(&self, hook_env: Option<&str>) -> String {
        let env = hook_env.map(|e| format!("\n    env: [\"{e}\"]")).unwrap_or_default();
        format!(
            r#"cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - {{path: /dev/nvidia0, hostPath: {gpu0}}}
- name: all
  containerEdits:
    deviceNodes:
    - {{path: /dev/nvidia0, hostPath: {gpu0}}}
- name: evil
  containerEdits:
    deviceNodes:
    - {{path: /dev/nvidia1, hostPath: {disk}}}
containerEdits:
  env: [NVIDIA_VISIBLE_DEVICES=void]
  deviceNodes:
  - {{path: /dev/nvidiactl, hostPath: {ctl}}}
  - {{path: /dev/nvidia-modeset, hostPath: {modeset}}}
  mounts:
  - {{hostPath: {lib}, containerPath: /usr/lib/x86_64-linux-gnu/libcuda.so.1, options: [ro, nosuid, nodev, bind]}}
  hooks:
  - hookName: createContainer
    path: {hook}
    args: [nvidia-ctk, hook, update-ldcache, --folder, /usr/lib/x86_64-linux-gnu]{env}
"#,
            gpu0 = self.node("nvidia0").display(),
            disk = self.node("disk").display(),
            ctl = self.node("nvidiactl").display(),
            modeset = self.node("nvidia-modeset").display(),
            lib = self.lib().display(),
            hook = self.hook().display(),
        )
    }

    /// The edits Podman makes to `config.json` for `nvidia.com/gpu=all` from [`Self::cdi_spec`]:
    /// what the shim receives. `evil` adds the disk as `/dev/nvidia1`; `hook_env` is the hook
    /// entry's environment.
    pub fn apply_cdi(&self, c: &mut Value, evil: bool, hook_env: Option<&str>) {
        let node = |path: &str, kind: &str, major: i64, minor: i64| json!({"path": path, "type": kind, "major": major, "minor": minor, "fileMode": 8630, "uid": 0, "gid": 0});
        let rule = |kind: &str, major: i64, minor: i64| json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": "rwm"});
        let mut devices = vec![
            node("/dev/nvidia0", "c", 195, 0),
            node("/dev/nvidiactl", "c", 195, 255),
            node("/dev/nvidia-modeset", "c", 195, 254),
        ];
        let mut rules = vec![rule("c", 195, 0), rule("c", 195, 255), rule("c", 195, 254)];
        if evil {
            devices.push(node("/dev/nvidia1", "b", 7, 0));
            rules.push(rule("b", 7, 0));
        }
        c["linux"]["devices"] = json!(devices);
        let existing = c["linux"]["resources"]["devices"].as_array().cloned().unwrap_or_default();
        c["linux"]["resources"]["devices"] = json!(existing.into_iter().chain(rules).collect::<Vec<_>>());
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
            "type": "bind",
            "source": self.lib(),
            "options": ["ro", "nosuid", "nodev", "bind"]
        }));
        c["process"]["env"].as_array_mut().unwrap().push(json!("NVIDIA_VISIBLE_DEVICES=void"));
        let mut hook = json!({"path": self.hook(), "args": ["nvidia-ctk", "hook", "update-ldcache", "--folder", "/usr/lib/x86_64-linux-gnu"]});
        if let Some(e) = hook_env {
            hook["env"] = json!([e]);
        }
        c["hooks"] = json!({"createContainer": [hook]});
    }
}

impl Default for FakeGpu {
    fn default() -> Self {
        FakeGpu::new()
    }
}

/// What the container checks: the nodes with their numbers, the library, the environment,
/// each node opened (the per-GPU node and nvidiactl reach the absent driver; nvidia-modeset,
/// which CUDA does not use, is refused by Landlock), a thread renamed through `/proc` (what
/// CUDA does at `cuInit`), and `/dev` not listed.
pub const GPU_CHECK: &str = "id -u; ls -ln /dev/nvidia0 /dev/nvidiactl /dev/nvidia-modeset; \
    cat /usr/lib/x86_64-linux-gnu/libcuda.so.1; echo \"env=$NVIDIA_VISIBLE_DEVICES preload=$LD_PRELOAD\"; \
    for n in nvidia0 nvidiactl nvidia-modeset; do cat /dev/$n 2>&1 | sed \"s|^|open $n: |\"; done; \
    echo cuda-EvtHandlr > /proc/self/task/$$/comm && echo \"comm=$(cat /proc/$$/comm)\"; \
    ls /dev >/dev/null 2>&1 || echo 'dev not listed'; echo gpu-check-done";

/// Check what [`GPU_CHECK`] printed.
pub fn assert_gpu_check(out: &str) {
    assert!(out.contains("gpu-check-done"), "the check did not finish:\n{out}");
    assert!(out.lines().any(|l| l.trim() == "1000"), "the policy's user: {out}");
    for (n, minor) in [("nvidia0", "0"), ("nvidiactl", "255"), ("nvidia-modeset", "254")] {
        assert!(
            out.lines().any(|l| l.starts_with('c') && l.contains(&format!("195, {minor:>3}")) && l.ends_with(n)),
            "/dev/{n} must arrive as c 195:{minor}:\n{out}"
        );
    }
    assert!(out.contains("fake libcuda"), "the driver library is mounted and readable: {out}");
    assert!(out.contains("env=void preload="), "the CDI environment: {out}");
    assert!(out.contains("open nvidia0: cat: can't open '/dev/nvidia0': No such device or address"), "{out}");
    assert!(out.contains("open nvidiactl: cat: can't open '/dev/nvidiactl': No such device or address"), "{out}");
    assert!(
        out.contains("open nvidia-modeset: cat: can't open '/dev/nvidia-modeset': Permission denied"),
        "nvidia-modeset is not CUDA's: Landlock refuses it: {out}"
    );
    assert!(out.contains("comm=cuda-EvtHandlr"), "a thread renamed through /proc, as CUDA does: {out}");
    assert!(out.contains("dev not listed"), "{out}");
}

/// The hook ran, with its arguments, and with an environment of its own: none of the
/// container's (`LD_PRELOAD`, `HOSTNAME`, `NVIDIA_VISIBLE_DEVICES`).
pub fn assert_hook_ran_clean(g: &FakeGpu) {
    let got = std::fs::read_to_string(g.marker()).expect("the allowed hook did not run");
    assert!(got.contains("argv: hook update-ldcache --folder /usr/lib/x86_64-linux-gnu"), "{got}");
    assert!(got.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), "{got}");
    for leaked in ["LD_PRELOAD", "NVIDIA_VISIBLE_DEVICES", "HOSTNAME", "container="] {
        assert!(!got.contains(leaked), "the container's `{leaked}` reached a hook running on the host:\n{got}");
    }
}

fn shim_run(t: &Path, backend: &str, b: &Path, extra: &[&str]) -> std::process::Output {
    run(
        shim_for(&t.join("state"), backend)
            .arg("--proxy-dir")
            .arg(t.join("proxy"))
            .args(extra)
            .args(["run", "-b"])
            .arg(b)
            .arg(unique("gpu")),
        false,
    )
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Straight through the shim, with the edits Podman makes for a CDI device: the nodes and
/// mounts arrive under the GPU policy; the hook runs only when the operator allowed it, and
/// then with its own environment; a disk under an NVIDIA name, a hook naming `LD_PRELOAD` and
/// the same GPU under a policy without `devices.gpu` are refused, and none of them runs a hook.
pub fn cdi_through_the_shim(backend: &'static str) {
    require_root();
    let t = tempfile::tempdir().unwrap();
    let g = FakeGpu::new();
    let hook = format!("--allow-hook={}", g.hook().display());
    let make = |name: &str, policy: &str, evil: bool, hook_env: Option<&str>| {
        let b = bundle(&t.path().join(name), &["sh", "-c", GPU_CHECK]);
        edit_config(&b, |c| {
            c["annotations"] = json!({"semble.dev/policy": policy});
            c["process"]["env"].as_array_mut().unwrap().push(json!("LD_PRELOAD=/tmp/evil.so"));
            g.apply_cdi(c, evil, hook_env);
        });
        b
    };
    // The hook is refused unless the operator allowed it, and nothing runs.
    let b = make("nohook", "llm-server", false, None);
    let out = shim_run(t.path(), backend, &b, &[]);
    assert!(!out.status.success() && text(&out).contains("`createContainer` hook"), "{}", text(&out));
    assert!(!g.marker().exists(), "a refused hook ran");
    // Allowed: the container gets its GPU, the hook runs with its own environment.
    let out = shim_run(t.path(), backend, &b, &[&hook]);
    assert!(out.status.success(), "{}", text(&out));
    assert_gpu_check(&text(&out));
    assert_hook_ran_clean(&g);
    std::fs::remove_file(g.marker()).unwrap();
    // A disk passed off as an NVIDIA node is refused by its number.
    let b = make("evil", "llm-server", true, None);
    let out = shim_run(t.path(), backend, &b, &[&hook]);
    let err = text(&out);
    assert!(!out.status.success() && err.contains("/dev/nvidia1") && err.contains("not an NVIDIA device"), "{err}");
    // A hook entry naming the dynamic loader is refused even for an allowed program.
    let b = make("preload", "llm-server", false, Some("LD_PRELOAD=/proc/self/cwd/evil.so"));
    let out = shim_run(t.path(), backend, &b, &[&hook]);
    let err = text(&out);
    assert!(!out.status.success() && err.contains("sets `LD_PRELOAD`"), "{err}");
    // Without `devices.gpu`, an NVIDIA node is just a device the policy does not allow.
    let b = make("nogpu", "workspace", false, None);
    let out = shim_run(t.path(), backend, &b, &[&hook]);
    let err = text(&out);
    assert!(
        !out.status.success() && err.contains("device `/dev/nvidia0` is not allowed by policy `workspace`"),
        "{err}"
    );
    assert!(!g.marker().exists(), "a refused container ran its hook");
}

/// Removes the test's CDI spec when dropped.
#[derive(Debug)]
pub struct CdiSpec(PathBuf);

impl CdiSpec {
    /// Write `text` as `CDI_DIR/semble-test-gpu.yaml` (one name: a stale file from a killed run
    /// is replaced, never doubled into a conflict).
    pub fn install(text: &str) -> CdiSpec {
        std::fs::create_dir_all(CDI_DIR).unwrap();
        let p = Path::new(CDI_DIR).join("semble-test-gpu.yaml");
        std::fs::write(&p, text).unwrap();
        CdiSpec(p)
    }
}

impl Drop for CdiSpec {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Podman applies a CDI spec (`--device nvidia.com/gpu=all`) and runs the container through the
/// shim under `llm-server` (runc, then the embedded fallback): the nodes, the library and the
/// environment arrive; the hook runs only when the operator allowed it, without the
/// container's `LD_PRELOAD`; `nvidia.com/gpu=evil` (a disk) is refused by number.
pub fn cdi_through_podman() {
    require_root();
    let g = FakeGpu::new();
    let _spec = CdiSpec::install(&g.cdi_spec(None));
    // The examples as installed: llm-server's backend is runc, its fallback the embedded runtime.
    let p = Podman::start(policy_dir());
    let podman_run = |extra_flags: &[String], device: &str| {
        let mut c = p.cmd();
        for f in extra_flags {
            c.arg("--runtime-flag").arg(f);
        }
        c.arg("run").arg("--rm").args(Podman::RUN);
        c.args(["--annotation", "semble.dev/policy=llm-server", "-e", "LD_PRELOAD=/tmp/evil.so", "--device", device]);
        c.arg(&p.image).args(["sh", "-c", GPU_CHECK]);
        run(&mut c, false)
    };
    let out = podman_run(&[], "nvidia.com/gpu=all");
    assert!(!out.status.success() && text(&out).contains("`createContainer` hook"), "{}", text(&out));
    assert!(!g.marker().exists(), "a refused hook ran");
    let allow = format!("allow-hook={}", g.hook().display());
    for backend in ["runc", "embedded"] {
        let out = podman_run(&[allow.clone(), format!("backend={backend}")], "nvidia.com/gpu=all");
        assert!(out.status.success(), "{backend}: {}", text(&out));
        assert_gpu_check(&text(&out));
        assert_hook_ran_clean(&g);
        std::fs::remove_file(g.marker()).unwrap();
    }
    let out = podman_run(&[allow], "nvidia.com/gpu=evil");
    let err = text(&out);
    assert!(!out.status.success() && err.contains("/dev/nvidia1") && err.contains("not an NVIDIA device"), "{err}");
    assert!(!g.marker().exists(), "a refused container ran its hook");
}
