//! The `arclist` command line: one module per subcommand, this file only routes.

mod admin;
mod archive;
mod backend;
mod check_dns;
mod console_user;
mod demo;
mod dns_args;
mod error;
mod forward;
mod generate;
mod keygen;
mod report;
mod seal;
mod serve;
mod service;
mod store;
pub(crate) mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub use crate::auth::dns::zone::zone_line;
pub use dns_args::DnsArgs;
pub use error::CliError;

/// arclist: an ARC-aware mailing-list forwarder and ARC test bed.
#[derive(Parser, Debug)]
#[command(name = "arclist", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show the DKIM, SPF, DMARC and ARC verdicts of a stored message, hop by hop.
    Verify(verify::VerifyArgs),
    /// Verify a message, then print it with the next ARC set added.
    Seal(seal::SealArgs),
    /// Print a message with a DKIM-Signature added.
    Sign(seal::SignArgs),
    /// Create a signing key under keys/ (mode 0600) and print the DNS record to publish.
    Keygen(keygen::KeygenArgs),
    /// Show arclist's job on built-in sample senders, offline (DNS on loopback).
    Demo,
    /// Run the forwarder: SMTP (and LMTP) listeners, spool, pipeline.
    Serve(serve::ServeArgs),
    /// Validate the server file and every list file without starting.
    CheckConfig(serve::CheckArgs),
    /// Check the DNS records receivers will look at (keys, SPF, DMARC, MX, reverse DNS).
    CheckDns(check_dns::CheckDnsArgs),
    /// Inspect the spool.
    #[command(subcommand)]
    Spool(serve::SpoolCommand),
    /// The shared PostgreSQL store's schema.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Show the configured lists.
    #[command(subcommand)]
    List(admin::ListCommand),
    /// Manage list members.
    #[command(subcommand)]
    Member(admin::MemberCommand),
    /// Send a list's digest.
    #[command(subcommand)]
    Digest(admin::DigestCommand),
    /// Moderate held posts.
    #[command(subcommand)]
    Held(admin::HeldCommand),
    /// Inspect the delivery queue.
    #[command(subcommand)]
    Queue(admin::QueueCommand),
    /// A list's archive: export, import, remove a post.
    #[command(subcommand)]
    Archive(archive::ArchiveCommand),
    /// What happened to whose mail: posts by sender domain, deliveries by receiver.
    Report(report::ReportArgs),
    /// Manage forwarding aliases.
    #[command(subcommand)]
    Forward(forward::ForwardCommand),
    /// Make the running server read its list and forwarding files again (as SIGHUP does).
    Reload {
        /// The server file.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Add a person to the web console, or set their password (from standard input) and lists.
    ConsoleUser(console_user::ConsoleUserArgs),
    /// Write the manual pages or the shell completions (for packaging).
    #[command(subcommand, hide = true)]
    Generate(generate::GenerateCommand),
    /// Run the open ARC test suite, or the DKIM2 interop corpus, in DIR and print a table of
    /// results.
    Conformance {
        /// The folder holding arc-draft-validation-tests.yml and arc-draft-sign-tests.yml, or
        /// the DKIM2 corpus's cases.json, zone.txt and messages (tests/data/dkim2).
        dir: std::path::PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Run as root, what the command line creates (a store, a key) is the service user's.
    crate::base::config::owner::follow_state_folder();
    // Blocking work (store commits, signing personal copies) is short; a few threads are
    // plenty, and each extra one costs a stack and, with glibc, a malloc arena.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(16)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("arclist: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Verify(args) => verify::run(args).await,
            Command::Seal(args) => seal::run_seal(args).await,
            Command::Sign(args) => seal::run_sign(args),
            Command::Keygen(args) => keygen::run(args),
            Command::Conformance { dir, json } => run_conformance(&dir, json).await,
            Command::Demo => demo::run().await,
            Command::Serve(args) => serve::run_serve(args).await,
            Command::CheckConfig(args) => serve::run_check(args).await,
            Command::Spool(cmd) => serve::run_spool(cmd).await,
            Command::Store(cmd) => store::run(cmd).await,
            Command::List(cmd) => admin::run_list(cmd).await,
            Command::Member(cmd) => admin::run_member(cmd).await,
            Command::Digest(cmd) => admin::run_digest(cmd).await,
            Command::Held(cmd) => admin::run_held(cmd).await,
            Command::Queue(cmd) => admin::run_queue(cmd).await,
            Command::Archive(cmd) => archive::run(cmd).await,
            Command::Forward(cmd) => forward::run(cmd).await,
            Command::CheckDns(args) => check_dns::run(args).await,
            Command::Report(args) => report::run(args).await,
            Command::Reload { config } => reload(config.as_deref()).await,
            Command::ConsoleUser(args) => console_user::run(args),
            Command::Generate(cmd) => generate::run(cmd),
        }
    });
    match result {
        Ok(code) => code,
        // Standard output closed by its reader (`| head`): nothing left to say.
        Err(CliError::OutputClosed) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("arclist: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `arclist reload`.
async fn reload(config: Option<&std::path::Path>) -> Result<ExitCode, CliError> {
    let api = backend::Backend::connect(config).await?;
    let answer = api.reload().await?;
    backend::print(&format!("reloaded: {}\n", answer.reloaded))?;
    Ok(ExitCode::SUCCESS)
}

async fn run_conformance(dir: &std::path::Path, json: bool) -> Result<ExitCode, CliError> {
    use arclist_testbed::conformance::dkim2;
    if dkim2::is_dkim2_corpus(dir) {
        let run = dkim2::run_dkim2(dir).await?;
        if json {
            let text = serde_json::to_string_pretty(&run).map_err(CliError::Json)?;
            println!("{text}");
        } else {
            print!("{}", run.render());
        }
        return Ok(if run.ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let report = arclist_testbed::conformance::run(dir).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(CliError::Json)?
        );
    } else {
        print!("{}", report.render());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads a message file and returns its wire form (CRLF line endings).
pub(crate) fn read_message(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    let data = std::fs::read(path).map_err(|source| CliError::Message {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(crate::auth::message::to_crlf(&data))
}
