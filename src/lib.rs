//! The `consultroom` binary's library: configuration, composition of all parts into one
//! process, the embedded web client and the admin endpoints.

pub mod app;
pub mod chat;
pub mod clinic_metrics;
pub mod config;
pub mod csrf;
pub mod datadir;
pub mod ops;
pub mod serve;
pub mod web;
pub mod widget;

pub use app::App;

/// Install aws-lc-rs as the process-wide rustls crypto provider (see STACK.md). Idempotent.
pub fn init_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
