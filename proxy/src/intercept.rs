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

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The CA certificate file in the intercept directory.
pub const CA_CERT: &str = "ca.crt";
/// The CA key file in the intercept directory.
pub const CA_KEY: &str = "ca.key";

const LEAF_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
const CACHE_MAX: usize = 1024;

/// The deployment's intercept CA.
pub struct InterceptCa {
    issuer: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    /// Where the CA certificate is.
    pub cert_path: PathBuf,
    cache: Mutex<HashMap<String, (SystemTime, Arc<rustls::ServerConfig>)>>,
}

impl std::fmt::Debug for InterceptCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterceptCa").field("cert_path", &self.cert_path).finish_non_exhaustive()
    }
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("f")));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))
}

fn ca_params() -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.distinguished_name.push(DnType::CommonName, "semble-proxy intercept CA");
    p.distinguished_name.push(DnType::OrganizationName, "semble");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(3650);
    Ok(p)
}

impl InterceptCa {
    /// Load the CA from `dir`, or create it there (the directory too, mode 0700).
    pub fn load_or_create(dir: &Path) -> Result<InterceptCa, String> {
        use std::os::unix::fs::DirBuilderExt;
        let ctx = |e: String| format!("--intercept-ca-dir {}: {e}", dir.display());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ctx(format!("cannot create it: {e}")))?;
        let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let key_pem =
                    std::fs::read_to_string(&key_path).map_err(|e| ctx(format!("cannot read {CA_KEY}: {e}")))?;
                let cert_pem =
                    std::fs::read_to_string(&cert_path).map_err(|e| ctx(format!("cannot read {CA_CERT}: {e}")))?;
                let key =
                    KeyPair::from_pem(&key_pem).map_err(|e| ctx(format!("{CA_KEY} is not a private key: {e}")))?;
                let ca_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
                    .map_err(|e| ctx(format!("{CA_CERT} is not a PEM certificate: {e}")))?;
                let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
                    .map_err(|e| ctx(format!("{CA_CERT} cannot be used as an issuer: {e}")))?;
                Ok(InterceptCa { issuer, ca_der, cert_path, cache: Mutex::new(HashMap::new()) })
            }
            (false, false) => {
                let key = KeyPair::generate().map_err(|e| ctx(e.to_string()))?;
                let params = ca_params().map_err(ctx)?;
                let cert = params.self_signed(&key).map_err(|e| ctx(e.to_string()))?;
                write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600).map_err(ctx)?;
                write_atomic(&cert_path, cert.pem().as_bytes(), 0o644).map_err(ctx)?;
                let ca_der = cert.der().clone();
                Ok(InterceptCa {
                    issuer: Issuer::new(params, key),
                    ca_der,
                    cert_path,
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

    /// A TLS server configuration presenting a certificate for `host`.
    pub fn server_config(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, String> {
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

    #[test]
    fn creates_then_reuses_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("ca");
        let a = InterceptCa::load_or_create(&d).unwrap();
        let pem1 = std::fs::read_to_string(d.join(CA_CERT)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.join(CA_KEY)).unwrap().permissions().mode() & 0o777, 0o600);
        a.server_config("api.test").unwrap();
        let b = InterceptCa::load_or_create(&d).unwrap();
        assert_eq!(std::fs::read_to_string(d.join(CA_CERT)).unwrap(), pem1);
        b.server_config("api.test").unwrap();
        std::fs::remove_file(d.join(CA_KEY)).unwrap();
        let e = InterceptCa::load_or_create(&d).unwrap_err();
        assert!(e.contains("ca.crt but not ca.key"), "{e}");
    }
}
