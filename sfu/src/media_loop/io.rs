//! The loop's network edge: reading UDP datagrams and de-framed TCP packets, routing them to
//! the right `Rtc`, and sending what the `Rtc`s transmit (UDP or TCP), never waiting.
//!
//! Invariant: routing is one hash lookup by remote address (a TCP connection by its bound
//! participant); only a miss falls back to the STUN USERNAME, verified by that participant's
//! `Rtc` before anything is learnt.

use std::net::SocketAddr;
use std::time::Instant;

use str0m::Input;
use str0m::net::{DatagramRecv, Protocol, Receive};

use super::{MAX_DATAGRAM, MediaLoop, is_rtp};
use crate::addrs;
use crate::metrics::{Direction as Dir, DropReason};
use crate::routing::stun_local_ufrag;
use crate::tcp::TcpEvent;

impl MediaLoop {
    /// One UDP read: a datagram with its source and arrival time, or the read's error.
    pub(super) fn handle_recv(
        &mut self,
        res: std::io::Result<(usize, SocketAddr, Instant)>,
        buf: &[u8],
    ) {
        match res {
            Ok((n, source, arrived)) => match buf.get(..n) {
                Some(data) if n <= MAX_DATAGRAM => {
                    self.handle_datagram(data, source, Protocol::Udp, arrived)
                }
                _ => self.metrics.dropped(DropReason::Oversize),
            },
            // ICMP errors surface as recv errors on some platforms; the socket stays usable.
            Err(e) => tracing::debug!(error = %e, "udp recv error"),
        }
    }

    /// Routes one datagram (UDP, or a de-framed TCP packet) to its participant's `Rtc` (see
    /// `routing` for the rules; a TCP connection is bound to one participant). `arrived` is
    /// when it reached the socket: what str0m stamps it with (and so what goes into the
    /// congestion feedback to the sender).
    fn handle_datagram(
        &mut self,
        data: &[u8],
        source: SocketAddr,
        proto: Protocol,
        arrived: Instant,
    ) {
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.metrics.dropped(DropReason::Garbage);
            return;
        };
        let destination = match proto {
            Protocol::Tcp => addrs::local_for(
                &self.tcp_candidates,
                self.tcp_addr.unwrap_or(self.local_addr),
                source,
            ),
            _ => addrs::local_for(&self.candidates, self.local_addr, source),
        };
        let input = Input::Receive(
            arrived,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        let known = match proto {
            Protocol::Tcp => self.tcp.participant(&source),
            _ => self.routing.by_addr(&source),
        };
        let participant = match known {
            Some(p) => p,
            None => {
                // Unknown 4-tuple: only a STUN request naming one of our ufrags may claim it,
                // and only if that participant's `Rtc` verifies the message integrity.
                let claimed = stun_local_ufrag(data)
                    .and_then(|ufrag| self.routing.by_ufrag(ufrag))
                    .filter(|p| {
                        self.peers
                            .get(p)
                            .is_some_and(|peer| peer.rtc.accepts(&input))
                    });
                let Some(p) = claimed else {
                    self.metrics.dropped(DropReason::Unroutable);
                    return;
                };
                match proto {
                    Protocol::Tcp => self.tcp.bind(&source, p),
                    _ => self.routing.learn(source, p),
                }
                p
            }
        };
        let Some(peer) = self.peers.get_mut(&participant) else {
            self.metrics.dropped(DropReason::Unroutable);
            return;
        };
        if is_rtp(data) {
            self.metrics.rtp(Dir::In, data.len());
        }
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(participant = participant.0, error = %e, "rtc rejected input");
        }
        // str0m moves its clock only forward, and only with the inputs' times: after a datagram
        // stamped in the past, bring it to the present, or what it sends next is stamped with
        // a stale time (send times feed the downlink's congestion control as arrival times
        // feed the uplink's).
        let now = Instant::now();
        if arrived < now
            && let Err(e) = peer.rtc.handle_input(Input::Timeout(now))
        {
            tracing::debug!(participant = participant.0, error = %e, "rtc timeout failed");
        }
        self.mark_dirty(participant);
    }

    pub(super) fn handle_tcp(&mut self, event: TcpEvent) {
        match event {
            TcpEvent::Packet(remote, packet) => {
                // Packets still queued from a connection closed meanwhile are ignored.
                if self.tcp.is_open(&remote) {
                    self.handle_datagram(&packet, remote, Protocol::Tcp, Instant::now());
                }
            }
            TcpEvent::Closed(remote) => {
                self.tcp.close(&remote);
                self.update_gauges();
            }
        }
    }

    /// Sends one datagram, counting forwarded RTP. Never waits: a full buffer drops it.
    pub(super) fn send(&self, proto: Protocol, destination: SocketAddr, contents: &[u8]) {
        if is_rtp(contents) {
            self.metrics.packets_forwarded.inc();
            self.metrics.bytes_forwarded.inc_by(contents.len() as u64);
            self.metrics.rtp(Dir::Out, contents.len());
        }
        if proto == Protocol::Tcp {
            if let Err(reason) = self.tcp.send(&destination, contents) {
                self.metrics.dropped(reason);
            }
            return;
        }
        if let Err(e) = self.socket.try_send_to(contents, destination) {
            tracing::trace!(error = %e, "udp send dropped");
            self.metrics.dropped(DropReason::SendFailed);
        }
    }
}
