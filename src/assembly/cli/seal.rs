//! `arclist seal` and `arclist sign`: add an ARC set or a DKIM signature to a message.

use super::{CliError, DnsArgs, read_message};
use crate::auth::arc::ArcSealer;
use crate::auth::dkim::DkimSigner;
use crate::auth::signing_key::SigningKey;
use crate::auth::{Authenticator, unix_now};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Who signs: key, domain and selector.
#[derive(Args, Debug)]
pub struct SignerArgs {
    /// The private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The signing domain (d=).
    #[arg(long)]
    domain: String,
    /// The selector (s=).
    #[arg(long)]
    selector: String,
}

/// Arguments of `arclist seal`.
#[derive(Args, Debug)]
pub struct SealArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// The authserv-id written in the AAR (default: the sealing domain).
    #[arg(long)]
    authserv_id: Option<String>,
    #[command(flatten)]
    dns: DnsArgs,
    /// The message file.
    message: PathBuf,
}

/// Arguments of `arclist sign`.
#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// The message file.
    message: PathBuf,
}

/// The signer's key, the error naming the file.
fn load_key(args: &SignerArgs) -> Result<SigningKey, CliError> {
    SigningKey::from_pem_file(&args.key).map_err(|source| CliError::Key {
        owner: args.key.display().to_string(),
        source,
    })
}

pub(super) async fn run_seal(args: SealArgs) -> Result<ExitCode, CliError> {
    let message = read_message(&args.message)?;
    let key = load_key(&args.signer)?;
    let dns = args.dns.setup(false).await?;
    let now = unix_now();
    let verification = Authenticator::new(dns.resolver.clone(), None)
        .verify(&message, None, now)
        .await;
    let authserv_id = args
        .authserv_id
        .unwrap_or_else(|| args.signer.domain.clone());
    let payload = verification.auth_results(&authserv_id, None).render();
    let sealer = ArcSealer::new(Arc::new(key), &args.signer.domain, &args.signer.selector);
    let set = sealer.seal(&message, &verification.arc, &payload, now)?;
    std::io::stdout()
        .write_all(&set.prepend_to(&message))
        .map_err(CliError::Output)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run_sign(args: SignArgs) -> Result<ExitCode, CliError> {
    let message = read_message(&args.message)?;
    let key = load_key(&args.signer)?;
    let signer = DkimSigner::new(Arc::new(key), &args.signer.domain, &args.signer.selector);
    let field = signer
        .sign(&message, unix_now())
        .map_err(CliError::Engine)?;
    let mut out = std::io::stdout();
    out.write_all(field.as_bytes())
        .and_then(|_| out.write_all(&message))
        .map_err(CliError::Output)?;
    Ok(ExitCode::SUCCESS)
}
