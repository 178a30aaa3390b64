//! A list that signs DKIM2 (`dkim2 = true`), over real sockets and DNS on loopback: the
//! author signs DKIM2, the list verifies that chain on arrival, records its subject tag and
//! footer in a Message-Instance with a Recipe, and signs each member's copy for that member's
//! transaction alone. `arclist verify` (and mail-auth 0.15.1, when its peer is built) checks
//! what each member received; a member's copy replayed to another member fails.

use crate::list_pipeline::{World, post, world, world_with};
use crate::smtp_support::LIST;
use crate::support::Dns;
use arclist::auth::dkim2::{Dkim2Envelope, Dkim2Signer, NewInstance};
use arclist::auth::signing_key::SigningKey;
use arclist::auth::unix_now;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `message` with `author`'s DKIM2 hop on top: signed by the author's domain (selector `d2`,
/// its key published in `dns`) for the transaction `author` → `to`.
pub(crate) fn author_signed(dns: &Dns, author: &str, to: &str, message: &[u8]) -> Vec<u8> {
    let (key, _) = SigningKey::generate_ed25519().expect("key");
    let domain = author.rsplit_once('@').map_or(author, |(_, d)| d);
    dns.publish_key("d2", domain, &key);
    let hop = Dkim2Envelope {
        mail_from: format!("<{author}>"),
        rcpt_to: vec![format!("<{to}>")],
    };
    let signed = Dkim2Signer::new(domain, "d2", Arc::new(key))
        .sign(message, &hop, NewInstance::Unchanged, None, unix_now())
        .expect("the author signs");
    signed.prepend_to(message)
}

/// What `member` received and the envelope sender it came with, waiting a bounded while.
async fn received_by(w: &World, member: &str) -> (String, Vec<u8>) {
    for _ in 0..800 {
        let got = w.sink.received.lock().expect("sink").clone();
        if let Some((from, _, data)) = got.into_iter().find(|(_, r, _)| r == member) {
            return (from, data);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{member} received nothing");
}

/// `arclist verify` of `copy` as delivered from `mail_from` to `rcpt`, with the keys `dns`
/// serves.
pub(crate) fn verify(dns: &Dns, dir: &Path, copy: &[u8], mail_from: &str, rcpt: &str) -> String {
    let file = dir.join(format!("{rcpt}-{}.eml", mail_from.len()));
    std::fs::write(&file, copy).expect("write copy");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(["verify", "--dns", &dns.addr()])
        .args(["--mail-from", mail_from, "--rcpt", rcpt])
        .arg(&file)
        .output()
        .expect("arclist runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// How many header fields of `copy` start with `field`.
pub(crate) fn count(copy: &str, field: &str) -> usize {
    let head = copy.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().filter(|l| l.starts_with(field)).count()
}

/// The mail-auth 0.15.1 peer that tests/interop/install.sh builds (as the engine's interop
/// test, `dkim2_chain.rs`, a missing peer is a failure, not a skip).
fn peer() -> PathBuf {
    let path = std::env::var_os("DKIM2_PEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/interop/dkim2-peer/target/release/dkim2-peer")
        });
    assert!(
        path.is_file(),
        "the mail-auth 0.15.1 peer is not built at {}: run tests/interop/install.sh",
        path.display()
    );
    path
}

fn peer_verifies(w: &World, peer: &Path, copy: &[u8], mail_from: &str, rcpt: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dns = w.t.dns.addr().to_string();
    let mut child = Command::new(peer)
        .args(["verify", "--dns", &dns, "--mail-from", mail_from])
        .args(["--rcpt", rcpt])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the peer starts");
    (child.stdin.take().expect("stdin"))
        .write_all(copy)
        .expect("writes");
    let out = child.wait_with_output().expect("the peer ends");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_gets_a_copy_dkim2_signed_for_them_that_verifies_back_to_the_author() {
    let w = world("subject_tag = \"[members] \"\nfooter = \"members list\"\ndkim2 = true").await;
    fans_out_signed_per_member(&w).await;
}

/// With one-click unsubscribe each member's copy carries its own List-Unsubscribe (a signed
/// field): the list's instance is redone for it, and the Recipe removes it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_copies_are_dkim2_signed_with_their_own_fields() {
    let http = "[http]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://lists.arclist.test\"\n";
    let list = "subject_tag = \"[members] \"\nfooter = \"members list\"\ndkim2 = true";
    let w = world_with(http, list).await;
    // Over BDAT (a connection with several transactions): each copy goes as its own fields
    // (signature, instance, one-click's) and the queued post without its prepared instance,
    // written together.
    w.sink
        .chunking
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for member in ["second@elsewhere.test", "third@elsewhere.test"] {
        w.t.add_member(member).await;
    }
    let copies = fans_out_signed_per_member(&w).await;
    assert!(w.sink.chunked.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    let unsubscribe = |copy: &[u8]| {
        let text = String::from_utf8_lossy(copy).into_owned();
        (text.lines())
            .find(|l| l.starts_with("List-Unsubscribe: "))
            .map(str::to_string)
            .expect("a List-Unsubscribe")
    };
    assert_ne!(unsubscribe(&copies[0].1), unsubscribe(&copies[1].1));
}

/// Posts bob's DKIM2-signed message and checks two members' copies; returns them with
/// their envelope senders.
async fn fans_out_signed_per_member(w: &World) -> Vec<(String, Vec<u8>)> {
    let message = author_signed(
        &w.t.dns,
        "bob@club.test",
        LIST,
        &post("Bob <bob@club.test>", "Plans", "line one\r\nline two\r\n"),
    );
    w.send("127.0.0.22", "mx.club.test", "bob@club.test", &message)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut copies = Vec::new();
    for member in ["alice@bank.test", "reader@elsewhere.test"] {
        let (mail_from, copy) = received_by(w, member).await;
        assert!(
            mail_from.starts_with("members-bounces+"),
            "VERP: {mail_from}"
        );
        let text = String::from_utf8_lossy(&copy).into_owned();
        assert_eq!(count(&text, "DKIM2-Signature:"), 2, "one per hop: {text}");
        assert_eq!(count(&text, "Message-Instance:"), 2, "{text}");
        assert!(text.contains("Subject: [members] Plans"), "{text}");
        assert!(text.contains("line two\r\n-- \r\nmembers list"), "{text}");
        // ARC and DKIM go on beside DKIM2 (one-click adds a DKIM signature per member).
        assert_eq!(count(&text, "ARC-Seal: i=1"), 1, "{text}");
        assert!(count(&text, "DKIM-Signature:") >= 1, "{text}");
        let said = verify(&w.t.dns, dir.path(), &copy, &mail_from, member);
        assert!(said.contains("dkim2=pass (2 hops"), "{member}: {said}");
        assert!(
            said.contains("the originator's instance (m=1) verified through every Recipe"),
            "{said}"
        );
        assert!(said.contains("recipe applied"), "{said}");
        let theirs = peer_verifies(w, &peer(), &copy, &mail_from, member);
        assert_eq!(theirs, "result=pass", "mail-auth on {member}'s copy");
        copies.push((mail_from, copy));
    }
    // Alice's copy, claimed to have been sent to the reader: a replay, refused.
    let (reader_from, _) = &copies[1];
    let said = verify(
        &w.t.dns,
        dir.path(),
        &copies[0].1,
        reader_from,
        "reader@elsewhere.test",
    );
    assert!(said.contains("dkim2=fail"), "{said}");
    assert!(said.contains("did not match"), "{said}");
    copies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_without_dkim2_adds_none() {
    let w = world("subject_tag = \"[members] \"").await;
    let message = author_signed(
        &w.t.dns,
        "bob@club.test",
        LIST,
        &post("Bob <bob@club.test>", "Plans", "text\r\n"),
    );
    w.send("127.0.0.22", "mx.club.test", "bob@club.test", &message)
        .await;
    let (_, copy) = received_by(&w, "alice@bank.test").await;
    let text = String::from_utf8_lossy(&copy).into_owned();
    assert_eq!(count(&text, "DKIM2-Signature:"), 1, "the author's only");
    assert_eq!(count(&text, "Message-Instance:"), 1, "{text}");
}

/// A post wrapped for DMARC (`wrap_message`) is a new message from the list, with the
/// author's signed post inside it unchanged: the list starts a DKIM2 chain of its own (first
/// hop, its From), signed for each member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_post_starts_a_chain_of_the_lists_own() {
    let list = "dkim2 = true\nmitigate = \"always\"\ndmarc_mitigation = \"wrap_message\"";
    let w = world(list).await;
    let message = author_signed(
        &w.t.dns,
        "bob@club.test",
        LIST,
        &post("Bob <bob@club.test>", "Wrapped", "text\r\n"),
    );
    w.send("127.0.0.22", "mx.club.test", "bob@club.test", &message)
        .await;
    let (mail_from, copy) = received_by(&w, "alice@bank.test").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let said = verify(&w.t.dns, dir.path(), &copy, &mail_from, "alice@bank.test");
    assert!(said.contains("dkim2=pass (1 hop"), "{said}");
    assert!(said.contains("i=1 d=lists.arclist.test"), "{said}");
    // The author's hop travels inside, untouched.
    let text = String::from_utf8_lossy(&copy).into_owned();
    assert!(text.contains("DKIM2-Signature: i=1; m=1;") && text.contains("d=club.test"));
}

/// A post that would start the chain (no DKIM2 on arrival) with a From outside the list's
/// domain (-09 §11) leaves sealed and DKIM-signed without DKIM2, and the post's note says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_hop_from_another_domain_leaves_without_dkim2_and_says_why() {
    let w = world("dkim2 = true").await;
    let unsigned = post("Bob <bob@club.test>", "First hop", "text\r\n");
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &unsigned)
        .await;
    let note = w.t.settled(id).await.note.unwrap_or_default();
    assert!(note.contains("not signing DKIM2"), "{note}");
    assert!(note.contains("From"), "{note}");
    let (_, copy) = received_by(&w, "alice@bank.test").await;
    let text = String::from_utf8_lossy(&copy).into_owned();
    assert_eq!(count(&text, "DKIM2-Signature:"), 0, "{text}");
    assert_eq!(count(&text, "DKIM-Signature:"), 1, "{text}");
}

/// A footer added to a base64 text post re-encodes its body: no copy range recreates the
/// received body, so the list signs no DKIM2 (rather than a Recipe that cannot recreate it)
/// and the post's note says why; ARC and DKIM still go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_encoded_body_leaves_without_dkim2_and_says_why() {
    let w = world("dkim2 = true\nfooter = \"members list\"").await;
    let base64 = format!(
        "From: Bob <bob@club.test>\r\nTo: {LIST}\r\nSubject: Encoded\r\n\
         Message-ID: <encoded@club.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         dGV4dAo=\r\n"
    );
    let message = author_signed(&w.t.dns, "bob@club.test", LIST, base64.as_bytes());
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", &message)
        .await;
    let note = w.t.settled(id).await.note.unwrap_or_default();
    assert!(
        note.contains("not signing DKIM2: the received body"),
        "{note}"
    );
    let (_, copy) = received_by(&w, "alice@bank.test").await;
    let text = String::from_utf8_lossy(&copy).into_owned();
    assert_eq!(
        count(&text, "DKIM2-Signature:"),
        1,
        "the author's only: {text}"
    );
    assert_eq!(count(&text, "Message-Instance:"), 1, "{text}");
    assert_eq!(count(&text, "DKIM-Signature:"), 1, "{text}");
}

/// A notice to one person (here the confirmation an `unsubscribe` asks for) is mail the list
/// wrote itself, from its own `-request` address: with `dkim2` on it starts a DKIM2 chain of
/// its own, signed for the one transaction it goes in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_to_one_person_is_a_first_dkim2_hop() {
    let w = world("dkim2 = true").await;
    let request = post("Bob <bob@club.test>", "unsubscribe", "bye\r\n");
    let requests = "members-request@lists.arclist.test";
    (w.send_to(
        "127.0.0.22",
        "mx.club.test",
        "bob@club.test",
        requests,
        &request,
    ))
    .await;
    let (mail_from, notice) = received_by(&w, "bob@club.test").await;
    assert_eq!(mail_from, "members-bounces@lists.arclist.test");
    let text = String::from_utf8_lossy(&notice).into_owned();
    assert!(text.starts_with("DKIM2-Signature: i=1; m=1;"), "{text}");
    assert_eq!(count(&text, "DKIM-Signature:"), 1, "DKIM beside it: {text}");
    let dir = tempfile::tempdir().expect("tempdir");
    let said = verify(&w.t.dns, dir.path(), &notice, &mail_from, "bob@club.test");
    assert!(said.contains("dkim2=pass (1 hop"), "{said}");
    assert!(said.contains("i=1 d=lists.arclist.test"), "{said}");
    let said = verify(&w.t.dns, dir.path(), &notice, &mail_from, "alice@bank.test");
    assert!(said.contains("dkim2=fail"), "a replay: {said}");
}
