//! Starting a media loop: binding its sockets on the caller's thread (so errors reach
//! `Sfu::start`), then running it on its own OS thread with a current-thread runtime.
//!
//! Why an OS thread per loop rather than tasks on the shared multi-thread runtime: a loop is a
//! busy, latency-sensitive task whose state (every `Rtc` of its rooms) is touched by nothing
//! else. On its own thread it is never migrated or preempted by HTTP/WebSocket work, its
//! socket's readiness is polled by its own reactor, and "no cross-loop locking" holds by
//! construction (nothing in a loop is `Sync`-shared except the metrics handles and the
//! placement map, which only control commands touch). The caller's runtime only carries the
//! command channels.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use str0m::config::{CryptoProvider, DtlsCert};
use tokio::sync::mpsc;

use super::{Command, MediaLoop};
use crate::metrics::Metrics;
use crate::placement::Placement;
use crate::{SfuConfig, SfuError, addrs};

/// The bound sockets of one loop and what it announces.
pub(crate) struct LoopSockets {
    pub(crate) udp: std::net::UdpSocket,
    pub(crate) udp_addr: SocketAddr,
    pub(crate) candidates: Vec<SocketAddr>,
    pub(crate) tcp: Option<std::net::TcpListener>,
    pub(crate) tcp_addr: Option<SocketAddr>,
    pub(crate) tcp_candidates: Vec<SocketAddr>,
}

/// Everything a loop thread needs.
pub(crate) struct LoopSetup {
    pub(crate) index: usize,
    pub(crate) sockets: LoopSockets,
    pub(crate) crypto: Arc<CryptoProvider>,
    pub(crate) cert: DtlsCert,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) metrics: Metrics,
    pub(crate) placement: Arc<Mutex<Placement>>,
}

/// The address loop `index` binds, given the configured one.
fn loop_addr(base: SocketAddr, index: usize) -> Result<SocketAddr, SfuError> {
    if base.port() == 0 {
        return Ok(base);
    }
    let port = u16::try_from(usize::from(base.port()) + index)
        .map_err(|_| SfuError::Io(std::io::Error::other("loop port beyond 65535")))?;
    Ok(SocketAddr::new(base.ip(), port))
}

/// Binds loop `index`'s UDP socket (and TCP listener) and computes its ICE candidates.
pub(crate) fn bind(config: &SfuConfig, index: usize) -> Result<LoopSockets, SfuError> {
    let udp = std::net::UdpSocket::bind(loop_addr(config.bind, index)?)?;
    udp.set_nonblocking(true)?;
    super::recv_time::enable(&udp);
    let udp_addr = udp.local_addr()?;
    let candidates = addrs::candidate_addrs(config, udp_addr, addrs::interface_ips);
    if candidates.is_empty() {
        return Err(SfuError::NoAnnounceAddress);
    }
    let (tcp, tcp_addr, tcp_candidates) = match config.tcp_bind {
        Some(base) => {
            let listener = std::net::TcpListener::bind(loop_addr(base, index)?)?;
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let cands = addrs::candidate_addrs(config, addr, addrs::interface_ips);
            (Some(listener), Some(addr), cands)
        }
        None => (None, None, Vec::new()),
    };
    Ok(LoopSockets {
        udp,
        udp_addr,
        candidates,
        tcp,
        tcp_addr,
        tcp_candidates,
    })
}

/// Runs the loop on a new OS thread named `sfu-loop-<index>`.
pub(crate) fn spawn(setup: LoopSetup) -> Result<(), SfuError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let index = setup.index;
    std::thread::Builder::new()
        .name(format!("sfu-loop-{index}"))
        .spawn(move || {
            runtime.block_on(async move {
                match MediaLoop::new(setup) {
                    Ok(media_loop) => media_loop.run().await,
                    Err(e) => tracing::error!(index, error = %e, "media loop failed to start"),
                }
            });
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::loop_addr;
    use std::net::SocketAddr;

    #[test]
    fn loops_take_consecutive_ports_or_port_zero() {
        let base: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert_eq!(loop_addr(base, 0).unwrap(), base);
        assert_eq!(loop_addr(base, 3).unwrap().port(), 40003);
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(loop_addr(any, 5).unwrap(), any);
        let top: SocketAddr = "127.0.0.1:65535".parse().unwrap();
        assert!(loop_addr(top, 1).is_err());
    }
}
