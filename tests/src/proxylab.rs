//! The proxy's test lab: a network namespace made for one test, with the metadata address and
//! its other spellings on its loopback as decoys (a recorder listens on each, ports 80 and
//! 443), upstream servers on loopback (HTTPS with a test CA, plain HTTP, a DNS server, an AWS
//! container credential endpoint), the real `semble-proxy` binary, and blocking clients that
//! write exact bytes.
//!
//! Nothing here can send a packet off this machine: the test thread enters the namespace
//! before anything starts, and every thread and process it starts inherits it. The namespace
//! has only `lo`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

use crate::{bin, require_root, TestNetns};

/// The decoys: the metadata address as IPv4, the EC2 IPv6 endpoint, NAT64 and 6to4 forms, and
/// Azure's platform endpoint (WireServer).
pub const DECOYS: &[&str] =
    &["169.254.169.254/32", "fd00:ec2::254/128", "64:ff9b::a9fe:a9fe/128", "2002:a9fe:a9fe::/128", "168.63.129.16/32"];

/// The AWS access key id the tests give the proxy.
pub const AKID: &str = "AKIASEMBLETEST000001";
/// Its secret: must never be seen by the workload or in a log.
pub const SECRET: &str = "semble/test/SECRET/never-in-the-sandbox-0123";
/// A session token, for the container endpoint.
pub const SESSION_TOKEN: &str = "semble-test-SESSION-token-also-secret";
/// A static API key the proxy injects.
pub const API_KEY: &str = "sk-semble-test-API-KEY-secret-value";

/// One test's lab.
pub struct Lab {
    /// The namespace.
    pub ns: TestNetns,
    /// Scratch files.
    pub dir: tempfile::TempDir,
    /// The runtime the servers run on (its threads are in the namespace).
    pub rt: tokio::runtime::Runtime,
    /// The test CA of the upstreams.
    pub ca: TestCa,
    recorders: Vec<(String, Arc<AtomicU32>)>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab").field("ns", &self.ns.name).finish_non_exhaustive()
    }
}

impl Lab {
    /// Make the namespace, enter it (this thread), start the decoy recorders.
    #[allow(clippy::new_without_default)] // it creates a namespace and enters it: not a default
    pub fn new() -> Lab {
        require_root();
        let ns = TestNetns::new(DECOYS);
        let f = std::fs::File::open(ns.path()).unwrap();
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        // From here on, every thread and process this thread starts is in the namespace.
        // /proc/thread-self/net/dev lists the interfaces of this thread's namespace.
        let dev = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
        let ifaces: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
        assert_eq!(ifaces, ["lo"], "the test namespace must hold only `lo`");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path());
        let mut recorders = Vec::new();
        for d in DECOYS {
            let ip: IpAddr = d.split('/').next().unwrap().parse().unwrap();
            for port in [80, 443] {
                let sa = SocketAddr::new(ip, port);
                let l = TcpListener::bind(sa).unwrap_or_else(|e| panic!("cannot put a recorder on {sa}: {e}"));
                let count = Arc::new(AtomicU32::new(0));
                let c = count.clone();
                std::thread::spawn(move || {
                    for conn in l.incoming() {
                        if conn.is_ok() {
                            c.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
                recorders.push((sa.to_string(), count));
            }
        }
        Lab { ns, dir, rt, ca, recorders }
    }

    /// Prove the recorders record (once per lab), then that nothing else reached them.
    pub fn assert_decoys_untouched(&self) {
        let hits: Vec<String> = self
            .recorders
            .iter()
            .filter(|(_, c)| c.load(Ordering::SeqCst) > 0)
            .map(|(a, c)| format!("{a}: {}", c.load(Ordering::SeqCst)))
            .collect();
        assert!(hits.is_empty(), "connections reached decoys: {hits:?}");
    }

    /// Check that a recorder really records (a decoy that cannot be reached proves nothing).
    pub fn assert_recorders_work(&self) {
        let (addr, count) = &self.recorders[0];
        let before = count.load(Ordering::SeqCst);
        TcpStream::connect(addr.as_str()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while count.load(Ordering::SeqCst) == before {
            assert!(Instant::now() < deadline, "the recorder on {addr} did not record a connection");
            std::thread::sleep(Duration::from_millis(10));
        }
        count.store(before, Ordering::SeqCst);
    }

    /// A file in the lab's directory.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// A path in the lab's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The upstreams' CA.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub pem: String,
    /// Where it is written.
    pub path: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").field("path", &self.path).finish_non_exhaustive()
    }
}

impl TestCa {
    fn new(dir: &Path) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, "semble test upstream CA");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        let cert = p.self_signed(&key).unwrap();
        let path = dir.join("upstream-ca.crt");
        std::fs::write(&path, cert.pem()).unwrap();
        TestCa { pem: cert.pem(), path, issuer: rcgen::Issuer::new(p, key) }
    }

    /// A server configuration for `names` (ALPN h2 and http/1.1).
    pub fn server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        self.server_config_with(names, rustls::crypto::ring::default_provider())
    }

    /// [`TestCa::server_config`] with a crypto provider of the test's own (e.g. fewer key
    /// exchange groups, to make the server answer with a HelloRetryRequest).
    pub fn server_config_with(
        &self,
        names: &[&str],
        provider: rustls::crypto::CryptoProvider,
    ) -> Arc<rustls::ServerConfig> {
        let key = rcgen::KeyPair::generate().unwrap();
        let p = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let pk = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(provider);
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], pk)
            .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

/// An upstream server on loopback.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its address.
    pub addr: SocketAddr,
    /// Connections accepted.
    pub conns: Arc<AtomicU32>,
    /// Requests served.
    pub requests: Arc<AtomicU32>,
}

/// What the echo upstream answers: the request as it arrived, and whether its SigV4
/// signature verifies with [`SECRET`].
async fn echo(
    req: hyper::Request<Incoming>,
    requests: Arc<AtomicU32>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    requests.fetch_add(1, Ordering::SeqCst);
    let version = format!("{:?}", req.version());
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if let Some(n) = parts.uri.path().strip_prefix("/bytes/") {
        let n: usize = n.parse().unwrap_or(0);
        return Ok(hyper::Response::new(Full::new(Bytes::from(vec![b'x'; n]))));
    }
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("<binary>").to_string()))
        .collect();
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &headers {
        map.entry(k.clone()).or_default().push(v.clone());
    }
    let host = parts.uri.authority().map(|a| a.as_str().to_string());
    let sig = crate::sigv4::verify(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &headers,
        host.as_deref(),
        &body,
        SECRET,
    );
    let sigv4 = match sig {
        Ok(s) => {
            json!({"valid": true, "akid": s.access_key_id, "region": s.region, "service": s.service, "signed": s.signed_headers})
        }
        Err(e) => json!({"valid": false, "why": e}),
    };
    let out = json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "version": version,
        "headers": map,
        "body": String::from_utf8_lossy(&body),
        "sigv4": sigv4,
    });
    Ok(hyper::Response::new(Full::new(Bytes::from(out.to_string()))))
}

impl Lab {
    fn serve(&self, tls: Option<Arc<rustls::ServerConfig>>, bind: SocketAddr) -> Upstream {
        let listener = std::net::TcpListener::bind(bind).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicU32::new(0));
        let requests = Arc::new(AtomicU32::new(0));
        let (c, r) = (conns.clone(), requests.clone());
        self.rt.spawn(async move {
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((s, _)) = l.accept().await else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (tls, r) = (tls.clone(), r.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| echo(req, r.clone()));
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match tls {
                        Some(cfg) => {
                            if let Ok(t) = tokio_rustls::TlsAcceptor::from(cfg).accept(s).await {
                                let _ = builder.serve_connection(TokioIo::new(t), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                });
            }
        });
        Upstream { addr, conns, requests }
    }

    /// An HTTPS echo upstream on `bind` (`127.0.0.1:443`) with a certificate for `names`
    /// from the test CA.
    pub fn https_upstream(&self, bind: &str, names: &[&str]) -> Upstream {
        self.serve(Some(self.ca.server_config(names)), bind.parse().unwrap())
    }

    /// An HTTPS echo upstream on `bind` with a server configuration of the test's own.
    pub fn https_upstream_config(&self, bind: &str, cfg: Arc<rustls::ServerConfig>) -> Upstream {
        self.serve(Some(cfg), bind.parse().unwrap())
    }

    /// A plain HTTP echo upstream on `bind` (`127.0.0.1:80`).
    pub fn http_upstream(&self, bind: &str) -> Upstream {
        self.serve(None, bind.parse().unwrap())
    }
}

/// A DNS server on 127.0.0.1 (UDP) answering A/AAAA queries with what `answer` says, TTL 0.
pub fn dns_server(answer: impl Fn(&str, bool) -> Vec<IpAddr> + Send + 'static) -> (SocketAddr, Arc<AtomicU32>) {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{rdata, RData, Record, RecordType};
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let queries = Arc::new(AtomicU32::new(0));
    let q = queries.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
            let Ok(msg) = Message::from_vec(&buf[..n]) else { continue };
            q.fetch_add(1, Ordering::SeqCst);
            let mut resp = Message::response(msg.metadata.id, msg.metadata.op_code);
            resp.metadata.message_type = MessageType::Response;
            resp.metadata.recursion_desired = msg.metadata.recursion_desired;
            resp.metadata.recursion_available = true;
            for query in &msg.queries {
                resp.add_query(query.clone());
                let name = query.name().to_ascii();
                let name = name.trim_end_matches('.').to_string();
                let v6 = query.query_type() == RecordType::AAAA;
                if query.query_type() != RecordType::A && !v6 {
                    continue;
                }
                for ip in answer(&name, v6) {
                    let data = match ip {
                        IpAddr::V4(a) if !v6 => RData::A(rdata::A(a)),
                        IpAddr::V6(a) if v6 => RData::AAAA(rdata::AAAA(a)),
                        _ => continue,
                    };
                    resp.add_answer(Record::from_rdata(query.name().clone(), 0, data));
                }
            }
            if let Ok(bytes) = resp.to_vec() {
                let _ = sock.send_to(&bytes, from);
            }
        }
    });
    (addr, queries)
}

/// An AWS container credential endpoint on 127.0.0.1: answers `GET /creds` with keys when the
/// `Authorization` header is `token`, 401 otherwise.
pub fn credential_endpoint(token: &str) -> (SocketAddr, Arc<AtomicU32>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let token = token.to_string();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut auth = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("authorization:") {
                    auth = Some(v.trim().to_string());
                }
            }
            let (status, body) = if auth.as_deref() == Some(token.to_ascii_lowercase().as_str()) {
                let exp = "2099-01-01T00:00:00Z";
                (
                    "200 OK",
                    json!({"AccessKeyId": AKID, "SecretAccessKey": SECRET, "Token": SESSION_TOKEN, "Expiration": exp})
                        .to_string(),
                )
            } else {
                ("401 Unauthorized", "{}".to_string())
            };
            let _ =
                write!(conn, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    (addr, hits)
}

/// A running semble-proxy.
pub struct ProxyProc {
    child: Child,
    /// The first client listener.
    pub addr: SocketAddr,
    /// The admin listener, when it is TCP.
    pub admin: Option<SocketAddr>,
    /// Its standard error (the decision log).
    pub log: PathBuf,
}

impl std::fmt::Debug for ProxyProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyProc").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl ProxyProc {
    /// Start `semble-proxy` with `args` (a `--listen 127.0.0.1:0` is added when none is given)
    /// and wait for its `started` line.
    pub fn start(lab: &Lab, args: &[String], env: &[(&str, String)]) -> ProxyProc {
        let log = lab.path(&format!("proxy-{}.log", crate::unique("p")));
        let mut cmd = Command::new(bin("semble-proxy"));
        cmd.args(args);
        if !args.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(started) =
                text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|v| v["event"] == "started")
            {
                let addr = started["listen"][0]
                    .as_str()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or_else(|_| "0.0.0.0:0".parse().unwrap());
                let admin = started["admin"].as_str().and_then(|a| a.parse().ok());
                return ProxyProc { child, addr, admin, log };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("semble-proxy exited ({status}) before starting:\n{text}");
            }
            assert!(Instant::now() < deadline, "semble-proxy did not start in 10 s:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start it with standard error on a pipe the caller holds: the lines up to `started` are
    /// read, then nothing more until the caller reads (a log pipe nobody drains). Its decision
    /// lines are not in [`ProxyProc::log_text`].
    pub fn start_with_stderr_pipe(
        args: &[String],
        env: &[(&str, String)],
    ) -> (ProxyProc, BufReader<std::process::ChildStderr>) {
        let mut cmd = Command::new(bin("semble-proxy"));
        cmd.args(args);
        if !args.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let Some(stderr) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no standard error pipe");
        };
        let mut err = BufReader::new(stderr);
        loop {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                let _ = child.wait();
                panic!("semble-proxy exited before starting");
            }
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["event"] == "started" {
                    let addr = v["listen"][0].as_str().unwrap_or("").parse().unwrap();
                    let admin = v["admin"].as_str().and_then(|a| a.parse().ok());
                    let log = PathBuf::from("/nonexistent/stderr-is-a-pipe");
                    return (ProxyProc { child, addr, admin, log }, err);
                }
            }
        }
    }

    /// Everything it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its decision lines.
    pub fn decisions(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("decision").is_some())
            .collect()
    }

    /// Wait for a log line matching `pred`.
    pub fn wait_line(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<Value> = self.log_text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
            if let Some(v) = lines.into_iter().rev().find(|v| pred(v)) {
                return v;
            }
            assert!(Instant::now() < deadline, "no log line {what}:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send a signal.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// Its resident memory in KiB.
    pub fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for ProxyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response as read off the wire.
#[derive(Debug, Clone, Default)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    /// The proxy's reason code.
    pub fn reason(&self) -> &str {
        self.header("x-semble-reason").unwrap_or("")
    }
    /// The body as JSON (the echo upstream's answer).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, String::from_utf8_lossy(&self.body)))
    }
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn read_line(r: &mut impl Read) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if r.read(&mut b)? == 0 {
            if line.is_empty() {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            break;
        }
        line.push(b[0]);
        if line.ends_with(b"\r\n") {
            line.truncate(line.len() - 2);
            break;
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Read one response (head byte by byte, so nothing after it is consumed; then the body by
/// `Content-Length`, chunks, or to the end).
pub fn read_response(r: &mut impl Read, head_only: bool) -> std::io::Result<Resp> {
    let status_line = read_line(r)?;
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an HTTP status line: {status_line:?}"))
    })?;
    let mut headers = Vec::new();
    loop {
        let l = read_line(r)?;
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut resp = Resp { status, headers, body: Vec::new() };
    if head_only {
        return Ok(resp);
    }
    if let Some(n) = resp.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0u8; n];
        r.read_exact(&mut body)?;
        resp.body = body;
    } else if resp.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let size = usize::from_str_radix(read_line(r)?.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
            if size == 0 {
                let _ = read_line(r);
                break;
            }
            let mut chunk = vec![0u8; size];
            r.read_exact(&mut chunk)?;
            resp.body.extend_from_slice(&chunk);
            let _ = read_line(r);
        }
    } else {
        let _ = r.read_to_end(&mut resp.body);
    }
    Ok(resp)
}

/// Connect to `addr` (5 s timeouts).
pub fn dial(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Connect to `addr` from the source address `from` (a client of its own for the proxy's
/// per-client budgets; any 127.0.0.0/8 address is local in the lab's namespace).
pub fn dial_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let s = rt
        .block_on(async {
            let sock = if from.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }?;
            sock.bind(SocketAddr::new(from, 0))?;
            sock.connect(addr).await
        })
        .unwrap();
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Write `bytes` and read one response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Resp> {
    let mut s = dial(addr);
    s.write_all(bytes)?;
    read_response(&mut s, false)
}

/// `GET url` through the proxy (absolute form), with extra headers.
pub fn get(proxy: SocketAddr, url: &str, headers: &[(&str, &str)]) -> Resp {
    request(proxy, "GET", url, headers, b"")
}

/// Any method through the proxy (absolute form).
pub fn request(proxy: SocketAddr, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let host = url.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
    let mut req =
        format!("{method} {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(proxy, &bytes).unwrap_or_else(|e| panic!("{method} {url} through the proxy: {e}"))
}

/// Send `CONNECT authority` and read the response head; the stream is the tunnel.
pub fn connect(proxy: SocketAddr, authority: &str) -> (TcpStream, Resp) {
    let mut s = dial(proxy);
    write!(s, "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").unwrap();
    let r = read_response(&mut s, true).unwrap();
    (s, r)
}

/// A rustls client configuration trusting the PEM certificates in `roots`.
pub fn client_config(roots: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for pem in roots {
        use rustls::pki_types::pem::PemObject;
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            store.add(c.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// TLS over an open tunnel, to `sni`.
pub fn tls(stream: TcpStream, sni: &str, roots: &[&str]) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(client_config(roots), name).unwrap();
    rustls::StreamOwned::new(conn, stream)
}

/// An HTTP/1.1 request over an established stream (TLS or not); reads one response.
pub fn over<S: Read + Write>(
    s: &mut S,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Resp> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
    read_response(s, false)
}
