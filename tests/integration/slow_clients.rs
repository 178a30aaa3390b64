//! Clients that hold what others need: sessions trickling commands or data, and transfers
//! filling the folder where large messages wait. Each is cut off or refused by a bound the
//! test sets short; none of them holds a session or disk space for the minutes the defaults of
//! other servers allow.

use crate::smtp_support::{Client, LIST, TestServer, dot_stuffed, message, set_server_key};
use std::time::Duration;

/// The bytes the files of `dir/var/incoming` hold, and how many there are.
fn incoming(dir: &std::path::Path) -> (u64, usize) {
    let files: Vec<u64> = std::fs::read_dir(dir.join("var/incoming"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "part"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .collect()
        })
        .unwrap_or_default();
    (files.iter().sum(), files.len())
}

/// Sends `bytes` one at a time, 200 ms apart, until the server says something (true) or
/// `bytes` runs out (false).
async fn trickle(c: &mut Client<tokio::net::TcpStream>, bytes: &[u8]) -> bool {
    for byte in bytes {
        if !c.try_send(&[*byte]).await {
            return true;
        }
        if c.heard_within(Duration::from_millis(200)).await {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_start_buys_no_long_stall_and_a_byte_at_a_time_does_not_extend_it() {
    // data_timeout_secs stays 300: only the stall credit may end this transfer.
    let t = TestServer::start("[limits]\ndata_stall_secs = 2\nmin_data_rate = 500\n").await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO fast-then-slow.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(c.cmd("DATA").await.0, 354);
    // 400 KB at once: by the average rate that pays for 800 s; then a byte every 200 ms.
    let start = message("burst", 400_000);
    c.send(&start).await;
    let filler = [b'x'; 150];
    assert!(
        trickle(&mut c, &filler).await,
        "still open after 150 bytes trickled over 30 s"
    );
    let (code, text) = c.reply().await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("too slowly"), "{text}");
    assert_eq!(c.reply().await.0, 0, "and the connection is closed");
    assert!(t.spool().await.is_empty(), "nothing was stored");
    // A transfer at an ordinary pace is not affected.
    let (mut fast, _) = Client::connect(t.smtp()).await;
    assert_eq!(fast.cmd("EHLO fast.test").await.0, 250);
    let (code, text) = fast
        .post("a@author.arclist.test", LIST, &message("fast", 3_000_000))
        .await;
    assert_eq!(code, 250, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_that_would_pass_the_incoming_quota_get_452_and_the_others_go_on() {
    let t = TestServer::start(
        "[limits]\nmax_message_size = 2000000\nincoming_quota = 3000000\ndata_stall_secs = 60\n",
    )
    .await;
    // A: 1.6 MB of a message, then a pause; it waits in a file.
    let (mut a, _) = Client::connect_from(t.smtp(), "127.0.0.31").await;
    assert_eq!(a.cmd("EHLO a.test").await.0, 250);
    assert_eq!(a.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(a.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    assert_eq!(a.cmd("DATA").await.0, 354);
    let a_message = dot_stuffed(&message("first", 1_600_000));
    let (a_start, a_end) = a_message.split_at(1_600_000);
    a.send(a_start).await;
    // Its two stuffed dots are not stored.
    let a_file = (1_600_000 - 2, 1);
    for _ in 0..400 {
        if incoming(t.dir.path()) == a_file {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(incoming(t.dir.path()), a_file, "A's file");
    // B: 1.9 MB, within max_message_size, but A's and B's files would pass 3 MB.
    let (mut b, _) = Client::connect_from(t.smtp(), "127.0.0.32").await;
    assert_eq!(b.cmd("EHLO b.test").await.0, 250);
    let (code, text) = b
        .post("a@author.arclist.test", LIST, &message("second", 1_900_000))
        .await;
    assert_eq!(code, 452, "{text}");
    assert!(text.starts_with("4.3.1"), "{text}");
    assert_eq!(
        incoming(t.dir.path()),
        a_file,
        "B's file is gone, A's is whole"
    );
    // A finishes: nothing of it was lost.
    a.send(a_end).await;
    let (code, text) = a.reply().await;
    assert_eq!(code, 250, "{text}");
    assert_eq!(incoming(t.dir.path()), (0, 0));
    let stored = t.spool().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, message("first", 1_600_000));
    // The quota was given back: B's retry goes through.
    let (code, text) = b
        .post("a@author.arclist.test", LIST, &message("second", 1_900_000))
        .await;
    assert_eq!(code, 250, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_sent_a_byte_at_a_time_is_cut_off_at_the_line_deadline() {
    // command_timeout_secs stays 300: each byte arrives well inside it.
    let t = TestServer::start("[limits]\ncommand_line_secs = 2\n").await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    let line = format!("EHLO {}\r\n", "a".repeat(150));
    assert!(
        trickle(&mut c, line.as_bytes()).await,
        "still open after 150 bytes over 30 s"
    );
    let (code, text) = c.reply().await;
    assert_eq!((code, text.get(..5)), (421, Some("4.4.2")), "{text}");
    assert!(text.contains("command line too slow"), "{text}");
    // Whole lines, however many, are not held to it.
    let (mut ok, _) = Client::connect(t.smtp()).await;
    assert_eq!(ok.cmd("EHLO ok.test").await.0, 250);
    assert_eq!(ok.cmd("NOOP").await.0, 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_without_a_message_end_within_the_command_phase_and_a_message_renews_it() {
    let t = TestServer::start("[limits]\ncommand_phase_secs = 3\n").await;
    // NOOP every 200 ms: each line whole and quick, but no message ever comes.
    let (mut idle, _) = Client::connect(t.smtp()).await;
    assert_eq!(idle.cmd("EHLO idle.test").await.0, 250);
    let mut last = (250, String::new());
    for _ in 0..100 {
        if idle.heard_within(Duration::from_millis(200)).await {
            last = idle.reply().await;
            break;
        }
        last = idle.cmd("NOOP").await;
        if last.0 != 250 {
            break;
        }
    }
    assert_eq!(last.0, 421, "still open after 20 s of NOOPs: {}", last.1);
    assert!(last.1.contains("without sending a message"), "{}", last.1);
    // A client that delivers gets its command time back after each message.
    let (mut busy, _) = Client::connect(t.smtp()).await;
    assert_eq!(busy.cmd("EHLO busy.test").await.0, 250);
    for n in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let tag = format!("renewed{n}");
        let (code, text) = busy
            .post("a@author.arclist.test", LIST, &message(&tag, 2_000))
            .await;
        assert_eq!(code, 250, "message {n}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_are_limited_per_address_block_over_real_sockets() {
    // Loopback IPv6 is one address (::1), so this checks the IPv6 path end to end; that every
    // address of one /64 counts as one is the unit test of `per_client::client_key`.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let t = TestServer::start_prepared("[limits]\nmax_connections_per_ip = 2\n", "", |dir| {
        set_server_key(dir, "listen", "[\"[::1]:0\"]")
    })
    .await;
    let connect = || async {
        let stream = tokio::net::TcpStream::connect(t.smtp())
            .await
            .expect("connect over ::1");
        let mut c = Client::new(stream);
        let greeting = c.reply().await;
        (c, greeting)
    };
    let (_a, first) = connect().await;
    let (_b, second) = connect().await;
    let (_, third) = connect().await;
    assert_eq!((first.0, second.0), (220, 220));
    assert_eq!(third.0, 421, "{}", third.1);
    assert!(third.1.contains("from your address"), "{}", third.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdat_chunks_share_one_stall_credit_so_a_byte_per_chunk_is_cut_off() {
    let t = TestServer::start("[limits]\ndata_stall_secs = 2\nmin_data_rate = 500\n").await;
    let (mut c, _) = Client::connect(t.smtp()).await;
    assert_eq!(c.cmd("EHLO chunky.test").await.0, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@author.arclist.test>").await.0, 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{LIST}>")).await.0, 250);
    // Each chunk: its command at once, then 1.5 s of silence before its one byte. Were the
    // credit new for every chunk, this would go on for max_session_secs.
    let mut answers = Vec::new();
    for _ in 0..6 {
        c.send(b"BDAT 1\r\n").await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        if !c.try_send(b"x").await {
            break;
        }
        let (code, text) = c.reply().await;
        answers.push(code);
        if code != 250 {
            assert!(text.contains("too slowly"), "{text}");
            break;
        }
    }
    assert_eq!(
        answers.last(),
        Some(&421),
        "the transaction's credit ran out: {answers:?}"
    );
    assert!(
        answers.len() <= 3,
        "cut off within three chunks: {answers:?}"
    );
}
