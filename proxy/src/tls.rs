//! What the proxy reads of a TLS tunnel's handshake without terminating it: record headers,
//! the extension types of a ClientHello, and the version a ServerHello chose (and whether it
//! is a HelloRetryRequest). The ClientHello itself is parsed and validated by rustls's
//! `Acceptor` (in the tunnel module); this module only adds what that API does not
//! expose. Every read is bounds-checked and a malformed input is `None`, never a panic.
//!
//! The handshake watch ([`Watch`]) follows each direction of a tunnel record by record:
//!
//! * **ClientHello.** Every ClientHello is checked, not only the first: after a
//!   HelloRetryRequest the client sends a second one, which must name the same server and carry
//!   no Encrypted Client Hello either; it is held until checked.
//! * **TLS 1.3** (the ServerHello's `supported_versions` says so): after the ServerHello no
//!   plaintext handshake message can follow, and TLS 1.3 has no renegotiation: the watch ends
//!   and the relay splices.
//! * **TLS 1.2**: renegotiation runs a new handshake inside the encrypted session, its
//!   ClientHello unreadable to the proxy. So the watch goes on for the whole tunnel: after a
//!   side's ChangeCipherSpec it may send one handshake record (its Finished); any later handshake
//!   record (a HelloRequest, a renegotiating ClientHello) cuts the tunnel.

/// TLS record content types.
pub const CHANGE_CIPHER_SPEC: u8 = 20;
/// Alert records.
pub const ALERT: u8 = 21;
/// Handshake records.
pub const HANDSHAKE: u8 = 22;
/// Application data records.
pub const APPLICATION_DATA: u8 = 23;

/// The Encrypted Client Hello extension (RFC 9849 / draft-ietf-tls-esni), and the draft ESNI one.
pub const EXT_ECH: u16 = 0xfe0d;
/// The older encrypted SNI draft's extension.
pub const EXT_ESNI: u16 = 0xffce;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// A ServerHello whose random is this is a HelloRetryRequest (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Largest record body TLS allows (2^14 plus expansion).
const MAX_RECORD: usize = 16384 + 2048;

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u24_at(b: &[u8], i: usize) -> Option<usize> {
    Some(((*b.get(i)? as usize) << 16) | ((*b.get(i + 1)? as usize) << 8) | *b.get(i + 2)? as usize)
}

/// The first handshake message in `records` (record layer bytes), reassembled across records;
/// `None` until it is complete (or if the bytes are not handshake records).
pub fn first_handshake_message(records: &[u8]) -> Option<Vec<u8>> {
    let mut msg = Vec::new();
    let mut i = 0;
    while i + 5 <= records.len() {
        if records[i] != HANDSHAKE {
            return None;
        }
        let len = u16_at(records, i + 3)? as usize;
        let body = records.get(i + 5..i + 5 + len)?;
        msg.extend_from_slice(body);
        i += 5 + len;
        if msg.len() >= 4 {
            let want = 4 + u24_at(&msg, 1)?;
            if msg.len() >= want {
                msg.truncate(want);
                return Some(msg);
            }
        }
    }
    None
}

/// The number of bytes of `records` up to the end of the record that completes the first
/// handshake message; `None` until it is complete.
pub fn first_message_records_len(records: &[u8]) -> Option<usize> {
    let mut got = 0usize;
    let mut want: Option<usize> = None;
    let mut head = Vec::with_capacity(4);
    let mut i = 0;
    while i + 5 <= records.len() {
        if records[i] != HANDSHAKE {
            return None;
        }
        let len = u16_at(records, i + 3)? as usize;
        let body = records.get(i + 5..i + 5 + len)?;
        for b in body.iter().take(4usize.saturating_sub(head.len())) {
            head.push(*b);
        }
        got += len;
        i += 5 + len;
        if want.is_none() && head.len() == 4 {
            want = Some(4 + u24_at(&head, 1)?);
        }
        if want.is_some_and(|w| got >= w) {
            return Some(i);
        }
    }
    None
}

/// The extension types of a ClientHello handshake message (type 1, with its 4-byte header).
pub fn client_hello_extensions(msg: &[u8]) -> Option<Vec<u16>> {
    if *msg.first()? != 1 {
        return None;
    }
    let mut i = 4 + 2 + 32; // header, legacy_version, random
    i += 1 + *msg.get(i)? as usize; // session id
    i += 2 + u16_at(msg, i)? as usize; // cipher suites
    i += 1 + *msg.get(i)? as usize; // compression methods
    if i == msg.len() {
        return Some(Vec::new());
    }
    let end = i + 2 + u16_at(msg, i)? as usize;
    if end > msg.len() {
        return None;
    }
    i += 2;
    let mut out = Vec::new();
    while i + 4 <= end {
        out.push(u16_at(msg, i)?);
        i += 4 + u16_at(msg, i + 2)? as usize;
    }
    (i == end).then_some(out)
}

/// What a ServerHello says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHello {
    /// A HelloRetryRequest: a second ClientHello follows.
    Retry,
    /// TLS 1.3 was chosen.
    Tls13,
    /// An earlier version (TLS 1.2) was chosen.
    Tls12,
}

/// Read a ServerHello handshake message (type 2, with its header).
pub fn server_hello(msg: &[u8]) -> Option<ServerHello> {
    if *msg.first()? != 2 {
        return None;
    }
    let random = msg.get(6..38)?;
    if random == HRR_RANDOM {
        return Some(ServerHello::Retry);
    }
    let mut i = 38;
    i += 1 + *msg.get(i)? as usize; // session id
    i += 2 + 1; // cipher suite, compression
    if i >= msg.len() {
        return Some(ServerHello::Tls12);
    }
    let end = (i + 2 + u16_at(msg, i)? as usize).min(msg.len());
    i += 2;
    while i + 4 <= end {
        let (t, len) = (u16_at(msg, i)?, u16_at(msg, i + 2)? as usize);
        if t == EXT_SUPPORTED_VERSIONS && len == 2 && u16_at(msg, i + 4)? == 0x0304 {
            return Some(ServerHello::Tls13);
        }
        i += 4 + len;
    }
    Some(ServerHello::Tls12)
}

/// What the watch says about the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Forward these bytes.
    Forward(Vec<u8>),
    /// A ClientHello to check before it is forwarded: the whole records holding it.
    Check(Vec<u8>),
    /// The tunnel must be cut: why.
    Cut(&'static str),
}

/// Which side of the tunnel a [`Watch`] follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Client to upstream.
    Client,
    /// Upstream to client.
    Server,
}

/// Shared between the two directions of one tunnel.
#[derive(Debug, Default)]
pub struct Shared {
    /// 0 unknown, 1 HelloRetryRequest seen (a second ClientHello is due), 2 TLS 1.3, 3 TLS 1.2.
    pub state: std::sync::atomic::AtomicU8,
}

/// Unknown yet.
pub const UNKNOWN: u8 = 0;
/// A HelloRetryRequest was forwarded: the client's next ClientHello must be checked.
pub const RETRY: u8 = 1;
/// TLS 1.3: nothing more to watch.
pub const TLS13: u8 = 2;
/// TLS 1.2: watched to the end.
pub const TLS12: u8 = 3;

/// Follows one direction of a tunnel, record by record (see the module docs).
#[derive(Debug)]
pub struct Watch {
    side: Side,
    /// Bytes of an incomplete record header or of a held record.
    pending: Vec<u8>,
    /// Payload bytes of the current record still to pass through unexamined.
    skip: usize,
    /// Handshake records seen since this side's ChangeCipherSpec (`None`: no CCS yet).
    after_ccs: Option<u32>,
    /// Holding handshake records until a whole ClientHello is here.
    holding: bool,
    /// Collecting the server's first handshake message.
    collecting: bool,
    /// The handshake records collected so far, for reassembly.
    hs_buf: Vec<u8>,
}

impl Watch {
    /// A watch for `side`. The client's first ClientHello has been checked already.
    pub fn new(side: Side) -> Watch {
        Watch {
            side,
            pending: Vec::new(),
            skip: 0,
            after_ccs: None,
            holding: false,
            collecting: side == Side::Server,
            hs_buf: Vec::new(),
        }
    }

    /// Whether a second ClientHello is being held for checking.
    pub fn holding(&self) -> bool {
        self.holding
    }

    /// Bytes taken from the stream but not yet given out (part of a record header), to be
    /// forwarded when the watch ends.
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// Feed bytes read from this side; returns what to do with them, in order.
    pub fn feed(&mut self, shared: &Shared, mut data: &[u8]) -> Vec<Step> {
        use std::sync::atomic::Ordering;
        let mut out: Vec<Step> = Vec::new();
        let forward = |out: &mut Vec<Step>, b: &[u8]| {
            if b.is_empty() {
                return;
            }
            if let Some(Step::Forward(v)) = out.last_mut() {
                v.extend_from_slice(b);
            } else {
                out.push(Step::Forward(b.to_vec()));
            }
        };
        while !data.is_empty() {
            if self.skip > 0 && !self.holding && !self.collecting {
                let n = self.skip.min(data.len());
                forward(&mut out, &data[..n]);
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            // Collect a record header, or a whole record while holding/collecting.
            self.pending.push(data[0]);
            data = &data[1..];
            if self.pending.len() < 5 {
                continue;
            }
            let typ = self.pending[0];
            let len = u16_at(&self.pending, 3).map_or(0, |l| l as usize);
            if len > MAX_RECORD || !(CHANGE_CIPHER_SPEC..=APPLICATION_DATA).contains(&typ) {
                out.push(Step::Cut("the tunnel does not carry TLS records"));
                return out;
            }
            let whole = self.holding || self.collecting;
            if whole {
                let need = 5 + len;
                let take = need.saturating_sub(self.pending.len()).min(data.len());
                self.pending.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.pending.len() < need {
                    continue;
                }
            }
            let state = shared.state.load(Ordering::SeqCst);
            match typ {
                CHANGE_CIPHER_SPEC if state == TLS12 || state == UNKNOWN => self.after_ccs = Some(0),
                HANDSHAKE => {
                    if let Some(n) = self.after_ccs {
                        if state == TLS12 && n >= 1 {
                            out.push(Step::Cut(if self.side == Side::Client {
                                "a TLS 1.2 renegotiation (a new ClientHello inside the encrypted session) is refused"
                            } else {
                                "the server asked for a TLS 1.2 renegotiation, which is refused"
                            }));
                            return out;
                        }
                        self.after_ccs = Some(n + 1);
                    }
                }
                _ => {}
            }
            // The server's first handshake message: a ServerHello (ChangeCipherSpec records may
            // come between a HelloRetryRequest and it).
            if self.collecting {
                let rec = std::mem::take(&mut self.pending);
                if typ == HANDSHAKE {
                    self.hs_buf.extend_from_slice(&rec);
                    if let Some(msg) = first_handshake_message(&self.hs_buf) {
                        self.hs_buf.clear();
                        self.collecting = false;
                        let next = match server_hello(&msg) {
                            Some(ServerHello::Retry) => RETRY,
                            Some(ServerHello::Tls13) => TLS13,
                            // Anything else is watched to the end.
                            Some(ServerHello::Tls12) | None => TLS12,
                        };
                        // Set before the bytes go on, so the client's answer is judged by it.
                        shared.state.store(next, Ordering::SeqCst);
                        // After a HelloRetryRequest, the real ServerHello is still to come.
                        self.collecting = next == RETRY;
                    }
                } else if typ != CHANGE_CIPHER_SPEC {
                    // An alert or data before any ServerHello: nothing to learn, watch to the end.
                    self.collecting = false;
                    shared.state.store(TLS12, Ordering::SeqCst);
                }
                forward(&mut out, &rec);
                continue;
            }
            // The client's ClientHello after a HelloRetryRequest.
            if self.side == Side::Client && typ == HANDSHAKE && state == RETRY {
                self.holding = true;
                if !whole {
                    // Collect this record whole first.
                    let need = 5 + len;
                    let take = need.saturating_sub(self.pending.len()).min(data.len());
                    self.pending.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if self.pending.len() < need {
                        continue;
                    }
                }
                if first_handshake_message(&self.pending).is_some() {
                    self.holding = false;
                    let recs = std::mem::take(&mut self.pending);
                    // Judged once; the state moves on so a third one is never expected.
                    shared.state.store(UNKNOWN, Ordering::SeqCst);
                    out.push(Step::Check(recs));
                }
                // else: keep holding (and collecting whole records) until it is complete.
                continue;
            }
            let header = std::mem::take(&mut self.pending);
            if whole {
                forward(&mut out, &header);
            } else {
                forward(&mut out, &header);
                self.skip = len;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![typ, 3, 3];
        r.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        r.extend_from_slice(body);
        r
    }

    fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
        m.extend_from_slice(body);
        m
    }

    fn server_hello_msg(random: [u8; 32], tls13: bool) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.push(0); // session id
        b.extend_from_slice(&[0x13, 0x01, 0]);
        let ext: Vec<u8> = if tls13 { vec![0, 43, 0, 2, 3, 4] } else { vec![] };
        b.extend_from_slice(&u16::try_from(ext.len()).unwrap().to_be_bytes());
        b.extend_from_slice(&ext);
        handshake(2, &b)
    }

    fn client_hello_msg(exts: &[u16]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(0);
        b.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        let mut e = Vec::new();
        for t in exts {
            e.extend_from_slice(&t.to_be_bytes());
            e.extend_from_slice(&[0, 1, 0]);
        }
        b.extend_from_slice(&u16::try_from(e.len()).unwrap().to_be_bytes());
        b.extend_from_slice(&e);
        handshake(1, &b)
    }

    #[test]
    fn extensions_of_a_client_hello_even_split_across_records() {
        let msg = client_hello_msg(&[0, EXT_ECH, 43]);
        assert_eq!(client_hello_extensions(&msg), Some(vec![0, EXT_ECH, 43]));
        let mut split = record(HANDSHAKE, &msg[..20]);
        split.extend(record(HANDSHAKE, &msg[20..]));
        assert_eq!(first_handshake_message(&split).as_deref(), Some(&msg[..]));
        assert_eq!(first_handshake_message(&split[..split.len() - 1]), None);
        let mut more = split.clone();
        more.extend(record(CHANGE_CIPHER_SPEC, &[1]));
        assert_eq!(first_message_records_len(&more), Some(split.len()));
        assert_eq!(client_hello_extensions(&msg[..msg.len() - 2]), None, "a truncated list is not read");
    }

    #[test]
    fn server_hello_versions_and_retry() {
        assert_eq!(server_hello(&server_hello_msg([1; 32], true)), Some(ServerHello::Tls13));
        assert_eq!(server_hello(&server_hello_msg([1; 32], false)), Some(ServerHello::Tls12));
        assert_eq!(server_hello(&server_hello_msg(HRR_RANDOM, true)), Some(ServerHello::Retry));
    }

    #[test]
    fn a_second_client_hello_after_a_retry_is_held_for_checking() {
        let shared = Shared::default();
        let mut server = Watch::new(Side::Server);
        let mut client = Watch::new(Side::Client);
        let hrr = record(HANDSHAKE, &server_hello_msg(HRR_RANDOM, true));
        let steps = server.feed(&shared, &hrr);
        assert_eq!(steps, vec![Step::Forward(hrr.clone())]);
        assert_eq!(shared.state.load(std::sync::atomic::Ordering::SeqCst), RETRY);
        // Middlebox-compatible CCS, then CH2 byte by byte.
        let ccs = record(CHANGE_CIPHER_SPEC, &[1]);
        assert_eq!(client.feed(&shared, &ccs), vec![Step::Forward(ccs.clone())]);
        let ch2 = record(HANDSHAKE, &client_hello_msg(&[0]));
        let mut steps = Vec::new();
        for b in &ch2 {
            steps.extend(client.feed(&shared, &[*b]));
        }
        assert_eq!(steps, vec![Step::Check(ch2.clone())]);
        // Then the real ServerHello: TLS 1.3, nothing more to watch.
        let sh = record(HANDSHAKE, &server_hello_msg([2; 32], true));
        server.feed(&shared, &sh);
        assert_eq!(shared.state.load(std::sync::atomic::Ordering::SeqCst), TLS13);
    }

    #[test]
    fn tls12_renegotiation_is_cut() {
        let shared = Shared::default();
        let mut server = Watch::new(Side::Server);
        let mut client = Watch::new(Side::Client);
        server.feed(&shared, &record(HANDSHAKE, &server_hello_msg([3; 32], false)));
        assert_eq!(shared.state.load(std::sync::atomic::Ordering::SeqCst), TLS12);
        // Client: ClientKeyExchange, CCS, Finished (encrypted), application data: all fine.
        let mut flight = record(HANDSHAKE, &[16, 0, 0, 1, 0]);
        flight.extend(record(CHANGE_CIPHER_SPEC, &[1]));
        flight.extend(record(HANDSHAKE, &[0xaa; 40]));
        flight.extend(record(APPLICATION_DATA, &[0xbb; 100]));
        let steps = client.feed(&shared, &flight);
        assert_eq!(steps, vec![Step::Forward(flight.clone())]);
        // A new handshake record later: a renegotiating ClientHello.
        let steps = client.feed(&shared, &record(HANDSHAKE, &[0xcc; 60]));
        assert!(matches!(steps.last(), Some(Step::Cut(_))), "{steps:?}");
        // Server side: a HelloRequest after its Finished.
        let mut s_flight = record(CHANGE_CIPHER_SPEC, &[1]);
        s_flight.extend(record(HANDSHAKE, &[0xaa; 40]));
        assert!(matches!(server.feed(&shared, &s_flight).last(), Some(Step::Forward(_))));
        assert!(matches!(server.feed(&shared, &record(HANDSHAKE, &[0xdd; 30])).last(), Some(Step::Cut(_))));
    }

    #[test]
    fn garbage_is_cut_not_panicked_on() {
        let shared = Shared::default();
        for side in [Side::Client, Side::Server] {
            let mut w = Watch::new(side);
            assert!(matches!(w.feed(&shared, b"GET / HTTP/1.1\r\n").last(), Some(Step::Cut(_))));
        }
        assert_eq!(client_hello_extensions(&[1, 0, 0]), None);
        assert_eq!(server_hello(&[2]), None);
    }
}
