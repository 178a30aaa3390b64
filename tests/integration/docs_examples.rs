//! The TOML in the docs is what operators copy: every block must parse, and the forwarding
//! domain example must load as arclist loads it.

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
fn every_toml_block_in_the_docs_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("docs") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let doc = std::fs::read_to_string(&path).expect("readable");
        for (line, block) in toml_blocks(&doc) {
            if let Err(e) = block.parse::<toml::Table>() {
                panic!("{}:{line}: {e}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} TOML blocks found");
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
