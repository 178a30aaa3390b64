//! The list archive as readers meet it: a delivered copy's `Archived-At` and `List-Archive`
//! URLs answer on the `[http]` listener, its thread and search find it, the month's mbox and
//! the Atom feed parse (Python's `mailbox` and `xml`), a hostile post renders as text in a
//! real browser, and an owner's removal outlives a restart.

use crate::list_pipeline::{World, post, world_with};
use crate::one_click::curl;
use crate::smtp_support::until;

const HTTP: &str = "[http]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://lists.arclist.test\"\n";
const BASE: &str = "https://lists.arclist.test";

/// The values of field `name` in `copy`'s header.
fn field(copy: &str, name: &str) -> Vec<String> {
    copy.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::to_string)
        .collect()
}

/// `url` (under [`BASE`], in angle brackets or not) on the test's own listener.
fn local(w: &World, url: &str) -> String {
    let web = w.t.server.web_addr().expect("http listener");
    let url = url.trim_matches(|c| c == '<' || c == '>');
    format!("http://{web}{}", url.trim_start_matches(BASE))
}

/// Sends `message` from bob@club.test (SPF pass, p=none) and returns the queued copy, checked
/// as a member's server would: ARC and the list's DKIM signature pass, the archive's fields
/// included (they are added before sealing and signing). With one-click on, each member's copy
/// adds its own fields on top of this one.
async fn from_bob(w: &World, message: &[u8]) -> String {
    let id = w
        .send("127.0.0.22", "mx.club.test", "bob@club.test", message)
        .await;
    let meta = w.t.settled(id).await;
    assert_eq!(
        meta.state,
        arclist::state::store::SpoolState::Queued,
        "{:?}",
        meta.note
    );
    let store = w.t.server.store();
    let (_, copy) = store.queued(id).await.expect("store").expect("queued");
    let receiver = arclist::auth::Envelope {
        ip: "127.0.0.1".parse().expect("ip"),
        helo: "lists.arclist.test".into(),
        mail_from: "members-bounces@lists.arclist.test".into(),
    };
    let v =
        w.t.dns
            .authenticator()
            .verify(&copy, Some(&receiver), arclist::auth::unix_now())
            .await;
    assert_eq!(v.arc.verdict.as_str(), "pass", "{}", v.arc.reason);
    assert!(
        v.dkim
            .iter()
            .any(|d| d.domain == "lists.arclist.test" && d.verdict.as_str() == "pass"),
        "{:?}",
        v.dkim
    );
    String::from_utf8(copy).expect("utf-8 copy")
}

/// Waits until `url` answers 200; its body.
async fn answered(url: &str) -> String {
    let mut body = String::new();
    until(&format!("{url} answers 200"), async || {
        let (code, text) = curl(&[], url).await;
        body = text;
        code == 200
    })
    .await;
    body
}

/// What Python makes of `bytes` with `script` (reading the bytes from standard input).
async fn python(script: &str, bytes: &[u8]) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(bytes).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("python3 ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const MBOX_IDS: &str = "import mailbox, sys, tempfile\n\
f = tempfile.NamedTemporaryFile(delete=False); f.write(sys.stdin.buffer.read()); f.close()\n\
print(' '.join(sorted(m['Message-ID'] for m in mailbox.mbox(f.name))))";

const ATOM_TITLES: &str = "import sys, xml.etree.ElementTree as ET\n\
ns = {'a': 'http://www.w3.org/2005/Atom'}\n\
root = ET.fromstring(sys.stdin.buffer.read())\n\
print('|'.join(e.find('a:title', ns).text for e in root.findall('a:entry', ns)))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_post_is_archived_threaded_found_and_exported() {
    let w = world_with(HTTP, "archive = \"public\"\n").await;
    let first = post(
        "Bob <bob@club.test>",
        "Garden plans",
        "We plant zucchini in May.\r\n",
    );
    let copy = from_bob(&w, &first).await;
    let list_archive = field(&copy, "List-Archive");
    let archived_at = field(&copy, "Archived-At");
    assert_eq!(
        list_archive,
        vec![format!("<{BASE}/archive/members@lists.arclist.test/>")]
    );
    assert_eq!(archived_at.len(), 1, "one Archived-At");
    let page = answered(&local(&w, &archived_at[0])).await;
    assert!(
        page.contains("Garden plans") && page.contains("zucchini"),
        "{page}"
    );
    assert!(
        page.contains("Bob") && !page.contains("bob@club.test"),
        "address shown: {page}"
    );

    // A reply, by In-Reply-To, joins the thread.
    let mid = String::from_utf8_lossy(&first)
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_string))
        .expect("Message-ID");
    let reply = String::from_utf8(post(
        "Bob <bob@club.test>",
        "Re: Garden plans",
        "And beans.\r\n",
    ))
    .expect("utf-8")
    .replacen(
        "MIME-Version",
        &format!("In-Reply-To: {mid}\r\nMIME-Version"),
        1,
    )
    // An hour later, so the feed's order (newest first) is certain.
    .replacen("10:00:00", "11:00:00", 1);
    let reply_copy = from_bob(&w, reply.as_bytes()).await;
    let reply_at = field(&reply_copy, "Archived-At");
    answered(&local(&w, &reply_at[0])).await;

    // The List-Archive URL lists the month; the month lists the post in its thread.
    let home = answered(&local(&w, &list_archive[0])).await;
    assert!(home.contains("2026-11/"), "{home}");
    let month = answered(&format!("{}2026-11/", local(&w, &list_archive[0]))).await;
    let post_id = archived_at[0]
        .trim_end_matches('>')
        .rsplit('/')
        .next()
        .expect("id");
    assert!(month.contains(&format!("m/{post_id}")), "{month}");
    // minijinja escapes the `/` of the values it writes into the page.
    let month = month.replace("&#x2f;", "/");
    let thread_link = month
        .split("href=\"")
        .find(|s| s.contains("/t/"))
        .and_then(|s| s.split('"').next())
        .expect("a thread link");
    let web = w.t.server.web_addr().expect("http");
    let thread = answered(&format!("http://{web}{thread_link}")).await;
    assert!(
        thread.contains("Garden plans") && thread.contains("Re: Garden plans"),
        "{thread}"
    );

    // Search by a word of the body.
    let found = answered(&format!("{}?q=Zucchini", local(&w, &list_archive[0]))).await;
    assert!(found.contains(&format!("m/{post_id}")), "{found}");

    // The month's mbox holds both posts and parses; the feed parses.
    let mbox_url = format!("{}2026-11.mbox", local(&w, &list_archive[0]));
    assert!(month.contains("2026-11.mbox"), "the month links its mbox");
    let mbox = reqwest_bytes(&mbox_url).await;
    let ids = python(MBOX_IDS, &mbox).await;
    let reply_mid = reply
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .expect("reply id");
    let mut want = [mid.clone(), reply_mid.to_string()];
    want.sort();
    assert_eq!(ids, want.join(" "));
    let feed = reqwest_bytes(&format!("{}atom.xml", local(&w, &list_archive[0]))).await;
    assert_eq!(
        python(ATOM_TITLES, &feed).await,
        "Re: Garden plans|Garden plans"
    );
}

/// The body of `url`, which must answer 200, as bytes.
async fn reqwest_bytes(url: &str) -> Vec<u8> {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-S", "--fail", "--max-time", "10", url])
        .output()
        .await
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owners_removal_outlives_a_restart_and_a_members_archive_is_not_public() {
    let w = world_with(HTTP, "archive = \"public\"\n").await;
    let copy = from_bob(
        &w,
        &post(
            "Bob <bob@club.test>",
            "Oops",
            "My phone number, secretword.\r\n",
        ),
    )
    .await;
    let archived_at = field(&copy, "Archived-At").remove(0);
    answered(&local(&w, &archived_at)).await;
    let id = archived_at
        .trim_end_matches('>')
        .rsplit('/')
        .next()
        .expect("id")
        .to_string();
    let list = "members@lists.arclist.test";
    let store = w.t.server.store();
    let thread = store
        .archived(list, &id)
        .await
        .expect("store")
        .expect("kept")
        .thread;
    assert!(store.remove_archived(list, &id).await.expect("remove"));
    drop(store);
    let w = w.restart_after(async |_| {}).await;
    let (code, page) = curl(&[], &local(&w, &archived_at)).await;
    assert_eq!(code, 410, "{page}");
    assert!(
        page.contains("removed") && !page.contains("secretword"),
        "{page}"
    );
    let home = local(&w, &format!("{BASE}/archive/{list}/"));
    let thread_page = answered(&format!("{home}t/{thread}")).await;
    assert!(thread_page.contains("removed by the list"), "{thread_page}");
    let found = answered(&format!("{home}?q=secretword")).await;
    assert!(!found.contains(&id), "{found}");
    let mbox = reqwest_bytes(&format!("{home}2026-11.mbox")).await;
    assert!(mbox.is_empty(), "{}", String::from_utf8_lossy(&mbox));

    // A members-only archive: 404 to readers who cannot sign in.
    let w = w
        .restart_after(async |dir| {
            let file = dir.with_file_name("lists").join("test.toml");
            let text = std::fs::read_to_string(&file).expect("list file");
            std::fs::write(
                &file,
                text.replace("archive = \"public\"", "archive = \"members\""),
            )
            .expect("write");
        })
        .await;
    let home = local(&w, &format!("{BASE}/archive/{list}/"));
    assert_eq!(curl(&[], &home).await.0, 404);

    // A member who opens the settings link the list's page mails is signed in: that link's
    // token comes back as the reader cookie, and the archive answers.
    let secret = w.t.server.store().token_secret().await.expect("secret");
    let link = |address: &str| {
        arclist::stages::list::tokens::seal_link(
            &secret,
            arclist::stages::list::tokens::LinkUse::Settings,
            list,
            address,
            arclist::auth::unix_now(),
        )
        .expect("token")
    };
    let token = link("bob@club.test");
    let settings = local(&w, &format!("{BASE}/lists/{list}/settings/{token}"));
    let (code, head) = curl(&["-D", "-", "-o", "/dev/null"], &settings).await;
    assert_eq!(code, 200, "{head}");
    let cookie = format!("arclist_reader={token}; Path=/archive/; HttpOnly; SameSite=Lax");
    assert!(
        head.contains(&cookie) && head.contains("; Secure"),
        "{head}"
    );
    let signed_in = format!("Cookie: arclist_reader={token}");
    let (code, page) = curl(&["-H", &signed_in], &home).await;
    assert_eq!(code, 200, "a member reads the archive: {page}");
    // Not a member's link, a made-up cookie, or a member who left: 404 again.
    let stranger = format!("Cookie: arclist_reader={}", link("stranger@elsewhere.test"));
    assert_eq!(curl(&["-H", &stranger], &home).await.0, 404);
    assert_eq!(
        curl(&["-H", "Cookie: arclist_reader=forged"], &home)
            .await
            .0,
        404
    );
    let store = w.t.server.store();
    store
        .remove_member(
            list,
            "bob@club.test",
            arclist::state::store::Departure::now(arclist::state::store::DepartureReason::Removed),
        )
        .await
        .expect("remove");
    assert_eq!(
        curl(&["-H", &signed_in], &home).await.0,
        404,
        "left: out at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_post_renders_as_text_in_a_real_browser() {
    let w = world_with(HTTP, "archive = \"public\"\narchive_noindex = true\n").await;
    let hostile = String::from_utf8(post(
        "Bob <bob@club.test>",
        "<script>window.pwned=1</script> <img src=x onerror=window.pwned=2>",
        "<html><body><p>Hello &lt;script&gt;window.pwned=3&lt;/script&gt; onerror=</p>\
         <script>window.pwned=4</script><img src=x onerror=\"window.pwned=5\"></body></html>\r\n",
    ))
    .expect("utf-8")
    .replace("text/plain", "text/html");
    let copy = from_bob(&w, hostile.as_bytes()).await;
    let url = local(&w, &field(&copy, "Archived-At")[0]);
    answered(&url).await;
    let (_, head) = curl(&["-D", "-", "-o", "/dev/null"], &url).await;
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'")
            && head.contains("x-robots-tag: noindex"),
        "{head}"
    );
    let mut b = crate::browser::Browser::start().await;
    b.go(&url).await;
    b.settle(&url).await;
    let text = b.wait_for_text("onerror=").await;
    assert!(
        text.contains("<script>window.pwned=1</script>"),
        "subject as text: {text}"
    );
    assert!(
        text.contains("Hello <script>window.pwned=3</script> onerror="),
        "body as text: {text}"
    );
    let ran = b.eval("typeof window.pwned").await;
    assert_eq!(ran.as_str(), Some("undefined"), "a script ran");
    let elements = b
        .eval("document.querySelectorAll('script, img, iframe, [onerror]').length")
        .await;
    assert_eq!(
        elements.as_i64(),
        Some(0),
        "markup from the post reached the page"
    );
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    b.screenshot(&shots.join("archive-hostile.png")).await;
}

/// An mbox as Mailman 2's pipermail writes one: a post, a reply quoting a `From ` line, and
/// a message without a Message-ID.
const HISTORY: &str = "From ann at example.org  Mon Mar  2 09:00:00 2015\n\
From: ann at example.org (Ann)\n\
Date: Mon, 2 Mar 2015 09:00:00 +0000\n\
Subject: [members] Old times\n\
Message-ID: <old-1@example.org>\n\
\n\
The first post, about rhubarb.\n\
\n\
From bob at example.org  Mon Mar  2 10:00:00 2015\n\
From: Bob <bob@example.org>\n\
Date: Mon, 2 Mar 2015 10:00:00 +0000\n\
Subject: Re: [members] Old times\n\
In-Reply-To: <old-1@example.org>\n\
Message-ID: <old-2@example.org>\n\
\n\
>From what I remember, rhubarb.\n\
\n\
From nobody  Mon Mar  2 11:00:00 2015\n\
From: Cy <cy@example.org>\n\
Subject: no id\n\
\n\
lost\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arclist_archive_imports_once_exports_and_removes_from_the_command_line() {
    use crate::support::arclist_cli;
    let w = world_with(HTTP, "archive = \"public\"\n").await;
    let list = "members@lists.arclist.test";
    let mut said = Vec::new();
    let w = w
        .restart_after(async |config| {
            let file = config.with_file_name("history.mbox");
            std::fs::write(&file, HISTORY).expect("mbox");
            let path = file.to_str().expect("utf-8 path");
            for _ in 0..2 {
                said.push(arclist_cli(config, &["archive", "import", list, path]));
            }
            said.push(arclist_cli(
                config,
                &["archive", "export", list, "--month", "2015-03"],
            ));
        })
        .await;
    let (ok, first) = &said[0];
    assert!(ok, "{first}");
    assert!(
        first.contains("3 message(s) read, 2 archived, 0 archived before, 1 not readable")
            && first.contains("message 3: no Message-ID"),
        "{first}"
    );
    let (ok, second) = &said[1];
    assert!(
        *ok && second.contains("0 archived, 2 archived before"),
        "{second}"
    );
    let (ok, exported) = &said[2];
    assert!(ok, "{exported}");
    assert_eq!(
        python(MBOX_IDS, exported.as_bytes()).await,
        "<old-1@example.org> <old-2@example.org>"
    );
    assert!(
        exported.contains("\n>From what I remember"),
        "mboxrd quoting: {exported}"
    );

    // The imported posts are served, threaded, and found.
    let home = local(&w, &format!("{BASE}/archive/{list}/"));
    let month = answered(&format!("{home}2015-03/")).await;
    assert!(month.contains("Old times"), "{month}");
    let found = answered(&format!("{home}?q=rhubarb")).await;
    let old_2 = arclist::state::store::archive::archive_id(list, "<old-2@example.org>");
    assert!(found.contains(&old_2), "{found}");
    let store = w.t.server.store();
    let reply = store
        .archived(list, &old_2)
        .await
        .expect("store")
        .expect("kept");
    let old_1 = arclist::state::store::archive::archive_id(list, "<old-1@example.org>");
    assert_eq!(reply.parent.as_deref(), Some(old_1.as_str()));
    drop(store);

    // An owner takes the reply out by its Message-ID.
    let mut said = Vec::new();
    let w = w
        .restart_after(async |config| {
            said.push(arclist_cli(
                config,
                &["archive", "remove", list, "<old-2@example.org>"],
            ));
            said.push(arclist_cli(config, &["archive", "export", list]));
        })
        .await;
    assert!(
        said[0].0 && said[0].1.contains("removed from the archive"),
        "{}",
        said[0].1
    );
    assert!(!said[1].1.contains("old-2@example.org"), "{}", said[1].1);
    let home = local(&w, &format!("{BASE}/archive/{list}/"));
    let found = answered(&format!("{home}?q=remember")).await;
    assert!(!found.contains(&old_2), "{found}");
    drop(w);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_archiving_did_not_happen_is_archived_from_the_store_at_start() {
    let w = world_with(HTTP, "").await;
    let copy = from_bob(
        &w,
        &post("Bob <bob@club.test>", "Before", "Kept in the queue.\r\n"),
    )
    .await;
    assert!(
        field(&copy, "Archived-At").is_empty(),
        "no archive, no field"
    );
    let id = w.t.server.store().queue().await.expect("queue")[0].id;
    let list = "members@lists.arclist.test";
    // The list archives from now on; the post's mark says its archiving is still to do, as
    // when the process stopped between queueing it and archiving it.
    let w = w
        .restart_after(async |config| {
            let file = config.with_file_name("lists").join("test.toml");
            let text = std::fs::read_to_string(&file).expect("list file");
            std::fs::write(&file, format!("archive = \"public\"\n{text}")).expect("write");
            let store = crate::smtp_support::open_store(config.parent().expect("dir")).await;
            store.mark_to_archive(list, id).await.expect("mark");
        })
        .await;
    let mid = field(&copy, "Message-ID").remove(0);
    let archive_id = arclist::state::store::archive::archive_id(list, &mid);
    let search = format!("{}?q=queue", local(&w, &format!("{BASE}/archive/{list}/")));
    until(
        "the catch-up at start archives the marked post",
        async || curl(&[], &search).await.1.contains(&archive_id),
    )
    .await;
    let archived =
        w.t.server
            .store()
            .archived_newest(list, 1)
            .await
            .expect("store");
    assert_eq!(archived[0].id, archive_id);
    assert_eq!(archived[0].spool_id, Some(id));
    assert!(
        w.t.server
            .store()
            .to_archive(10)
            .await
            .expect("marks")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_list_posts_imported_twice_are_kept_once() {
    use crate::support::arclist_cli;
    // Real posts of public lists (the OCaml list, kernel.org's lists through mail-auth's
    // samples; tests/data/real-arc/PROVENANCE.md), as an archive's mboxrd holds them.
    let data = crate::support::conformance_data().join("real-arc");
    let mut names: Vec<_> = std::fs::read_dir(&data)
        .expect("real-arc")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    names.sort();
    let mut mbox = String::new();
    for name in &names {
        let text = std::fs::read_to_string(name)
            .expect("eml")
            .replace("\r\n", "\n");
        mbox.push_str("From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
        for line in text.lines() {
            if line.trim_start_matches('>').starts_with("From ") {
                mbox.push('>');
            }
            mbox.push_str(line);
            mbox.push('\n');
        }
        mbox.push('\n');
    }
    let n = names.len();
    assert!(n >= 9, "the real posts are there: {n}");
    let w = world_with(HTTP, "archive = \"public\"\n").await;
    let list = "members@lists.arclist.test";
    let mut said = Vec::new();
    let _w = w
        .restart_after(async |config| {
            let file = config.with_file_name("real.mbox");
            std::fs::write(&file, &mbox).expect("mbox");
            let path = file.to_str().expect("utf-8 path");
            for _ in 0..2 {
                said.push(arclist_cli(config, &["archive", "import", list, path]));
            }
        })
        .await;
    let (ok, first) = &said[0];
    assert!(
        *ok && first.contains(&format!(
            "{n} message(s) read, {n} archived, 0 archived before"
        )),
        "{first}"
    );
    let (ok, second) = &said[1];
    assert!(
        *ok && second.contains(&format!("0 archived, {n} archived before")),
        "each once: {second}"
    );
}
