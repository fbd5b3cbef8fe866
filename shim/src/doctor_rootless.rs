//! `semble-shim doctor`, run by an ordinary user: is this user ready for rootless Podman with
//! semble as its runtime? (docs/install-podman.md, rootless.)
//!
//! * subordinate uid and gid ranges in `/etc/subuid` and `/etc/subgid` (Podman maps the
//!   container's users there; a container's uid 1000 needs a range of more than 1000 ids);
//! * `newuidmap` and `newgidmap`, setuid root or with file capabilities (they write the maps);
//! * the runtime directory (`$XDG_RUNTIME_DIR`): set, the user's, mode 0700 — semble keeps its
//!   state and the proxy's sockets there;
//! * the network: slirp4netns and a `/dev/net/tun` the user can open, for containers with a
//!   network (the `none` and `proxy` modes need neither);
//! * the cgroup controllers delegated to the user, which decide the resource limits that hold.
//!
//! The facts are gathered by [`RootlessHost::probe`] and judged by [`checks`], which tests call
//! with made-up hosts.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::doctor::{check, Check, Status};

/// The ids a container image commonly uses (a full 16-bit range, as Podman's defaults expect).
const WANTED_IDS: u64 = 65_536;

/// A setuid helper as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    /// Where.
    pub path: PathBuf,
    /// Owned by root with the setuid bit.
    pub setuid_root: bool,
    /// Has file capabilities (`security.capability`).
    pub file_caps: bool,
}

/// What the rootless checks look at.
#[derive(Debug, Clone, Default)]
pub struct RootlessHost {
    /// The user's name (`$USER`, else from the uid), and uid as the host sees it.
    pub user: String,
    /// See `user`.
    pub uid: u32,
    /// `/etc/subuid`'s text.
    pub subuid: String,
    /// `/etc/subgid`'s text.
    pub subgid: String,
    /// `newuidmap`, when found.
    pub newuidmap: Option<Helper>,
    /// `newgidmap`, when found.
    pub newgidmap: Option<Helper>,
    /// `$XDG_RUNTIME_DIR`, and its owner and mode when it exists.
    pub runtime_dir: Option<(PathBuf, Option<(u32, u32)>)>,
    /// This process's own uid (the runtime directory's owner must be it, as this process sees
    /// owners: inside `podman unshare` that is 0).
    pub own_uid: u32,
    /// slirp4netns, when found.
    pub slirp4netns: Option<PathBuf>,
    /// Whether `/dev/net/tun` opened read-write, and its mode.
    pub tun: (bool, Option<u32>),
    /// What cannot be limited ([`crate::host::HostFacts::undelegated_cgroups`]).
    pub undelegated: Option<crate::host::Undelegated>,
    /// Whether the host is one cgroup v2 hierarchy.
    pub cgroup_v2: bool,
}

impl RootlessHost {
    /// Look at this host, as this process.
    pub fn probe() -> RootlessHost {
        let uid = crate::settings::host_uid();
        let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| uid.to_string())
        });
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()).map(|d| {
            let d = PathBuf::from(d);
            let meta = std::fs::metadata(&d).ok().filter(|m| m.is_dir()).map(|m| (m.uid(), m.mode() & 0o7777));
            (d, meta)
        });
        let tun_mode = std::fs::metadata("/dev/net/tun").ok().map(|m| m.mode() & 0o777);
        let tun_open = std::fs::OpenOptions::new().read(true).write(true).open("/dev/net/tun").is_ok();
        let v2 = crate::host::cgroup_v2_unified();
        RootlessHost {
            subuid: std::fs::read_to_string("/etc/subuid").unwrap_or_default(),
            subgid: std::fs::read_to_string("/etc/subgid").unwrap_or_default(),
            newuidmap: helper("newuidmap"),
            newgidmap: helper("newgidmap"),
            runtime_dir,
            own_uid: nix::unistd::geteuid().as_raw(),
            slirp4netns: crate::settings::find_executable(None, "slirp4netns"),
            tun: (tun_open, tun_mode),
            undelegated: crate::host::probe_for(true).undelegated_cgroups,
            cgroup_v2: v2,
            user,
            uid,
        }
    }
}

fn helper(name: &str) -> Option<Helper> {
    let path = crate::settings::find_executable(None, name)?;
    let m = std::fs::metadata(&path).ok()?;
    let file_caps = xattr_present(&path, "security.capability");
    Some(Helper { setuid_root: m.uid() == 0 && m.mode() & 0o4000 != 0, file_caps, path })
}

fn xattr_present(path: &Path, name: &str) -> bool {
    crate::sys::getxattr_len(path, name).is_some_and(|n| n > 0)
}

/// The number of ids `/etc/subuid`-style `text` gives `user` (by name or by uid).
pub fn sub_ids(text: &str, user: &str, uid: u32) -> u64 {
    let uid = uid.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (who, _start, count) = (f.next()?, f.next()?, f.next()?);
            (who == user || who == uid).then(|| count.trim().parse::<u64>().ok()).flatten()
        })
        .sum()
}

/// Judge a rootless host.
pub fn checks(h: &RootlessHost) -> Vec<Check> {
    let mut out = Vec::new();
    let user = &h.user;
    let add = format!("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}");
    for (file, text) in [("/etc/subuid", &h.subuid), ("/etc/subgid", &h.subgid)] {
        let name = format!("rootless: {file}");
        let n = sub_ids(text, user, h.uid);
        out.push(match n {
            0 => check(
                name,
                Status::Fail,
                format!("no range for `{user}`: Podman cannot map a container's users"),
                add.clone(),
            ),
            n if n < WANTED_IDS => check(
                name,
                Status::Warn,
                format!("{n} ids for `{user}`: images with uids or gids above {n} cannot be used"),
                format!("{add}, then `podman system migrate`"),
            ),
            n => check(name, Status::Ok, format!("{n} ids for `{user}`"), ""),
        });
    }
    for (name, found) in [("newuidmap", &h.newuidmap), ("newgidmap", &h.newgidmap)] {
        let label = format!("rootless: {name}");
        out.push(match found {
            None => check(
                label,
                Status::Fail,
                "not installed: Podman cannot write the user namespace's id maps",
                "sudo apt-get install uidmap",
            ),
            Some(hp) if hp.setuid_root || hp.file_caps => check(
                label,
                Status::Ok,
                format!("{} ({})", hp.path.display(), if hp.setuid_root { "setuid root" } else { "file capabilities" }),
                "",
            ),
            Some(hp) => check(
                label,
                Status::Fail,
                format!(
                    "{} is neither setuid root nor has file capabilities: it cannot write the maps",
                    hp.path.display()
                ),
                format!("sudo chmod u+s {} (or reinstall uidmap)", hp.path.display()),
            ),
        });
    }
    let rd = "rootless: XDG_RUNTIME_DIR";
    let linger = format!("log in through systemd-logind, or `sudo loginctl enable-linger {user}` for services; it makes /run/user/{} (0700, the user's)", h.uid);
    out.push(match &h.runtime_dir {
        None => check(
            rd,
            Status::Fail,
            "not set: semble keeps its state and the proxy's sockets there, as runc does",
            linger,
        ),
        Some((d, None)) => check(rd, Status::Fail, format!("{} does not exist", d.display()), linger),
        Some((d, Some((owner, _)))) if *owner != h.own_uid => check(
            rd,
            Status::Fail,
            format!("{} belongs to uid {owner}, not to this user", d.display()),
            format!("set XDG_RUNTIME_DIR to the user's own directory (/run/user/{})", h.uid),
        ),
        Some((d, Some((_, mode)))) if mode & 0o077 != 0 => check(
            rd,
            Status::Fail,
            format!("{} has mode {mode:04o}: other users could reach semble's state and sockets", d.display()),
            format!("chmod 0700 {}", d.display()),
        ),
        Some((d, Some(_))) => check(rd, Status::Ok, format!("{} (0700, the user's)", d.display()), ""),
    });
    let net = "rootless: network";
    let none_works = "`--network none` and policies in `proxy` or `none` mode need no network";
    out.push(match (&h.slirp4netns, h.tun) {
        (None, _) => check(
            net,
            Status::Warn,
            format!("slirp4netns is not installed: containers with a network cannot start; {none_works}"),
            "sudo apt-get install slirp4netns",
        ),
        (Some(_), (false, mode)) => check(
            net,
            Status::Warn,
            format!(
                "/dev/net/tun cannot be opened by this user{}: slirp4netns cannot make its tap device; {none_works}",
                mode.map(|m| format!(" (mode {m:04o})")).unwrap_or_default()
            ),
            "sudo chmod 0666 /dev/net/tun (its usual mode; the tun driver checks CAP_NET_ADMIN per device), or load the tun module",
        ),
        (Some(p), (true, _)) => check(net, Status::Ok, format!("{} with /dev/net/tun", p.display()), ""),
    });
    let cg = "rootless: cgroup limits";
    out.push(match &h.undelegated {
        None => check(cg, Status::Ok, "cgroup v2 delegates memory, cpu and pids (and the rest) to this user: policy limits hold", ""),
        Some(u) => check(
            cg,
            Status::Warn,
            format!(
                "not delegated here: {}; policies with `resources.enforcement: required` are refused, `best-effort` ones run without those limits",
                u.controllers.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            if h.cgroup_v2 {
                "sudo systemctl edit user@.service → [Service] Delegate=cpu cpuset io memory pids, then log in again"
            } else {
                "boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2) and delegate the controllers to user@.service"
            },
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> RootlessHost {
        let helper = |n: &str| {
            Some(Helper { path: PathBuf::from(format!("/usr/bin/{n}")), setuid_root: true, file_caps: false })
        };
        RootlessHost {
            user: "alice".into(),
            uid: 1001,
            subuid: "bob:100000:65536\nalice:165536:65536\n".into(),
            subgid: "1001:165536:65536\n".into(),
            newuidmap: helper("newuidmap"),
            newgidmap: helper("newgidmap"),
            runtime_dir: Some((PathBuf::from("/run/user/1001"), Some((1001, 0o700)))),
            own_uid: 1001,
            slirp4netns: Some(PathBuf::from("/usr/bin/slirp4netns")),
            tun: (true, Some(0o666)),
            undelegated: None,
            cgroup_v2: true,
        }
    }

    fn status_of<'a>(c: &'a [Check], name: &str) -> &'a Check {
        c.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no check {name}: {c:?}"))
    }

    #[test]
    fn a_ready_user_passes_every_check() {
        let c = checks(&ready());
        assert!(c.iter().all(|c| c.status == Status::Ok), "{c:?}");
        assert_eq!(sub_ids(&ready().subgid, "alice", 1001), 65536, "ranges are found by uid as well as by name");
    }

    #[test]
    fn each_missing_piece_is_named_with_its_fix() {
        let mut h = ready();
        h.subuid = "bob:100000:65536\n".into();
        h.newgidmap = None;
        h.runtime_dir = Some((PathBuf::from("/run/user/1001"), Some((1001, 0o755))));
        h.tun = (false, Some(0o600));
        h.undelegated = crate::host::undelegated(1001, None);
        h.cgroup_v2 = false;
        let c = checks(&h);
        let sub = status_of(&c, "rootless: /etc/subuid");
        assert_eq!(sub.status, Status::Fail);
        assert!(sub.fix.contains("usermod --add-subuids") && sub.fix.contains("alice"), "{sub:?}");
        let g = status_of(&c, "rootless: newgidmap");
        assert_eq!((g.status, g.fix.as_str()), (Status::Fail, "sudo apt-get install uidmap"));
        let rd = status_of(&c, "rootless: XDG_RUNTIME_DIR");
        assert!(rd.status == Status::Fail && rd.fix == "chmod 0700 /run/user/1001", "{rd:?}");
        let net = status_of(&c, "rootless: network");
        assert!(net.status == Status::Warn && net.detail.contains("mode 0600"), "{net:?}");
        let cg = status_of(&c, "rootless: cgroup limits");
        assert!(
            cg.status == Status::Warn && cg.detail.contains("memory") && cg.fix.contains("unified_cgroup_hierarchy"),
            "{cg:?}"
        );
    }

    #[test]
    fn helpers_without_privilege_and_foreign_runtime_dirs_fail() {
        let mut h = ready();
        h.newuidmap = Some(Helper { path: PathBuf::from("/usr/bin/newuidmap"), setuid_root: false, file_caps: false });
        h.runtime_dir = Some((PathBuf::from("/run/user/0"), Some((0, 0o700))));
        h.subgid = "alice:100000:1000\n".into();
        let c = checks(&h);
        assert_eq!(status_of(&c, "rootless: newuidmap").status, Status::Fail);
        assert!(status_of(&c, "rootless: XDG_RUNTIME_DIR").detail.contains("belongs to uid 0"));
        let g = status_of(&c, "rootless: /etc/subgid");
        assert!(g.status == Status::Warn && g.detail.contains("1000 ids"), "{g:?}");
        h.newuidmap = Some(Helper { path: PathBuf::from("/usr/bin/newuidmap"), setuid_root: false, file_caps: true });
        assert_eq!(status_of(&checks(&h), "rootless: newuidmap").status, Status::Ok);
    }
}
