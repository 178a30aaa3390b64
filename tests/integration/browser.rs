//! A real browser for the web tests: Debian's chromium, headless, driven over the DevTools
//! protocol (a WebSocket to one page): go to a URL, run a line of script as a person's hand
//! would (fill a field, press a button), read the page, take a screenshot.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One headless chromium and its first page.
pub struct Browser {
    child: tokio::process::Child,
    socket: Socket,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromium with a fresh profile.
    pub async fn start() -> Browser {
        let profile = tempfile::tempdir().expect("profile");
        let mut child = tokio::process::Command::new("chromium")
            // Root in CI containers: the sandbox needs user namespaces it may not have.
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .args(["--remote-debugging-port=0", "--window-size=1100,900"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium runs (CI installs Debian's chromium)");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                    return url.split('/').next().and_then(|p| p.parse::<u16>().ok());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("chromium says where DevTools listens");
        // Keep reading its log, or chromium blocks once the pipe is full.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let page = page_socket_url(port).await;
        let (socket, _) = tokio_tungstenite::connect_async(page.as_str())
            .await
            .expect("DevTools socket");
        Browser {
            child,
            socket,
            next: 0,
            _profile: profile,
        }
    }

    /// Sends one DevTools command and returns its result.
    async fn command(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let request = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket
            .send(Message::text(request))
            .await
            .expect("send");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("DevTools answers")
                .expect("socket open")
                .expect("frame");
            let Message::Text(text) = frame else { continue };
            let answer: Value = serde_json::from_str(&text).expect("json");
            if answer["id"] != id {
                continue;
            }
            let Some(error) = answer.get("error") else {
                return answer["result"].clone();
            };
            // A script run while the page is being replaced (a click that submits a form, a
            // poll during a redirect) is cut short with the old page: that is the navigation
            // the caller waits for next, not a failure.
            let navigating = error["message"]
                .as_str()
                .is_some_and(|m| m.contains("navigated or closed"));
            assert!(
                navigating && method == "Runtime.evaluate",
                "{method}: {answer}"
            );
            return Value::Null;
        }
    }

    /// Runs `script` in the page; its value.
    pub async fn eval(&mut self, script: &str) -> Value {
        let result = self
            .command(
                "Runtime.evaluate",
                json!({ "expression": script, "returnByValue": true }),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Goes to `url`; [`Browser::settle`] then waits for wherever it leads.
    pub async fn go(&mut self, url: &str) {
        self.command("Page.navigate", json!({ "url": url })).await;
    }

    /// Waits until the page at exactly `url` has loaded (after a click that submits a form or
    /// a redirect, say).
    pub async fn settle(&mut self, url: &str) {
        let mut seen = String::new();
        for _ in 0..200 {
            let state = self.eval("document.readyState + ' ' + location.href").await;
            seen = state.as_str().unwrap_or_default().to_string();
            if seen == format!("complete {url}") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page at {url} did not load (last: {seen})");
    }

    /// Waits until the page's visible text holds `needle` (a form posted back to the same
    /// URL leaves no new address to wait for); the text.
    pub async fn wait_for_text(&mut self, needle: &str) -> String {
        let mut text = String::new();
        for _ in 0..200 {
            text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never showed {needle:?}: {text}");
    }

    /// The page's visible text.
    pub async fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Writes a PNG of the page to `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let shot = self
            .command(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("data"))
            .expect("base64");
        std::fs::write(path, png).expect("screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The DevTools WebSocket of the browser's first page, from its `/json/list`.
async fn page_socket_url(port: u16) -> String {
    for _ in 0..100 {
        if let Some(body) = json_list(port).await
            && let Ok(Value::Array(targets)) = serde_json::from_str::<Value>(&body)
            && let Some(url) = targets
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        {
            return url.to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromium lists no page");
}

/// The body of DevTools' `GET /json/list` (HTTP/1.1: it answers nothing to 1.0, and keeps the
/// connection open, so the body is read by its length).
async fn json_list(port: u16) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    // DevTools answers only a Host naming its own address and port.
    let request = format!("GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    s.write_all(request.as_bytes()).await.ok()?;
    let mut io = BufReader::new(s);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; length];
    io.read_exact(&mut body).await.ok()?;
    String::from_utf8(body).ok()
}
