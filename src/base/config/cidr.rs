//! Address ranges in settings (`trusted_relays`): an address, or a CIDR block.

use serde::{Deserialize, Deserializer};
use std::net::IpAddr;

/// Which entry of an address range setting is wrong, and how.
#[derive(Debug, thiserror::Error)]
pub enum CidrError {
    /// Neither an address nor an address with a prefix length.
    #[error("{item:?} is not an address or CIDR block")]
    NotAddress {
        /// The entry as written.
        item: String,
    },
    /// A prefix length that is not a number up to the address's size.
    #[error("{item:?}: the prefix length must be 0 to {max}")]
    Prefix {
        /// The entry as written.
        item: String,
        /// 32 or 128.
        max: u8,
    },
}

/// Addresses or CIDR blocks (`127.0.0.1`, `10.0.0.0/8`, `::1`), as a setting lists them.
#[derive(Debug, Clone, Default)]
pub struct Cidrs(Vec<(IpAddr, u8)>);

impl Cidrs {
    /// Parses `items`; the error names the bad one.
    pub fn parse(items: &[String]) -> Result<Self, CidrError> {
        let mut out = Vec::new();
        for item in items {
            let (ip, bits) = match item.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (item.as_str(), None),
            };
            let ip: IpAddr = ip
                .trim()
                .parse()
                .map_err(|_| CidrError::NotAddress { item: item.clone() })?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| CidrError::Prefix {
                        item: item.clone(),
                        max,
                    })?,
                None => max,
            };
            out.push((ip, bits));
        }
        Ok(Cidrs(out))
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| within(ip, *net, *bits))
    }
}

fn within(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let mask = |len: u32, total: u32| -> u128 {
        if len == 0 {
            0
        } else {
            (!0u128) << (total - len)
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let m = mask(u32::from(bits), 32) as u32;
            u32::from(a) & m == u32::from(b) & m
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let m = mask(u32::from(bits), 128);
            u128::from(a) & m == u128::from(b) & m
        }
        _ => false,
    }
}

impl<'de> Deserialize<'de> for Cidrs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(d)?;
        Cidrs::parse(&items).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let r = Cidrs::parse(&["127.0.0.1".into(), "10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(r.contains("10.2.3.4".parse().unwrap()) && r.contains("::1".parse().unwrap()));
        assert!(!r.contains("127.0.0.2".parse().unwrap()));
        assert!(Cidrs::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(
            Cidrs::parse(&["0.0.0.0/0".into()])
                .unwrap()
                .contains("192.0.2.1".parse().unwrap())
        );
    }
}
