//! `arclist member`, `arclist held`, `arclist queue` and `arclist list`: the store's contents
//! for operators and moderators, through the admin API ([`super::backend`]): the running
//! server's when one runs, else in-process on the store.

use super::CliError;
use super::backend::{Backend, print, print_bytes};
use crate::stages::list::moderation::Decision;
use crate::state::store::{DeliveryMode, Member};
use crate::surfaces::admin::{ListView, MemberSettings, NewList, NewMember, PostStatus};
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
    /// Change a member's delivery mode or moderation: `--delivery nomail --until 2027-01-15`
    /// pauses mail until that day (UTC), then the member gets mail as before.
    #[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["delivery", "moderated"])))]
    Set {
        /// The list's posting address.
        list: String,
        /// The member's address.
        address: String,
        /// How the member takes the list's mail.
        #[arg(long, value_parser = ["regular", "digest", "digest-plain", "nomail"])]
        delivery: Option<String>,
        /// With `--delivery nomail`: the date (YYYY-MM-DD, UTC) mail starts again.
        #[arg(long, requires = "delivery")]
        until: Option<String>,
        /// Hold the member's posts for a moderator (true) or not (false).
        #[arg(long)]
        moderated: Option<bool>,
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
    /// Add the members the list file names who never left (the file seeds a new list once;
    /// this does it again, e.g. after adding names to the file).
    Sync {
        /// The list's posting address.
        list: String,
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

/// `arclist digest ...`.
#[derive(Subcommand, Debug)]
pub enum DigestCommand {
    /// Send what is pending for LIST's digest now, to its digest members.
    Send {
        /// The list's posting address.
        list: String,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub(super) async fn run_digest(cmd: DigestCommand) -> Result<ExitCode, CliError> {
    let DigestCommand::Send { list, config } = cmd;
    let api = Backend::connect(config_of(&config)).await?;
    let list = api.list_address(&list);
    let sent = api.send_digest(&list).await?;
    let text = match sent.issue {
        None => format!("nothing pending for {list}'s digest\n"),
        Some(i) => format!(
            "{list}: digest volume {}, issue {} sent: {} post(s) to {} MIME and {} plain-text digest member(s)\n",
            i.volume, i.issue, sent.posts, sent.members.0, sent.members.1
        ),
    };
    print(&text)?;
    Ok(ExitCode::SUCCESS)
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
    /// Release a held post: a running server distributes it at once, a stopped one when it
    /// next runs.
    Approve {
        /// The post's id.
        id: u64,
        /// Also add its sender to the list's accept_posts_from (their next posts need no
        /// moderator).
        #[arg(long)]
        accept_sender: bool,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Drop a held post without telling anyone.
    Discard {
        /// The post's id.
        id: u64,
        /// The server file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Refuse a held post; the poster is told why, as the list's `notify_rejected` allows.
    Reject {
        /// The post's id.
        id: u64,
        /// The reason the poster is told (default: why it was held).
        #[arg(long)]
        reason: Option<String>,
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
    /// Set who may always post, is always held, refused or dropped (addresses or `*`
    /// patterns, comma-separated or repeated). A flag given replaces that whole list; given
    /// with no value it empties it. Written into the list file; a running server reloads.
    Posters {
        /// The list's posting address.
        list: String,
        /// Non-members whose posts are accepted.
        #[arg(long, num_args = 0.., value_delimiter = ',')]
        accept: Option<Vec<String>>,
        /// Posters always held for a moderator.
        #[arg(long, num_args = 0.., value_delimiter = ',')]
        hold: Option<Vec<String>>,
        /// Posters always refused with the reject reason.
        #[arg(long, num_args = 0.., value_delimiter = ',')]
        reject: Option<Vec<String>>,
        /// Posters whose posts are dropped without a word.
        #[arg(long, num_args = 0.., value_delimiter = ',')]
        discard: Option<Vec<String>>,
        /// The reason refused posters are given.
        #[arg(long)]
        reject_reason: Option<String>,
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

/// A field of someone's message as one line of a terminal: control characters (which could
/// move the cursor or end the line) shown as `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The server file named by any store command.
fn config_of(config: &Option<PathBuf>) -> Option<&std::path::Path> {
    config.as_deref()
}

pub(super) async fn run_member(cmd: MemberCommand) -> Result<ExitCode, CliError> {
    let config = match &cmd {
        MemberCommand::Add { config, .. }
        | MemberCommand::Remove { config, .. }
        | MemberCommand::Enable { config, .. }
        | MemberCommand::Set { config, .. }
        | MemberCommand::Import { config, .. }
        | MemberCommand::Sync { config, .. }
        | MemberCommand::Ls { config, .. } => config.clone(),
    };
    let api = Backend::connect(config_of(&config)).await?;
    match cmd {
        MemberCommand::Add {
            list,
            address,
            name,
            ..
        } => {
            let list = api.list_address(&list);
            let new = NewMember {
                address: address.clone(),
                name,
            };
            let verb = if api.add_member(&list, new).await?.added {
                "joined"
            } else {
                "was already a member of"
            };
            print(&format!("{} {verb} {list}\n", address.to_ascii_lowercase()))?;
        }
        MemberCommand::Remove { list, address, .. } => {
            let list = api.list_address(&list);
            let verb = match api.remove_member(&list, &address).await?.removed {
                true => "left",
                false => "was not a member of",
            };
            print(&format!("{address} {verb} {list}\n"))?;
        }
        MemberCommand::Enable { list, address, .. } => {
            let list = api.list_address(&list);
            let address = address.to_ascii_lowercase();
            api.enable(&list, &address).await?;
            print(&format!("{address} receives {list} again\n"))?;
        }
        MemberCommand::Set {
            list,
            address,
            delivery,
            until,
            moderated,
            ..
        } => {
            let list = api.list_address(&list);
            let settings = MemberSettings {
                delivery: delivery.as_deref().and_then(DeliveryMode::parse),
                until,
                moderated,
            };
            let view = api.set_member(&list, &address, &settings).await?;
            print(&format!("{list}\t{}", member_line(&view.member)))?;
        }
        MemberCommand::Import { list, file, .. } => {
            let list = api.list_address(&list);
            let text = std::fs::read(&file).map_err(|source| CliError::Read {
                path: file.clone(),
                source,
            })?;
            let answer = api
                .import(&list, text)
                .await
                .map_err(|e| import_error(&file, e))?;
            print(&format!(
                "{} added, {} already members of {list}\n",
                answer.added, answer.already
            ))?;
        }
        MemberCommand::Sync { list, .. } => {
            let list = api.list_address(&list);
            let answer = api.sync(&list).await?;
            print(&format!(
                "{} added of the {} the list file names (who left is never added back)\n",
                answer.added, answer.named
            ))?;
        }
        MemberCommand::Ls { list, .. } => list_members(&api, &api.list_address(&list)).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The API names the refused line (`line N: why`, in process or over HTTP alike); the
/// operator wants FILE:LINE.
fn import_error(file: &std::path::Path, e: CliError) -> CliError {
    let text = e.to_string();
    match text.strip_prefix("line ").and_then(|r| r.split_once(':')) {
        Some((n, rest)) => CliError::ImportLine {
            file: file.to_path_buf(),
            line: n.to_string(),
            rest: rest.to_string(),
        },
        None => CliError::Import {
            file: file.to_path_buf(),
            source: Box::new(e),
        },
    }
}

/// Every member, a page at a time (by address, so each page costs only itself), a line each.
async fn list_members(api: &Backend, list: &str) -> Result<(), CliError> {
    let mut after = String::new();
    loop {
        let page = api.members_after(list, &after).await?;
        let text: String = page.members.iter().map(member_line).collect();
        print(&text)?;
        match page.next {
            Some(next) => after = next,
            None => return Ok(()),
        }
    }
}

fn member_line(m: &Member) -> String {
    let state = if m.disabled {
        "disabled (bounces)"
    } else {
        "enabled"
    };
    format!(
        "{}\t{}\t{state}\tbounce score {:.1}\tpolicy rejections {}\t{}{}\n",
        m.address,
        m.name,
        m.bounce_score,
        m.policy_rejections,
        delivery_text(m),
        if m.moderated { "\tmoderated" } else { "" }
    )
}

/// The member's mode as the operator reads it: `nomail until 2027-01-15 (then digest)`, and
/// what is in force when a pause is over.
fn delivery_text(m: &Member) -> String {
    let today = crate::state::store::modes::date_of(crate::auth::unix_now());
    let now = m.delivery_on(&today);
    match &m.nomail_until {
        Some(until) if now == m.delivery => {
            format!("{} until {until} (then {})", m.delivery, m.returns_to)
        }
        Some(until) => format!("{now} (nomail ended {until})"),
        None => m.delivery.to_string(),
    }
}

pub(super) async fn run_held(cmd: HeldCommand) -> Result<ExitCode, CliError> {
    let config = match &cmd {
        HeldCommand::Ls { config }
        | HeldCommand::Show { config, .. }
        | HeldCommand::Approve { config, .. }
        | HeldCommand::Discard { config, .. }
        | HeldCommand::Reject { config, .. } => config.clone(),
    };
    let api = Backend::connect(config_of(&config)).await?;
    match cmd {
        HeldCommand::Ls { .. } => {
            let held = api.held_posts().await?;
            let mut text = String::new();
            for h in held {
                text.push_str(&format!(
                    "{}\tfrom <{}>\t{}\tFrom: {}\tSubject: {}\n",
                    h.id,
                    h.mail_from,
                    h.reason,
                    printable(&h.from),
                    printable(&h.subject)
                ));
            }
            print(&text)?;
        }
        HeldCommand::Show { id, .. } => {
            let h = api.held_post(id).await?;
            let message = api.held_message(id).await?;
            print(&format!(
                "held because: {}\nfrom <{}> via {}\n\n",
                h.reason, h.mail_from, h.client
            ))?;
            print_bytes(&message)?;
        }
        HeldCommand::Approve {
            id, accept_sender, ..
        } => {
            let decided = match accept_sender {
                true => api.approve_accepting_sender(id).await?,
                false => api.decide(id, Decision::Approve).await?,
            };
            if accept_sender {
                print(&format!(
                    "post {id}'s sender is always accepted from now on\n"
                ))?;
            }
            let when = match decided.distributed_now {
                true => "it is being distributed",
                false => "it is distributed when arclist serve runs",
            };
            print(&format!("post {id} approved; {when}\n"))?;
        }
        HeldCommand::Discard { id, .. } => {
            api.decide(id, Decision::Discard).await?;
            print(&format!("post {id} discarded\n"))?;
        }
        HeldCommand::Reject { id, reason, .. } => {
            api.decide(id, Decision::Reject(reason)).await?;
            print(&format!("post {id} rejected\n"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn run_queue(cmd: QueueCommand) -> Result<ExitCode, CliError> {
    let config = match &cmd {
        QueueCommand::Ls { config }
        | QueueCommand::Status { config, .. }
        | QueueCommand::Show { config, .. }
        | QueueCommand::Retry { config, .. } => config.clone(),
    };
    let api = Backend::connect(config_of(&config)).await?;
    match cmd {
        QueueCommand::Ls { .. } => {
            let heads = api.active().await?;
            let now = crate::auth::unix_now();
            let mut text = String::new();
            for h in heads {
                let due = if h.next_due <= now {
                    "due now".to_string()
                } else {
                    format!("next try in {} s", h.next_due - now)
                };
                text.push_str(&format!(
                    "{}\t{}\t{} pending, {} deferred\t{due}\tfrom <{}>\n",
                    h.id, h.list, h.pending, h.deferred, h.mail_from
                ));
            }
            print(&text)?;
        }
        QueueCommand::Status { id, .. } => {
            let status = api.post_status(id).await?;
            print(&status_text(status))?;
        }
        QueueCommand::Retry { id, .. } => {
            let answer = api.retry(id).await?;
            let when = match api.is_live() {
                true => "are due now",
                false => "will be tried when arclist serve runs",
            };
            print(&format!(
                "{} deferred recipient(s) of post {id} {when}\n",
                answer.due_now
            ))?;
        }
        QueueCommand::Show { id, .. } => {
            let message = api.queued_message(id).await?;
            print_bytes(&message)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Each recipient of a post while it is delivered; once finished, its summary and the
/// recipients refused for good.
fn status_text(status: PostStatus) -> String {
    let mut text = String::new();
    for d in status.deliveries {
        text.push_str(&format!(
            "{}\t{:?}\t{} attempt(s)\t{}\n",
            d.address, d.state, d.attempts, d.last_reply
        ));
    }
    if let Some(summary) = status.summary {
        let delivered: u64 = summary.delivered.values().sum();
        text.push_str(&format!(
            "finished at {}: {delivered} delivered, {} bounced\n",
            crate::stages::trace::rfc5322_date(summary.finished_at),
            summary.bounced.len()
        ));
        for d in summary.bounced {
            text.push_str(&format!(
                "{}\tBounced\t{} attempt(s)\t{}\n",
                d.address, d.attempts, d.last_reply
            ));
        }
    }
    text
}

pub(super) async fn run_list(cmd: ListCommand) -> Result<ExitCode, CliError> {
    match cmd {
        ListCommand::Ls { config } => {
            let api = Backend::connect(config_of(&config)).await?;
            let lists = api.lists().await?;
            let mut text = String::new();
            for l in lists {
                text.push_str(&format!("{}\t{}\t{}\n", l.address, l.name, l.file));
            }
            print(&text)?;
        }
        ListCommand::Create {
            address,
            name,
            selector,
            config,
        } => {
            let api = Backend::connect(config_of(&config)).await?;
            let new = NewList {
                address,
                name,
                selector,
            };
            let made = api.create_list(&new).await?;
            print(&format!(
                "wrote {} and {} (mode 0600); publish:\n{}\n",
                made.file, made.key, made.dns
            ))?;
            if let Some(reloaded) = made.reloaded {
                print(&format!("the running server reloaded: {reloaded}\n"))?;
            }
        }
        ListCommand::Show { list, config } => {
            let api = Backend::connect(config_of(&config)).await?;
            let l = api.list(&list).await?;
            print(&show_text(&l))?;
        }
        ListCommand::Posters {
            list,
            accept,
            hold,
            reject,
            discard,
            reject_reason,
            config,
        } => {
            let api = Backend::connect(config_of(&config)).await?;
            let list = api.list_address(&list);
            let change = crate::base::config::OwnerSettings {
                accept_posts_from: accept,
                hold_posts_from: hold,
                reject_posts_from: reject,
                discard_posts_from: discard,
                reject_reason,
                ..Default::default()
            };
            let changed = api.put_settings(&list, &change).await?;
            print(&posters_text(&list, &changed.settings))?;
            print(&format!("{}\n", changed.reloaded))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The moderation lists, a line each.
fn posters_text(list: &str, s: &crate::base::config::OwnerSettings) -> String {
    let line = |name: &str, v: &Option<Vec<String>>| {
        format!(
            "{list}\t{name}\t{}\n",
            v.as_deref().unwrap_or_default().join(",")
        )
    };
    [
        line("accept", &s.accept_posts_from),
        line("hold", &s.hold_posts_from),
        line("reject", &s.reject_posts_from),
        line("discard", &s.discard_posts_from),
        format!(
            "{list}\treject reason\t{}\n",
            s.reject_reason.as_deref().unwrap_or_default()
        ),
    ]
    .concat()
}

fn show_text(l: &ListView) -> String {
    let none = |v: &[String]| match v.is_empty() {
        true => "none".to_string(),
        false => v.join(", "),
    };
    format!(
        "address            {}\nname               {}\nfile               {}\nsigns as           {}\n\
         members            {}\nmoderated          {}\nnon-members        {}\nDMARC p=reject     {}\n\
         trusted sealers    {}\nmoderators         {}\nsubject tag        {:?}\nserved             {}\n",
        l.address,
        l.name,
        l.file,
        l.signs_as,
        l.members,
        l.moderated,
        l.non_members,
        l.dmarc,
        none(&l.trusted_sealers),
        none(&l.moderators),
        l.subject_tag,
        if l.served {
            "yes"
        } else {
            "no (reload to serve it)"
        }
    )
}
