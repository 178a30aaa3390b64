//! A new list: its file under `lists/` and its signing key under `keys/` (mode 0600). An
//! existing file is never overwritten.

use crate::base::config::Config;
use std::os::unix::fs::OpenOptionsExt;
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

/// What is in the way of a new list; nothing is left behind.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The address would not make safe file names, or is no address.
    #[error("{address:?} is not a list address (letters, digits and . _ + - only)")]
    NotListAddress {
        /// The address asked for.
        address: String,
    },
    /// A list with this address is configured.
    #[error("a list {address} already exists")]
    Exists {
        /// The address asked for.
        address: String,
    },
    /// The selector would not make a safe DNS label and file name.
    #[error("{selector:?} is not a DKIM selector (letters, digits, -)")]
    BadSelector {
        /// The selector asked for.
        selector: String,
    },
    /// The list file is there already (another list with this local part).
    #[error("{} exists (an existing file is never overwritten)", path.display())]
    FileExists {
        /// The list file.
        path: PathBuf,
    },
    /// The key could not be generated.
    #[error(transparent)]
    KeyGen(#[from] crate::auth::signing_key::KeyLoadError),
    /// The key file could not be written (usually: it exists).
    #[error("{0} (another list may use this selector; choose another)")]
    KeyFile(#[source] crate::base::config::PrivateFileError),
    /// The list file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The list file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key's DNS record could not be made (the engine says why in words).
    #[error("{0}")]
    DnsRecord(String),
}

/// Writes the file of list `address` (display name `name`, DKIM selector `selector`) and
/// its key. Errors say what is in the way.
pub fn create(
    config: &Config,
    address: &str,
    name: &str,
    selector: &str,
) -> Result<Created, CreateError> {
    let plain = |s: &str, extra: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '-'])
            && !s.contains("..")
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    };
    // The local part and domain become file names: nothing that could leave lists/ or keys/.
    let ok = crate::base::config::valid_address(address)
        && address
            .rsplit_once('@')
            .is_some_and(|(l, d)| plain(l, "._+-") && plain(d, ".-"));
    if !ok {
        return Err(CreateError::NotListAddress {
            address: address.to_string(),
        });
    }
    if config.list(address).is_some() {
        return Err(CreateError::Exists {
            address: address.to_string(),
        });
    }
    if selector.is_empty()
        || !selector
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(CreateError::BadSelector {
            selector: selector.to_string(),
        });
    }
    let (local, domain) = address
        .rsplit_once('@')
        .ok_or_else(|| CreateError::NotListAddress {
            address: address.to_string(),
        })?;
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
        return Err(CreateError::FileExists { path: file });
    }
    // The key first: a list file without its key would stop every reload and restart.
    let (signing, pem) = crate::auth::signing_key::SigningKey::generate_rsa2048()?;
    crate::base::config::write_private(&key, &pem).map_err(CreateError::KeyFile)?;
    // The service and its group read list files; they may name owners and moderators.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .and_then(|()| crate::base::config::owner::adopt(&file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(&key);
        return Err(CreateError::Write {
            path: file,
            source: e,
        });
    }
    let dns = crate::auth::dns::zone::zone_line(
        &format!("{selector}._domainkey.{domain}."),
        &signing.dns_record().map_err(CreateError::DnsRecord)?,
    );
    Ok(Created { file, key, dns })
}
