//! Prometheus metrics of the media plane, registered on the caller's registry.
//!
//! Invariant: labels are low-cardinality constants (a drop reason, a direction, a loop index
//! bounded by the core count, an object kind), never room or participant ids, addresses or
//! anything else derived from a person.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use crate::SfuError;

/// Why an inbound or outbound datagram (or a media frame) was dropped (the `reason` label).
#[derive(Debug, Clone, Copy)]
pub(crate) enum DropReason {
    /// Inbound datagram larger than 1500 bytes.
    Oversize,
    /// Not STUN, DTLS, RTP or RTCP.
    Garbage,
    /// Well-formed but no participant claims it.
    Unroutable,
    /// Outbound datagram the socket would not take (full buffer or error).
    SendFailed,
    /// A frame a subscriber's `Rtc` would not queue (its send queue is full): a slow subscriber
    /// loses media instead of delaying anyone.
    SlowSubscriber,
    /// An outbound TCP frame whose connection's write queue was full.
    TcpQueueFull,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::Oversize => "oversize",
            DropReason::Garbage => "garbage",
            DropReason::Unroutable => "unroutable",
            DropReason::SendFailed => "send_failed",
            DropReason::SlowSubscriber => "slow_subscriber",
            DropReason::TcpQueueFull => "tcp_queue_full",
        }
    }
}

/// The `direction` label: media into the SFU or out of it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    In,
    Out,
}

impl Direction {
    fn label(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Handles to every SFU metric (shared by all loops; prometheus handles are atomic).
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) rooms: IntGauge,
    pub(crate) participants: IntGauge,
    pub(crate) packets_forwarded: IntCounter,
    pub(crate) bytes_forwarded: IntCounter,
    datagrams_dropped: IntCounterVec,
    /// Seconds from `join` to ICE + DTLS connected.
    pub(crate) connect_seconds: Histogram,
    packets: IntCounterVec,
    bytes: IntCounterVec,
    nacks: IntCounterVec,
    keyframe_requests: IntCounterVec,
    pub(crate) layer_switches: IntCounter,
    mline_changes: IntCounterVec,
    pub(crate) speaker_changes: IntCounter,
    pub(crate) rtt_seconds: Histogram,
    loss_ratio: HistogramVec,
    /// Receive → write of the forwarded frame, per down track.
    pub(crate) forward_latency_seconds: Histogram,
    /// Receive → hand-over to the socket, per forwarded RTP packet (after str0m's pacer).
    pub(crate) wire_latency_seconds: Histogram,
    loop_gauges: IntGaugeVec,
}

/// A per-loop gauge (`loop` label).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LoopGauge {
    Participants,
    Rooms,
    Sessions,
    PublishedTracks,
    DownTracks,
    TcpConnections,
}

impl LoopGauge {
    fn label(self) -> &'static str {
        match self {
            LoopGauge::Participants => "participants",
            LoopGauge::Rooms => "rooms",
            LoopGauge::Sessions => "sessions",
            LoopGauge::PublishedTracks => "published_tracks",
            LoopGauge::DownTracks => "down_tracks",
            LoopGauge::TcpConnections => "tcp_connections",
        }
    }
}

impl Metrics {
    /// Creates the metrics and registers them on `registry`.
    pub(crate) fn register(registry: &Registry) -> Result<Metrics, SfuError> {
        let e = metrics_error;
        let direction = &["direction"];
        let metrics = Metrics {
            rooms: IntGauge::new(
                "consultroom_sfu_rooms",
                "Rooms with at least one participant",
            )
            .map_err(e)?,
            participants: IntGauge::new(
                "consultroom_sfu_participants",
                "Participants joined to a room on the media plane",
            )
            .map_err(e)?,
            packets_forwarded: IntCounter::new(
                "consultroom_sfu_packets_forwarded_total",
                "RTP packets sent to subscribers",
            )
            .map_err(e)?,
            bytes_forwarded: IntCounter::new(
                "consultroom_sfu_bytes_forwarded_total",
                "Bytes of RTP packets sent to subscribers (UDP payload)",
            )
            .map_err(e)?,
            datagrams_dropped: IntCounterVec::new(
                Opts::new(
                    "consultroom_sfu_datagrams_dropped_total",
                    "Datagrams or media frames dropped by the media loops",
                ),
                &["reason"],
            )
            .map_err(e)?,
            connect_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "consultroom_sfu_connect_seconds",
                    "Seconds from join to ICE and DTLS connected",
                )
                .buckets(vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0,
                ]),
            )
            .map_err(e)?,
            packets: IntCounterVec::new(
                Opts::new(
                    "consultroom_sfu_rtp_packets_total",
                    "RTP packets received from publishers (in) and sent to subscribers (out)",
                ),
                direction,
            )
            .map_err(e)?,
            bytes: IntCounterVec::new(
                Opts::new(
                    "consultroom_sfu_rtp_bytes_total",
                    "Bytes of RTP packets received (in) and sent (out), transport payload",
                ),
                direction,
            )
            .map_err(e)?,
            nacks: IntCounterVec::new(
                Opts::new(
                    "consultroom_sfu_nacks_total",
                    "NACKs sent to publishers (in: about media coming in) and received from \
                     subscribers (out)",
                ),
                direction,
            )
            .map_err(e)?,
            keyframe_requests: IntCounterVec::new(
                Opts::new(
                    "consultroom_sfu_keyframe_requests_total",
                    "PLI/FIR sent upstream to publishers (in) and received from subscribers (out)",
                ),
                direction,
            )
            .map_err(e)?,
            layer_switches: IntCounter::new(
                "consultroom_sfu_layer_switches_total",
                "Simulcast layer switches completed on down tracks",
            )
            .map_err(e)?,
            mline_changes: IntCounterVec::new(
                Opts::new(
                    "consultroom_sfu_publisher_mline_changes_total",
                    "Direction changes of publishers' m-lines after they were first negotiated: \
                     sending again (publish) or no longer sending (unpublish)",
                ),
                &["change"],
            )
            .map_err(e)?,
            speaker_changes: IntCounter::new(
                "consultroom_sfu_active_speaker_changes_total",
                "Active speaker changes announced to rooms",
            )
            .map_err(e)?,
            rtt_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "consultroom_sfu_rtt_seconds",
                    "Round-trip time to peers, sampled from RTCP every stats interval",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
                ]),
            )
            .map_err(e)?,
            loss_ratio: HistogramVec::new(
                HistogramOpts::new(
                    "consultroom_sfu_loss_ratio",
                    "Packet loss fraction per peer, sampled every stats interval",
                )
                .buckets(vec![0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
                direction,
            )
            .map_err(e)?,
            forward_latency_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "consultroom_sfu_forward_latency_seconds",
                    "Time from receiving a media datagram to writing the forwarded frame to a \
                     down track",
                )
                .buckets(vec![
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                    0.1,
                ]),
            )
            .map_err(e)?,
            wire_latency_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "consultroom_sfu_wire_latency_seconds",
                    "Time from receiving a forwarded frame's first media datagram to handing each \
                     of its RTP packets to the socket (after packetizing and pacing; not \
                     retransmissions or padding)",
                )
                .buckets(vec![
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25,
                    0.5,
                ]),
            )
            .map_err(e)?,
            loop_gauges: IntGaugeVec::new(
                Opts::new(
                    "consultroom_sfu_loop_objects",
                    "What each media loop holds (participants, rooms, sessions, tracks, TCP \
                     connections)",
                ),
                &["loop", "kind"],
            )
            .map_err(e)?,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.rooms.clone()),
            Box::new(metrics.participants.clone()),
            Box::new(metrics.packets_forwarded.clone()),
            Box::new(metrics.bytes_forwarded.clone()),
            Box::new(metrics.datagrams_dropped.clone()),
            Box::new(metrics.connect_seconds.clone()),
            Box::new(metrics.packets.clone()),
            Box::new(metrics.bytes.clone()),
            Box::new(metrics.nacks.clone()),
            Box::new(metrics.keyframe_requests.clone()),
            Box::new(metrics.layer_switches.clone()),
            Box::new(metrics.mline_changes.clone()),
            Box::new(metrics.speaker_changes.clone()),
            Box::new(metrics.rtt_seconds.clone()),
            Box::new(metrics.loss_ratio.clone()),
            Box::new(metrics.forward_latency_seconds.clone()),
            Box::new(metrics.wire_latency_seconds.clone()),
            Box::new(metrics.loop_gauges.clone()),
        ];
        for c in collectors {
            registry.register(c).map_err(e)?;
        }
        Ok(metrics)
    }

    /// Counts one direction change of a publisher's m-line (`sending`: it sends now).
    pub(crate) fn mline_changed(&self, sending: bool) {
        let change = if sending { "publish" } else { "unpublish" };
        self.mline_changes.with_label_values(&[change]).inc();
    }

    /// Counts one dropped datagram.
    pub(crate) fn dropped(&self, reason: DropReason) {
        self.datagrams_dropped
            .with_label_values(&[reason.label()])
            .inc();
    }

    /// Counts one RTP packet of `len` bytes in `direction`.
    pub(crate) fn rtp(&self, direction: Direction, len: usize) {
        self.packets.with_label_values(&[direction.label()]).inc();
        self.bytes
            .with_label_values(&[direction.label()])
            .inc_by(len as u64);
    }

    /// Counts `n` NACKs in `direction`.
    pub(crate) fn nacks(&self, direction: Direction, n: u64) {
        if n > 0 {
            self.nacks.with_label_values(&[direction.label()]).inc_by(n);
        }
    }

    /// Counts a keyframe request in `direction`.
    pub(crate) fn keyframe_request(&self, direction: Direction) {
        self.keyframe_requests
            .with_label_values(&[direction.label()])
            .inc();
    }

    /// Records a loss fraction sample in `direction`.
    pub(crate) fn loss(&self, direction: Direction, fraction: f32) {
        self.loss_ratio
            .with_label_values(&[direction.label()])
            .observe(f64::from(fraction));
    }

    /// The gauge `kind` of loop `index`.
    pub(crate) fn loop_gauge(&self, index: usize, kind: LoopGauge) -> IntGauge {
        self.loop_gauges
            .with_label_values(&[&index.to_string(), kind.label()])
    }
}

// `SfuError` has no metrics variant (the contract is fixed); a registration clash is a
// start-up configuration error, reported as an IO-style error with the cause in the message.
fn metrics_error(e: prometheus::Error) -> SfuError {
    SfuError::Io(std::io::Error::other(format!("metrics registration: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_expected_names_and_refuses_double_registration() {
        let registry = Registry::new();
        let metrics = Metrics::register(&registry).expect("register");
        metrics.dropped(DropReason::Garbage);
        metrics.connect_seconds.observe(0.2);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        for expected in [
            "consultroom_sfu_rooms",
            "consultroom_sfu_participants",
            "consultroom_sfu_packets_forwarded_total",
            "consultroom_sfu_bytes_forwarded_total",
            "consultroom_sfu_datagrams_dropped_total",
            "consultroom_sfu_connect_seconds",
        ] {
            assert!(names.iter().any(|n| n == expected), "missing {expected}");
        }
        assert!(Metrics::register(&registry).is_err());
    }
}
