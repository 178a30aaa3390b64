//! The list archive, measured (`docs/archive.md`).
//!
//! A corpus shaped like a real list's history (50,000 posts over two years, threads of
//! replies quoting what they answer, 400 authors, 1 to 3 KB of text each; generated, so no
//! one's mail is kept in the repository) is imported with `arclist archive import` into a
//! fresh embedded store: messages per second and store bytes per message. Then `arclist serve`
//! answers 1,000 requests each for a month page, a thread page, a message page and a search,
//! one at a time over loopback: p50 and p95 of each, and the server's RSS.
//!
//! `cargo bench --bench archive` (50,000 posts), or `-- 5000` for another count.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{LIST, free_port, list_server_files, memory_kib, serve};

const WORDS: &[&str] = &[
    "release",
    "kernel",
    "patch",
    "build",
    "tests",
    "review",
    "merge",
    "branch",
    "driver",
    "memory",
    "network",
    "socket",
    "buffer",
    "thread",
    "signal",
    "config",
    "option",
    "default",
    "error",
    "warning",
    "crash",
    "fix",
    "regression",
    "bisect",
    "commit",
    "version",
    "upgrade",
    "package",
    "install",
    "library",
    "compile",
    "linker",
    "timeout",
    "latency",
    "queue",
    "lock",
    "mutex",
    "cache",
    "disk",
    "filesystem",
    "mount",
    "device",
    "firmware",
    "boot",
    "schedule",
    "meeting",
    "agenda",
    "minutes",
    "proposal",
    "vote",
    "document",
    "draft",
    "question",
    "answer",
];
const MONTHS: u64 = 24;
const START: u64 = 1_704_067_200; // 2024-01-01
const REQUESTS: usize = 1_000;

/// A small deterministic generator, so every run measures the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn words(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| WORDS[self.below(WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One generated post and what the requests need of it.
struct Post {
    message_id: String,
    thread_start: bool,
    subject: String,
}

/// An RFC 5322 date.
fn date(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let (y, m, d) = arclist::state::store::archive::civil(days);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    let s = t % 86_400;
    format!(
        "{d} {month} {y} {:02}:{:02}:{:02} +0000",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The corpus as an mbox file, and its posts.
fn corpus(count: usize) -> (Vec<u8>, Vec<Post>) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut posts: Vec<Post> = Vec::with_capacity(count);
    let mut file = Vec::with_capacity(count * 2_500);
    let span = MONTHS * 30 * 86_400;
    for n in 0..count {
        let at = START + span * n as u64 / count as u64;
        let author = rng.below(400);
        let message_id = format!("<{n}.{author}@bench.example.org>");
        let answers = (n > 0 && rng.below(10) >= 3).then(|| n - 1 - rng.below(n.min(200)));
        let (subject, fields, quote) = match answers {
            Some(p) => {
                let parent = &posts[p];
                (
                    format!("Re: {}", parent.subject.trim_start_matches("Re: ")),
                    format!("In-Reply-To: {0}\nReferences: {0}\n", parent.message_id),
                    format!("> {}\n> {}\n\n", rng.words(12), rng.words(10)),
                )
            }
            None => (
                format!("{} {}", rng.words(3), n),
                String::new(),
                String::new(),
            ),
        };
        let mut body = quote;
        for _ in 0..(15 + rng.below(30)) {
            body.push_str(&rng.words(9));
            body.push('\n');
        }
        let message = format!(
            "From: Author {author} <author{author}@d{}.example.org>\nTo: {LIST}\n\
             Subject: {subject}\nDate: {}\nMessage-ID: {message_id}\n{fields}\
             MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{body}",
            author % 20,
            date(at)
        );
        arclist::stages::list::archive::mbox::append(&mut file, "bench", at, message.as_bytes());
        posts.push(Post {
            message_id,
            thread_start: answers.is_none(),
            subject,
        });
    }
    (file, posts)
}

/// Makes the path of one request of a kind.
type PathOf<'a> = Box<dyn Fn(&mut Rng) -> String + 'a>;

/// One GET over a fresh connection: its time; the answer must be 200.
fn get(addr: SocketAddr, path: &str) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("answer");
    let took = started.elapsed();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{path}: {}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    took
}

/// p50 and p95 of `times`, in milliseconds.
fn percentiles(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    (at(0.50).as_secs_f64() * 1e3, at(0.95).as_secs_f64() * 1e3)
}

fn main() {
    let count = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let (listen, http) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
    let listen = format!("127.0.0.1:{listen}");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dns = rt
        .block_on(arclist::auth::dns::LoopbackDnsServer::start(
            arclist::auth::dns::Zone::new(),
        ))
        .expect("dns");
    let web = format!("127.0.0.1:{http}");
    let extra = format!("[http]\nlisten = \"{web}\"\nbase_url = \"http://{web}\"\n");
    list_server_files(dir.path(), &listen, "var/store.redb", dns.addr(), 9, &extra);
    let list_file = dir.path().join("lists/members.toml");
    let text = std::fs::read_to_string(&list_file).expect("list file");
    std::fs::write(&list_file, format!("archive = \"public\"\n{text}")).expect("list file");

    let (mbox, posts) = corpus(count);
    std::fs::write(dir.path().join("corpus.mbox"), &mbox).expect("corpus");
    println!(
        "archive: {count} posts, {:.1} MB of mbox",
        mbox.len() as f64 / 1e6
    );
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["archive", "import", LIST])
        .arg(dir.path().join("corpus.mbox"))
        .arg("--config")
        .arg(dir.path().join("server.toml"))
        .stderr(Stdio::null())
        .output()
        .expect("arclist archive import");
    let took = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let store = std::fs::metadata(dir.path().join("var/store.redb")).map_or(0, |m| m.len());
    println!("  {}", String::from_utf8_lossy(&out.stdout).trim());
    println!(
        "  import: {took:.1} s, {:.0} messages/s (target 1,000); store {:.1} MB, {:.0} bytes per message",
        count as f64 / took,
        store as f64 / 1e6,
        store as f64 / count as f64
    );

    let mut child = rt.block_on(serve(
        &dir.path().join("server.toml"),
        listen.parse().expect("addr"),
    ));
    let addr: SocketAddr = web.parse().expect("http addr");
    let base = format!("/archive/{LIST}/");
    let id = |mid: &str| arclist::state::store::archive::archive_id(LIST, mid);
    let threads: Vec<&Post> = posts.iter().filter(|p| p.thread_start).collect();
    let mut rng = Rng(7);
    let kinds: Vec<(&str, PathOf<'_>, f64)> = vec![
        (
            "month page",
            Box::new(|r: &mut Rng| {
                let m = r.below(MONTHS as usize);
                format!("{base}{}-{:02}/", 2024 + m / 12, m % 12 + 1)
            }),
            50.0,
        ),
        (
            "thread page",
            Box::new(|r: &mut Rng| {
                format!(
                    "{base}t/{}",
                    id(&threads[r.below(threads.len())].message_id)
                )
            }),
            50.0,
        ),
        (
            "message page",
            Box::new(|r: &mut Rng| {
                format!("{base}m/{}", id(&posts[r.below(posts.len())].message_id))
            }),
            50.0,
        ),
        (
            "search",
            Box::new(|r: &mut Rng| {
                format!(
                    "{base}?q={}+{}",
                    WORDS[r.below(WORDS.len())],
                    WORDS[r.below(WORDS.len())]
                )
            }),
            100.0,
        ),
    ];
    for (name, path, target) in &kinds {
        let times: Vec<Duration> = (0..REQUESTS).map(|_| get(addr, &path(&mut rng))).collect();
        let (p50, p95) = percentiles(times);
        println!("  {name:<13} p50 {p50:>6.2} ms   p95 {p95:>6.2} ms (target p95 < {target} ms)");
    }
    let pid = child.id();
    println!(
        "  server RSS {:.1} MiB (peak {:.1} MiB; target 300 MiB)",
        memory_kib(pid, "VmRSS") as f64 / 1024.0,
        memory_kib(pid, "VmHWM") as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
