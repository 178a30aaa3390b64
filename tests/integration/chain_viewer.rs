//! The ARC chain viewer in a real browser: Debian's chromium, headless, opens the running
//! server's `/arc`, submits a message sealed by Microsoft and kernel.org the way a person would
//! (the form's own fields, posted as multipart), and the page it gets back is read and
//! compared with the verifier's verdicts. Screenshots of both pages are written to
//! `CARGO_TARGET_TMPDIR/screenshots/`.

use crate::smtp_support::TestServer;
use crate::support::conformance_data;
use arclist::auth::message::to_crlf;
use arclist::auth::unix_now;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const TOKEN: &str = "viewer-test-token-0123456789";

/// Debian's chromium, headless; `args` add `--dump-dom` or `--screenshot=...` and the URL.
pub(crate) async fn chromium(profile: &Path, args: &[String]) -> String {
    let out = tokio::process::Command::new("chromium")
        // Root in CI containers: the sandbox needs user namespaces it may not have.
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--virtual-time-budget=5000")
        .args(args)
        .output()
        .await
        .expect("chromium runs (CI installs Debian's chromium)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

/// What a person does: the message pasted into the form, the button pressed. The page is a
/// copy of the viewer's form (same action, fields and encoding) whose button a script presses.
pub(crate) fn submitting_page(dir: &Path, action: &str, message: &str) -> PathBuf {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let page = format!(
        "<!doctype html><form method=\"post\" action=\"{action}\" enctype=\"multipart/form-data\">\
         <textarea name=\"message\">\n{escaped}</textarea><button type=\"submit\">Verify</button></form>\
         <script>document.querySelector('button').click()</script>"
    );
    let path = dir.join("submit.html");
    std::fs::write(&path, page).expect("page");
    path
}

/// The status of a bare `GET path` with no token.
async fn status_without_token(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply).await;
    reply.lines().next().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_viewer_shows_where_a_real_chain_broke_in_a_real_browser() {
    let admin =
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\nchain_viewer = true\n";
    let t = TestServer::start_prepared(admin, "", |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("token")
    })
    .await;
    let data = conformance_data().join("real-arc");
    t.dns
        .server
        .with_zone(|z| z.load_file(&data.join("keys.zone")))
        .expect("zone")
        .expect("keys.zone parses");
    let addr = t.server.admin_addr().expect("admin listener");
    // The viewer needs no token; everything else on the listener still does.
    assert!(status_without_token(addr, "/arc").await.contains(" 200 "));
    assert!(
        status_without_token(addr, "/api/report")
            .await
            .contains(" 401 ")
    );
    // Open to anyone who reaches it, so a body it would not take is refused unread.
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"POST /arc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50000000\r\n\r\n")
        .await
        .expect("write");
    let mut reply = vec![0u8; 64];
    let n = s.read(&mut reply).await.expect("read");
    assert!(
        String::from_utf8_lossy(&reply[..n]).starts_with("HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&reply[..n])
    );

    let profile = tempfile::tempdir().expect("profile");
    let url = format!("http://{addr}/arc");
    let form = chromium(profile.path(), &["--dump-dom".into(), url.clone()]).await;
    for needle in [
        "<h1>ARC chain viewer</h1>",
        "<label for=\"message\">",
        "<textarea id=\"message\" name=\"message\">",
        "<label for=\"file\">",
        "<button type=\"submit\">",
    ] {
        assert!(
            form.contains(needle),
            "{needle} missing from the form:\n{form}"
        );
    }
    let shots = screenshots();
    chromium(
        profile.path(),
        &[
            format!(
                "--screenshot={}",
                shots.join("chain-viewer-form.png").display()
            ),
            "--window-size=1100,700".into(),
            url.clone(),
        ],
    )
    .await;

    let raw = std::fs::read_to_string(data.join("ocaml-arc-001.eml")).expect("message");
    let page = submitting_page(profile.path(), &url, &raw);
    let file_url = format!("file://{}", page.display());
    let result = chromium(profile.path(), &["--dump-dom".into(), file_url.clone()]).await;

    // What the verifier says of the same message, in-process, over the same DNS.
    let v = t
        .dns
        .authenticator()
        .verify(&to_crlf(raw.as_bytes()), None, unix_now())
        .await;
    assert_eq!(v.arc.verdict.as_str(), "fail");
    assert!(
        result.contains(&format!("arc={}", v.arc.verdict.as_str())),
        "{result}"
    );
    assert_eq!(
        result.matches("<tr class=\"hop\">").count(),
        3,
        "three hops: {result}"
    );
    for hop in &v.arc.hops {
        let row = format!(
            "<th scope=\"row\">{}</th>\n<td>{} / {}</td>",
            hop.instance, hop.domain, hop.selector
        );
        assert!(result.contains(&row), "{row} missing:\n{result}");
        assert!(result.contains(&format!(
            "class=\"{}\">{}",
            hop.seal.word(),
            hop.seal.word()
        )));
    }
    // The hop that broke it: kernel.org's seal at i=3, as `arclist verify` says.
    let broken = v
        .arc
        .hops
        .iter()
        .rev()
        .find(|h| h.seal.why().is_some() || h.cv == "fail")
        .expect("a broken hop");
    assert_eq!(
        (broken.instance, broken.domain.as_str()),
        (3, "subspace.kernel.org")
    );
    assert!(
        result.contains("The chain broke at i=3 (subspace.kernel.org):"),
        "{result}"
    );
    assert!(result.contains("DMARC:"), "{result}");
    chromium(
        profile.path(),
        &[
            format!(
                "--screenshot={}",
                shots.join("chain-viewer-result.png").display()
            ),
            "--window-size=1100,1400".into(),
            file_url,
        ],
    )
    .await;
    assert!(shots.join("chain-viewer-result.png").exists());
}
