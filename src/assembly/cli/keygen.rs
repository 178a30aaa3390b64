//! `arclist keygen`: a new signing key, private half 0600 on disk, public half as DNS text.

use super::CliError;
use crate::auth::dns::zone::zone_line;
use crate::auth::signing_key::SigningKey;
use crate::base::config::write_private;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Key algorithms `keygen` makes.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Algorithm {
    /// RSA, 2048 bits: accepted by every verifier.
    Rsa2048,
    /// Ed25519 (RFC 8463): small and fast, but not every verifier knows it yet.
    Ed25519,
}

/// Arguments of `arclist keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// The signing domain.
    #[arg(long)]
    domain: String,
    /// The selector.
    #[arg(long)]
    selector: String,
    /// The algorithm.
    #[arg(long, value_enum, default_value = "rsa2048")]
    algorithm: Algorithm,
    /// Where to write the key.
    #[arg(long, default_value = "keys")]
    dir: PathBuf,
    /// Print the DNS record of the existing key in DIR instead of making a new one.
    #[arg(long)]
    show: bool,
}

pub(super) fn run(args: KeygenArgs) -> Result<ExitCode, CliError> {
    if args.show {
        return show(&args);
    }
    let (key, pem) = match args.algorithm {
        Algorithm::Rsa2048 => SigningKey::generate_rsa2048(),
        Algorithm::Ed25519 => SigningKey::generate_ed25519(),
    }
    .map_err(|source| CliError::Key {
        owner: format!("{}._domainkey.{}", args.selector, args.domain),
        source,
    })?;
    let path = args
        .dir
        .join(format!("{}._domainkey.{}.pem", args.selector, args.domain));
    // No server file here: the key (and any folder made for it) follows the key folder's
    // owner, so a key made as root in the service's folder is the service's.
    crate::base::config::owner::note_folder(&args.dir);
    write_private(&path, &pem)?;
    let record = key.dns_record().map_err(CliError::Engine)?;
    eprintln!("wrote {} (mode 0600); publish this record:", path.display());
    println!(
        "{}",
        zone_line(
            &format!("{}._domainkey.{}.", args.selector, args.domain),
            &record
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// `keygen --show`: the record of a key made before (never a new key).
fn show(args: &KeygenArgs) -> Result<ExitCode, CliError> {
    let path = args
        .dir
        .join(format!("{}._domainkey.{}.pem", args.selector, args.domain));
    let key = SigningKey::from_pem_file(&path).map_err(|source| CliError::NoKey {
        path: path.clone(),
        source,
    })?;
    println!(
        "{}",
        zone_line(
            &format!("{}._domainkey.{}.", args.selector, args.domain),
            &key.dns_record().map_err(CliError::Engine)?
        )
    );
    Ok(ExitCode::SUCCESS)
}
