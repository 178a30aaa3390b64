//! `arclist console-user NAME [--lists A,B]`: adds a person to the web console (or sets their
//! password and lists again), reading the password from standard input so that it appears in
//! no command line or shell history. The running server reads the file when it starts.

use super::CliError;
use crate::base::config::Config;
use crate::surfaces::web::console::users::{self, User};
use clap::Args;
use std::io::BufRead;
use std::process::ExitCode;

/// Arguments of `arclist console-user`.
#[derive(Args, Debug)]
pub struct ConsoleUserArgs {
    /// The login name (letters, digits, `.`, `-`, `_`).
    name: String,
    /// The lists (posting addresses, comma-separated) they may see; default every list.
    #[arg(long)]
    lists: Option<String>,
    /// The server file, whose `[admin] console_users` names the file.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
}

/// Adds or updates the person; the password is the first line of standard input.
pub fn run(args: ConsoleUserArgs) -> Result<ExitCode, CliError> {
    let config = Config::load(args.config.as_deref())?;
    let file = config
        .server
        .admin
        .as_ref()
        .and_then(|a| a.console_users.clone())
        .ok_or(CliError::NoConsoleUsers)?;
    let name_ok = !args.name.is_empty()
        && args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !name_ok {
        return Err(CliError::UserName {
            name: args.name.clone(),
        });
    }
    let lists = match &args.lists {
        None => None,
        Some(l) => {
            let lists: Vec<String> = l
                .split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .collect();
            if let Some(unknown) = lists.iter().find(|a| config.list(a).is_none()) {
                return Err(CliError::UnknownList {
                    list: unknown.clone(),
                });
            }
            Some(lists)
        }
    };
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|source| CliError::Password { source })?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 12 {
        return Err(CliError::ShortPassword);
    }
    let user = User {
        name: args.name.clone(),
        hash: users::hash(password)?,
        lists,
    };
    users::put(&file, &user)?;
    println!(
        "{} can log in to the console (restart the server to apply)",
        args.name
    );
    Ok(ExitCode::SUCCESS)
}
