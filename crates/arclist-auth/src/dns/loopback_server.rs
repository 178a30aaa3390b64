//! A small authoritative DNS server on loopback, serving a [`Zone`] over UDP and TCP.
//!
//! It exists so that tests, `arclist demo` and offline SPF checks go through real DNS packets
//! and the real resolver, and it can be told to let names time out or SERVFAIL, which is how
//! the temporary-error paths are exercised.

use super::normalize_name;
use super::zone::{Zone, ZoneRecord};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, PTR, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

#[derive(Default)]
struct State {
    zone: Zone,
    hang: HashSet<String>,
    servfail: HashSet<String>,
    /// How long every answer is held back, as a distant server's would be.
    delay: std::time::Duration,
}

/// The questions the server received, by name: tests count what reached the network.
#[derive(Default)]
struct Asked {
    total: usize,
    by_name: HashMap<String, usize>,
}

/// A running loopback DNS server. Dropping it stops it.
pub struct LoopbackDnsServer {
    addr: SocketAddr,
    state: Arc<RwLock<State>>,
    asked: Arc<Mutex<Asked>>,
    tasks: Vec<JoinHandle<()>>,
}

impl LoopbackDnsServer {
    /// Starts serving `zone` on 127.0.0.1 at a free port (UDP and TCP share the port).
    pub async fn start(zone: Zone) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?, zone).await
    }

    /// Starts serving `zone` at `addr` (port 0 picks a free one).
    pub async fn start_on(addr: SocketAddr, zone: Zone) -> std::io::Result<Self> {
        // UDP and TCP must share one port; retry when the TCP side of a UDP port is taken.
        let mut tries = 0;
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind(addr).await?;
            let port = udp.local_addr()?.port();
            match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
                Ok(tcp) => break (udp, tcp),
                Err(e) if addr.port() == 0 && tries < 20 => {
                    tries += 1;
                    tracing::debug!("loopback DNS: TCP port {port} taken ({e}), retrying");
                }
                Err(e) => return Err(e),
            }
        };
        let local = udp.local_addr()?;
        let state = Arc::new(RwLock::new(State {
            zone,
            ..State::default()
        }));
        let asked = Arc::new(Mutex::new(Asked::default()));
        let udp = Arc::new(udp);
        let udp_state = state.clone();
        let udp_asked = asked.clone();
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = udp.recv_from(&mut buf).await else {
                    continue;
                };
                let Some(reply) = answer(&udp_state, &udp_asked, &buf[..len]) else {
                    continue;
                };
                let delay = udp_state.read().map(|s| s.delay).unwrap_or_default();
                if delay.is_zero() {
                    let _ = udp.send_to(&reply, peer).await;
                } else {
                    let udp = udp.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = udp.send_to(&reply, peer).await;
                    });
                }
            }
        });
        let tcp_state = state.clone();
        let tcp_asked = asked.clone();
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = tcp.accept().await else {
                    continue;
                };
                let state = tcp_state.clone();
                let asked = tcp_asked.clone();
                tokio::spawn(async move {
                    loop {
                        let mut len = [0u8; 2];
                        if stream.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
                        if stream.read_exact(&mut query).await.is_err() {
                            return;
                        }
                        let Some(reply) = answer(&state, &asked, &query) else {
                            continue;
                        };
                        let Ok(reply_len) = u16::try_from(reply.len()) else {
                            return;
                        };
                        if stream.write_all(&reply_len.to_be_bytes()).await.is_err()
                            || stream.write_all(&reply).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Ok(LoopbackDnsServer {
            addr: local,
            state,
            asked,
            tasks: vec![udp_task, tcp_task],
        })
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every UDP answer from now on is sent `delay` late (benchmarks of DNS latency).
    pub fn set_delay(&self, delay: std::time::Duration) {
        if let Ok(mut s) = self.state.write() {
            s.delay = delay;
        }
    }

    /// Queries for `name` will never be answered (a timeout at the resolver).
    pub fn hang(&self, name: &str) {
        if let Ok(mut s) = self.state.write() {
            s.hang.insert(normalize_name(name));
        }
    }

    /// Queries for `name` are answered with SERVFAIL.
    pub fn servfail(&self, name: &str) {
        if let Ok(mut s) = self.state.write() {
            s.servfail.insert(normalize_name(name));
        }
    }

    /// Answers queries for `name` normally again after [`hang`](Self::hang) or
    /// [`servfail`](Self::servfail).
    pub fn release(&self, name: &str) {
        if let Ok(mut s) = self.state.write() {
            let name = normalize_name(name);
            s.hang.remove(&name);
            s.servfail.remove(&name);
        }
    }

    /// Questions received so far, for any name and type (timed-out ones included).
    pub fn questions(&self) -> usize {
        self.asked.lock().map(|a| a.total).unwrap_or_default()
    }

    /// Questions received so far for `name`, of any type.
    pub fn asked(&self, name: &str) -> usize {
        self.asked
            .lock()
            .map(|a| a.by_name.get(&normalize_name(name)).copied().unwrap_or(0))
            .unwrap_or_default()
    }

    /// Replaces or extends the served records.
    pub fn with_zone<R>(&self, f: impl FnOnce(&mut Zone) -> R) -> Option<R> {
        self.state.write().ok().map(|mut s| f(&mut s.zone))
    }
}

impl Drop for LoopbackDnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn answer(state: &RwLock<State>, asked: &Mutex<Asked>, packet: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let q = query.queries.first()?.clone();
    let name = normalize_name(&q.name.to_ascii());
    if let Ok(mut a) = asked.lock() {
        a.total += 1;
        *a.by_name.entry(name.clone()).or_default() += 1;
    }
    let state = state.read().ok()?;
    if state.hang.contains(&name) {
        return None;
    }
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.message_type = MessageType::Response;
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(q.clone());
    if state.servfail.contains(&name) {
        reply.metadata.response_code = ResponseCode::ServFail;
        return reply.to_vec().ok();
    }
    match state.zone.records(&name) {
        None => reply.metadata.response_code = ResponseCode::NXDomain,
        Some(records) => {
            for (ttl, record) in records {
                let data = match (record, q.query_type) {
                    (ZoneRecord::Txt(parts), RecordType::TXT) => RData::TXT(TXT::from_bytes(
                        parts.iter().map(|p| p.as_slice()).collect(),
                    )),
                    (ZoneRecord::A(a), RecordType::A) => RData::A(A(*a)),
                    (ZoneRecord::Aaaa(a), RecordType::AAAA) => RData::AAAA(AAAA(*a)),
                    (ZoneRecord::Mx(mx), RecordType::MX) => RData::MX(MX::new(
                        mx.preference,
                        Name::from_ascii(format!("{}.", mx.exchange)).ok()?,
                    )),
                    (ZoneRecord::Ptr(p), RecordType::PTR) => {
                        RData::PTR(PTR(Name::from_ascii(format!("{p}.")).ok()?))
                    }
                    _ => continue,
                };
                reply.add_answer(Record::from_rdata(q.name.clone(), *ttl, data));
            }
        }
    }
    reply.to_vec().ok()
}
