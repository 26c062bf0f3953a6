//! The DNS resolver of the webhook client: it resolves as the system does, then refuses the name
//! if any of its addresses may not be reached. The connection is made to the addresses this
//! returns, so a name cannot be checked against one answer and then connect to another.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::address;

/// A name refused because of its addresses; recognised again in the client's error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NotAllowed(pub String);

#[derive(Debug, Clone, Copy)]
pub(crate) struct CheckedResolver {
    pub allow_private_addresses: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private_addresses = self.allow_private_addresses;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port (or the scheme's) in place.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private_addresses {
                check(&host, &addrs)?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Refuses the whole name if any address is refused: a name that mixes public and private
/// addresses is a rebinding attempt or a misconfiguration, and either way not to be half-trusted.
fn check(host: &str, addrs: &[SocketAddr]) -> Result<(), NotAllowed> {
    match addrs
        .iter()
        .find_map(|addr| address::refusal(addr.ip()).map(|reason| (addr.ip(), reason)))
    {
        Some((ip, reason)) => Err(NotAllowed(format!("{host} resolves to {ip} ({reason})"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(texts: &[&str]) -> Vec<SocketAddr> {
        texts
            .iter()
            .map(|text| SocketAddr::new(text.parse().unwrap_or_else(|_| panic!("{text}")), 0))
            .collect()
    }

    #[test]
    fn one_refused_address_refuses_the_name() {
        assert!(check("shop.example", &addrs(&["93.184.215.14", "2606:4700::1"])).is_ok());
        let refused = check("rebind.example", &addrs(&["93.184.215.14", "127.0.0.1"]));
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("rebind.example resolves to 127.0.0.1 (loopback)".to_owned())
        );
    }
}
