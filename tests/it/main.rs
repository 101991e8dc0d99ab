//! The one integration-test binary: every test starts the real server (`App::build` on port 0,
//! fresh database) and talks to it over real HTTP, WebSocket and WebRTC.

mod support;

/// The webrtc-rs test peer shared with sfu/tests (loaded once: clippy::duplicate_mod).
#[allow(unused_imports)] // shared with sfu/tests, which use other parts
#[path = "../../sfu/tests/support/mod.rs"]
mod peer;

mod chat;
mod chat_crash;
mod conns;
mod csrf;
mod files;
mod guests;
mod http;
mod mail_crash;
mod media;
mod no_network;
mod pii;
mod probe;
mod reconnect;
mod screen_policy;
mod sessions;
mod turn;
mod ws;
