//! A new list: its file under `lists/` and its signing key under `keys/` (mode 0600). An
//! existing file is never overwritten.

use crate::config::Config;
use std::path::PathBuf;

/// What [`create`] wrote.
pub struct Created {
    /// The list file.
    pub file: PathBuf,
    /// The private key file.
    pub key: PathBuf,
    /// The DNS record to publish, as a master-file line.
    pub dns: String,
}

/// Writes the file of list `address` (display name `name`, DKIM selector `selector`) and
/// its key. Errors say what is in the way.
pub fn create(
    config: &Config,
    address: &str,
    name: &str,
    selector: &str,
) -> Result<Created, String> {
    let plain = |s: &str, extra: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '-'])
            && !s.contains("..")
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    // The local part and domain become file names: nothing that could leave lists/ or keys/.
    let ok = crate::config::valid_address(address)
        && address
            .rsplit_once('@')
            .is_some_and(|(l, d)| plain(l, "._+-") && plain(d, ".-"));
    if !ok {
        return Err(format!(
            "{address:?} is not a list address (letters, digits and . _ + - only)"
        ));
    }
    if config.list(address).is_some() {
        return Err(format!("a list {address} already exists"));
    }
    if selector.is_empty()
        || !selector
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!(
            "{selector:?} is not a DKIM selector (letters, digits, -)"
        ));
    }
    let (local, domain) = address.rsplit_once('@').ok_or("no @ in the address")?;
    let file = config.server.lists_dir.join(format!("{local}.toml"));
    let key = config
        .server
        .lists_dir
        .join("..")
        .join("keys")
        .join(format!("{selector}._domainkey.{domain}.pem"));
    let text = format!(
        "address = \"{}\"\nname = \"{}\"\nsubject_tag = \"[{local}] \"\n\n[signing]\nselector = \"{selector}\"\nkey = \"../keys/{selector}._domainkey.{domain}.pem\"\n",
        address.to_ascii_lowercase(),
        if name.is_empty() {
            local.to_string()
        } else {
            name.replace(['"', '\\', '\n', '\r'], "'")
        }
    );
    if file.exists() {
        return Err(format!(
            "{} exists (an existing file is never overwritten)",
            file.display()
        ));
    }
    // The key first: a list file without its key would stop every reload and restart.
    let (signing, pem) =
        crate::auth::signing_key::SigningKey::generate_rsa2048().map_err(|e| e.to_string())?;
    crate::config::write_private(&key, &pem)
        .map_err(|e| format!("{e} (another list may use this selector; choose another)"))?;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(&key);
        return Err(format!("cannot write {}: {e}", file.display()));
    }
    let dns = crate::auth::dns::zone::zone_line(
        &format!("{selector}._domainkey.{domain}."),
        &signing.dns_record()?,
    );
    Ok(Created { file, key, dns })
}
