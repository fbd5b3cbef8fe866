//! OCI seccomp profile → classic BPF, with libseccomp.
//!
//! This is how semble proves a profile is loadable (libseccomp rejects what the kernel would),
//! counts its instructions for `explain`, and emits `--target seccomp-bpf`. libseccomp builds a
//! binary-tree filter (`SCMP_FLTATR_CTL_OPTIMIZE = 2`), so lookups cost O(log n) comparisons
//! instead of one per allowed syscall.

use std::io::{Read, Seek, SeekFrom};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};

/// A seccomp architecture (libseccomp's type).
pub use libseccomp::ScmpArch as Arch;
use semble_policy::seccomp_profile::{ArgCondition, SeccompProfile};

/// Why a profile could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// An action name libseccomp does not know.
    #[error("unknown seccomp action `{0}`")]
    UnknownAction(String),
    /// A comparison operator libseccomp does not know.
    #[error("unknown seccomp comparison `{0}`")]
    UnknownOp(String),
    /// An argument index beyond the six syscall arguments.
    #[error("argument index {0} is out of range (0-5)")]
    BadArgIndex(u32),
    /// An architecture name libseccomp does not know.
    #[error("unknown seccomp architecture `{0}`")]
    UnknownArch(String),
    /// libseccomp refused the filter.
    #[error("libseccomp refused the filter while {what}: {source}")]
    Libseccomp {
        /// What was being done.
        what: String,
        /// libseccomp's error.
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// Reading the exported program failed.
    #[error("reading the exported BPF program failed: {0}")]
    Io(#[from] std::io::Error),
}

fn lib<T>(what: impl Into<String>, r: Result<T, libseccomp::error::SeccompError>) -> Result<T, BpfError> {
    r.map_err(|source| BpfError::Libseccomp { what: what.into(), source })
}

/// Map an OCI action (with its errno) to libseccomp.
pub fn action(name: &str, errno: Option<u32>) -> Result<ScmpAction, BpfError> {
    let errno = i32::try_from(errno.unwrap_or(1)).unwrap_or(1);
    Ok(match name {
        "SCMP_ACT_ALLOW" => ScmpAction::Allow,
        "SCMP_ACT_ERRNO" => ScmpAction::Errno(errno),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => ScmpAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => ScmpAction::KillProcess,
        "SCMP_ACT_TRAP" => ScmpAction::Trap,
        "SCMP_ACT_LOG" => ScmpAction::Log,
        "SCMP_ACT_NOTIFY" => ScmpAction::Notify,
        "SCMP_ACT_TRACE" => ScmpAction::Trace(u16::try_from(errno).unwrap_or(0)),
        other => return Err(BpfError::UnknownAction(other.to_string())),
    })
}

fn condition(c: &ArgCondition) -> Result<ScmpArgCompare, BpfError> {
    if c.index > 5 {
        return Err(BpfError::BadArgIndex(c.index));
    }
    let (op, datum) = match c.op.as_str() {
        "SCMP_CMP_NE" => (ScmpCompareOp::NotEqual, c.value),
        "SCMP_CMP_LT" => (ScmpCompareOp::Less, c.value),
        "SCMP_CMP_LE" => (ScmpCompareOp::LessOrEqual, c.value),
        "SCMP_CMP_EQ" => (ScmpCompareOp::Equal, c.value),
        "SCMP_CMP_GE" => (ScmpCompareOp::GreaterEqual, c.value),
        "SCMP_CMP_GT" => (ScmpCompareOp::Greater, c.value),
        "SCMP_CMP_MASKED_EQ" => (ScmpCompareOp::MaskedEqual(c.value), c.value_two),
        other => return Err(BpfError::UnknownOp(other.to_string())),
    };
    Ok(ScmpArgCompare::new(c.index, op, datum))
}

/// Parse an OCI architecture name.
pub fn arch(name: &str) -> Result<ScmpArch, BpfError> {
    name.parse::<ScmpArch>().map_err(|_| BpfError::UnknownArch(name.to_string()))
}

/// Build a libseccomp filter for one architecture. Names that do not exist on `arch` are
/// skipped (as runc does), so one profile serves x86_64 and aarch64.
pub fn filter(profile: &SeccompProfile, arch: ScmpArch) -> Result<ScmpFilterContext, BpfError> {
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    let mut ctx = lib("creating the filter", ScmpFilterContext::new(default))?;
    let native = ScmpArch::native();
    if native != arch {
        lib("adding the architecture", ctx.add_arch(arch))?;
        lib("removing the native architecture", ctx.remove_arch(native))?;
    }
    lib("asking for a binary-tree filter", ctx.set_ctl_optimize(2))?;
    lib("setting the bad-architecture action", ctx.set_act_badarch(ScmpAction::KillProcess))?;
    for r in &profile.syscalls {
        let act = action(&r.action, r.errno_ret)?;
        let conds = r.args.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
        for name in &r.names {
            // Names missing on this architecture resolve to negative pseudo-numbers: skip them.
            let Ok(sc) = ScmpSyscall::from_name_by_arch(name, arch) else {
                continue;
            };
            if sc.as_raw_syscall() < 0 {
                continue;
            }
            if act == default {
                // libseccomp refuses a rule whose action is the default one, with or without
                // argument conditions; such a rule changes nothing either way.
                continue;
            }
            let res = if conds.is_empty() { ctx.add_rule(act, sc) } else { ctx.add_rule_conditional(act, sc, &conds) };
            lib(format!("adding `{name}`"), res)?;
        }
    }
    Ok(ctx)
}

/// Compile to a BPF program (`struct sock_filter` array, native endianness).
pub fn compile(profile: &SeccompProfile, arch: ScmpArch) -> Result<Vec<u8>, BpfError> {
    let ctx = filter(profile, arch)?;
    let mut file = tempfile::tempfile()?;
    lib("exporting BPF", ctx.export_bpf(&file))?;
    file.seek(SeekFrom::Start(0))?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// Number of BPF instructions (8 bytes each).
pub fn instruction_count(bpf: &[u8]) -> usize {
    bpf.len() / 8
}

/// Load the profile into the calling thread (and, with TSYNC, its siblings). Irreversible: use
/// in a process that is about to `execve` the workload, or in a test's child process.
pub fn load(profile: &SeccompProfile) -> Result<(), BpfError> {
    let mut ctx = filter(profile, ScmpArch::native())?;
    lib("synchronising threads", ctx.set_ctl_tsync(true))?;
    lib("loading the filter", ctx.load())
}
