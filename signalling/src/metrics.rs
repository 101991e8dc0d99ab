//! Prometheus metrics of the signalling plane. Labels are low-cardinality only (never ids).

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::protocol::ErrorCode;
use crate::state::HubState;

/// Counters and gauges registered on the server's registry.
pub(crate) struct Metrics {
    pub connections: IntGauge,
    pub waiting: IntGauge,
    pub consultations: IntGauge,
    pub messages_in: IntCounter,
    pub slow_clients: IntCounter,
    /// Connectivity probes started, and those whose ICE + DTLS came up.
    pub probes_started: IntCounter,
    pub probes_connected: IntCounter,
    probes_running: IntGauge,
    errors: IntCounterVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: T) -> T {
    // Registering twice on one registry is a programming error in tests only; keep serving.
    if let Err(e) = registry.register(Box::new(c.clone())) {
        tracing::warn!(error = %e, "metric registration failed");
    }
    c
}

impl Metrics {
    pub fn register(registry: &Registry) -> Metrics {
        let gauge = |name: &str, help: &str| {
            register(registry, IntGauge::new(name, help).expect("valid metric"))
        };
        let counter = |name: &str, help: &str| {
            register(registry, IntCounter::new(name, help).expect("valid metric"))
        };
        Metrics {
            connections: gauge(
                "consultroom_signalling_connections",
                "Open signalling WebSocket connections",
            ),
            waiting: gauge(
                "consultroom_signalling_waiting_patients",
                "Patients currently in a waiting room",
            ),
            consultations: gauge(
                "consultroom_signalling_consultations",
                "Consultations in progress",
            ),
            messages_in: counter(
                "consultroom_signalling_messages_received_total",
                "Valid client messages received",
            ),
            slow_clients: counter(
                "consultroom_signalling_slow_clients_total",
                "Connections dropped because their outgoing queue was full",
            ),
            probes_started: counter(
                "consultroom_signalling_probes_started_total",
                "Connectivity probes started (loopback media sessions of the device check)",
            ),
            probes_connected: counter(
                "consultroom_signalling_probes_connected_total",
                "Connectivity probes whose ICE and DTLS connected",
            ),
            probes_running: gauge(
                "consultroom_signalling_probes_running",
                "Connectivity probes running now",
            ),
            errors: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "consultroom_signalling_errors_total",
                        "Error frames sent, by stable error code",
                    ),
                    &["code"],
                )
                .expect("valid metric"),
            ),
        }
    }

    pub fn error(&self, code: ErrorCode) {
        let label = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into());
        self.errors.with_label_values(&[label.as_str()]).inc();
    }

    pub fn observe(&self, state: &HubState) {
        self.waiting.set(state.waiting_patients() as i64);
        self.consultations.set(state.consultations() as i64);
        self.probes_running.set(state.probes_running() as i64);
    }
}
