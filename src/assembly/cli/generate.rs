//! `arclist generate man|completions DIR` (hidden): the manual pages and the shell completions
//! the Debian package installs, made from the command line's own definition so they never
//! disagree with it (`packaging/build-deb.sh` runs it).

use super::{Cli, CliError};
use clap::CommandFactory;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What to write.
#[derive(clap::Subcommand, Debug)]
pub enum GenerateCommand {
    /// A manual page per command and subcommand (`arclist.1`, `arclist-serve.1`, ...).
    Man {
        /// The folder to write them to (created when missing).
        dir: PathBuf,
    },
    /// Completions for bash (`arclist.bash`), zsh (`_arclist`) and fish (`arclist.fish`).
    Completions {
        /// The folder to write them to (created when missing).
        dir: PathBuf,
    },
}

/// Writes what `cmd` asks for.
pub fn run(cmd: GenerateCommand) -> Result<ExitCode, CliError> {
    let (dir, written) = match cmd {
        GenerateCommand::Man { dir } => {
            let written = folder(&dir).and_then(|()| man(&dir));
            (dir, written)
        }
        GenerateCommand::Completions { dir } => {
            let written = folder(&dir).and_then(|()| completions(&dir));
            (dir, written)
        }
    };
    written.map_err(|source| CliError::Generate { dir, source })?;
    Ok(ExitCode::SUCCESS)
}

fn folder(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// The command without its hidden subcommands (this one), as a person reads it.
fn public_command() -> clap::Command {
    Cli::command().mut_subcommand("generate", |c| c.hide(true))
}

fn man(dir: &Path) -> std::io::Result<()> {
    clap_mangen::generate_to(public_command(), dir)
}

fn completions(dir: &Path) -> std::io::Result<()> {
    use clap_complete::Shell;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut public_command(), "arclist", dir)?;
    }
    Ok(())
}
