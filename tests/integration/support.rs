//! Shared helpers: a loopback DNS server with a resolver pointed at it, keys, dkimpy.

use arclist::auth::Authenticator;
use arclist::auth::dns::{LiveConfig, LiveResolver, LoopbackDnsServer, Resolver, Zone};
use arclist::auth::signing_key::SigningKey;
use arclist::auth::spf::SpfEvaluator;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A DNS server on 127.0.0.1 and a live resolver that asks only it.
pub struct Dns {
    pub server: LoopbackDnsServer,
    pub resolver: Resolver,
    pub live: LiveConfig,
}

impl Dns {
    pub async fn start(zone: Zone) -> Dns {
        let server = LoopbackDnsServer::start(zone)
            .await
            .expect("loopback DNS starts");
        let live = LiveConfig {
            nameservers: vec![server.addr()],
            timeout: Duration::from_millis(700),
            attempts: 1,
            ..LiveConfig::default()
        };
        let resolver = Resolver::Live(Box::new(LiveResolver::new(&live).expect("resolver")));
        Dns {
            server,
            resolver,
            live,
        }
    }

    pub fn authenticator(&self) -> Authenticator {
        let spf = SpfEvaluator::new(&self.live, "lists.arclist.test").expect("spf evaluator");
        Authenticator::new(self.resolver.clone(), Some(spf))
    }

    pub fn addr(&self) -> String {
        self.server.addr().to_string()
    }

    pub fn publish_key(&self, selector: &str, domain: &str, key: &SigningKey) {
        let record = key.dns_record().expect("public key record");
        self.server
            .with_zone(|z| z.add_txt(&format!("{selector}._domainkey.{domain}"), &record));
    }
}

/// A fresh RSA-2048 key, also written as PEM into `dir` for other tools.
pub fn rsa_key(dir: &Path, name: &str) -> (Arc<SigningKey>, PathBuf) {
    let (key, pem) = SigningKey::generate_rsa2048().expect("keygen");
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, pem).expect("write key");
    (Arc::new(key), path)
}

/// The public ARC test data kept in the repository (`tests/data/`, see its README).
pub fn conformance_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Runs tests/interop/dkimpy_tool.py with `args`, feeding `stdin`; panics with its stderr on failure.
pub async fn dkimpy(dns: &Dns, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/dkimpy_tool.py");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg("--dns")
        .arg(dns.addr())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (CI installs dkimpy, authres and dnspython)");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    let out = child.wait_with_output().await.expect("dkimpy finishes");
    assert!(
        out.status.success(),
        "dkimpy {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What an earlier forwarder does to bank.test's `original` before it reaches us: it checks it
/// (DKIM and DMARC pass), appends a footer, which breaks the author's signature, and seals the
/// result with dkimpy as `SEALER.test` (selector `arc`, key `keys/SEALER.pem`).
pub async fn forwarded_by(dns: &Dns, keys: &Path, sealer: &str, original: &[u8]) -> Vec<u8> {
    let received = keys.join(format!("{sealer}.received"));
    std::fs::write(&received, original).expect("write");
    let changed = [original, b"-- \r\nforwarded by the alumni service\r\n"].concat();
    let key = keys.join(format!("{sealer}.pem"));
    let domain = format!("{sealer}.test");
    let args = [
        "arc-seal",
        "--key",
        key.to_str().expect("utf-8"),
        "--domain",
        &domain,
        "--selector",
        "arc",
        "--srv-id",
        &domain,
        "--received",
        received.to_str().expect("utf-8"),
        "--results",
        "dkim=pass header.d=bank.test; dmarc=pass header.from=bank.test",
    ];
    dkimpy(dns, &args, &changed).await
}

/// Runs `arclist ARGS --config CONFIG`: whether it succeeded, and its stdout then stderr.
pub fn arclist_cli(config: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arclist"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("arclist runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Writes the admin token file `path` as check-config and serve want it: mode 0600.
pub fn write_token(path: &Path, token: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, token).expect("token");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// A plain post from `from`, with a Message-ID of its own.
pub fn post(from: &str, body: &str) -> Vec<u8> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "From: Author <{from}>\r\nTo: list@lists.arclist.test\r\nSubject: interop test\r\n\
         Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <interop-{n}@arclist.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
    .into_bytes()
}

/// Seals `message` the way the list will: verify first, record our results, add the set.
pub async fn arclist_seal(
    auth: &Authenticator,
    sealer: &arclist::auth::arc::ArcSealer,
    authserv_id: &str,
    message: &[u8],
) -> Result<Vec<u8>, arclist::auth::arc::SealRefusal> {
    arclist_seal_changed(auth, sealer, authserv_id, message, message).await
}

/// Verifies `received` as it arrived, then seals `changed` (the hop's modified copy) with
/// that verdict: what an intermediary that alters messages does.
pub async fn arclist_seal_changed(
    auth: &Authenticator,
    sealer: &arclist::auth::arc::ArcSealer,
    authserv_id: &str,
    received: &[u8],
    changed: &[u8],
) -> Result<Vec<u8>, arclist::auth::arc::SealRefusal> {
    let now = arclist::auth::unix_now();
    let v = auth.verify(received, None, now).await;
    let payload = v.auth_results(authserv_id, None).render();
    sealer
        .seal(changed, &v.arc, &payload, now)
        .map(|set| set.prepend_to(changed))
}
