//! A private rspamd from Debian's `rspamd` package for the tests: Debian's rules and
//! modules (`/etc/rspamd`), our own configuration folder, database folder and log, one normal
//! worker on a loopback address of this test process's own, and no controller, proxy or
//! fuzzy worker. Modules that need Redis turn themselves off without one. The DNS it asks is
//! the test's own server on loopback, so a scan never leaves the machine.
//!
//! Tests stop what they start: dropping an [`Rspamd`] stops it (SIGTERM, then SIGKILL), and a
//! small watcher (`sh`, detached) stops it if the test process dies without unwinding.
//! Compiled regular expressions are cached in the build's temporary folder, shared by every
//! instance, so only the first start of a build compiles them (about 10 s).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running rspamd.
pub struct Rspamd {
    /// Where its normal worker listens.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// Debian's rspamd binary (tests/interop/install.sh installs it).
const BINARY: &str = "/usr/bin/rspamd";

impl Rspamd {
    /// Starts an rspamd that asks `dns` (`host:port`) for DNS, and waits until it answers.
    pub fn start(dns: &str) -> Rspamd {
        Self::start_with(dns, "")
    }

    /// As [`Rspamd::start`], with `actions` (UCL: `rewrite_subject = -50;`) over Debian's
    /// action thresholds, so a clean message can be made to get an action of the test's choice.
    pub fn start_with(dns: &str, actions: &str) -> Rspamd {
        assert!(
            std::path::Path::new(BINARY).is_file(),
            "rspamd is installed (tests/interop/install.sh installs Debian's rspamd)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = crate::smtp_support::private_listen_addr();
        write_config(dir.path(), addr, dns);
        std::fs::write(dir.path().join("local.d/actions.conf"), actions).expect("actions.conf");
        let mut rspamd = Rspamd {
            addr,
            dir,
            child: None,
        };
        rspamd.resume();
        rspamd
    }

    /// The URL for `[filter] rspamd`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts it again (after [`Rspamd::stop`]) on the same address, and waits until it answers.
    pub fn resume(&mut self) {
        let d = self.dir.path();
        let var = |name: &str, sub: &str| format!("{name}={}", d.join(sub).display());
        let child = Command::new(BINARY)
            // -i: the tests may run as root, and rspamd's workers refuse root without it.
            .args(["-f", "-i", "-c"])
            .arg(d.join("rspamd.conf"))
            .args(["--var", &var("LOCAL_CONFDIR", "")])
            .args(["--var", &var("DBDIR", "db")])
            .args(["--var", &var("RUNDIR", "run")])
            .args(["--var", &var("LOGDIR", "log")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rspamd starts");
        watch(child.id());
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while !self.answers() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("rspamd exited ({status}): {}", self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "rspamd did not answer within 90 s: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether its normal worker answers `/ping`.
    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1))
        else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let asked = s.write_all(b"GET /ping HTTP/1.0\r\n\r\n").and_then(|_| {
            let mut answer = String::new();
            s.read_to_string(&mut answer).map(|_| answer)
        });
        asked.is_ok_and(|a| a.contains("pong"))
    }

    /// Stops it (SIGTERM, then SIGKILL after 10 s), and waits until it has exited.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The end of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("log/rspamd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops rspamd `pid` if this test process ends without dropping it (a SIGKILL, an abort):
/// `setsid -f` detaches the watcher, which checks every second and ends with rspamd.
fn watch(pid: u32) {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         kill -TERM {pid} 2>/dev/null; exit 0"
    );
    let _ = Command::new("setsid")
        .args(["-f", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Where compiled expressions are kept between instances and runs.
fn hs_cache() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rspamd-hs-cache");
    std::fs::create_dir_all(&dir).expect("hyperscan cache folder");
    dir
}

/// The configuration: Debian's rules and modules with our own folders, one normal worker on
/// `addr`, DNS from `dns`, and the `http_headers` module on, so arclist's own SPF, DKIM and
/// DMARC results stand in for rspamd's checks.
fn write_config(dir: &std::path::Path, addr: SocketAddr, dns: &str) {
    for sub in ["local.d", "db", "run", "log"] {
        std::fs::create_dir_all(dir.join(sub)).expect("rspamd folder");
    }
    let conf = format!(
        ".include \"$CONFDIR/common.conf\"\n\
         options {{\n  pidfile = \"$RUNDIR/rspamd.pid\";\n  .include \"$CONFDIR/options.inc\"\n  \
         .include(try=true; priority=1,duplicate=merge) \"$LOCAL_CONFDIR/local.d/options.inc\"\n}}\n\
         logging {{\n  type = \"file\";\n  filename = \"$LOGDIR/rspamd.log\";\n  level = \"info\";\n}}\n\
         worker \"normal\" {{\n  bind_socket = \"{addr}\";\n  .include \"$CONFDIR/worker-normal.inc\"\n  count = 1;\n}}\n"
    );
    std::fs::write(dir.join("rspamd.conf"), conf).expect("rspamd.conf");
    let options = format!(
        "hs_cache_dir = \"{}/\";\ndns {{\n  nameserver = [\"{dns}\"];\n  timeout = 1s;\n  retransmits = 1;\n}}\n",
        hs_cache().display()
    );
    std::fs::write(dir.join("local.d/options.inc"), options).expect("options.inc");
    std::fs::write(dir.join("local.d/http_headers.conf"), "enabled = true;\n")
        .expect("http_headers.conf");
}
