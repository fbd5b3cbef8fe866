//! Rootless Podman, as an ordinary user runs it: a test user with subordinate id ranges, its own
//! `XDG_*` directories (a private runtime directory, 0700, as `systemd-logind` would make), the
//! test image imported into its own storage, and `podman --runtime semble-shim` run as that user
//! through `runuser`. semble's binaries are copied where the user can read them.
//!
//! The user's storage, configuration and state are under a private `HOME`, so nothing of one test
//! run reaches the next. One user serves every test; the tests of a binary take [`Rootless::lock`] in turn (dropping a
//! harness kills the user's processes: Podman's pause process, conmon, supervisors).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use crate::{bin, require_root, require_tool, rootfs, run, FakeProxy};

/// The test user.
pub const USER: &str = "semble-rootless";

/// The test image in the user's storage.
pub const IMAGE: &str = "localhost/semble-probe:test";

/// A rootless Podman of the test user's, with private directories.
#[derive(Debug)]
pub struct Rootless {
    dir: tempfile::TempDir,
    /// The user's uid.
    pub uid: u32,
    runsc: Option<PathBuf>,
    _serial: MutexGuard<'static, ()>,
}

static SERIAL: Mutex<()> = Mutex::new(());

impl Rootless {
    /// Ensure the test user, lay out its directories, copy semble's binaries and import the
    /// image. `policies` are installed in the user's config directory (`~/.config/semble/policies`).
    pub fn start(policies: &Path) -> Rootless {
        require_root();
        require_tool("podman", "podman");
        require_tool("newuidmap", "uidmap");
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let uid = ensure_user();
        let dir = tempfile::Builder::new().prefix("semble-rootless-").tempdir().unwrap();
        let r = Rootless { dir, uid, runsc: None, _serial: serial };
        for d in ["run", "home/.config/semble/policies", "home/.local/state", "bin"] {
            std::fs::create_dir_all(r.dir.path().join(d)).unwrap();
        }
        for b in ["semble-shim", "semble-init", "semble-policy", "semble-proxy"] {
            let to = r.bin_dir().join(b);
            std::fs::copy(bin(b), &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for entry in std::fs::read_dir(policies).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().and_then(|e| e.to_str()) == Some("yaml") {
                std::fs::copy(&p, r.policy_dir().join(p.file_name().unwrap())).unwrap();
            }
        }
        let root = r.dir.path().join("image");
        rootfs(&root);
        let tar = r.dir.path().join("image.tar");
        run(Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tar).arg("."), true);
        std::fs::remove_dir_all(&root).unwrap();
        // Everything is the user's but the binaries (root's, as an installation would be).
        run(Command::new("chown").arg("-R").arg(format!("{USER}:{USER}")).arg(r.dir.path()), true);
        run(Command::new("chown").arg("-R").arg("root:root").arg(r.bin_dir()), true);
        std::fs::set_permissions(r.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(r.runtime_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
        run(r.podman_plain().args(["import", "-q", "--change", "CMD [\"/bin/probe\"]"]).arg(&tar).arg(IMAGE), true);
        r
    }

    /// Also install runsc (a copy the user can run) and pass it to the shim.
    pub fn with_runsc(mut self) -> Rootless {
        let to = self.bin_dir().join("runsc");
        std::fs::copy(crate::runsc(), &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        self.runsc = Some(to);
        self
    }

    /// Where semble's binaries are.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// `$XDG_RUNTIME_DIR`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// The user's state directory (`$XDG_STATE_HOME`'s default, `~/.local/state`).
    pub fn state_home(&self) -> PathBuf {
        self.dir.path().join("home/.local/state")
    }

    /// The user's policies (`~/.config/semble/policies`).
    pub fn policy_dir(&self) -> PathBuf {
        self.dir.path().join("home/.config/semble/policies")
    }

    /// The shim's state root by default, rootless: `$XDG_RUNTIME_DIR/semble-shim`.
    pub fn shim_root(&self) -> PathBuf {
        self.runtime_dir().join("semble-shim")
    }

    /// A command run as the user, in its environment (and nothing of root's): a login's
    /// `XDG_RUNTIME_DIR` and `HOME`, the other `XDG_*` directories at their defaults under it
    /// (Podman does not pass them on to its runtime).
    pub fn as_user(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", USER, "--", "env", "-i"]);
        let d = self.dir.path();
        c.arg(format!("HOME={}", d.join("home").display()));
        c.arg(format!("USER={USER}"));
        c.arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir().display()));
        c.arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        c.arg(program);
        c.current_dir(d.join("home"));
        c.stdin(Stdio::null());
        c
    }

    fn podman_plain(&self) -> Command {
        let mut c = self.as_user("podman");
        c.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        c
    }

    /// `podman --runtime semble-shim …` as the user; the shim finds everything in its defaults.
    pub fn podman(&self) -> Command {
        let mut c = self.podman_plain();
        c.arg("--runtime").arg(self.bin_dir().join("semble-shim"));
        if let Some(r) = &self.runsc {
            c.arg("--runtime-flag").arg(format!("runsc={}", r.display()));
        }
        c
    }

    /// `podman` with its own default runtime, as the user (the comparison).
    pub fn podman_default(&self) -> Command {
        self.podman_plain()
    }

    /// `semble-shim …` as the user.
    pub fn shim(&self) -> Command {
        self.as_user(self.bin_dir().join("semble-shim"))
    }

    /// A stand-in for the user's semble-proxy on `policy`'s socket, where the rootless shim looks
    /// by default (`$XDG_RUNTIME_DIR/semble/proxy/POLICY/proxy.sock`), owned by the user.
    pub fn proxy(&self, policy: &str) -> FakeProxy {
        let dir = self.runtime_dir().join("semble/proxy");
        let p = FakeProxy::start(&dir, policy);
        run(Command::new("chown").arg("-R").arg(format!("{USER}:{USER}")).arg(self.runtime_dir().join("semble")), true);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        p
    }

    /// The user's processes whose command line contains `needle`.
    pub fn processes(&self, needle: &str) -> Vec<String> {
        let out = run(Command::new("ps").args(["-u", &self.uid.to_string(), "-o", "pid=,args="]), false);
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        // Podman's pause process keeps the user namespace; conmon and supervisors may linger
        // after a failed test. None of them may outlive the harness.
        let _ = Command::new("pkill").args(["-KILL", "-u", USER]).status();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Create the test user with subordinate id ranges (once per machine); its uid.
fn ensure_user() -> u32 {
    let id = |flag: &str| {
        Command::new("id")
            .arg(flag)
            .arg(USER)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok())
    };
    if id("-u").is_none() {
        run(Command::new("useradd").args(["--create-home", "--shell", "/bin/sh", USER]), true);
    }
    let has_range = |file: &str| {
        std::fs::read_to_string(file).unwrap_or_default().lines().any(|l| l.split(':').next() == Some(USER))
    };
    if !has_range("/etc/subuid") || !has_range("/etc/subgid") {
        run(
            Command::new("usermod").args(["--add-subuids", "300000-365535", "--add-subgids", "300000-365535", USER]),
            true,
        );
    }
    id("-u").unwrap()
}
