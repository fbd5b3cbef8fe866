//! # semble-proxy: the egress credential proxy
//!
//! A sandbox whose policy says `network.mode: proxy` has no route out; this proxy is its only
//! way to the network. It runs outside the sandbox (a Kubernetes native sidecar on
//! `127.0.0.1:8080`, or on a Unix socket that `semble-init` bridges into a network-less
//! container) and, for every request:
//!
//! * decides it against the allow-list of the policy (`network.egress`): exact hosts and
//!   `*.suffix` wildcards, ports, and methods and path prefixes where it sees HTTP
//!   ([`rules`]), after reading the host strictly ([`target`]);
//! * resolves the name itself and refuses loopback, private, link-local (the cloud metadata
//!   address in all its spellings), CGNAT, multicast and other reserved addresses
//!   ([`addr`]), then connects to the address it checked ([`resolve`]);
//! * checks the TLS ClientHello of `CONNECT` tunnels against the host asked for, and relays
//!   with `splice(2)` ([`tunnel`]);
//! * adds credentials the workload never sees: static headers and AWS SigV4 re-signing
//!   ([`creds`]), for plain `http://` requests (the proxy opens TLS upstream) and for
//!   `https://` through a per-deployment intercept CA ([`intercept`]);
//! * logs one JSON line per decision ([`log`]) and counts it ([`metrics`]).
//!
//! Each worker thread runs its own single-threaded event loop and accepts from every listener
//! ([`server`]): a connection, its upstream connections and its tunnel stay on one thread.
//!
//! The admin API ([`admin`]) serves `/healthz`, `/readyz`, `/metrics` and token-protected
//! `GET/PUT /rules`; SIGHUP reloads the rules and credentials files. Bad rules never replace
//! good ones.
//!
//! ## Why these crates
//! hyper 1 (HTTP/1.1 and HTTP/2, the upgrade machinery `CONNECT` needs) on tokio;
//! hickory-resolver (answers with every address so each can be checked; `/etc/hosts` is read
//! first by [`resolve`] itself);
//! rustls with ring (TLS both ways, and its `Acceptor` parses ClientHellos); rcgen (the
//! intercept CA); aws-sigv4 (AWS's own signer); prometheus-client (the Prometheus project's
//! client); arc-swap (rules swapped atomically without locking readers).

pub mod addr;
pub mod admin;
pub mod body;
pub mod config;
pub mod creds;
pub mod intercept;
pub mod log;
pub mod metrics;
pub mod net;
pub mod proxy;
pub mod resolve;
pub mod rules;
pub mod server;
pub mod sniff;
pub mod sys;
pub mod target;
pub mod tunnel;
pub mod upstream;
