//! What the server benchmarks share: a free port, an SMTP client that pipelines, a list
//! server's files, and the `arclist serve` process with readings of its CPU time and memory
//! from /proc.

#![allow(dead_code)] // each benchmark uses its own part

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A port free on `ip` at the moment of asking.
/// The list the list benchmarks post to.
pub const LIST: &str = "members@lists.arclist.test";

/// A list server's files in `dir`: the server file (SMTP on `listen`, the store `store`, DNS
/// at `dns`, delivery to port `sink_port`, then `extra`) and a list file for [`LIST`] that
/// accepts anyone's post.
pub fn list_server_files(
    dir: &Path,
    listen: &str,
    store: &str,
    dns: SocketAddr,
    sink_port: u16,
    extra: &str,
) {
    std::fs::create_dir_all(dir.join("lists")).expect("lists dir");
    std::fs::write(
        dir.join("server.toml"),
        format!(
            "hostname = \"mx.arclist.test\"\nlisten = [\"{listen}\"]\nstore = \"{store}\"\n\
             lists_dir = \"lists\"\n[dns]\nnameservers = [\"{dns}\"]\ntimeout_secs = 5\n\
             [delivery]\nport = {sink_port}\ntimeout_secs = 30\n{extra}"
        ),
    )
    .expect("server.toml");
    std::fs::write(
        dir.join("lists/members.toml"),
        format!(
            "address = \"{LIST}\"\nnon_member_action = \"accept\"\n\
             max_posts_per_5min = 0\nmax_posts_per_sender_per_hour = 0\n\
             [signing]\nselector = \"arc1\"\nkey = \"../keys/arc1.pem\"\ncreate_key = true\n"
        ),
    )
    .expect("list file");
}

/// Imports `members` into [`LIST`] with `arclist member import`, as an operator would, before
/// the server in `dir` starts.
pub fn import_members(dir: &Path, members: &[String]) {
    std::fs::write(dir.join("members.txt"), members.join("\n") + "\n").expect("members");
    let ok = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["member", "import", LIST])
        .arg(dir.join("members.txt"))
        .arg("--config")
        .arg(dir.join("server.toml"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "member import failed");
}

/// A free TCP port on `ip`.
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind(format!("{ip}:0"))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"))
}

/// Reads one (possibly multi-line) reply and checks its code.
pub async fn expect<R: tokio::io::AsyncBufRead + Unpin>(io: &mut R, code: &str) {
    loop {
        let mut line = String::new();
        let n = io.read_line(&mut line).await.unwrap_or(0);
        assert!(n > 0, "connection closed waiting for {code}");
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes().get(3) == Some(&b' ') {
            return;
        }
    }
}

/// Sends one message with `rcpts` over SMTP to `addr`, pipelining the RCPTs (reading replies
/// while writing, so neither side blocks), and returns when the server said 250 to the data.
/// `mail_from` is everything after `MAIL FROM:`, parameters included.
pub async fn inject(addr: SocketAddr, mail_from: &str, rcpts: &[String], message: &[u8]) {
    inject_from(addr, None, mail_from, rcpts, message).await;
}

/// As [`inject`], from the loopback address `source` when given.
pub async fn inject_from(
    addr: SocketAddr,
    source: Option<&str>,
    mail_from: &str,
    rcpts: &[String],
    message: &[u8],
) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(source) = source {
        socket
            .bind(format!("{source}:0").parse().expect("source"))
            .expect("bind");
    }
    let stream = socket.connect(addr).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, "220").await;
    write
        .write_all(b"EHLO bench.arclist.test\r\n")
        .await
        .expect("write");
    expect(&mut read, "250").await;
    write
        .write_all(format!("MAIL FROM:{mail_from}\r\n").as_bytes())
        .await
        .expect("write");
    expect(&mut read, "250").await;
    let lines: Vec<u8> = rcpts
        .iter()
        .flat_map(|r| format!("RCPT TO:<{r}>\r\n").into_bytes())
        .collect();
    let writer = tokio::spawn(async move {
        write.write_all(&lines).await.expect("write");
        write
    });
    for _ in rcpts {
        expect(&mut read, "25").await;
    }
    let mut write = writer.await.expect("writer");
    write.write_all(b"DATA\r\n").await.expect("write");
    expect(&mut read, "354").await;
    // Stuffed and terminated with the `.` line.
    let data = arclist::stages::smtp::wire::dot_stuff(message);
    write.write_all(&data).await.expect("write");
    expect(&mut read, "250").await;
    let _ = write.write_all(b"QUIT\r\n").await;
}

/// Runs `arclist serve` with `config` and waits until it accepts connections at `addr`.
pub async fn serve(config: &Path, addr: SocketAddr) -> Child {
    // ARCLIST_BENCH_WRAP runs the server under a tool, e.g. "heaptrack -o /tmp/arclist".
    let wrap = std::env::var("ARCLIST_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(tool) => {
            let mut c = Command::new(tool);
            c.args(words).arg(env!("CARGO_BIN_EXE_arclist"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_arclist")),
    };
    let child = command
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("arclist serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "arclist did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

/// A 4 KB post: `header` (fields and the blank line) and lines of text up to the size.
pub fn four_kb(header: String) -> Vec<u8> {
    let mut m = header.into_bytes();
    while m.len() < 4096 {
        m.extend_from_slice(b"A line of a four kilobyte post, as lists carry them every day.\r\n");
    }
    m
}

/// Messages the sinks have received.
pub fn delivered(sinks: &[arclist_testbed::sink::Sink]) -> usize {
    sinks
        .iter()
        .map(|s| s.messages.load(std::sync::atomic::Ordering::Relaxed))
        .sum()
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces, so they
/// start after the last ')'): state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
/// A field that is not a number (the state) reads 0; a process gone reads as no fields.
fn stat_fields(pid: &str) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

/// The sum of `fields` numbered `which`: clock ticks, which Linux counts in 1/100 s (USER_HZ)
/// on every platform arclist runs on.
fn ticks(fields: &[u64], which: &[usize]) -> u64 {
    which.iter().filter_map(|i| fields.get(*i)).sum()
}

/// User plus system CPU time of the process and of its children, the live ones and the ended
/// ones it waited for: a PostgreSQL server's backends come and go as clients connect.
pub fn tree_cpu_time(pid: u32) -> Duration {
    let mut total = ticks(&stat_fields(&pid.to_string()), &[11, 12, 13, 14]);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let child = stat_fields(&name);
        if child.get(1) == Some(&u64::from(pid)) {
            total += ticks(&child, &[11, 12]);
        }
    }
    Duration::from_millis(total * 10)
}

/// User plus system CPU time the process has used.
pub fn cpu_time(pid: u32) -> Duration {
    Duration::from_millis(ticks(&stat_fields(&pid.to_string()), &[11, 12]) * 10)
}
