//! `allowed_outbound_hosts` with Spin's syntax: `scheme://host[:port]`, where the scheme, the host
//! (or its leftmost labels, `*.example.com`) and the port may be `*`, and a missing port means the
//! scheme's default. Entries may use `{{ variable }}` templates, resolved once at start; an entry
//! that resolves to an empty string allows nothing (so an unset optional endpoint stays closed).

use anyhow::{bail, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Pattern,
    host: HostPattern,
    port: Pattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com`.
    Subdomains(String),
}

pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "redis" => 6379,
        "rediss" => 6379,
        "mysql" => 3306,
        "postgres" => 5432,
        _ => return None,
    })
}

impl AllowedHost {
    /// Checks the syntax of a manifest entry that may still contain templates.
    pub fn parse_template(entry: &str) -> Result<()> {
        if entry.contains("{{") {
            crate::variables::template_references(entry)?;
            return Ok(());
        }
        Self::parse(entry).map(|_| ())
    }

    pub fn parse(entry: &str) -> Result<Self> {
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("{entry:?} is not of the form scheme://host[:port]");
        };
        if scheme.is_empty() || rest.is_empty() {
            bail!("{entry:?} is not of the form scheme://host[:port]");
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // A URL with credentials (`redis://:pw@host:6379`) allows its host: the userinfo is
        // not part of where the component may connect.
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        if rest.contains('/') {
            bail!("{entry:?}: an allowed host has no path");
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
            _ => (rest, None),
        };
        let scheme_pat = if scheme == "*" {
            Pattern::Any
        } else {
            Pattern::Exact(scheme.to_ascii_lowercase())
        };
        let host_pat = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostPattern::Subdomains(format!(".{}", suffix.to_ascii_lowercase()))
        } else if host.contains('*') {
            bail!("{entry:?}: '*' may only stand for the whole host or its leftmost labels");
        } else {
            HostPattern::Exact(host.to_ascii_lowercase())
        };
        let port_pat = match port {
            Some("*") => Pattern::Any,
            Some(p) => {
                let n: u16 = p
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{entry:?}: bad port {p:?}"))?;
                Pattern::Exact(n.to_string())
            }
            None => match &scheme_pat {
                Pattern::Exact(s) => match default_port(s) {
                    Some(n) => Pattern::Exact(n.to_string()),
                    None => bail!("{entry:?}: scheme {s:?} has no default port; give one"),
                },
                Pattern::Any => bail!("{entry:?}: with any scheme, give a port (or '*')"),
            },
        };
        Ok(Self {
            scheme: scheme_pat,
            host: host_pat,
            port: port_pat,
        })
    }

    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match &self.scheme {
            Pattern::Any => true,
            Pattern::Exact(s) => s.eq_ignore_ascii_case(scheme),
        };
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomains(suffix) => host.ends_with(suffix.as_str()),
        };
        let port_ok = match &self.port {
            Pattern::Any => true,
            Pattern::Exact(p) => *p == port.to_string(),
        };
        scheme_ok && host_ok && port_ok
    }
}

/// A component's resolved allow-list.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts(Vec<AllowedHost>);

impl AllowedHosts {
    /// `entries` have their templates resolved already.
    pub fn parse(entries: &[String]) -> Result<Self> {
        let mut hosts = Vec::new();
        for e in entries {
            if e.trim().is_empty() {
                continue;
            }
            hosts.push(AllowedHost::parse(e)?);
        }
        Ok(Self(hosts))
    }

    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Some(port) = port.or_else(|| default_port(scheme)) else {
            return false;
        };
        self.0.iter().any(|h| h.allows(scheme, host, port))
    }

    /// For `redis://` and `mysql://` addresses passed to the Spin interfaces.
    pub fn allows_url(&self, url: &str) -> bool {
        let Ok(uri) = url.parse::<http::Uri>() else {
            return false;
        };
        match (uri.scheme_str(), uri.host()) {
            (Some(scheme), Some(host)) => {
                self.allows(scheme, host.trim_matches(['[', ']']), uri.port_u16())
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn exact_host_with_default_port() {
        let a = allowed(&["https://example.com"]);
        assert!(a.allows("https", "example.com", None));
        assert!(a.allows("https", "EXAMPLE.com", Some(443)));
        assert!(!a.allows("https", "example.com", Some(8443)));
        assert!(!a.allows("http", "example.com", None));
        assert!(!a.allows("https", "evil.com", None));
    }

    #[test]
    fn wildcards() {
        let a = allowed(&["http://*.minio.local:9000", "*://127.0.0.1:*"]);
        assert!(a.allows("http", "s3.minio.local", Some(9000)));
        assert!(!a.allows("http", "minio.local", Some(9000)));
        assert!(a.allows("https", "127.0.0.1", Some(1234)));
        assert!(a.allows("redis", "127.0.0.1", None));
        assert!(!a.allows("http", "127.0.0.2", Some(80)));
    }

    #[test]
    fn urls_for_redis_and_mysql() {
        let a = allowed(&["redis://127.0.0.1:6379", "mysql://localhost"]);
        assert!(a.allows_url("redis://127.0.0.1:6379"));
        assert!(a.allows_url("redis://127.0.0.1:6379/0"));
        assert!(!a.allows_url("redis://127.0.0.1:6380"));
        assert!(a.allows_url("mysql://user:pw@localhost/db"));
        assert!(!a.allows_url("not a url"));
    }

    #[test]
    fn credentials_in_an_entry_are_not_part_of_the_host() {
        let a = allowed(&[
            "redis://:secret@127.0.0.1:6380",
            "mysql://user:pw@db.local:3306",
        ]);
        assert!(a.allows("redis", "127.0.0.1", Some(6380)));
        assert!(a.allows_url("mysql://user:pw@db.local:3306/tikspin"));
        assert!(!a.allows("redis", "127.0.0.1", Some(6379)));
    }

    #[test]
    fn empty_entries_allow_nothing() {
        let a = allowed(&[""]);
        assert!(!a.allows("http", "127.0.0.1", Some(80)));
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in [
            "example.com",
            "http://",
            "http://a/b",
            "http://ex*ample.com",
            "http://a:port",
            "ftp://a",
            "*://a",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad}");
        }
        assert!(AllowedHost::parse_template("http://{{ host }}").is_ok());
        assert!(AllowedHost::parse_template("http://{{ host").is_err());
    }
}
