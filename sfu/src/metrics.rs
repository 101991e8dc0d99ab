//! Prometheus metrics of the media plane, registered on the caller's registry.
//!
//! Invariant: labels are low-cardinality constants (a drop reason), never room or participant
//! ids, addresses or anything else derived from a person.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::SfuError;

/// Why an inbound or outbound datagram was dropped (the `reason` label).
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
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            DropReason::Oversize => "oversize",
            DropReason::Garbage => "garbage",
            DropReason::Unroutable => "unroutable",
            DropReason::SendFailed => "send_failed",
        }
    }
}

/// Handles to every SFU metric.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub(crate) rooms: IntGauge,
    pub(crate) participants: IntGauge,
    pub(crate) packets_forwarded: IntCounter,
    pub(crate) bytes_forwarded: IntCounter,
    datagrams_dropped: IntCounterVec,
    /// Seconds from `join` to ICE + DTLS connected.
    pub(crate) connect_seconds: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them on `registry`.
    pub(crate) fn register(registry: &Registry) -> Result<Metrics, SfuError> {
        let metrics = Metrics {
            rooms: IntGauge::new(
                "consultroom_sfu_rooms",
                "Rooms with at least one participant",
            )
            .map_err(metrics_error)?,
            participants: IntGauge::new(
                "consultroom_sfu_participants",
                "Participants joined to a room on the media plane",
            )
            .map_err(metrics_error)?,
            packets_forwarded: IntCounter::new(
                "consultroom_sfu_packets_forwarded_total",
                "RTP packets sent to subscribers",
            )
            .map_err(metrics_error)?,
            bytes_forwarded: IntCounter::new(
                "consultroom_sfu_bytes_forwarded_total",
                "Bytes of RTP packets sent to subscribers (UDP payload)",
            )
            .map_err(metrics_error)?,
            datagrams_dropped: IntCounterVec::new(
                Opts::new(
                    "consultroom_sfu_datagrams_dropped_total",
                    "UDP datagrams dropped by the media loop",
                ),
                &["reason"],
            )
            .map_err(metrics_error)?,
            connect_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "consultroom_sfu_connect_seconds",
                    "Seconds from join to ICE and DTLS connected",
                )
                .buckets(vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0,
                ]),
            )
            .map_err(metrics_error)?,
        };
        registry
            .register(Box::new(metrics.rooms.clone()))
            .map_err(metrics_error)?;
        registry
            .register(Box::new(metrics.participants.clone()))
            .map_err(metrics_error)?;
        registry
            .register(Box::new(metrics.packets_forwarded.clone()))
            .map_err(metrics_error)?;
        registry
            .register(Box::new(metrics.bytes_forwarded.clone()))
            .map_err(metrics_error)?;
        registry
            .register(Box::new(metrics.datagrams_dropped.clone()))
            .map_err(metrics_error)?;
        registry
            .register(Box::new(metrics.connect_seconds.clone()))
            .map_err(metrics_error)?;
        Ok(metrics)
    }

    /// Counts one dropped datagram.
    pub(crate) fn dropped(&self, reason: DropReason) {
        self.datagrams_dropped
            .with_label_values(&[reason.label()])
            .inc();
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
