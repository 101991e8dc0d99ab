//! A real SMTP server for the tests: aiosmtpd (PyPI, pinned in `tests/smtp/requirements.txt`,
//! installed into `tests/smtp/.venv` by `tests/smtp/setup.sh`) with the handler
//! `tests/smtp/test_handler.py`: a Maildir, plus 550 at RCPT for `reject…@` recipients and 451
//! at the first RCPT of each `tempfail…@` recipient.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The folder of the SMTP test files.
fn smtp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/smtp")
}

/// The venv's python, installing aiosmtpd on first use (once per test process).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let out = Command::new(smtp_dir().join("setup.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("running tests/smtp/setup.sh");
            assert!(out.status.success(), "tests/smtp/setup.sh failed");
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// A free TCP port on 127.0.0.1 (bound and released; nothing listens on it afterwards).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running aiosmtpd; dropped → killed, its Maildir removed.
pub struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the server on a free port.
    pub fn start() -> SmtpSink {
        Self::start_on(free_port())
    }

    /// Starts the server on `port` and waits (bounded) until it greets.
    pub fn start_on(port: u16) -> SmtpSink {
        let python = python();
        let dir = tempfile::Builder::new()
            .prefix("consultroom-smtp-")
            .tempdir()
            .expect("temp dir");
        let maildir = dir.path().join("maildir");
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "test_handler.TestHandler"])
            .arg(&maildir)
            .env("PYTHONPATH", smtp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting aiosmtpd");
        let mut sink = SmtpSink { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut greeting = [0u8; 3];
                if s.read_exact(&mut greeting).is_ok() && &greeting == b"220" {
                    break;
                }
            }
            if let Ok(Some(status)) = sink.child.try_wait() {
                panic!("aiosmtpd exited before it was ready: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd was not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `--smtp-url` that reaches it (no TLS).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Every message received so far, raw, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("maildir").join("new");
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&new)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                        Some((modified, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// The RCPT log: one `<code> <address>` line per RCPT the server answered.
    pub fn rcpt_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maildir").join("rcpt.log"))
            .unwrap_or_default()
    }

    /// Stops the server (e.g. to test a refused connection); the Maildir stays readable.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
