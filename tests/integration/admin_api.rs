//! docs/admin-api.md's examples, run as written (curl over real HTTP) against a running
//! server: the documentation and the API cannot drift apart.

use crate::list_pipeline::{post, world_prepared};
use crate::smtp_support::LIST;
use arclist::state::store::SpoolState;

const TOKEN: &str = "an-admin-token-of-32-characters!";

/// The `<!-- api: run -->` blocks of docs/admin-api.md.
fn examples() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/admin-api.md"))
        .expect("docs/admin-api.md");
    doc.split("<!-- api: run -->")
        .skip(1)
        .map(|part| {
            let start = part.find("```sh\n").expect("a sh block follows the marker") + 6;
            let end = part[start..].find("```").expect("the block ends") + start;
            part[start..end].to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_examples_work_against_a_running_server() {
    let admin = "[admin]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"admin.token\"\n";
    let w = world_prepared(admin, "", None, |dir| {
        std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("token")
    })
    .await;
    let held = w
        .send(
            "127.0.0.22",
            "mx.club.test",
            "dan@club.test",
            &post("Dan <dan@club.test>", "Hi", "Hello.\r\n"),
        )
        .await;
    assert_eq!(w.t.settled(held).await.state, SpoolState::Held);
    let url = format!(
        "http://{}",
        w.t.server.admin_addr().expect("admin listener")
    );
    let blocks = examples();
    assert_eq!(blocks.len(), 5, "the examples the doc promises");
    for block in blocks {
        let out = tokio::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block])
            .env("ADMIN", &url)
            .env("TOKEN", TOKEN)
            .env("LIST", LIST)
            .env("HELD", held.to_string())
            .output()
            .await
            .expect("bash");
        assert!(
            out.status.success(),
            "{block}\nfailed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What the examples did is what the store now says.
    let store = w.t.server.store();
    let old = arclist::state::store::archive::archive_id(LIST, "<old-1@example.com>");
    let archived = store.archived(LIST, &old).await.expect("store");
    assert!(
        archived.is_some_and(|p| p.removed),
        "imported, then removed"
    );
    assert!(
        store
            .is_member(LIST, "ann@example.com")
            .await
            .expect("store")
    );
    assert!(
        store
            .is_member(LIST, "bea@example.com")
            .await
            .expect("store")
    );
    assert!(
        !store
            .is_member(LIST, "cy@example.com")
            .await
            .expect("store")
    );
    let bea = store
        .member(LIST, "bea@example.com")
        .await
        .expect("store")
        .expect("bea is a member");
    assert_eq!(
        (
            bea.delivery,
            bea.nomail_until.as_deref(),
            bea.returns_to,
            bea.moderated
        ),
        (
            arclist::state::store::DeliveryMode::Nomail,
            Some("2027-01-15"),
            arclist::state::store::DeliveryMode::Regular,
            true
        ),
        "the settings example paused bea's mail and moderates her posts"
    );
    crate::smtp_support::until("the approved post is queued", async || {
        store
            .get(held)
            .await
            .ok()
            .flatten()
            .is_some_and(|(m, _)| m.state == SpoolState::Queued)
    })
    .await;
    // Without the token, a large body is never asked for: the 401 comes instead of the
    // "100 Continue" that would let curl send it.
    let big = w.t.dir.path().join("big.txt");
    std::fs::write(&big, vec![b'x'; 4 << 20]).expect("write");
    let out = tokio::process::Command::new("curl")
        .args(["-sv", "-o", "/dev/null", "-X", "POST", "--data-binary"])
        .arg(format!("@{}", big.display()))
        .arg(format!("{url}/api/lists/{LIST}/members/import"))
        .output()
        .await
        .expect("curl");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(trace.contains("< HTTP/1.1 401"), "{trace}");
    assert!(
        !trace.contains("100 Continue"),
        "the body was asked for: {trace}"
    );
    // No token, no answer; a wrong one neither.
    for header in [None, Some("Bearer not-the-token-at-all")] {
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(h) = header {
            cmd.args(["-H", &format!("Authorization: {h}")]);
        }
        let out = cmd
            .arg(format!("{url}/api/lists"))
            .output()
            .await
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    }
}
