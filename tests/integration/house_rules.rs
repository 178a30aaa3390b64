//! The one-way house (docs/architecture.md): each top-level module of `src/` imports only the ones
//! on a lower floor, so a cycle between stages cannot creep back in, and the authentication
//! engine (the bottom) is a crate of its own, `crates/arclist-auth`, that knows nothing of the
//! server. The floors follow a message's way through arclist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the engine crate lives, from the root package's manifest directory.
const ENGINE: &str = "crates/arclist-auth";
/// The test beds (the recording sink, the ARC suite runner): fixtures the demo and the tests
/// use, built on the engine and kept out of the server's library.
const TESTBED: &str = "crates/arclist-testbed";

/// Floors, bottom first. A module may import those on lower floors only; modules on one floor
/// do not import each other.
const FLOORS: &[&[&str]] = &[
    // Authentication, trust and signing: the engine crate (`crates/arclist-auth`), seen in `src/`
    // as `crate::auth` (a re-export) or `arclist_auth`. It imports nothing of ours at all
    // (`the_engine_crate_knows_nothing_of_the_server`); `metrics` implements its observer.
    &["auth"],
    // Leaves every stage may use.
    &[
        "metrics",
        "memory",
        "config",
        "tasks",
        "live",
        "per_client",
        "tls_roots",
        "header",
    ],
    &["store"],
    // Our trace fields; what a message must pass before `250` (spam filter, loops, BIMI).
    &["trace", "filter"],
    // The one way out: the outbound signer (ARC, DKIM, later DKIM2) and the composer of the
    // mail arclist writes itself, under every stage that sends mail.
    &["outbound"],
    // Moves queued mail to other servers and asks its owner, through a hook trait, for the
    // policy (envelope senders, copies, what follows a round): so it sits under the lists and
    // forwarding that implement the hook.
    &["delivery"],
    &["forward"],
    // Who an address is: lists, their companions, aliases, SRS returns.
    &["directory"],
    &["smtp"],
    &["list"],
    &["pipeline"],
    &["operate"],
    // The admin service: typed operations over the store, lists and configuration, which the
    // HTTP API, the console and the CLI all call.
    &["admin"],
    &["web"],
    &["server"],
    &["cli", "main"],
];

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/store/redb_store/mod.rs` is `store`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel
        .components()
        .next()
        .expect("a component")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules named by `crate::` paths in `text`, including `crate::{a, b::c}`;
/// a path into the engine crate (`arclist_auth::`) counts as `auth`.
fn imports(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .match_indices("arclist_auth::")
        .filter(|(at, _)| !text[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|_| "auth".to_string())
        .collect();
    for (at, _) in text.match_indices("crate::") {
        // `arclist::crate::` does not exist; skip `$crate::` in macros.
        if text[..at].ends_with('$') {
            continue;
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(inner.split(',').filter_map(|p| {
                let name: String = p
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                (!name.is_empty()).then_some(name)
            }));
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn imports_only_go_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let own = floor(&module).unwrap_or_else(|| {
            panic!("src/{module} is on no floor: add it to FLOORS in house_rules.rs")
        });
        let text = std::fs::read_to_string(file).expect("readable");
        for used in imports(&text) {
            if used == module {
                continue;
            }
            let theirs = floor(&used)
                .unwrap_or_else(|| panic!("{}: crate::{used} is on no floor", file.display()));
            if theirs >= own {
                wrong
                    .entry(format!(
                        "{}",
                        file.strip_prefix(&src).expect("src").display()
                    ))
                    .or_default()
                    .push(used);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that go up or sideways (file: modules it must not use): {wrong:#?}"
    );
}

#[test]
fn the_engine_crate_knows_nothing_of_the_server() {
    // Said on its own, because it is the rule the rest of the house stands on: the engine can
    // be read, tested and reused without the server around it. Inside the engine `crate::` is
    // the engine itself; the server could only come in as a dependency, named `arclist::`.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let engine = root.join(ENGINE);
    let mut files = Vec::new();
    sources(&engine.join("src"), &mut files);
    assert!(files.len() > 20, "the engine's sources were found");
    sources(&engine.join("tests"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        assert!(
            !text.contains("arclist::"),
            "{} names the server crate (arclist::)",
            file.display()
        );
    }
    let manifest = std::fs::read_to_string(engine.join("Cargo.toml")).expect("engine manifest");
    let manifest: toml::Table = manifest.parse().expect("the engine's Cargo.toml parses");
    let workspace: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .expect("root manifest")
        .parse()
        .expect("the root Cargo.toml parses");
    let shared = workspace["workspace"]["dependencies"]
        .as_table()
        .expect("[workspace.dependencies]");
    for (name, spec) in engine_dependencies(&manifest) {
        // A dependency inherited from the workspace is checked as the workspace states it.
        let spec = match spec.get("workspace").and_then(toml::Value::as_bool) {
            Some(true) => shared.get(&name).unwrap_or(&spec).clone(),
            _ => spec,
        };
        let package = spec.get("package").and_then(toml::Value::as_str);
        assert!(
            name != "arclist" && package != Some("arclist") && spec.get("path").is_none(),
            "{ENGINE}/Cargo.toml depends on {name}, a crate of the workspace"
        );
    }
}

#[test]
fn the_test_beds_stand_on_the_engine_alone() {
    // The sink and the suite runner are fixtures: the server's library must not carry them, and
    // they must not reach up into the server, or a test would exercise the server through itself.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let testbed = root.join(TESTBED);
    let mut files = Vec::new();
    sources(&testbed.join("src"), &mut files);
    assert!(files.len() >= 3, "the test beds' sources were found");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        assert!(
            !text.contains("arclist::"),
            "{} names the server crate",
            file.display()
        );
    }
    let manifest: toml::Table = std::fs::read_to_string(testbed.join("Cargo.toml"))
        .expect("test bed manifest")
        .parse()
        .expect("the test beds' Cargo.toml parses");
    let ours: Vec<String> = engine_dependencies(&manifest)
        .into_iter()
        .filter(|(_, spec)| spec.get("path").is_some())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        ours,
        ["arclist-auth"],
        "{TESTBED} depends on the engine and nothing else of ours"
    );
    for gone in ["testbed", "conformance"] {
        assert!(
            !root.join("src").join(gone).exists(),
            "src/{gone} is back in the server"
        );
    }
}

/// Every dependency the engine's manifest names (normal, dev and build, for any target).
fn engine_dependencies(manifest: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut tables = vec![manifest];
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        tables.extend(targets.values().filter_map(toml::Value::as_table));
    }
    let mut out = Vec::new();
    for table in tables {
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            if let Some(deps) = table.get(section).and_then(toml::Value::as_table) {
                out.extend(deps.iter().map(|(n, v)| (n.clone(), v.clone())));
            }
        }
    }
    assert!(!out.is_empty(), "the engine's dependencies were found");
    out
}

#[test]
fn lists_and_forwarding_sign_through_the_one_outbound_signer() {
    // One way out: the ARC set, the DKIM signature and (later) DKIM2 are added in
    // `outbound/signer.rs` only, so a change to what leaves signed is made once for lists and
    // forwarding. The CLI's `seal`/`sign` commands, its demo and the ARC test-suite runner sign
    // what a person or a fixture hands them, and stay outside.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let allowed = [
        "outbound/signer.rs",
        "cli/seal.rs",
        "cli/demo.rs",
        "conformance/mod.rs",
    ];
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let name = file.strip_prefix(&src).expect("src").display().to_string();
        if (text.contains("ArcSealer") || text.contains("DkimSigner"))
            && !allowed.contains(&name.as_str())
        {
            wrong.push(name);
        }
    }
    assert!(
        wrong.is_empty(),
        "these add ARC sets or DKIM signatures themselves instead of through outbound::Signer: {wrong:?}"
    );
}

#[test]
fn grouped_imports_are_seen() {
    let found = imports("use crate::{auth, list::Lists};\nuse crate::store::Store;");
    assert_eq!(found, ["auth", "list", "store"]);
    let engine =
        imports("impl arclist_auth::observe::Observer for X {}\nlet s = \"arclist_auth_results\";");
    assert_eq!(engine, ["auth"]);
}

#[test]
fn delivery_connect_does_not_import_client() {
    let connect = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/delivery/connect.rs");
    let text = std::fs::read_to_string(connect).expect("readable");
    assert!(
        !text.contains("super::client"),
        "connect.rs is below client.rs: client opens connections, not the other way round"
    );
}

/// The line a function starting at `lines[start]` ends on, counting braces outside string
/// and character literals and line comments; `None` for a declaration without a body.
fn function_end(lines: &[&str], start: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut opened = false;
    for (n, line) in lines.iter().enumerate().skip(start) {
        let code = line.split("//").next().unwrap_or_default();
        let mut chars = code.chars().peekable();
        let mut in_string = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' if in_string => {
                    chars.next();
                }
                '"' => in_string = !in_string,
                // A character literal such as '{' (a lifetime has no closing quote after one char).
                '\'' if !in_string => {
                    let mut ahead = chars.clone();
                    let first = ahead.next();
                    let skip = if first == Some('\\') { 3 } else { 2 };
                    let literal = if first == Some('\\') {
                        ahead.nth(1) == Some('\'')
                    } else {
                        ahead.next() == Some('\'')
                    };
                    if literal {
                        for _ in 0..skip {
                            chars.next();
                        }
                    }
                }
                '{' if !in_string => {
                    depth += 1;
                    opened = true;
                }
                '}' if !in_string => depth -= 1,
                _ => {}
            }
        }
        if opened && depth == 0 {
            return Some(n);
        }
        if !opened && code.trim_end().ends_with(';') {
            return None;
        }
    }
    None
}

#[test]
fn no_function_in_src_is_over_100_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    sources(&root.join(ENGINE).join("src"), &mut files);
    sources(&root.join(TESTBED).join("src"), &mut files);
    let mut long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let lines: Vec<&str> = text.lines().collect();
        for (start, line) in lines.iter().enumerate() {
            let head = line.trim_start();
            let head = ["pub(crate) ", "pub(super) ", "pub "]
                .iter()
                .find_map(|p| head.strip_prefix(p))
                .unwrap_or(head);
            let head = ["const ", "async ", "unsafe "]
                .iter()
                .fold(head, |h, p| h.strip_prefix(p).unwrap_or(h));
            if !head.starts_with("fn ") {
                continue;
            }
            if let Some(end) = function_end(&lines, start)
                && end - start + 1 > 100
            {
                long.push(format!(
                    "{}:{} {} lines",
                    file.strip_prefix(root).expect("under the root").display(),
                    start + 1,
                    end - start + 1
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over 100 lines (split them into named steps): {long:#?}"
    );
}

#[test]
fn function_lengths_are_measured_from_signature_to_closing_brace() {
    let text = "fn a() {\n    let c = '{';\n    let s = \"}}\";\n    // }\n}\nfn b();\n";
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(function_end(&lines, 0), Some(4));
    assert_eq!(function_end(&lines, 5), None);
}
