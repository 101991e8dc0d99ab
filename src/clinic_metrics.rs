//! Prometheus metrics read from the clinic on each scrape (the clinic crate has no registry):
//! the password-check pool's Argon2 runs and the logins it refused while full.

use consultroom_clinic::Clinic;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, Registry};

/// Registers the clinic's metrics on `registry`.
pub fn register(registry: &Registry, clinic: &Clinic) {
    let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
    let collector = PasswordChecks {
        clinic: clinic.clone(),
        runs: counter(
            "consultroom_clinic_password_checks_total",
            "Argon2 password checks and hashes run",
        ),
        refused: counter(
            "consultroom_clinic_password_checks_refused_busy_total",
            "Logins refused (429) without a check because every password-check slot was taken",
        ),
    };
    if let Err(e) = registry.register(Box::new(collector)) {
        tracing::warn!(error = %e, "metric registration failed");
    }
}

struct PasswordChecks {
    clinic: Clinic,
    runs: IntCounter,
    refused: IntCounter,
}

impl Collector for PasswordChecks {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.runs.desc();
        d.extend(self.refused.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = self.clinic.password_check_stats();
        for (counter, value) in [
            (&self.runs, stats.runs),
            (&self.refused, stats.refused_busy),
        ] {
            counter.reset();
            counter.inc_by(value);
        }
        let mut families = self.runs.collect();
        families.extend(self.refused.collect());
        families
    }
}
