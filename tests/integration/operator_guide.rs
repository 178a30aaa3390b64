//! docs/operator-guide.md, carried out as written: every block marked `<!-- guide: ... -->` is
//! used as it stands in the guide. Files are written, `arclist` commands are run, and the zone
//! (with the record `keygen` printed) is served on loopback for `check-dns` and the server.
//! `/etc/arclist` and `/var/lib/arclist` move into a scratch folder, and the listeners onto free
//! loopback ports; nothing else changes.

use crate::docs_examples::words;
use crate::smtp_support::Client;
use arclist::auth::dns::{LoopbackDnsServer, Zone};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GUIDE: &str = include_str!("../../docs/operator-guide.md");

/// (marker, block text) for every marked fenced block, in order.
fn blocks() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = GUIDE.lines();
    while let Some(line) = lines.next() {
        let Some(marker) = line
            .trim()
            .strip_prefix("<!-- guide:")
            .and_then(|m| m.strip_suffix("-->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(fence.starts_with("```"), "a fence follows {line}");
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        out.push((marker.trim().to_string(), body.join("\n") + "\n"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_guide_works_as_written() {
    let root = tempfile::tempdir().expect("tempdir");
    let etc = root.path().join("etc");
    let var = root.path().join("var");
    std::fs::create_dir_all(&etc).expect("etc");
    std::fs::create_dir_all(&var).expect("var");
    let moved = |text: &str| {
        text.replace("/etc/arclist", &etc.display().to_string())
            .replace("/var/lib/arclist", &var.display().to_string())
    };
    let smtp = crate::smtp_support::private_listen_addr();
    let mut dns: Option<LoopbackDnsServer> = None;
    let mut printed_records = String::new();
    let mut ran = Vec::new();
    let mut served = false;
    for (marker, body) in blocks() {
        if marker == "zone" {
            let mut zone = Zone::new();
            zone.load_str(&format!("{body}{printed_records}"), "operator-guide.md")
                .expect("the guide's zone parses");
            dns = Some(LoopbackDnsServer::start(zone).await.expect("dns"));
        } else if let Some(path) = marker.strip_prefix("file ") {
            let path = moved(path);
            let mut text = moved(&body)
                .replace("0.0.0.0:25", &smtp.to_string())
                .replace("127.0.0.1:9425", "127.0.0.1:0");
            if path.ends_with("server.toml") {
                let dns = dns.as_ref().expect("the zone comes before the server file");
                text.push_str(&format!("\n[dns]\nnameservers = [\"{}\"]\n", dns.addr()));
            }
            let path = Path::new(&path);
            std::fs::create_dir_all(path.parent().expect("folder")).expect("folder");
            std::fs::write(path, text).expect("write the guide's file");
        } else if marker == "run" {
            for line in body.lines().filter(|l| l.starts_with("arclist ")) {
                let mut args: Vec<String> = words(&moved(line)).into_iter().skip(1).collect();
                if args[0] == "check-dns" {
                    let dns = dns.as_ref().expect("zone before check-dns");
                    args.extend(["--dns".to_string(), dns.addr().to_string()]);
                }
                if args[0] == "report" && !served {
                    post_and_stop(&etc, smtp).await;
                    served = true;
                }
                let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
                    .args(&args)
                    .output()
                    .await
                    .expect("arclist runs");
                let text = String::from_utf8_lossy(&out.stdout).into_owned()
                    + &String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "`{line}` failed:\n{text}");
                if args[0] == "keygen" {
                    printed_records.push_str(&String::from_utf8_lossy(&out.stdout));
                }
                ran.push((args[0].clone(), text));
            }
        }
    }
    let output = |cmd: &str| {
        ran.iter()
            .filter(|(c, _)| c == cmd)
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let check = output("check-dns");
    assert!(
        check.contains("0 would make receivers reject") && !check.contains("FAIL"),
        "the guide's DNS passes check-dns:\n{check}"
    );
    for what in ["key ", "spf ", "dmarc ", "mx ", "ptr "] {
        assert!(
            check
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(what)),
            "{what}: {check}"
        );
    }
    let report = output("report");
    assert!(
        report.contains("example.com") && report.contains("\"posts\": 1"),
        "the report counts the post made while serving:\n{report}"
    );
}

/// Serves the guide's configuration, posts as the member the guide added, and stops.
async fn post_and_stop(etc: &Path, addr: std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["serve", "--config"])
        .arg(etc.join("server.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    // The log says when the post has been through the pipeline.
    let (queued_tx, queued_rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("queued for delivery") {
                let _ = queued_tx.send(());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "arclist serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut c, _) = Client::connect(addr).await;
    assert_eq!(c.cmd("EHLO mail.example.com").await.0, 250);
    let message =
        b"From: Ann <ann@example.com>\r\nTo: members@lists.example.org\r\nSubject: Hello\r\n\
                    Message-ID: <guide@example.com>\r\n\r\nHello, list.\r\n";
    let (code, text) = c
        .post("ann@example.com", "members@lists.example.org", message)
        .await;
    assert_eq!(code, 250, "{text}");
    // Once the pipeline has queued it, stop as systemd would.
    tokio::task::spawn_blocking(move || queued_rx.recv_timeout(Duration::from_secs(20)))
        .await
        .expect("join")
        .expect("the post was queued");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "arclist did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
