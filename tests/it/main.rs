//! The one integration-test binary: every test starts the real server (`App::build` on port 0,
//! fresh database) and talks to it over real HTTP, WebSocket and WebRTC.

mod support;

mod http;
mod media;
mod pii;
mod ws;
