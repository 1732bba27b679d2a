//! `[proxy]` → [`ProxyConfig`].
//!
//! This module owns the proxy address (http, https or socks5), its credentials (in the
//! address or in `username` and `password`, not both) and `no_proxy`. Without an address
//! the standard proxy environment variables apply; that is decided where the HTTP client
//! is built, not here. Validated credentials are kept apart from the address, so the
//! address can be logged.

use super::value::percent_decode;
use super::{Check, Entry, entry};
use crate::config::raw::RawSection;
use crate::config::{Proxy, ProxyConfig, Secret};
use url::Url;

/// The keys of `[proxy]`.
pub const PROXY_KEYS: &[&str] = &["address", "username", "password", "no_proxy"];

impl Check<'_, '_> {
    pub(super) fn proxy(&mut self, section: Option<&RawSection>) -> Option<ProxyConfig> {
        let address = entry(section, "address", false);
        let username = entry(section, "username", false);
        let password = entry(section, "password", false);
        let no_proxy: Vec<String> = entry(section, "no_proxy", false)
            .map(|e| {
                e.value
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let Some(address) = address else {
            let mut ok = true;
            for e in [username, password].into_iter().flatten() {
                self.bad(e, "set but address is empty; set address or remove it");
                ok = false;
            }
            return ok.then_some(ProxyConfig::FromEnvironment);
        };
        let url = match Url::parse(address.value) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h")
                    && url.has_host() =>
            {
                url
            }
            _ => {
                self.bad(
                    address,
                    "not a proxy url; expected http://host:port, https://host:port or socks5://host:port",
                );
                return None;
            }
        };
        let (url, username, password) = self.proxy_credentials(url, username, password)?;
        Some(ProxyConfig::Explicit(Proxy {
            address: url,
            username,
            password,
            no_proxy,
        }))
    }

    /// Separates the credentials from the address: those written in it, else `username`
    /// and `password`. Giving both, or a password without a user, is a problem.
    fn proxy_credentials(
        &mut self,
        mut url: Url,
        username: Option<Entry<'_>>,
        password: Option<Entry<'_>>,
    ) -> Option<(Url, Option<String>, Option<Secret>)> {
        let url_user = percent_decode(url.username());
        let url_password = url.password().map(percent_decode);
        let mut ok = true;
        if !url_user.is_empty() || url_password.is_some() {
            for e in [username, password].into_iter().flatten() {
                self.bad(
                    e,
                    "the address already holds credentials; give them in the address or in username and password, not both",
                );
                ok = false;
            }
        }
        if let (Some(p), None) = (password, username)
            && url_user.is_empty()
        {
            self.bad(p, "set without username; set both or neither");
            ok = false;
        }
        // Credentials travel separately from the address, so the address can be logged.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let (user, pass) = if url_user.is_empty() {
            (
                username.map(|e| e.value.to_string()),
                password.map(|e| Secret::new(e.value)),
            )
        } else {
            (Some(url_user), url_password.map(Secret::new))
        };
        ok.then_some((url, user, pass))
    }
}
