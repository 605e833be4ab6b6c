//! Which server, and which account on it, a record belongs to.
//!
//! The server part is the normalized server URL, so `HTTPS://Auth.Example.com:443/` and
//! `https://auth.example.com` name the same records. The account part is the account's id
//! as the server gives it (the user id), kept verbatim; a namespace without an account
//! holds what belongs to the server as a whole.

use std::fmt;

/// Longest account id accepted; far above any user id, low enough to bound a key.
const MAX_ACCOUNT_LEN: usize = 512;

/// A server URL, or account id, that cannot name a namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid namespace: {message}")]
pub struct InvalidNamespace {
    /// What is wrong, safe to show.
    pub message: String,
}

fn invalid(message: impl Into<String>) -> InvalidNamespace {
    InvalidNamespace {
        message: message.into(),
    }
}

/// The server (and optionally the account) records belong to.
///
/// Built with [`Namespace::for_server`] and narrowed with [`Namespace::for_account`].
/// Account-specific records (the session, the cached user) go in the account's namespace;
/// records shared by every account on a server (the device key and credential, the clock
/// offset) and server calls that must outlive an account's local data (the sign-out and
/// revocation outbox) go in the server's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace {
    server: String,
    /// Empty for the server-wide namespace (the `account` column's value too).
    account: String,
}

impl Namespace {
    /// The server-wide namespace of `server_url`, after normalizing it: scheme and host
    /// lowercased, default port and trailing slashes dropped, a path prefix kept.
    ///
    /// # Errors
    ///
    /// [`InvalidNamespace`] for anything but an absolute `http` or `https` URL, and for URLs
    /// with credentials, a query or a fragment (they do not name a server).
    pub fn for_server(server_url: &str) -> Result<Namespace, InvalidNamespace> {
        Ok(Namespace {
            server: normalize_server_url(server_url)?,
            account: String::new(),
        })
    }

    /// The namespace of `account` on this namespace's server.
    ///
    /// # Errors
    ///
    /// [`InvalidNamespace`] when `account` is empty, longer than 512 bytes or contains
    /// control characters.
    pub fn for_account(&self, account: &str) -> Result<Namespace, InvalidNamespace> {
        if account.is_empty() {
            return Err(invalid("the account id is empty"));
        }
        if account.len() > MAX_ACCOUNT_LEN {
            return Err(invalid(format!(
                "the account id is longer than {MAX_ACCOUNT_LEN} bytes"
            )));
        }
        if account.chars().any(char::is_control) {
            return Err(invalid("the account id contains control characters"));
        }
        Ok(Namespace {
            server: self.server.clone(),
            account: account.to_owned(),
        })
    }

    /// The server-wide namespace of this namespace's server.
    pub fn server_namespace(&self) -> Namespace {
        Namespace {
            server: self.server.clone(),
            account: String::new(),
        }
    }

    /// The normalized server URL.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The account, or `None` for a server-wide namespace.
    pub fn account(&self) -> Option<&str> {
        (!self.account.is_empty()).then_some(self.account.as_str())
    }

    /// One string naming this namespace unambiguously (e.g. for the vault's associated
    /// data): the server URL, then, for an account namespace, a space and the account id.
    /// A normalized URL has no space, so the first space always ends it.
    pub fn canonical(&self) -> String {
        match self.account() {
            None => self.server.clone(),
            Some(account) => format!("{} {account}", self.server),
        }
    }

    /// The namespace of a stored row: its columns were written from a `Namespace`.
    pub(super) fn from_columns(server: String, account: String) -> Namespace {
        Namespace { server, account }
    }

    /// The `account` column's value: empty for the server-wide namespace.
    pub(super) fn account_column(&self) -> &str {
        &self.account
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.account() {
            None => f.write_str(&self.server),
            Some(account) => write!(f, "{} (account {account})", self.server),
        }
    }
}

/// `scheme://host[:port][/path]`, lowercased where URLs are case-insensitive.
fn normalize_server_url(url: &str) -> Result<String, InvalidNamespace> {
    let url = url.trim();
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("the server URL contains spaces or control characters"));
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("the server URL must start with https:// or http://"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(invalid("the server URL must start with https:// or http://")),
    };
    if rest.contains(['?', '#']) {
        return Err(invalid("the server URL must not have a query or a fragment"));
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
    if authority.contains('@') {
        // Credentials in the URL would end up stored in the clear, in every row's key.
        return Err(invalid("the server URL must not contain credentials"));
    }
    let (host, port) = split_host_port(authority)?;
    let mut normalized = format!("{scheme}://{host}");
    if let Some(port) = port.filter(|port| *port != default_port) {
        normalized.push_str(&format!(":{port}"));
    }
    normalized.push_str(path.trim_end_matches('/'));
    Ok(normalized)
}

/// The lowercased host (IPv6 literals keep their brackets) and the explicit port, if any.
fn split_host_port(authority: &str) -> Result<(String, Option<u16>), InvalidNamespace> {
    let (host, port) = if let Some(literal) = authority.strip_prefix('[') {
        let (address, after) = literal
            .split_once(']')
            .ok_or_else(|| invalid("the server URL has an unclosed IPv6 address"))?;
        if address.is_empty()
            || !address
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(invalid("the server URL has an invalid IPv6 address"));
        }
        let port = match after {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| invalid("the server URL has text after its IPv6 address"))?,
            ),
        };
        (format!("[{address}]"), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(invalid("the server URL has no host"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(invalid(
                "the server URL's host must be ASCII letters, digits, '-', '.' or '_' (use punycode)",
            ));
        }
        (host.to_owned(), port)
    };
    let port = match port {
        // "host:" means the default port (RFC 3986, 3.2.3).
        None | Some("") => None,
        // Digits only: `u16::from_str` would also take a sign.
        Some(digits) => match digits.parse::<u16>() {
            Ok(port) if port != 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Some(port),
            _ => return Err(invalid("the server URL has an invalid port")),
        },
    };
    Ok((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str) -> String {
        match Namespace::for_server(url) {
            Ok(ns) => ns.server_url().to_owned(),
            Err(error) => panic!("{url:?}: {error}"),
        }
    }

    #[test]
    fn equivalent_urls_name_one_namespace() {
        for url in [
            "https://auth.example.com",
            "https://auth.example.com/",
            "HTTPS://Auth.Example.COM:443//",
            "  https://auth.example.com:  ",
        ] {
            assert_eq!(server(url), "https://auth.example.com", "{url:?}");
        }
        assert_eq!(server("http://LOCALHOST:80/"), "http://localhost");
    }

    #[test]
    fn ports_paths_and_ipv6_are_kept() {
        assert_eq!(server("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(server("https://example.com:80"), "https://example.com:80");
        assert_eq!(
            server("https://example.com/Auth/v1/"),
            "https://example.com/Auth/v1"
        );
        assert_eq!(server("http://[::1]:3000"), "http://[::1]:3000");
        assert_eq!(server("http://example.com:0080"), "http://example.com");
        assert_eq!(server("https://[FE80::1]:443/"), "https://[fe80::1]");
    }

    #[test]
    fn what_does_not_name_a_server_is_refused() {
        for url in [
            "",
            "auth.example.com",
            "ftp://auth.example.com",
            "https://",
            "https://:443",
            "https://user:pass@auth.example.com",
            "https://auth.example.com/?tenant=1",
            "https://auth.example.com/#x",
            "https://auth.example.com:99999",
            "https://auth.example.com:0",
            "https://auth.example.com:+80",
            "https://auth example.com",
            "https://auth.example.com/a\nb",
            "https://bücher.example",
            "http://[::1",
            "http://[::1]x",
            "http://[]:80",
        ] {
            assert!(Namespace::for_server(url).is_err(), "{url:?}");
        }
    }

    #[test]
    fn accounts_narrow_a_server_namespace() -> Result<(), InvalidNamespace> {
        let server = Namespace::for_server("https://auth.example.com")?;
        let alice = server.for_account("user-1")?;
        assert_eq!(server.account(), None);
        assert_eq!(alice.account(), Some("user-1"));
        assert_eq!(alice.server_namespace(), server);
        assert_ne!(alice, server);
        assert_eq!(alice.canonical(), "https://auth.example.com user-1");
        assert_eq!(server.canonical(), "https://auth.example.com");
        assert!(server.for_account("").is_err());
        assert!(server.for_account("a\u{0}b").is_err());
        assert!(server.for_account(&"x".repeat(MAX_ACCOUNT_LEN + 1)).is_err());
        Ok(())
    }
}
