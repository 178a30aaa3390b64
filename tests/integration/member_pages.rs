//! A list's public pages in a real browser (headless chromium) and with curl: the index, the
//! list's page, subscribing by the link mailed to the sink, a member's own settings; a GET of
//! a mailed link changes nothing, forms without the page's cookie are refused, another list's
//! link is refused, and the list's name and description cannot inject markup.

use crate::list_pipeline::{World, world_prepared};
use crate::smtp_support::LIST;
use arclist::state::store::DeliveryMode;

const NAME: &str = "Members <img src=x onerror=\"document.title='owned'\">";
const DESCRIPTION: &str = "Talk about <script>document.title='owned'</script> gardening & more";

/// A world whose `[http]` listener is at a port chosen here, so `base_url` can name it (as the
/// web server in front would); the list has a hostile name and description. The base URL.
async fn pages_world() -> (World, String) {
    let port = crate::postgres::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = format!("[http]\nlisten = \"127.0.0.1:{port}\"\nbase_url = \"{base}\"\n");
    let list_extra = format!(
        "description = {:?}\narchive_url = \"https://archive.example/members\"\n",
        DESCRIPTION
    );
    let w = world_prepared(&http, &list_extra, None, |dir| {
        let file = dir.join("lists").join("test.toml");
        let text = std::fs::read_to_string(&file).expect("list file");
        let text = text.replace("name = \"Members\"", &format!("name = {NAME:?}"));
        std::fs::write(&file, text).expect("list file");
    })
    .await;
    (w, base)
}

/// The link in the newest mail to `address` whose text holds `what`, waiting for it.
async fn mailed_link(w: &World, address: &str, what: &str) -> String {
    let mut found = None;
    crate::smtp_support::until(
        &format!("{address} gets a mail with {what:?}"),
        async || {
            found = w.sink.inbox(address).iter().rev().find_map(|m| {
                let text = String::from_utf8_lossy(m);
                text.contains(what)
                    .then(|| {
                        text.lines()
                            .map(str::trim)
                            .find(|l| l.starts_with("http://"))
                            .map(str::to_string)
                    })
                    .flatten()
            });
            found.is_some()
        },
    )
    .await;
    found.expect("a link")
}

/// curl with a cookie jar: (status, body).
async fn curl(jar: &std::path::Path, args: &[&str], url: &str) -> (u16, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_string())
}

/// The hidden `csrf` field's value on a page.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().expect("value").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_someone_subscribes_confirms_and_changes_their_settings() {
    let (w, base) = pages_world().await;
    let store = w.t.server.store();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    let mut b = crate::browser::Browser::start().await;
    let list_page = format!("{base}/lists/{LIST}");

    b.go(&format!("{base}/lists/")).await;
    b.settle(&format!("{base}/lists/")).await;
    assert!(b.text().await.contains(LIST));
    b.screenshot(&shots.join("public-index.png")).await;
    b.go(&list_page).await;
    b.settle(&list_page).await;
    // The name and description are text, not markup: nothing ran (a script would have made
    // the title "owned"), no element was made.
    let injected = b
        .eval("document.querySelectorAll('main script, main img').length + ' ' + document.title")
        .await;
    assert_eq!(injected.as_str(), Some(format!("0 {NAME}").as_str()));
    let text = b.text().await;
    assert!(text.contains(NAME) && text.contains(DESCRIPTION), "{text}");
    assert!(text.contains("The list's archive"), "{text}");
    b.screenshot(&shots.join("public-list.png")).await;

    // Subscribe: nothing changes until the mailed link's button is pressed.
    b.eval(
        "document.getElementById('address').value = 'Newbie@Club.test';\
         document.getElementById('member-name').value = 'Ann Newbie';\
         document.getElementById('subscribe').click()",
    )
    .await;
    b.wait_for_text("Check your mailbox").await;
    let link = mailed_link(&w, "newbie@club.test", "Confirm your subscription").await;
    assert!(
        link.starts_with(&format!("{base}/lists/{LIST}/confirm/")),
        "{link}"
    );
    // A link scanner's GET (and HEAD) subscribe nobody.
    let jars = tempfile::tempdir().expect("jars");
    let scanner = jars.path().join("scanner");
    let (code, _) = curl(&scanner, &[], &link).await;
    assert_eq!(code, 200);
    let (code, _) = curl(&scanner, &["-I"], &link).await;
    assert_eq!(code, 200);
    assert!(
        !store
            .is_member(LIST, "newbie@club.test")
            .await
            .expect("store")
    );
    // A POST without the page's cookie value (another site's form) changes nothing either.
    let (code, _) = curl(&jars.path().join("forger"), &["-d", "csrf=guess"], &link).await;
    assert_eq!(code, 403);
    assert!(
        !store
            .is_member(LIST, "newbie@club.test")
            .await
            .expect("store")
    );
    b.go(&link).await;
    b.settle(&link).await;
    b.screenshot(&shots.join("public-confirm.png")).await;
    // The optional name came along in the link and fills the confirmation page's field.
    assert!(link.ends_with("?name=Ann%20Newbie"), "{link}");
    let prefilled = b.eval("document.getElementById('member-name').value").await;
    assert_eq!(prefilled.as_str(), Some("Ann Newbie"));
    b.eval("document.getElementById('confirm').click()").await;
    b.wait_for_text("is a member of").await;
    let joined = store
        .member(LIST, "newbie@club.test")
        .await
        .expect("store")
        .expect("a member");
    assert_eq!(joined.name, "Ann Newbie", "the name given is kept");
    assert!(
        store
            .is_member(LIST, "newbie@club.test")
            .await
            .expect("store")
    );

    // Their settings, by a mailed link: the plain digest, a pause, then leaving.
    b.go(&list_page).await;
    b.settle(&list_page).await;
    b.eval(
        "document.getElementById('member').value = 'newbie@club.test';\
         document.getElementById('settings-link').click()",
    )
    .await;
    b.wait_for_text("Check your mailbox").await;
    let settings = mailed_link(&w, "newbie@club.test", "Your settings for").await;
    b.go(&settings).await;
    b.settle(&settings).await;
    assert!(b.text().await.contains("every post as it is sent"));
    b.screenshot(&shots.join("public-settings.png")).await;
    b.eval(
        "document.querySelector('input[value=\"digest-plain\"]').checked = true;\
         document.getElementById('save').click()",
    )
    .await;
    b.wait_for_text("Saved").await;
    let mode = async || {
        let m = store
            .member(LIST, "newbie@club.test")
            .await
            .expect("store")
            .expect("member");
        (m.delivery, m.nomail_until)
    };
    assert_eq!(mode().await, (DeliveryMode::DigestPlain, None));
    b.go(&settings).await;
    b.settle(&settings).await;
    b.eval(
        "document.querySelector('input[value=\"nomail\"]').checked = true;\
         document.getElementById('until').value = '2099-06-30';\
         document.getElementById('save').click()",
    )
    .await;
    b.wait_for_text("no mail until 2099-06-30").await;
    assert_eq!(
        mode().await,
        (DeliveryMode::Nomail, Some("2099-06-30".to_string()))
    );
    b.go(&settings).await;
    b.settle(&settings).await;
    b.eval("document.getElementById('leave').click()").await;
    b.wait_for_text("no longer receives").await;
    assert!(
        !store
            .is_member(LIST, "newbie@club.test")
            .await
            .expect("store")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_tell_nobody_who_is_a_member_and_refuse_other_links() {
    let (w, base) = pages_world().await;
    let store = w.t.server.store();
    let jars = tempfile::tempdir().expect("jars");
    let jar = jars.path().join("j");
    let (code, page) = curl(&jar, &[], &format!("{base}/lists/{LIST}")).await;
    assert_eq!(code, 200);
    let token = csrf(&page);
    // The same answer for a member (alice) and a stranger, for both kinds of request.
    for what in ["subscribe", "settings-link"] {
        let url = format!("{base}/lists/{LIST}/{what}");
        let mut answers = Vec::new();
        for address in ["alice@bank.test", "stranger@club.test"] {
            let body = format!("csrf={token}&address={address}");
            let (code, page) = curl(&jar, &["-d", &body], &url).await;
            assert_eq!(code, 200, "{page}");
            answers.push(page.replace(address, "ADDRESS"));
        }
        assert_eq!(answers[0], answers[1], "{what}");
    }
    // The settings link went to the member only.
    let link = mailed_link(&w, "alice@bank.test", "Your settings for").await;
    assert!(
        w.sink
            .inbox("stranger@club.test")
            .iter()
            .all(|m| !String::from_utf8_lossy(m).contains("Your settings for")),
        "no settings link for a non-member"
    );
    // Without the cookie's value, or with another value, a form is refused.
    let change = |csrf: &str| format!("csrf={csrf}&action=set&delivery=nomail");
    let (code, _) = curl(&jars.path().join("empty"), &["-d", &change(&token)], &link).await;
    assert_eq!(code, 403, "a form without the page's cookie");
    let (code, _) = curl(
        &jar,
        &["-d", &change("0123456789abcdef0123456789abcdef")],
        &link,
    )
    .await;
    assert_eq!(code, 403, "a form with another value");
    let origin = "Origin: http://evil.example";
    let (code, _) = curl(&jar, &["-H", origin, "-d", &change(&token)], &link).await;
    assert_eq!(code, 403, "a form from another site");
    let alice = || async {
        store
            .member(LIST, "alice@bank.test")
            .await
            .expect("store")
            .expect("alice")
    };
    assert_eq!(alice().await.delivery, DeliveryMode::Regular);
    // The page's own form, from the page's jar, does change it.
    let (code, page) = curl(&jar, &[], &link).await;
    assert_eq!(code, 200, "{page}");
    let (code, page) = curl(&jar, &["-d", &change(&csrf(&page))], &link).await;
    assert_eq!(code, 200, "{page}");
    assert_eq!(alice().await.delivery, DeliveryMode::Nomail);

    // Another list's member's link, and a join link used as a settings link, are refused.
    use arclist::stages::list::tokens::{LinkUse, seal_link};
    let secret = store.token_secret().await.expect("secret");
    let now = arclist::auth::unix_now();
    let other = seal_link(
        &secret,
        LinkUse::Settings,
        "other@lists.arclist.test",
        "alice@bank.test",
        now,
    )
    .expect("seal");
    let join = seal_link(&secret, LinkUse::Join, LIST, "alice@bank.test", now).expect("seal");
    for token in [other, join] {
        let (code, _) = curl(&jar, &[], &format!("{base}/lists/{LIST}/settings/{token}")).await;
        assert_eq!(code, 403);
    }
    let expired = seal_link(
        &secret,
        LinkUse::Settings,
        LIST,
        "alice@bank.test",
        now - 3 * 86_400,
    )
    .expect("seal");
    let (code, _) = curl(
        &jar,
        &[],
        &format!("{base}/lists/{LIST}/settings/{expired}"),
    )
    .await;
    assert_eq!(code, 403, "an expired link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_may_ask_for_twenty_mails_an_hour_and_a_hidden_list_is_not_indexed() {
    let (w, base) = pages_world().await;
    let jars = tempfile::tempdir().expect("jars");
    let jar = jars.path().join("j");
    let (_, page) = curl(&jar, &[], &format!("{base}/lists/{LIST}")).await;
    let token = csrf(&page);
    let url = format!("{base}/lists/{LIST}/subscribe");
    let mut answered = 0;
    for n in 0..25 {
        let body = format!("csrf={token}&address=someone{n}@club.test");
        match curl(&jar, &["-d", &body], &url).await {
            (200, _) => answered += 1,
            (429, page) => {
                assert!(page.contains("too many requests"), "{page}");
                break;
            }
            (code, page) => panic!("{code}: {page}"),
        }
    }
    assert_eq!(answered, 20, "the 21st request from one client is refused");
    drop(w);

    let w = world_prepared(
        "[http]\nlisten = \"127.0.0.1:0\"\nbase_url = \"https://lists.arclist.test\"\n",
        "hidden = true",
        None,
        |_| {},
    )
    .await;
    let web = format!("http://{}", w.t.server.web_addr().expect("http listener"));
    let (code, index) = curl(&jar, &[], &format!("{web}/lists/")).await;
    assert_eq!(code, 200);
    assert!(
        !index.contains(LIST) && index.contains("No list is listed here"),
        "{index}"
    );
    let (code, page) = curl(&jar, &[], &format!("{web}/lists/{LIST}")).await;
    assert_eq!(code, 200, "a hidden list's own page still answers: {page}");
}
