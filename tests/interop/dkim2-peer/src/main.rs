//! A DKIM2 peer for arclist's interop tests: Stalwart's mail-auth 0.15.1 (draft -08) behind
//! a small CLI. The message is read from stdin; keys come from PEM files; DNS is a real
//! server (arclist's test DNS on loopback), given as `--dns 127.0.0.1:PORT`.
//!
//! ```text
//! dkim2-peer verify --dns ADDR --mail-from PATH --rcpt PATH...
//!     prints `result=pass` or `result=fail reason=...` (and so on) on one line
//! dkim2-peer sign --dns ADDR --key PEM --domain D --selector S --mail-from PATH --rcpt PATH...
//!     [--arrived-from PATH --arrived-rcpt PATH...] [--received FILE]
//!     prints the message with this hop's fields on top; a message that already carries
//!     DKIM2 fields is verified first against the envelope it arrived with (-08 §12). With
//!     --received, stdin is this hop's changed copy of FILE (as a list makes it) and
//!     mail-auth writes the Recipe that recreates FILE (its `sign_revised`)
//! ```
//!
//! mail-auth has no switch for its 14-day timestamp check: messages are signed with the
//! current time.

use mail_auth::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim2::{Dkim2Signer, Envelope, Hop};
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::{AuthenticatedMessage, Dkim2Result, MessageAuthenticator};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

struct Args {
    command: String,
    dns: Option<SocketAddr>,
    key: Option<String>,
    domain: String,
    selector: String,
    mail_from: String,
    rcpt: Vec<String>,
    arrived_from: Option<String>,
    arrived_rcpt: Vec<String>,
    received: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("usage: dkim2-peer verify|sign ...")?;
    let mut a = Args {
        command,
        dns: None,
        key: None,
        domain: String::new(),
        selector: String::new(),
        mail_from: String::new(),
        rcpt: Vec::new(),
        arrived_from: None,
        arrived_rcpt: Vec::new(),
        received: None,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dns" => a.dns = Some(value.parse().map_err(|e| format!("--dns: {e}"))?),
            "--key" => a.key = Some(value),
            "--domain" => a.domain = value,
            "--selector" => a.selector = value,
            "--mail-from" => a.mail_from = value,
            "--rcpt" => a.rcpt.push(value),
            "--arrived-from" => a.arrived_from = Some(value),
            "--arrived-rcpt" => a.arrived_rcpt.push(value),
            "--received" => a.received = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn authenticator(dns: Option<SocketAddr>) -> Result<MessageAuthenticator, String> {
    let addr = dns.ok_or("--dns ADDR is required")?;
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
    let mut opts = ResolverOpts::default();
    opts.ndots = 0;
    MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![server]), opts)
        .map_err(|e| format!("resolver: {e}"))
}

fn verdict(result: &Dkim2Result) -> String {
    match result {
        Dkim2Result::Pass => "result=pass".into(),
        Dkim2Result::None => "result=none".into(),
        Dkim2Result::Fail(e) => format!("result=fail reason={e}"),
        Dkim2Result::PermError(e) => format!("result=permerror reason={e}"),
        Dkim2Result::TempError(e) => format!("result=temperror reason={e}"),
    }
}

async fn run(args: Args, message: Vec<u8>) -> Result<Vec<u8>, String> {
    let auth = authenticator(args.dns)?;
    let parsed = AuthenticatedMessage::parse(&message).ok_or("the message does not parse")?;
    if args.command == "verify" {
        let out = auth
            .verify_dkim2(
                &parsed,
                Envelope::new(args.mail_from.as_str(), args.rcpt.iter()),
            )
            .await;
        return Ok(format!("{}\n", verdict(out.result())).into_bytes());
    }
    if args.command != "sign" {
        return Err(format!("unknown command {}", args.command));
    }
    let pem = std::fs::read_to_string(args.key.as_deref().ok_or("--key is required")?)
        .map_err(|e| format!("key: {e}"))?;
    let received_bytes = match &args.received {
        Some(path) => Some(std::fs::read(path).map_err(|e| format!("{path}: {e}"))?),
        None => None,
    };
    let received = match &received_bytes {
        Some(bytes) => {
            AuthenticatedMessage::parse(bytes).ok_or("the received file does not parse")?
        }
        None => parsed.clone(),
    };
    let verified = match &args.arrived_from {
        Some(from) => Some(
            auth.verify_dkim2(
                &received,
                Envelope::new(from.as_str(), args.arrived_rcpt.iter()),
            )
            .await,
        ),
        None => None,
    };
    let hop = Hop::real(args.mail_from.as_str(), args.rcpt.iter());
    let der = pem_body(&pem)?;
    // An Ed25519 PKCS#8 key is 48 bytes; RSA ones are hundreds.
    let signed = if der.len() < 100 {
        let key = Ed25519Key::from_pkcs8_der(&der).map_err(|e| format!("ed25519 key: {e}"))?;
        let signer = Dkim2Signer::from_key(key)
            .domain(args.domain.as_str())
            .selector(args.selector.as_str());
        match &received_bytes {
            Some(r) => {
                signer.sign_revised(r.as_slice(), message.as_slice(), hop, verified.as_ref())
            }
            None => signer.sign(message.as_slice(), hop, verified.as_ref()),
        }
    } else {
        #[allow(deprecated)]
        let key = RsaKey::<Sha256>::from_pkcs8_der(&der).map_err(|e| format!("rsa key: {e}"))?;
        let signer = Dkim2Signer::from_key(key)
            .domain(args.domain.as_str())
            .selector(args.selector.as_str());
        match &received_bytes {
            Some(r) => {
                signer.sign_revised(r.as_slice(), message.as_slice(), hop, verified.as_ref())
            }
            None => signer.sign(message.as_slice(), hop, verified.as_ref()),
        }
    }
    .map_err(|e| format!("sign: {e}"))?;
    let mut out = signed.to_header().into_bytes();
    out.extend_from_slice(&message);
    Ok(out)
}

/// The DER bytes of the first PEM block.
fn pem_body(pem: &str) -> Result<Vec<u8>, String> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64_decode(&b64).ok_or_else(|| "key is not PEM".to_string())
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = T.iter().position(|&t| t == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dkim2-peer: {e}");
            return ExitCode::from(2);
        }
    };
    let mut message = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut message) {
        eprintln!("dkim2-peer: stdin: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio_runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dkim2-peer: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args, message)) {
        Ok(out) => {
            let _ = std::io::stdout().write_all(&out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dkim2-peer: {e}");
            ExitCode::from(1)
        }
    }
}

fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
