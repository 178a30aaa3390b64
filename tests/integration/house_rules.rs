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

/// The layers, bottom first: the engine is a crate of its own, every other layer a folder of
/// `src/` holding its modules. In each layer, its floors, bottom first. A module may import
/// modules on lower floors only, of its own layer or a lower one; modules on one floor do not
/// import each other. `every_module_sits_in_its_layer_folder` keeps the folders and this list
/// the same.
const LAYERS: &[(&str, &[&[&str]])] = &[
    // Authentication, trust and signing: the engine crate (`crates/arclist-auth`), seen in `src/`
    // as `crate::auth` (a re-export) or `arclist_auth`. It imports nothing of ours at all
    // (`the_engine_crate_knows_nothing_of_the_server`); `metrics` implements its observer.
    ("engine", &[&["auth"]]),
    // Leaves every stage may use; none knows a message's way.
    (
        "base",
        &[&[
            "metrics",
            "memory",
            "config",
            "tasks",
            "live",
            "per_client",
            "tls_roots",
            "header",
        ]],
    ),
    // What must not be lost.
    ("state", &[&["store"]]),
    // A message's way.
    (
        "stages",
        &[
            // Our trace fields; what a message must pass before `250` (spam filter, loops, BIMI).
            &["trace", "filter"],
            // The one way out: the outbound signer (ARC, DKIM, DKIM2) and the composer of
            // the mail arclist writes itself, under every stage that sends mail.
            &["outbound"],
            // Moves queued mail to other servers and asks its owner, through a hook trait, for
            // the policy (envelope senders, copies, what follows a round): so it sits under the
            // lists and forwarding that implement the hook.
            &["delivery"],
            &["forward"],
            // Who an address is: lists, their companions, aliases, SRS returns.
            &["directory"],
            &["smtp"],
            &["list"],
            &["pipeline"],
        ],
    ),
    // What people use to run it. The admin service holds the typed operations over the store,
    // lists and configuration that the HTTP API, the console and the CLI all call.
    ("surfaces", &[&["operate"], &["admin"], &["web"]]),
    // A running server put together, and the command that starts it and talks to it.
    ("assembly", &[&["server"], &["cli", "main"]]),
];

/// The floors of every layer, bottom first.
fn floors() -> impl Iterator<Item = &'static &'static [&'static str]> {
    LAYERS.iter().flat_map(|(_, floors)| floors.iter())
}

fn floor(module: &str) -> Option<usize> {
    floors().position(|f| f.contains(&module))
}

/// The layer whose folder `module` belongs in.
fn layer_of(module: &str) -> Option<&'static str> {
    LAYERS
        .iter()
        .find(|(_, floors)| floors.iter().any(|f| f.contains(&module)))
        .map(|(layer, _)| *layer)
}

fn is_layer(name: &str) -> bool {
    LAYERS.iter().any(|(layer, _)| *layer == name)
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

/// The module a file of `src/` belongs to (`src/state/store/redb_store/mod.rs` is `store`);
/// `lib` and `main` for those files, and the layer's own name for a layer's `mod.rs`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts = rel.components().map(|c| {
        c.as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string()
    });
    let first = parts.next().expect("a component");
    match parts.next() {
        Some(second) if is_layer(&first) && second != "mod" => second,
        _ => first,
    }
}

/// The name at the start of `path` (`list::Lists` is `list`).
fn first_name(path: &str) -> &str {
    let path = path.trim_start();
    let end = path
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(path.len());
    &path[..end]
}

/// The items of a `{a, b::{c, d}}` group that starts `text` (after the `{`), split at its own
/// commas; nested groups stay whole.
fn group_items(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            '}' if depth == 0 => {
                items.push(&text[start..i]);
                return items;
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

/// The modules a path after `crate::` names: through a layer (`stages::list::X` is `list`) and
/// into groups (`{auth, stages::{list, smtp}}`).
fn modules_in(path: &str, out: &mut Vec<String>) {
    let path = path.trim_start();
    if let Some(group) = path.strip_prefix('{') {
        for item in group_items(group) {
            modules_in(item, out);
        }
        return;
    }
    let name = first_name(path);
    if is_layer(name) {
        if let Some(rest) = path[name.len()..].trim_start().strip_prefix("::") {
            modules_in(rest, out);
        }
    } else if !name.is_empty() {
        out.push(name.to_string());
    }
}

/// The modules named by `crate::` paths in `text`, including `crate::{a, b::c}`; a path into
/// the engine crate (`arclist_auth::`) counts as `auth`.
fn imports(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .match_indices("arclist_auth::")
        .filter(|(at, _)| !text[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|_| "auth".to_string())
        .collect();
    for (at, _) in text.match_indices("crate::") {
        // Skip `$crate::` in macros.
        if text[..at].ends_with('$') {
            continue;
        }
        modules_in(&text[at + "crate::".len()..], &mut out);
    }
    out
}

#[test]
fn every_module_sits_in_its_layer_folder() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut misplaced = Vec::new();
    for entry in std::fs::read_dir(&src).expect("src is readable") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if name == "lib.rs" || name == "main.rs" {
            continue;
        }
        if !path.is_dir() || !is_layer(&name) || name == "engine" {
            misplaced.push(format!("src/{name} is not a layer folder"));
            continue;
        }
        for module in std::fs::read_dir(&path).expect("a layer is readable") {
            let module = module
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            let module = module.trim_end_matches(".rs");
            if module != "mod" && layer_of(module) != Some(name.as_str()) {
                misplaced.push(format!(
                    "src/{name}/{module} belongs in {:?}",
                    layer_of(module)
                ));
            }
        }
    }
    for (layer, floors) in LAYERS.iter().filter(|(layer, _)| *layer != "engine") {
        for module in floors
            .iter()
            .flat_map(|f| f.iter())
            .filter(|m| **m != "main")
        {
            let dir = src.join(layer);
            if !dir.join(module).is_dir() && !dir.join(format!("{module}.rs")).is_file() {
                misplaced.push(format!("{module} is not in src/{layer}"));
            }
        }
    }
    assert!(misplaced.is_empty(), "{misplaced:#?}");
}

#[test]
fn imports_only_go_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || is_layer(&module) {
            continue;
        }
        let own = floor(&module).unwrap_or_else(|| {
            panic!("src/{module} is on no floor: add it to LAYERS in house_rules.rs")
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
    // One way out: the ARC set, the DKIM signature and DKIM2 are added in
    // `outbound/signer.rs` only, so a change to what leaves signed is made once for lists and
    // forwarding. The CLI's `seal`/`sign` commands, its demo and the ARC test-suite runner sign
    // what a person or a fixture hands them, and stay outside.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let allowed = [
        "stages/outbound/signer.rs",
        "assembly/cli/seal.rs",
        "assembly/cli/demo.rs",
    ];
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let name = file.strip_prefix(&src).expect("src").display().to_string();
        if (text.contains("ArcSealer")
            || text.contains("DkimSigner")
            || text.contains("Dkim2Signer"))
            && !allowed.contains(&name.as_str())
        {
            wrong.push(name);
        }
    }
    assert!(
        wrong.is_empty(),
        "these add ARC sets, DKIM or DKIM2 signatures themselves instead of through outbound::Signer: {wrong:?}"
    );
}

#[test]
fn grouped_imports_are_seen() {
    let found = imports(
        "use crate::{auth, stages::list::Lists};\nuse crate::state::store::Store;\n\
         use crate::{base::config, stages::{smtp, list::copy}};",
    );
    assert_eq!(found, ["auth", "list", "store", "config", "smtp", "list"]);
    let engine =
        imports("impl arclist_auth::observe::Observer for X {}\nlet s = \"arclist_auth_results\";");
    assert_eq!(engine, ["auth"]);
}

#[test]
fn delivery_connect_does_not_import_client() {
    let connect = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/stages/delivery/connect.rs");
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
