//! What operators copy from the docs holds as written: every fenced block of README.md and
//! docs/, and the forwarding domain example loads as arclist loads it. docs/operator-guide.md and
//! docs/admin-api.md are carried out block by block by their own tests (`operator_guide.rs`,
//! `admin_api.rs`); here, for the rest:
//!
//! - every `arclist` command line (in any block) is parsed by arclist's own command line
//!   parser, so a renamed subcommand or flag fails here;
//! - the commands that need nothing but the repository's own files (the demo, `verify` of the
//!   real ARC sample, both conformance suites) are run, and must succeed;
//! - every TOML block parses as a server file, a list file (a fragment gets the list's
//!   address) or a forwarding domain file, with unknown keys refused;
//! - every other shell line names a program from [`OTHER_PROGRAMS`], the explicit list of what
//!   is not arclist's to run here (package managers, service managers, other programs' files),
//!   each with the reason; anything else fails, so a new kind of line gets a decision.

use arclist::assembly::cli::Cli;
use arclist::base::config::{ForwardConfig, ListConfig, ServerConfig};
use clap::Parser;
use std::path::Path;
use std::process::Command;

/// The ```toml blocks of `doc`, with their first line numbers.
fn toml_blocks(doc: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in doc.lines().enumerate() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some((n + 2, String::new())),
            (Some(_), l) if l.starts_with("```") => out.extend(current.take()),
            (Some((_, text)), _) => {
                text.push_str(line);
                text.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_forwarding_example_loads_as_written() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/forwarding.md"))
        .expect("docs/forwarding.md");
    let example = toml_blocks(&doc)
        .into_iter()
        .map(|(_, b)| b)
        .find(|b| b.contains("domain = \"corp.example\""))
        .expect("the corp.example file");
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["forwards", "keys", "lists"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("dir");
    }
    std::fs::write(dir.path().join("forwards/corp.toml"), &example).expect("write");
    let (_, pem) = arclist::auth::signing_key::SigningKey::generate_rsa2048().expect("key");
    arclist::base::config::write_private(
        &dir.path().join("keys/fwd2026._domainkey.corp.example.pem"),
        &pem,
    )
    .expect("key file");
    std::fs::write(
        dir.path().join("keys/srs.secret"),
        "a-secret-of-some-length\n",
    )
    .expect("secret");
    std::fs::write(
        dir.path().join("server.toml"),
        "lists_dir = \"lists\"\nforwards_dir = \"forwards\"\nstore = \"var/s.redb\"\n",
    )
    .expect("server.toml");
    let config = arclist::base::config::Config::load(Some(&dir.path().join("server.toml")))
        .unwrap_or_else(|e| panic!("the documented example does not load: {e}"));
    let corp = &config.forwards[0];
    assert!(corp.aliases.contains_key("sales") && corp.aliases.contains_key("alice"));
    assert_eq!((corp.max_hops, corp.catch_all.len()), (50, 0));
    // A setting misplaced under [aliases] (a list of addresses, so it would parse as an
    // alias) is an error naming it.
    let misplaced: String = example
        .lines()
        .filter(|l| !l.starts_with("catch_all"))
        .flat_map(|l| {
            let extra = l
                .starts_with("[aliases]")
                .then_some("catch_all = [\"all@corp.example\"]");
            std::iter::once(l).chain(extra)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("forwards/corp.toml"), misplaced).expect("write");
    let err =
        arclist::base::config::Config::load(Some(&dir.path().join("server.toml"))).unwrap_err();
    assert!(err.to_string().contains("catch_all is a setting"), "{err}");
}

/// Shell lines that are not arclist's, by their first word, and why they are not run here.
const OTHER_PROGRAMS: &[(&str, &str)] = &[
    ("cargo", "the build tool: CI runs the test command itself"),
    (
        "tests/interop/install.sh",
        "installs packages: CI runs it first",
    ),
    (
        "apt-get",
        "installs a Debian package on the operator's machine",
    ),
    ("systemctl", "manages the operator's services"),
    ("echo", "writes another program's configuration (rspamd)"),
    ("sudo", "runs PostgreSQL's own tools as its user"),
    (
        "printf",
        "feeds a pass phrase to the arclist command after the pipe",
    ),
];

/// Fenced blocks that are not commands or arclist files: output shown, DNS records, other
/// programs' configuration. They are recognised by their language or, fenced without one, by
/// holding no `arclist` command; the lines of those are not checked.
const NOT_RUN_LANGUAGES: &[&str] = &["text", "ini", "yaml"];

/// A fenced block: the file and line it starts on, its language, its lines.
struct Block {
    at: String,
    language: String,
    lines: Vec<String>,
}

fn blocks_of(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).expect("doc");
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let Some(language) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let body = lines
            .by_ref()
            .map(|(_, l)| l)
            .take_while(|l| !l.trim_start().starts_with("```"))
            .map(str::to_string)
            .collect();
        out.push(Block {
            at: format!("{name}:{}", n + 1),
            language: language.trim().to_string(),
            lines: body,
        });
    }
    out
}

fn documents() -> Vec<Block> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .filter(|p| {
            let name = p.file_name().unwrap_or_default();
            name != "operator-guide.md" && name != "admin-api.md"
        })
        .collect();
    docs.sort();
    files.extend(docs);
    files.iter().flat_map(|f| blocks_of(f)).collect()
}

/// A shell line as words: single and double quotes kept together, a trailing `# comment`
/// and what follows `>` (a redirection) left out. The operator guide's test splits its
/// commands with it too.
pub(crate) fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quote) = (Vec::new(), String::new(), None);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '#' | '>') if word.is_empty() => break,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (None, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The commands of a shell line: split at `|` and `&&`, each as words, without the
/// `NAME=value` settings in front of it.
fn commands(line: &str) -> Vec<Vec<String>> {
    line.split("&&")
        .flat_map(|part| part.split('|'))
        .map(|part| {
            let mut w = words(part);
            let settings = w.iter().take_while(|w| is_setting(w)).count();
            w.drain(..settings);
            w
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// `ARCLIST_TEST_STORE=postgresql`: an environment setting before a command.
fn is_setting(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
    })
}

/// An arclist invocation as the binary's arguments: `arclist ARGS` or `cargo run --release
/// -- ARGS`.
fn arclist_args(command: &[String]) -> Option<Vec<String>> {
    match command.first().map(String::as_str) {
        Some("arclist") => Some(command[1..].to_vec()),
        Some("cargo") if command.get(1).is_some_and(|w| w == "run") => {
            let dashes = command.iter().position(|w| w == "--")?;
            Some(command[dashes + 1..].to_vec())
        }
        _ => None,
    }
}

/// Why a TOML block is none of arclist's files, or `None` when it is one.
fn toml_problem(text: &str) -> Option<String> {
    let server = ServerConfig::parse(Path::new("server.toml"), text).err()?;
    // A fragment of a list or forwarding file gets the keys such a file must have: in front
    // (top-level keys) or at the end (a table).
    let mut list_text = text.to_string();
    if !text.contains("address =") {
        list_text = format!("address = \"members@lists.example.org\"\n{list_text}");
    }
    if !text.contains("[signing]") {
        list_text.push_str("\n[signing]\nselector = \"s\"\nkey = \"s.pem\"\n");
    }
    let list = toml::from_str::<ListConfig>(&list_text).err()?;
    let forward_text = match text.contains("domain =") {
        true => text.to_string(),
        false => format!("domain = \"corp.example\"\n{text}"),
    };
    let forward = toml::from_str::<ForwardConfig>(&forward_text).err()?;
    Some(format!(
        "as a server file: {server}\nas a list file: {list}\nas a forwarding file: {forward}"
    ))
}

#[test]
fn every_block_of_the_docs_holds_as_written() {
    let mut problems = Vec::new();
    let (mut parsed, mut tomls) = (0, 0);
    for block in documents() {
        if block.language == "toml" {
            tomls += 1;
            if let Some(why) = toml_problem(&block.lines.join("\n")) {
                problems.push(format!("{}: {why}", block.at));
            }
            continue;
        }
        if NOT_RUN_LANGUAGES.contains(&block.language.as_str()) {
            continue;
        }
        let shell = block.language == "sh";
        for line in &block.lines {
            for command in commands(line) {
                if let Some(args) = arclist_args(&command) {
                    parsed += 1;
                    let argv = std::iter::once("arclist".to_string()).chain(args);
                    if let Err(e) = Cli::try_parse_from(argv) {
                        problems.push(format!("{}: `{line}`: {}", block.at, e.kind()));
                    }
                } else if shell
                    && !OTHER_PROGRAMS
                        .iter()
                        .any(|(program, _)| command[0] == *program)
                {
                    problems.push(format!(
                        "{}: `{line}`: neither arclist nor a program listed in OTHER_PROGRAMS",
                        block.at
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The docs hold dozens of each; a parser that found none would pass anything.
    assert!(parsed >= 30, "only {parsed} arclist command lines found");
    assert!(tomls >= 12, "only {tomls} TOML blocks found");
}

/// README's and arc-testbed.md's commands that need only the repository's files, run as
/// written from the repository's root.
#[test]
fn the_commands_that_need_only_the_repository_run_as_written() {
    let root = env!("CARGO_MANIFEST_DIR");
    let runnable = [
        "README.md: demo",
        "README.md: verify --zone tests/data/real-arc/keys.zone tests/data/real-arc/ocaml-arc-008.eml",
        "arc-testbed.md: conformance tests/data/arc_test_suite",
        "arc-testbed.md: conformance tests/data/dkim2",
    ];
    let docs = documents();
    for entry in runnable {
        let (doc, args) = entry.split_once(": ").expect("doc: args");
        let written = docs.iter().any(|b| {
            b.at.starts_with(doc)
                && b.lines.iter().any(|l| {
                    commands(l)
                        .iter()
                        .filter_map(|c| arclist_args(c))
                        .any(|a| a.join(" ") == args)
                })
        });
        assert!(written, "{doc} no longer shows `arclist {args}`");
        let out = Command::new(env!("CARGO_BIN_EXE_arclist"))
            .args(args.split(' '))
            .current_dir(root)
            .output()
            .expect("run arclist");
        assert!(
            out.status.success(),
            "`arclist {args}` ({doc}) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_doc_parser_finds_what_the_docs_hold() {
    assert_eq!(
        words("arclist verify --mail-from '<b@list.example>' message.eml   # comment"),
        [
            "arclist",
            "verify",
            "--mail-from",
            "<b@list.example>",
            "message.eml"
        ]
    );
    assert_eq!(
        commands("printf '%s\\n' 'a phrase' | arclist console-user ann > out"),
        [
            vec!["printf", "%s\\n", "a phrase"],
            vec!["arclist", "console-user", "ann"]
        ]
    );
    assert!(toml_problem("[delivery]\nbind_adress = \"127.0.0.2\"").is_some());
    assert!(toml_problem("[delivery]\nport = 25").is_none());
    assert!(toml_problem("archive = \"public\"").is_none());
    assert!(
        Cli::try_parse_from(["arclist", "member", "ad", "l@x", "a@x"]).is_err(),
        "a misspelt subcommand is refused"
    );
}
