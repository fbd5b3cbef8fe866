//! Per-client budgets: what one client may make the proxy hold, so one sandbox cannot starve a
//! shared gateway.
//!
//! A client is a source address (each pod of a gateway's sandboxes has its own), or a Unix
//! listener (semble-shim gives each sandbox its own socket). Each client may hold
//! `--max-client-connections` connections and tunnels (more are answered `429
//! client_connections`: each costs a head buffer and its state), and have
//! `--max-client-buffered-bytes` of bodies read whole at once (signed, or searched for a method
//! override; more is `429 client_buffered`); all clients together may have
//! `--max-buffered-bytes` (`503 buffered_bytes`). Bodies are reserved at their declared length
//! (or the whole `--max-signed-body` when chunked) before a byte is read, and released when the
//! request has gone upstream. The global `--max-connections` stays, below these.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::deny::{Deny, Reason};

/// Who a client is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// A TCP source address.
    Ip(IpAddr),
    /// A Unix listener (one sandbox), by its index.
    Unix(usize),
}

#[derive(Debug, Default)]
struct Use {
    connections: u64,
    buffered: u64,
}

/// The budgets and what each client uses of them.
#[derive(Debug)]
pub struct Budgets {
    max_client_connections: u64,
    max_client_buffered: u64,
    max_buffered: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    clients: HashMap<ClientKey, Use>,
    buffered: u64,
}

impl State {
    fn release(&mut self, key: &ClientKey, connections: u64, buffered: u64) {
        if let Some(u) = self.clients.get_mut(key) {
            u.connections = u.connections.saturating_sub(connections);
            u.buffered = u.buffered.saturating_sub(buffered);
            if u.connections == 0 && u.buffered == 0 {
                self.clients.remove(key);
            }
        }
        self.buffered = self.buffered.saturating_sub(buffered);
    }
}

/// A client's connection slot; released when dropped.
#[derive(Debug)]
pub struct ConnSlot {
    budgets: Arc<Budgets>,
    key: ClientKey,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if let Ok(mut s) = self.budgets.state.lock() {
            s.release(&self.key, 1, 0);
        }
    }
}

/// Bytes of a body reserved for reading whole; released when dropped.
#[derive(Debug)]
pub struct BodySlot {
    budgets: Arc<Budgets>,
    key: ClientKey,
    bytes: u64,
}

impl Drop for BodySlot {
    fn drop(&mut self) {
        if let Ok(mut s) = self.budgets.state.lock() {
            s.release(&self.key, 0, self.bytes);
        }
    }
}

impl Budgets {
    /// Budgets with these maxima.
    pub fn new(max_client_connections: u64, max_client_buffered: u64, max_buffered: u64) -> Arc<Budgets> {
        Arc::new(Budgets {
            max_client_connections,
            max_client_buffered,
            max_buffered,
            state: Mutex::new(State::default()),
        })
    }

    /// Take a connection slot for `key`.
    pub fn connection(self: &Arc<Self>, key: &ClientKey) -> Result<ConnSlot, Deny> {
        let mut s = self.state.lock().map_err(|_| Deny::new(Reason::ClientConnections, "budget lock poisoned"))?;
        let u = s.clients.entry(key.clone()).or_default();
        if u.connections >= self.max_client_connections {
            return Err(Deny::new(
                Reason::ClientConnections,
                format!("this client holds {} connections (--max-client-connections); close some first", u.connections),
            ));
        }
        u.connections += 1;
        Ok(ConnSlot { budgets: self.clone(), key: key.clone() })
    }

    /// Reserve `bytes` of body to read whole for `key`.
    pub fn body(self: &Arc<Self>, key: &ClientKey, bytes: u64) -> Result<BodySlot, Deny> {
        let mut s = self.state.lock().map_err(|_| Deny::new(Reason::BufferedBytes, "budget lock poisoned"))?;
        if s.buffered + bytes > self.max_buffered {
            return Err(Deny::new(
                Reason::BufferedBytes,
                format!(
                    "{} bytes of bodies are being read for signing by all clients (--max-buffered-bytes); retry shortly",
                    s.buffered
                ),
            ));
        }
        let held = s.clients.get(key).map_or(0, |u| u.buffered);
        if held + bytes > self.max_client_buffered {
            return Err(Deny::new(
                Reason::ClientBuffered,
                format!(
                    "this client already has {held} bytes of bodies being read for signing; {bytes} more would pass --max-client-buffered-bytes"
                ),
            ));
        }
        s.clients.entry(key.clone()).or_default().buffered += bytes;
        s.buffered += bytes;
        Ok(BodySlot { budgets: self.clone(), key: key.clone(), bytes })
    }

    /// Clients holding anything now (for metrics and tests).
    pub fn clients(&self) -> usize {
        self.state.lock().map(|s| s.clients.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_cannot_take_what_others_need() {
        let b = Budgets::new(2, 100, 150);
        let (a, c) = (ClientKey::Ip("10.0.0.1".parse().unwrap()), ClientKey::Ip("10.0.0.2".parse().unwrap()));
        let s1 = b.connection(&a).unwrap();
        let _s2 = b.connection(&a).unwrap();
        assert_eq!(b.connection(&a).unwrap_err().reason, Reason::ClientConnections);
        let _other = b.connection(&c).unwrap();
        drop(s1);
        let _s3 = b.connection(&a).unwrap();
        let body = b.body(&a, 100).unwrap();
        assert_eq!(b.body(&a, 1).unwrap_err().reason, Reason::ClientBuffered);
        let _c1 = b.body(&c, 50).unwrap();
        assert_eq!(b.body(&c, 1).unwrap_err().reason, Reason::BufferedBytes, "all clients together");
        drop(body);
        let _c2 = b.body(&c, 40).unwrap();
    }

    #[test]
    fn released_clients_are_forgotten() {
        let b = Budgets::new(4, 10, 10);
        let k = ClientKey::Unix(0);
        let s = b.connection(&k).unwrap();
        let body = b.body(&k, 5).unwrap();
        assert_eq!(b.clients(), 1);
        drop(s);
        drop(body);
        assert_eq!(b.clients(), 0);
    }
}
