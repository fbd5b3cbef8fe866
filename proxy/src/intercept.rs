//! Intercept mode: TLS terminated by the proxy for hosts whose requests it must see.
//!
//! Clients that insist on `https://` (most SDKs) send `CONNECT` and then TLS. For a host whose
//! rule carries a credential (or `methods`/`paths`), the proxy answers that TLS itself with a
//! certificate for the host, issued by a CA it generated for this deployment, reads each
//! request in clear, decides it, adds the credential, and sends it on over a new TLS
//! connection to the real upstream (verified against the system roots or `--upstream-ca`).
//!
//! The CA lives in `--intercept-ca-dir`: `ca.crt` (what the sandbox gets mounted and trusts,
//! e.g. through `SSL_CERT_FILE`/`AWS_CA_BUNDLE`/`REQUESTS_CA_BUNDLE`) and `ca.key` (mode 0600,
//! never mounted into the sandbox). It is created on first start and reused afterwards. Leaf
//! certificates are made on demand, valid for one host and 7 days, cached in memory.
//!
//! A CA the sandbox trusts is a key to every name, so this one is fenced in:
//!
//! * **Name constraints.** It is created with X.509 name constraints permitting only the DNS
//!   names of the rules it was created for (`api.example.com`, `*.example.com` → the subtree
//!   `example.com`) and the rules' `allowAddresses`, and no other IP address. Even with its key,
//!   no certificate it signs for another name is accepted by a client that checks constraints
//!   (rustls/webpki, OpenSSL, Go, browsers). A host added to the rules later that the
//!   constraints do not cover is refused (`502 intercept_failed`) until the CA is re-created.
//! * **A one-year life.** An expired CA refuses to load; the start-up line warns 30 days ahead.
//! * **Its files.** The key is written through a fresh, randomly named file created
//!   exclusively (`O_CREAT|O_EXCL`, mode 0600) and moved into place without replacing anything,
//!   so no pre-created file or symlink can receive it or change its mode. On load the directory
//!   must be a real directory owned by this user (or root) and writable by no one else, and
//!   `ca.key` a regular file owned by this user (or root), not group-writable and with nothing
//!   for others; a symlinked `ca.key` (a Kubernetes Secret volume) must resolve inside the
//!   directory.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use semble_policy::model::HostPattern;

/// The CA certificate file in the intercept directory.
pub const CA_CERT: &str = "ca.crt";
/// The CA key file in the intercept directory.
pub const CA_KEY: &str = "ca.key";

const LEAF_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a new CA is valid.
pub const CA_LIFETIME_DAYS: i64 = 365;
const CACHE_MAX: usize = 1024;

/// The deployment's intercept CA.
pub struct InterceptCa {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    /// Where the CA certificate is.
    pub cert_path: PathBuf,
    expires: SystemTime,
    dns: Option<Vec<String>>,
    cache: Mutex<HashMap<String, (SystemTime, Arc<rustls::ServerConfig>)>>,
}

impl std::fmt::Debug for InterceptCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterceptCa").field("cert_path", &self.cert_path).finish_non_exhaustive()
    }
}

/// Write `data` to `path`, which must not exist: through a new, randomly named file in the
/// same directory, created exclusively with `mode`, then linked into place without replacing
/// anything.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".semble-ca-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in {}: {e}", dir.display()))?;
    // The umask may have narrowed the mode; set it exactly (only ever narrowing what was asked).
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|_| tmp.write_all(data))
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
    tmp.persist_noclobber(path).map_err(|e| format!("cannot create {}: {}", path.display(), e.error))?;
    Ok(())
}

/// The name constraints of a CA for rules with these hosts and address ranges.
pub fn constraints(hosts: &[HostPattern], addrs: &[IpNet]) -> Option<NameConstraints> {
    let mut permitted = Vec::new();
    if !hosts.iter().any(|h| matches!(h, HostPattern::Any)) {
        let mut names: Vec<String> = hosts
            .iter()
            .map(|h| match h {
                HostPattern::Exact(n) | HostPattern::Suffix(n) => n.clone(),
                HostPattern::Any => String::new(),
            })
            .collect();
        names.sort();
        names.dedup();
        permitted.extend(names.into_iter().map(GeneralSubtree::DnsName));
    }
    let mut excluded = Vec::new();
    if addrs.is_empty() {
        excluded.push(GeneralSubtree::IpAddress(CidrSubnet::V4([0; 4], [0; 4])));
        excluded.push(GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])));
    } else {
        for n in addrs {
            permitted.push(GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(n.network(), n.prefix_len())));
        }
    }
    Some(NameConstraints { permitted_subtrees: permitted, excluded_subtrees: excluded })
}

fn ca_params(hosts: &[HostPattern], addrs: &[IpNet]) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.distinguished_name.push(DnType::CommonName, "semble-proxy intercept CA");
    p.distinguished_name.push(DnType::OrganizationName, "semble");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.name_constraints = constraints(hosts, addrs);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(CA_LIFETIME_DAYS);
    Ok(p)
}

/// Refuse a directory or key someone else could have placed or can change; returns the file to
/// read the key from. Owners may be this user or root (a Kubernetes Secret volume is root's);
/// the key may be group-readable (a Secret read through `fsGroup`) but not group-writable, and
/// nothing for others. A symlinked key (Secret volumes link `ca.key` to `..data/ca.key`) must
/// resolve inside the directory.
fn check_files(dir: &Path, key: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let trusted = |uid: u32| uid == me || uid == 0;
    let d = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !d.is_dir() {
        return Err("is not a directory (a symlink is not accepted)".into());
    }
    if !trusted(d.uid()) {
        return Err(format!("is owned by uid {}, neither this user ({me}) nor root", d.uid()));
    }
    if d.mode() & 0o022 != 0 {
        return Err(format!(
            "other users can write to it (mode {:o}); run `chmod 700 {}`",
            d.mode() & 0o777,
            dir.display()
        ));
    }
    let Ok(link) = std::fs::symlink_metadata(key) else { return Ok(key.to_path_buf()) };
    let real = if link.file_type().is_symlink() {
        let target = std::fs::canonicalize(key).map_err(|e| format!("{CA_KEY} is a dangling symlink ({e})"))?;
        let inside = std::fs::canonicalize(dir).map_err(|e| format!("cannot resolve it: {e}"))?;
        if !target.starts_with(&inside) {
            return Err(format!("{CA_KEY} is a symlink out of the directory (to {})", target.display()));
        }
        target
    } else {
        key.to_path_buf()
    };
    let k = std::fs::symlink_metadata(&real).map_err(|e| format!("cannot read {CA_KEY}: {e}"))?;
    if !k.file_type().is_file() {
        return Err(format!("{CA_KEY} is not a regular file"));
    }
    if !trusted(k.uid()) {
        return Err(format!("{CA_KEY} is owned by uid {}, neither this user ({me}) nor root", k.uid()));
    }
    if k.mode() & 0o027 != 0 {
        return Err(format!(
            "other users can read or change {CA_KEY} (mode {:o}); run `chmod 600 {}`",
            k.mode() & 0o777,
            key.display()
        ));
    }
    Ok(real)
}

/// What the loaded CA certificate says about itself.
struct CaFacts {
    expires: SystemTime,
    /// Permitted DNS subtrees; `None` when DNS names are not constrained.
    dns: Option<Vec<String>>,
}

fn facts(der: &CertificateDer<'_>) -> Result<CaFacts, String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let expires = SystemTime::from(cert.validity().not_after.to_datetime());
    let mut dns = None;
    for ext in cert.extensions() {
        if let ParsedExtension::NameConstraints(nc) = ext.parsed_extension() {
            let names: Vec<String> = nc
                .permitted_subtrees
                .iter()
                .flatten()
                .filter_map(|s| match &s.base {
                    GeneralName::DNSName(n) => Some(n.to_ascii_lowercase()),
                    _ => None,
                })
                .collect();
            if !names.is_empty() {
                dns = Some(names);
            }
        }
    }
    Ok(CaFacts { expires, dns })
}

/// Read a file without following a symlink in its last component.
fn read_no_follow(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    let mut s = String::new();
    f.read_to_string(&mut s)?;
    Ok(s)
}

/// Whether a DNS subtree covers `name` (the name itself or any name below it).
fn subtree_covers(subtree: &str, name: &str) -> bool {
    let subtree = subtree.trim_start_matches('.');
    name == subtree || name.strip_suffix(subtree).is_some_and(|rest| rest.ends_with('.'))
}

impl InterceptCa {
    /// Load the CA from `dir`, or create it there (the directory too, mode 0700), constrained
    /// to `hosts` and `addrs` (the rules' host patterns and `allowAddresses`).
    pub fn load_or_create(dir: &Path, hosts: &[HostPattern], addrs: &[IpNet]) -> Result<InterceptCa, String> {
        use std::os::unix::fs::DirBuilderExt;
        let ctx = |e: String| format!("--intercept-ca-dir {}: {e}", dir.display());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ctx(format!("cannot create it: {e}")))?;
        let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
        let key_file = check_files(dir, &key_path).map_err(ctx)?;
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        match (exists(&cert_path), exists(&key_path)) {
            (true, true) => {
                let key_pem = read_no_follow(&key_file).map_err(|e| ctx(format!("cannot read {CA_KEY}: {e}")))?;
                let cert_pem =
                    std::fs::read_to_string(&cert_path).map_err(|e| ctx(format!("cannot read {CA_CERT}: {e}")))?;
                let key =
                    KeyPair::from_pem(&key_pem).map_err(|e| ctx(format!("{CA_KEY} is not a private key: {e}")))?;
                let ca_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
                    .map_err(|e| ctx(format!("{CA_CERT} is not a PEM certificate: {e}")))?;
                let f = facts(&ca_der).map_err(|e| ctx(format!("{CA_CERT} cannot be read: {e}")))?;
                if f.expires <= SystemTime::now() {
                    return Err(ctx(format!(
                        "{CA_CERT} has expired; move the directory away to make a new CA, and give the sandboxes the new {CA_CERT}"
                    )));
                }
                let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
                    .map_err(|e| ctx(format!("{CA_CERT} cannot be used as an issuer: {e}")))?;
                Ok(InterceptCa {
                    issuer,
                    ca_der,
                    cert_path,
                    expires: f.expires,
                    dns: f.dns,
                    cache: Mutex::new(HashMap::new()),
                })
            }
            (false, false) => {
                let key = KeyPair::generate().map_err(|e| ctx(e.to_string()))?;
                let params = ca_params(hosts, addrs).map_err(ctx)?;
                let cert = params.self_signed(&key).map_err(|e| ctx(e.to_string()))?;
                write_new(&key_path, key.serialize_pem().as_bytes(), 0o600).map_err(ctx)?;
                write_new(&cert_path, cert.pem().as_bytes(), 0o644).map_err(ctx)?;
                let ca_der = cert.der().clone();
                let f = facts(&ca_der).map_err(ctx)?;
                Ok(InterceptCa {
                    issuer: Issuer::new(params, key),
                    ca_der,
                    cert_path,
                    expires: f.expires,
                    dns: f.dns,
                    cache: Mutex::new(HashMap::new()),
                })
            }
            (c, _) => Err(ctx(format!(
                "holds {} but not {}; restore the missing file or empty the directory to make a new CA",
                if c { CA_CERT } else { CA_KEY },
                if c { CA_KEY } else { CA_CERT }
            ))),
        }
    }

    /// Whether the CA's name constraints cover `host`.
    pub fn covers(&self, host: &str) -> bool {
        match &self.dns {
            None => true,
            Some(subtrees) => subtrees.iter().any(|s| subtree_covers(s, host)),
        }
    }

    /// The rule hosts the CA's name constraints do not cover (a warning at start-up).
    pub fn uncovered(&self, hosts: &[HostPattern]) -> Vec<String> {
        hosts
            .iter()
            .filter(|h| match h {
                HostPattern::Exact(n) | HostPattern::Suffix(n) => !self.covers(n),
                HostPattern::Any => self.dns.is_some(),
            })
            .map(|h| h.to_string())
            .collect()
    }

    /// When the CA certificate expires.
    pub fn expires(&self) -> SystemTime {
        self.expires
    }

    /// A TLS server configuration presenting a certificate for `host`.
    pub fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, String> {
        if !self.covers(host) {
            return Err(format!(
                "the intercept CA's name constraints do not cover it (they were set from the rules when the CA was made); move --intercept-ca-dir away to make a CA for the current rules, and give the sandboxes the new {CA_CERT}"
            ));
        }
        let now = SystemTime::now();
        if let Ok(cache) = self.cache.lock() {
            if let Some((expires, cfg)) = cache.get(host) {
                if *expires > now + Duration::from_secs(3600) {
                    return Ok(cfg.clone());
                }
            }
        }
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let t = time::OffsetDateTime::now_utc();
        params.not_before = t - time::Duration::hours(1);
        params.not_after = t + time::Duration::try_from(LEAF_LIFETIME).map_err(|e| e.to_string())?;
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| e.to_string())?;
        let chain = vec![cert.der().clone(), self.ca_der.clone()];
        let pk = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, pk)
            .map_err(|e| e.to_string())?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let cfg = Arc::new(cfg);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(host.to_string(), (now + LEAF_LIFETIME, cfg.clone()));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn rules_hosts() -> Vec<HostPattern> {
        vec![HostPattern::Exact("api.test".into()), HostPattern::Suffix("wild.test".into())]
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_then_reuses_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("ca");
        let a = InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap();
        let pem1 = std::fs::read_to_string(d.join(CA_CERT)).unwrap();
        assert_eq!(mode(&d.join(CA_KEY)), 0o600);
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&d.join(CA_CERT)), 0o644);
        a.server_config("api.test").unwrap();
        let b = InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap();
        assert_eq!(std::fs::read_to_string(d.join(CA_CERT)).unwrap(), pem1);
        b.server_config("x.wild.test").unwrap();
        let left = b.expires().duration_since(SystemTime::now()).unwrap().as_secs() / 86_400;
        assert!((363..=365).contains(&left), "a CA for {left} days");
        std::fs::remove_file(d.join(CA_KEY)).unwrap();
        let e = InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap_err();
        assert!(e.contains("ca.crt but not ca.key"), "{e}");
    }

    #[test]
    fn a_key_or_directory_others_can_touch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("ca");
        InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap();
        std::fs::set_permissions(d.join(CA_KEY), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap_err();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(d.join(CA_KEY), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap_err();
        assert!(e.contains("other users can write") && e.contains("chmod 700"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A symlink in place of the key.
        let elsewhere = dir.path().join("elsewhere.key");
        std::fs::rename(d.join(CA_KEY), &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, d.join(CA_KEY)).unwrap();
        let e = InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap_err();
        assert!(e.contains("symlink out of the directory"), "{e}");
        // A Kubernetes Secret volume's shape: ca.key -> ..data/ca.key, group-readable.
        std::fs::remove_file(d.join(CA_KEY)).unwrap();
        std::fs::create_dir(d.join("..data")).unwrap();
        std::fs::rename(&elsewhere, d.join("..data").join(CA_KEY)).unwrap();
        std::fs::set_permissions(d.join("..data").join(CA_KEY), std::fs::Permissions::from_mode(0o440)).unwrap();
        std::os::unix::fs::symlink("..data/ca.key", d.join(CA_KEY)).unwrap();
        InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap();
        std::fs::set_permissions(d.join("..data").join(CA_KEY), std::fs::Permissions::from_mode(0o444)).unwrap();
        let e = InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap_err();
        assert!(e.contains("mode 444"), "{e}");
    }

    #[test]
    fn a_planted_file_cannot_receive_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("ca");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        // What the old code wrote through: a fixed temporary name, pre-created world-writable.
        let planted = d.join(".ca.key.tmp");
        std::fs::write(&planted, "").unwrap();
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666)).unwrap();
        InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap();
        assert_eq!(std::fs::read(&planted).unwrap(), b"", "the key went through the planted file");
        assert_eq!(mode(&d.join(CA_KEY)), 0o600);
        // A symlink planted as ca.key (with no ca.crt) stops creation instead of being followed.
        let d2 = dir.path().join("ca2");
        std::fs::create_dir(&d2).unwrap();
        std::fs::set_permissions(&d2, std::fs::Permissions::from_mode(0o700)).unwrap();
        let target = dir.path().join("stolen");
        std::os::unix::fs::symlink(&target, d2.join(CA_KEY)).unwrap();
        assert!(InterceptCa::load_or_create(&d2, &rules_hosts(), &[]).is_err());
        assert!(!target.exists(), "the key was written through a symlink");
    }

    /// Even with its key, the CA cannot vouch for a name outside the rules: a client enforcing
    /// name constraints (webpki, as rustls does) refuses such a leaf.
    #[test]
    fn name_constraints_hold_even_against_the_key() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("ca");
        let ca = InterceptCa::load_or_create(&d, &rules_hosts(), &[]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.ca_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        // Forge leaves with the CA's own key, as a thief of ca.key would.
        let key_pem = std::fs::read_to_string(d.join(CA_KEY)).unwrap();
        let cert_pem = std::fs::read_to_string(d.join(CA_CERT)).unwrap();
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, KeyPair::from_pem(&key_pem).unwrap()).unwrap();
        let verify = |name: &str| {
            let leaf_key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            let leaf = p.signed_by(&leaf_key, &issuer).unwrap();
            let sn = ServerName::try_from(name.to_string()).unwrap();
            verifier.verify_server_cert(leaf.der(), &[], &sn, &[], UnixTime::now())
        };
        assert!(verify("api.test").is_ok());
        assert!(verify("deep.wild.test").is_ok());
        for outside in ["evil.test", "api.test.evil.net", "wild.test.evil.net", "10.0.0.1", "169.254.169.254"] {
            assert!(verify(outside).is_err(), "{outside}: a leaf outside the constraints was accepted");
        }
        // The proxy itself refuses to issue outside them.
        assert!(ca.server_config("evil.test").unwrap_err().contains("name constraints"));
        assert_eq!(ca.uncovered(&[HostPattern::Exact("new.test".into())]), vec!["new.test".to_string()]);
        assert!(ca.uncovered(&rules_hosts()).is_empty());
    }
}
