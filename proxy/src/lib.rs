//! # semble-proxy: the egress credential proxy
//!
//! A sandbox whose policy says `network.mode: proxy` has no route out; this proxy is its only
//! way to the network. It runs outside the sandbox (a Kubernetes native sidecar on
//! `127.0.0.1:8080`, or on a Unix socket that `semble-init` bridges into a network-less
//! container) and, for every request:
//!
//! * decides it in one pipeline of stages, in flow order ([`pipeline`]): framing (request
//!   smuggling) → target (the host read strictly, [`host`]) → host rule (the allow-list,
//!   [`rules`]) → method/path → addresses (the proxy resolves the name itself and refuses
//!   loopback, private, link-local — the cloud metadata address in all its spellings — CGNAT,
//!   multicast and other reserved addresses, [`addr`], [`resolve`]) → credential (static headers
//!   and AWS SigV4 re-signing outside the sandbox, [`creds`]) → upstream (a pooled connection to
//!   a checked address, [`pool`]; a `CONNECT` tunnel with its TLS ClientHello checked and a
//!   `splice(2)` relay, [`tunnel`]; or TLS terminated with a per-deployment intercept CA,
//!   [`intercept`]). The same stages serve plain `http://` requests, `CONNECT` tunnels and the
//!   requests inside intercepted tunnels, so a mistake gets the same answer at every entry:
//!   each refusal has one reason and each reason one status ([`deny`]);
//! * logs one JSON line per decision ([`log`]) and counts it ([`metrics`]).
//!
//! Layers, bottom up (an arrow never points back): [`host`], [`deny`], [`addr`], [`net`],
//! [`sys`], [`sniff`], [`tls`], [`log`], [`metrics`], [`budget`] → [`config`], [`resolve`],
//! [`sigv4`], [`creds`], [`rules`], [`pool`], [`body`], [`tunnel`], [`intercept`] → [`state`] (what every request shares) →
//! [`pipeline`] → [`conn`] (one client connection) → [`admin`], [`server`] (start-up,
//! listeners, reloads).
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
pub mod budget;
pub mod config;
pub mod conn;
pub mod creds;
pub mod deny;
pub mod host;
pub mod intercept;
pub mod log;
pub mod metrics;
pub mod net;
pub mod pipeline;
pub mod pool;
pub mod resolve;
pub mod rules;
pub mod server;
pub mod sigv4;
pub mod sniff;
pub mod state;
pub mod sys;
pub mod tls;
pub mod tunnel;
