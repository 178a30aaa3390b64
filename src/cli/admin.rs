//! `arclist member`, `arclist held` and `arclist queue`: the store's contents for operators
//! and moderators. The store is opened exclusively, so these run while the server is stopped.

use crate::config::Config;
use crate::store::{Member, RedbStore, SpoolState, Store};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// `arclist member ...`.
#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Subscribe an address.
    Add {
        /// The list's posting address.
        list: String,
        /// The member's address.
        address: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Unsubscribe an address.
    Remove {
        /// The list's posting address.
        list: String,
        /// The member's address.
        address: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Resume delivery to a member disabled by bounces, and clear the bounce score.
    Enable {
        /// The list's posting address.
        list: String,
        /// The member's address.
        address: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Subscribe every address in FILE (one per line: `address` or `Name <address>`; `#` comments).
    Import {
        /// The list's posting address.
        list: String,
        /// The file.
        file: PathBuf,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List the members.
    Ls {
        /// The list's posting address.
        list: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// `arclist held ...`.
#[derive(Subcommand, Debug)]
pub enum HeldCommand {
    /// Posts waiting for a moderator, with the reason.
    Ls {
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a held post with the reason it is held.
    Show {
        /// The post's id.
        id: u64,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Release a held post: it is distributed when the server next runs.
    Approve {
        /// The post's id.
        id: u64,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Refuse a held post.
    Reject {
        /// The post's id.
        id: u64,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// `arclist queue ...`.
#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Signed posts waiting for delivery.
    Ls {
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Each recipient's delivery state and last reply.
    Status {
        /// The post's id.
        id: u64,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a queued post exactly as subscribers will get it.
    Show {
        /// The post's id.
        id: u64,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Make every deferred recipient of a post due now.
    Retry {
        /// The post's id.
        id: u64,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Loads the configuration and opens its store (exclusively: the server must be stopped).
pub(super) fn open(config: Option<&std::path::Path>) -> Result<(Config, RedbStore), String> {
    let config = Config::load(config).map_err(|e| e.to_string())?;
    let store = RedbStore::open(&config.server.store)
        .map_err(|e| format!("{e} (is arclist serve running? stop it first)"))?;
    Ok((config, store))
}

fn known_list(config: &Config, list: &str) -> Result<String, String> {
    config
        .list(list)
        .map(|l| l.address.clone())
        .ok_or_else(|| format!("no list {list} in {}", config.server.lists_dir.display()))
}

pub(super) fn run_member(cmd: MemberCommand) -> Result<ExitCode, String> {
    match cmd {
        MemberCommand::Add {
            list,
            address,
            name,
            config,
        } => {
            let (config, store) = open(config.as_deref())?;
            let list = known_list(&config, &list)?;
            if !crate::config::valid_address(&address) {
                return Err(format!("{address:?} is not an email address"));
            }
            let member = Member {
                address: address.to_ascii_lowercase(),
                name,
                joined_at: crate::auth::unix_now(),
                ..Default::default()
            };
            let added = store
                .add_member(&list, &member)
                .map_err(|e| e.to_string())?;
            println!(
                "{} {} {list}",
                member.address,
                if added {
                    "joined"
                } else {
                    "was already a member of"
                }
            );
        }
        MemberCommand::Remove {
            list,
            address,
            config,
        } => {
            let (config, store) = open(config.as_deref())?;
            let list = known_list(&config, &list)?;
            let removed = store
                .remove_member(&list, &address)
                .map_err(|e| e.to_string())?;
            println!(
                "{address} {} {list}",
                if removed {
                    "left"
                } else {
                    "was not a member of"
                }
            );
        }
        MemberCommand::Enable {
            list,
            address,
            config,
        } => {
            let (config, store) = open(config.as_deref())?;
            let list = known_list(&config, &list)?;
            let address = address.to_ascii_lowercase();
            enable(&store, &list, &address)?;
            println!("{address} receives {list} again");
        }
        MemberCommand::Import { list, file, config } => {
            let (config, store) = open(config.as_deref())?;
            let list = known_list(&config, &list)?;
            let members = members_file(&file)?;
            // One commit for the whole file: all or nothing, and quick for 100,000 lines.
            let added = store
                .add_members(&list, &members)
                .map_err(|e| e.to_string())?;
            let already = members.len() - added;
            println!("{added} added, {already} already members of {list}");
        }
        MemberCommand::Ls { list, config } => {
            let (config, store) = open(config.as_deref())?;
            let list = known_list(&config, &list)?;
            for m in store.members(&list).map_err(|e| e.to_string())? {
                let state = if m.disabled {
                    "disabled (bounces)"
                } else {
                    "enabled"
                };
                println!(
                    "{}\t{}\t{state}\tbounce score {:.1}\tpolicy rejections {}",
                    m.address, m.name, m.bounce_score, m.policy_rejections
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The members a file names, one per line (`address` or `Name <address>`; `#` comments);
/// the first bad line is an error naming the file and line, and nothing is imported.
fn members_file(file: &std::path::Path) -> Result<Vec<Member>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut members = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let address = crate::config::member_address(line);
        if !crate::config::valid_address(&address) {
            return Err(format!(
                "{}:{}: {line:?} is not an address; nothing was imported",
                file.display(),
                n + 1
            ));
        }
        members.push(Member {
            address,
            name: crate::config::member_name(line),
            joined_at: crate::auth::unix_now(),
            ..Default::default()
        });
    }
    Ok(members)
}

/// Delivery to a member disabled by bounces starts again, with a clean score.
fn enable(store: &RedbStore, list: &str, address: &str) -> Result<(), String> {
    let mut member = store
        .members(list)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|m| m.address == address)
        .ok_or_else(|| format!("{address} is not a member of {list}"))?;
    member.disabled = false;
    member.bounce_score = 0.0;
    store.put_member(list, &member).map_err(|e| e.to_string())
}

pub(super) fn run_held(cmd: HeldCommand) -> Result<ExitCode, String> {
    let config_path = match &cmd {
        HeldCommand::Ls { config }
        | HeldCommand::Show { config, .. }
        | HeldCommand::Approve { config, .. }
        | HeldCommand::Reject { config, .. } => config.clone(),
    };
    let (_, store) = open(config_path.as_deref())?;
    let held = |id: u64| -> Result<crate::store::SpoolMeta, String> {
        let (meta, _) = store
            .get(id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no post {id}"))?;
        if meta.state != SpoolState::Held {
            return Err(format!("post {id} is not held (it is {:?})", meta.state));
        }
        Ok(meta)
    };
    match cmd {
        HeldCommand::Ls { .. } => {
            for m in store
                .list()
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|m| m.state == SpoolState::Held)
            {
                println!(
                    "{}\tfrom <{}>\t{}",
                    m.id,
                    m.envelope.mail_from,
                    m.note.unwrap_or_default()
                );
            }
        }
        HeldCommand::Show { id, .. } => {
            let meta = held(id)?;
            let (_, data) = store
                .get(id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no post {id}"))?;
            println!("held because: {}", meta.note.unwrap_or_default());
            println!(
                "from <{}> via {} [{}]\n",
                meta.envelope.mail_from, meta.envelope.helo, meta.envelope.client_ip
            );
            use std::io::Write;
            std::io::stdout()
                .write_all(&data)
                .map_err(|e| e.to_string())?;
        }
        HeldCommand::Approve { id, .. } => {
            let mut meta = held(id)?;
            meta.state = SpoolState::Approved;
            store.update(&meta).map_err(|e| e.to_string())?;
            println!("post {id} approved; it is distributed when arclist serve runs");
        }
        HeldCommand::Reject { id, .. } => {
            let mut meta = held(id)?;
            meta.state = SpoolState::Rejected;
            meta.note = Some(format!(
                "rejected by a moderator; held because: {}",
                meta.note.unwrap_or_default()
            ));
            store.update(&meta).map_err(|e| e.to_string())?;
            println!("post {id} rejected");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run_queue(cmd: QueueCommand) -> Result<ExitCode, String> {
    match cmd {
        QueueCommand::Ls { config } => {
            let (_, store) = open(config.as_deref())?;
            let now = crate::auth::unix_now();
            for h in store.active().map_err(|e| e.to_string())? {
                let due = if h.next_due <= now {
                    "due now".to_string()
                } else {
                    format!("next try in {} s", h.next_due - now)
                };
                println!(
                    "{}\t{}\t{} pending, {} deferred\t{due}\tfrom <{}>",
                    h.id, h.list, h.pending, h.deferred, h.mail_from
                );
            }
        }
        QueueCommand::Status { id, config } => {
            let (_, store) = open(config.as_deref())?;
            print_status(&store, id)?;
        }
        QueueCommand::Retry { id, config } => {
            let (_, store) = open(config.as_deref())?;
            let mut due: Vec<crate::store::Delivery> = store
                .deliveries(id)
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|d| d.state == crate::store::DeliveryState::Deferred)
                .collect();
            for d in &mut due {
                d.next_attempt = 0;
            }
            store
                .record_deliveries(id, &due)
                .map_err(|e| e.to_string())?;
            store.settle(id).map_err(|e| e.to_string())?;
            println!(
                "{} deferred recipient(s) of post {id} will be tried when arclist serve runs",
                due.len()
            );
        }
        QueueCommand::Show { id, config } => {
            let (_, store) = open(config.as_deref())?;
            let (_, data) = store
                .queued(id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no queued post {id}"))?;
            use std::io::Write;
            std::io::stdout()
                .write_all(&data)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Each recipient of post `id` while it is delivered; once finished, its summary and the
/// recipients refused for good.
fn print_status(store: &RedbStore, id: u64) -> Result<(), String> {
    for d in store.deliveries(id).map_err(|e| e.to_string())? {
        println!(
            "{}\t{:?}\t{} attempt(s)\t{}",
            d.address, d.state, d.attempts, d.last_reply
        );
    }
    let entry = store.queue_entry(id).map_err(|e| e.to_string())?;
    if let Some(summary) = entry.and_then(|e| e.summary) {
        let delivered: u64 = summary.delivered.values().sum();
        println!(
            "finished at {}: {delivered} delivered, {} bounced",
            crate::trace::rfc5322_date(summary.finished_at),
            summary.bounced.len()
        );
        for d in summary.bounced {
            println!(
                "{}\tBounced\t{} attempt(s)\t{}",
                d.address, d.attempts, d.last_reply
            );
        }
    }
    Ok(())
}

/// `arclist list ...`.
#[derive(Subcommand, Debug)]
pub enum ListCommand {
    /// Every configured list.
    Ls {
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a new list file and its signing key, and print the DNS record to publish.
    Create {
        /// The posting address, `name@domain`.
        address: String,
        /// The display name.
        #[arg(long, default_value = "")]
        name: String,
        /// The signing selector.
        #[arg(long, default_value = "arc1")]
        selector: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// One list's settings and member count.
    Show {
        /// The list's posting address.
        list: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub(super) fn run_list(cmd: ListCommand) -> Result<ExitCode, String> {
    match cmd {
        ListCommand::Ls { config } => {
            let config = Config::load(config.as_deref()).map_err(|e| e.to_string())?;
            for l in &config.lists {
                println!("{}\t{}\t{}", l.address, l.name, l.file.display());
            }
        }
        ListCommand::Create {
            address,
            name,
            selector,
            config,
        } => {
            let loaded = Config::load(config.as_deref()).map_err(|e| e.to_string())?;
            if !crate::config::valid_address(&address) {
                return Err(format!("{address:?} is not a list address"));
            }
            if loaded.list(&address).is_some() {
                return Err(format!("a list {address} already exists"));
            }
            let (local, domain) = address.rsplit_once('@').ok_or("no @ in the address")?;
            let file = loaded.server.lists_dir.join(format!("{local}.toml"));
            let key_path = loaded
                .server
                .lists_dir
                .join("..")
                .join("keys")
                .join(format!("{selector}._domainkey.{domain}.pem"));
            let (key, pem) = crate::auth::signing_key::SigningKey::generate_rsa2048()
                .map_err(|e| e.to_string())?;
            crate::config::write_private(&key_path, &pem)?;
            let text = format!(
                "address = \"{}\"\nname = \"{}\"\nsubject_tag = \"[{local}] \"\n\n[signing]\nselector = \"{selector}\"\nkey = \"../keys/{selector}._domainkey.{domain}.pem\"\n",
                address.to_ascii_lowercase(),
                if name.is_empty() {
                    local.to_string()
                } else {
                    name.replace('"', "'")
                }
            );
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)
                .map_err(|e| {
                    format!(
                        "cannot create {} (an existing file is never overwritten): {e}",
                        file.display()
                    )
                })?;
            std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| e.to_string())?;
            println!(
                "wrote {} and {} (mode 0600); publish:",
                file.display(),
                key_path.display()
            );
            println!(
                "{}",
                crate::cli::zone_line(
                    &format!("{selector}._domainkey.{domain}."),
                    &key.dns_record()?
                )
            );
        }
        ListCommand::Show { list, config } => {
            let (config, store) = open(config.as_deref())?;
            let address = known_list(&config, &list)?;
            let l = config.list(&address).ok_or("list vanished")?;
            let members = store.members(&address).map_err(|e| e.to_string())?.len();
            println!("address            {}", l.address);
            println!("name               {}", l.name);
            println!("file               {}", l.file.display());
            println!(
                "signs as           d={} s={} ({})",
                l.signing_domain(),
                l.signing.selector,
                l.signing.key.display()
            );
            println!("members            {members}");
            println!("moderated          {}", l.moderated);
            println!("non-members        {:?}", l.non_member_action);
            println!(
                "DMARC p=reject     {:?} on failure; mitigation {:?} ({:?})",
                l.dmarc_fail_action, l.dmarc_mitigation, l.mitigate
            );
            println!(
                "trusted sealers    {}",
                if l.trusted_sealers.is_empty() {
                    "none".to_string()
                } else {
                    l.trusted_sealers.join(", ")
                }
            );
            println!("subject tag        {:?}", l.subject_tag);
        }
    }
    Ok(ExitCode::SUCCESS)
}
