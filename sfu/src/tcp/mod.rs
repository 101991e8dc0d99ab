//! ICE over TCP (RFC 6544, passive host candidates) for one media loop.
//!
//! Design: each loop has its own TCP listener (its port is announced only in the `Rtc`s of
//! that loop), so a connection always reaches the loop owning the session; nothing is routed
//! between loops. Per connection, a reader task and a writer task run on the loop's own
//! current-thread runtime: the reader turns RFC 4571 frames into [`TcpEvent`]s on a bounded
//! channel into the loop, the writer drains a bounded queue the loop fills with `try_send`
//! (full queue: the packet is dropped and counted, the loop never waits).
//!
//! Invariants: a connection is bound to a participant by the first STUN request whose
//! USERNAME names that participant's ufrag and which its `Rtc` accepts (as for UDP);
//! connections are capped per loop; frames over 1500 bytes close the connection.

pub(crate) mod framing;

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::ParticipantId;
use crate::metrics::DropReason;
use framing::{FrameDecoder, encode};

/// Open connections per loop; more are refused at accept.
const MAX_CONNECTIONS: usize = 4096;
/// Packets queued towards one connection before new ones are dropped.
const WRITE_QUEUE: usize = 256;
/// Frames queued from all connections of a loop into the loop.
pub(crate) const EVENT_QUEUE: usize = 1024;

/// What the connection tasks tell the loop.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// One de-framed packet from `remote`.
    Packet(SocketAddr, Vec<u8>),
    /// The connection from `remote` ended (EOF, error, or bad framing).
    Closed(SocketAddr),
}

struct Conn {
    writer: mpsc::Sender<Vec<u8>>,
    participant: Option<ParticipantId>,
    tasks: [AbortHandle; 2],
}

/// The loop's TCP connections, keyed by remote address.
pub(crate) struct TcpConns {
    conns: HashMap<SocketAddr, Conn>,
    events: mpsc::Sender<TcpEvent>,
}

impl TcpConns {
    /// No connections yet; the tasks report on `events`.
    pub(crate) fn new(events: mpsc::Sender<TcpEvent>) -> TcpConns {
        TcpConns {
            conns: HashMap::new(),
            events,
        }
    }

    /// Starts serving a freshly accepted connection (must run on the loop's runtime).
    pub(crate) fn accept(&mut self, stream: TcpStream, remote: SocketAddr) {
        if self.conns.len() >= MAX_CONNECTIONS || self.conns.contains_key(&remote) {
            return;
        }
        let _ = stream.set_nodelay(true);
        let (mut read, mut write) = stream.into_split();
        let events = self.events.clone();
        let reader = tokio::spawn(async move {
            let mut decoder = FrameDecoder::default();
            let mut buf = vec![0u8; 4096];
            let mut frames = Vec::new();
            loop {
                let n = match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let Some(chunk) = buf.get(..n) else { break };
                if decoder.push(chunk, &mut frames).is_err() {
                    break;
                }
                for frame in frames.drain(..) {
                    if events.send(TcpEvent::Packet(remote, frame)).await.is_err() {
                        return;
                    }
                }
            }
            let _ = events.send(TcpEvent::Closed(remote)).await;
        });
        let (writer, mut queue) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
        let writer_task = tokio::spawn(async move {
            while let Some(framed) = queue.recv().await {
                if write.write_all(&framed).await.is_err() {
                    break;
                }
            }
        });
        self.conns.insert(
            remote,
            Conn {
                writer,
                participant: None,
                tasks: [reader.abort_handle(), writer_task.abort_handle()],
            },
        );
    }

    /// Whether a connection from `remote` is open.
    pub(crate) fn is_open(&self, remote: &SocketAddr) -> bool {
        self.conns.contains_key(remote)
    }

    /// The participant the connection from `remote` is bound to.
    pub(crate) fn participant(&self, remote: &SocketAddr) -> Option<ParticipantId> {
        self.conns.get(remote).and_then(|c| c.participant)
    }

    /// Binds the connection from `remote` to `p` (after `p`'s `Rtc` accepted its STUN).
    pub(crate) fn bind(&mut self, remote: &SocketAddr, p: ParticipantId) {
        if let Some(c) = self.conns.get_mut(remote) {
            c.participant = Some(p);
        }
    }

    /// Queues `packet` towards `remote` without waiting.
    pub(crate) fn send(&self, remote: &SocketAddr, packet: &[u8]) -> Result<(), DropReason> {
        let conn = self.conns.get(remote).ok_or(DropReason::SendFailed)?;
        let framed = encode(packet).ok_or(DropReason::SendFailed)?;
        conn.writer
            .try_send(framed)
            .map_err(|_| DropReason::TcpQueueFull)
    }

    /// Forgets the connection from `remote` and stops its tasks.
    pub(crate) fn close(&mut self, remote: &SocketAddr) {
        if let Some(c) = self.conns.remove(remote) {
            for t in c.tasks {
                t.abort();
            }
        }
    }

    /// Closes every connection bound to `p`.
    pub(crate) fn close_participant(&mut self, p: ParticipantId) {
        let gone: Vec<SocketAddr> = self
            .conns
            .iter()
            .filter(|(_, c)| c.participant == Some(p))
            .map(|(a, _)| *a)
            .collect();
        for remote in gone {
            self.close(&remote);
        }
    }

    /// Open connections.
    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }
}

impl Drop for TcpConns {
    fn drop(&mut self) {
        for (_, c) in self.conns.drain() {
            for t in c.tasks {
                t.abort();
            }
        }
    }
}
