//! A private network namespace for runs that include Janus.
//!
//! Janus (libnice) never gathers loopback candidates: in a namespace with only `lo` it fails with
//! "Gathering error", and in the default namespace it offers the machine's real addresses. So
//! Janus runs get a throw-away namespace with `lo` plus one veth pair (`lt0` with
//! 10.213.0.1/32, both ends inside the namespace) that leads nowhere else: Janus's ICE uses that address, every packet stays
//! inside the kernel of this namespace, and everything else still uses 127.0.0.1. The tool
//! re-executes itself inside the namespace and deletes it afterwards (needs root, as CI has).

use std::process::Command;

use anyhow::{Context, bail};

/// Set inside the namespace, so the child does not create another one.
const INSIDE: &str = "LOADTEST_IN_NETNS";
/// The dummy interface Janus is told to use.
pub const IFACE: &str = "lt0";
/// Its address; the peers talking to Janus bind to it too (str0m pairs no loopback candidate
/// with a non-loopback one).
pub const ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 213, 0, 1);

/// Whether this process already runs inside the tool's namespace.
pub fn inside() -> bool {
    std::env::var_os(INSIDE).is_some()
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new("ip")
        .args(args)
        .status()
        .context("running ip")?;
    if !st.success() {
        bail!("ip {} failed", args.join(" "));
    }
    Ok(())
}

/// Runs this executable with the same arguments inside a fresh namespace; returns its exit code.
pub fn reexec() -> anyhow::Result<i32> {
    let name = format!("cr-lt-{}", std::process::id());
    ip(&["netns", "add", &name])?;
    let result = (|| {
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"])?;
        let peer_end = "lt1";
        ip(&[
            "netns", "exec", &name, "ip", "link", "add", IFACE, "type", "veth", "peer", "name",
            peer_end,
        ])?;
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            "10.213.0.1/32",
            "dev",
            IFACE,
        ])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", IFACE, "up"])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", peer_end, "up"])?;
        let exe = std::env::current_exe()?;
        let st = Command::new("ip")
            .args(["netns", "exec", &name])
            .arg(exe)
            .args(std::env::args_os().skip(1))
            .env(INSIDE, "1")
            .status()?;
        Ok(st.code().unwrap_or(1))
    })();
    let _ = ip(&["netns", "del", &name]);
    result
}
