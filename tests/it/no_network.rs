//! A machine with no network but loopback (issue #14): `consultroom demo` still starts and
//! offers media on 127.0.0.1, saying so; `consultroom serve` refuses with an error that names the
//! flag to change (`--media-announce`), not an internal type. Each runs in a fresh network
//! namespace that has only `lo` (the tests run as root, as scripts/test.sh does).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace with only `lo` up; removed on drop.
struct LoopbackOnly(String);

impl LoopbackOnly {
    fn new(tag: &str) -> Self {
        let name = format!("cr-nonet-{tag}-{}", std::process::id());
        let ok = |args: &[&str]| {
            let s = Command::new("ip")
                .args(args)
                .status()
                .expect("the ip command");
            assert!(s.success(), "ip {args:?} failed (needs root)");
        };
        ok(&["netns", "add", &name]);
        ok(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Self(name)
    }

    fn command(&self, args: &[&str], data_dir: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.0, env!("CARGO_BIN_EXE_consultroom")])
            .args(args)
            .args(["--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for LoopbackOnly {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn demo_offers_loopback_and_serve_names_the_flag() {
    let ns = LoopbackOnly::new("demo");
    let dir = tempfile::tempdir().unwrap();
    let mut demo = ns
        .command(
            &[
                "demo",
                "--media-bind",
                "0.0.0.0:0",
                "--demo-password",
                "no-network-demo-pw",
            ],
            dir.path(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Ready within a bounded time, with its note on stderr.
    let stdout = demo.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ready = None;
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && line.starts_with("consultroom ready ")
        {
            ready = Some(line);
            break;
        }
        if let Ok(Some(status)) = demo.try_wait() {
            let mut err = String::new();
            demo.stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("demo exited ({status}) before it was ready: {err}");
        }
    }
    demo.kill().unwrap();
    demo.wait().unwrap();
    let mut err = String::new();
    demo.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(ready.is_some(), "demo not ready within 60 s: {err}");
    assert!(
        err.contains("offers media on 127.0.0.1"),
        "the demo says what it announces: {err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = ns
        .command(&["serve", "--media-bind", "0.0.0.0:0"], dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--media-announce"), "names the flag: {err}");
    assert!(
        !err.contains("SfuConfig") && !err.contains("Io("),
        "no internal type: {err}"
    );
}
