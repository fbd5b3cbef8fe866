//! Every compile target, assembled from the crates that produce them.
//!
//! All artifacts of a policy are built in memory first; only when every one succeeded are they
//! written, so a failing target never leaves a half-compiled set on disk.

use semble_policy::compile::{self, to_json};
use semble_policy::explain::{explain, SeccompFacts};
use semble_policy::SandboxPolicy;

/// A compile target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The fragment of an OCI `config.json` the policy decides (includes the seccomp profile).
    Oci,
    /// A standalone seccomp profile (OCI/Docker/Podman JSON).
    Seccomp,
    /// The seccomp filter as raw BPF for x86_64 (`struct sock_filter[]`).
    SeccompBpf,
    /// The Landlock ruleset `semble-init` applies.
    Landlock,
    /// The egress rules `semble-proxy` enforces.
    Proxy,
    /// An SELinux CIL module in udica's layout (hosts with container-selinux).
    SelinuxCil,
    /// An SELinux reference-policy module: `.te`, `.if`, `.fc` (Debian-style hosts).
    SelinuxTe,
    /// Kubernetes objects: Namespace, NetworkPolicies, RuntimeClasses, the workload Deployment
    /// and the egress proxy (multi-document YAML).
    Kubernetes,
    /// Every target above, into `--out`.
    All,
}

impl Target {
    /// The targets `all` expands to.
    pub const EACH: &'static [Target] = &[
        Target::Oci,
        Target::Seccomp,
        Target::SeccompBpf,
        Target::Landlock,
        Target::Proxy,
        Target::SelinuxCil,
        Target::SelinuxTe,
        Target::Kubernetes,
    ];

    /// The file name of a single-file artifact for a policy.
    pub fn file_name(self, policy: &str) -> String {
        match self {
            Target::Oci => format!("{policy}.oci.json"),
            Target::Seccomp => format!("{policy}.seccomp.json"),
            Target::SeccompBpf => format!("{policy}.seccomp.bpf"),
            Target::Landlock => format!("{policy}.landlock.json"),
            Target::Proxy => format!("{policy}.proxy-rules.json"),
            Target::SelinuxCil => format!("{policy}.cil"),
            Target::SelinuxTe => format!("{policy}.te"),
            Target::Kubernetes => format!("{policy}.k8s.yaml"),
            Target::All => format!("{policy}.all"),
        }
    }

    /// Whether the artifact is binary.
    pub fn is_binary(self) -> bool {
        self == Target::SeccompBpf
    }
}

/// A compiled artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Which target.
    pub target: Target,
    /// Its file name (with `--out`).
    pub file: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Why a target could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The seccomp profile did not compile to BPF.
    #[error("the seccomp profile does not compile: {0}")]
    Bpf(#[from] semble_seccomp::bpf::BpfError),
    /// The policy has no `selinux` section, so there is no module.
    #[error("policy `{0}` has no `selinux` section, so there is no SELinux module; add `spec.selinux` or choose another target")]
    NoSelinux(String),
    /// The policy cannot be expressed as Kubernetes objects.
    #[error(transparent)]
    Kubernetes(#[from] semble_k8s::Error),
    /// The policy has no `filesystem` section, so there is no Landlock ruleset.
    #[error("policy `{0}` has no `filesystem` section, so there is no Landlock ruleset; add `spec.filesystem` or choose another target")]
    NoLandlock(String),
}

/// Compile one target (`All` expands to every target the policy has the sections for), with
/// default Kubernetes options.
pub fn compile(policy: &SandboxPolicy, target: Target) -> Result<Vec<Artifact>, CompileError> {
    compile_with(policy, target, &semble_k8s::Options::default()).map(|(a, _)| a)
}

/// Compile one target; also returns warnings (the Kubernetes target's).
pub fn compile_with(
    policy: &SandboxPolicy,
    target: Target,
    k8s: &semble_k8s::Options,
) -> Result<(Vec<Artifact>, Vec<String>), CompileError> {
    let mut warnings = Vec::new();
    let targets: &[Target] = if target == Target::All { Target::EACH } else { std::slice::from_ref(&target) };
    let profile = semble_seccomp::profile(policy);
    // Every seccomp target is proven loadable by compiling it with libseccomp; once is enough.
    let mut bpf: Option<Vec<u8>> = None;
    let mut compiled = |p: &semble_policy::seccomp_profile::SeccompProfile| -> Result<Vec<u8>, CompileError> {
        if let Some(b) = &bpf {
            return Ok(b.clone());
        }
        let b = semble_seccomp::bpf::compile(p, libseccomp_x86_64())?;
        bpf = Some(b.clone());
        Ok(b)
    };
    let mut out = Vec::new();
    let name = policy.name.as_str();
    for t in targets {
        let single = |bytes: Vec<u8>| vec![Artifact { target: *t, file: t.file_name(name), bytes }];
        let artifacts = match t {
            Target::Oci => {
                compiled(&profile)?;
                single(to_json(&compile::oci::fragment(policy, Some(profile.clone()))).into_bytes())
            }
            Target::Seccomp => {
                compiled(&profile)?;
                single(to_json(&profile).into_bytes())
            }
            Target::SeccompBpf => single(compiled(&profile)?),
            Target::Landlock => match compile::landlock::ruleset(policy) {
                Some(r) => single(to_json(&r).into_bytes()),
                None if target == Target::All => continue,
                None => return Err(CompileError::NoLandlock(policy.name.clone())),
            },
            Target::Proxy => single(to_json(&compile::proxy::rules(policy)).into_bytes()),
            Target::SelinuxCil => match semble_selinux::cil(policy) {
                Some(c) => single(c.into_bytes()),
                None if target == Target::All => continue,
                None => return Err(CompileError::NoSelinux(policy.name.clone())),
            },
            Target::SelinuxTe => match semble_selinux::refpolicy(policy) {
                // Named after the module (the SELinux type), as refpolicy's Makefile requires.
                Some(m) => vec![
                    Artifact { target: *t, file: format!("{}.te", m.name), bytes: m.te.into_bytes() },
                    Artifact { target: *t, file: format!("{}.if", m.name), bytes: m.interfaces.into_bytes() },
                    Artifact { target: *t, file: format!("{}.fc", m.name), bytes: m.file_contexts.into_bytes() },
                ],
                None if target == Target::All => continue,
                None => return Err(CompileError::NoSelinux(policy.name.clone())),
            },
            Target::Kubernetes => match semble_k8s::objects(policy, k8s) {
                Ok(o) => {
                    warnings.extend(o.warnings.iter().cloned());
                    single(o.to_yaml().into_bytes())
                }
                Err(_) if target == Target::All => continue,
                Err(e) => return Err(e.into()),
            },
            Target::All => continue,
        };
        out.extend(artifacts);
    }
    Ok((out, warnings))
}

fn libseccomp_x86_64() -> semble_seccomp::bpf::Arch {
    semble_seccomp::bpf::Arch::X8664
}

/// The `explain` text of a policy, with seccomp facts (and the BPF size when it compiles).
pub fn explain_text(policy: &SandboxPolicy) -> String {
    let profile = semble_seccomp::profile(policy);
    let n = semble_seccomp::x86_64_instructions(&profile).ok();
    let facts: SeccompFacts = semble_seccomp::facts(&profile, n);
    explain(policy, &facts)
}
