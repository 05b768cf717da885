//! `allowed_outbound_hosts` with Spin 4's rules (`crates/outbound-networking-config/src/
//! allowed_hosts.rs` in `spinframework/spin` v4.0.2): what an entry may say, what it allows, and
//! when a templated entry is checked.
//!
//! - An entry is `<scheme>://<host>[:<port>]`. The scheme is `*` or letters only; the host is
//!   `*`, `self`, `*.<domain>`, an IP address or CIDR block, or a domain (no path, no
//!   credentials); the port is `*`, a number, a range `a..b` (end excluded), or absent, which
//!   means the scheme's well-known port (`http`, `https`, `redis`, `mysql`, `postgres`, `mqtt`
//!   only: `rediss://host` needs a port).
//! - A literal entry is checked when the manifest loads. A templated one (`{{ variable }}`) is
//!   checked at load *with the variables' defaults* when every variable it uses has one — so a
//!   template whose defaults make an invalid host (an empty string, say) is a load error
//!   whatever value is set at run time — and resolved with the real values when the app runs.
//!   A run-time value that is not a valid host leaves the component with no outbound access,
//!   as Spin's lazily resolved allow-list does; the host says so once at start.

use std::collections::BTreeMap;
use std::ops::Range;

use anyhow::{bail, ensure, Context, Result};
use url::Host;

use crate::manifest::VariableDecl;

const FORMAT_HELP: &str = "Hosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each.\n\
If you intended to allow all outbound networking, you can use '*://*:*' - this will obviate all network sandboxing.\n\
Learn more: https://spinframework.dev/v3/http-outbound#granting-http-permissions-to-components";

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`, kept as `.example.com`: any domain ending with it.
    Subdomains(String),
    /// `self`: relative requests to the app itself (TikSpin makes none; never matches a URL).
    ToSelf,
    Literal(Host),
    /// An IP address (a /32 or /128) or a CIDR block.
    Network(ip_network::IpNetwork),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Exact(u16),
    Range(Range<u16>),
}

/// The port a scheme means when an entry or a URL gives none.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        "http" => 80,
        "https" => 443,
        _ => return None,
    })
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            match url {
                "*" | ":" | "" | "?" => {
                    bail!("{url:?} is not an allowed outbound host format.\n{FORMAT_HELP}")
                }
                _ => bail!("{url:?} does not contain a scheme (e.g., 'http://' or '*://')"),
            }
        };
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port.split_once('/') {
            Some((_, path)) if !path.is_empty() => bail!("{url:?} has a path but is not allowed to"),
            Some((port, _)) => port,
            None => port,
        };
        let port = PortPattern::parse(port, scheme)
            .with_context(|| format!("Invalid allowed host port {port:?}"))?;
        let scheme = SchemePattern::parse(scheme)
            .with_context(|| format!("Invalid allowed host scheme {scheme:?}"))?;
        let host =
            HostPattern::parse(host).with_context(|| format!("Invalid allowed host {host:?}"))?;
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, url: &OutboundUrl) -> bool {
        let scheme = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(s) => *s == url.scheme,
        };
        scheme && self.host.allows(&url.host) && self.port.allows(url.port, &url.scheme)
    }
}

impl SchemePattern {
    fn parse(scheme: &str) -> Result<Self> {
        if scheme == "*" {
            return Ok(Self::Any);
        }
        ensure!(!scheme.starts_with('{'), "scheme lists are not supported");
        ensure!(
            scheme.chars().all(char::is_alphabetic),
            "only alphabetic characters are allowed"
        );
        Ok(Self::Exact(scheme.to_string()))
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self> {
        let host = host.trim();
        match host {
            "*" => return Ok(Self::Any),
            "self" | "self.alt" => return Ok(Self::ToSelf),
            _ => {}
        }
        if host.starts_with('{') {
            ensure!(host.ends_with('}'), "unclosed host list");
            bail!("host lists are not yet supported");
        }
        if let Ok(network) = ip_network::IpNetwork::from_str_truncate(host) {
            return Ok(Self::Network(network));
        }
        let host = host.trim_end_matches('/');
        ensure!(!host.contains('/'), "must not include a path");
        if let Some(domain) = host.strip_prefix("*.") {
            ensure!(!domain.contains('*'), "wildcards are allowed only as prefixes");
            return Ok(Self::Subdomains(format!(".{domain}")));
        }
        ensure!(!host.contains('*'), "wildcards are allowed only as subdomains");
        Ok(Self::Literal(Host::parse(host)?))
    }

    fn allows(&self, host: &Host) -> bool {
        match (self, host) {
            (Self::Any, _) => true,
            (Self::Subdomains(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (Self::Literal(literal), host) => literal == host,
            (Self::Network(net), Host::Ipv4(ip)) => net.contains(*ip),
            (Self::Network(net), Host::Ipv6(ip)) => net.contains(*ip),
            (Self::Subdomains(_) | Self::Network(_) | Self::ToSelf, _) => false,
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: &str) -> Result<Self> {
        if port.is_empty() {
            return well_known_port(scheme).map(Self::Exact).with_context(|| {
                format!("no port was provided and the scheme {scheme:?} does not have a known default port number")
            });
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        ensure!(!port.starts_with('{'), "port lists are not yet supported");
        if let Some((start, end)) = port.split_once("..") {
            let number = |s: &str| {
                s.parse::<u16>()
                    .with_context(|| format!("port range {port:?} contains non-number"))
            };
            return Ok(Self::Range(number(start)?..number(end)?));
        }
        Ok(Self::Exact(
            port.parse()
                .with_context(|| format!("port {port:?} is not a number"))?,
        ))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let Some(port) = port.or_else(|| well_known_port(scheme)) else {
            return matches!(self, Self::Any);
        };
        match self {
            Self::Any => true,
            Self::Exact(p) => *p == port,
            Self::Range(r) => r.contains(&port),
        }
    }
}

/// Where a component wants to connect: a request URI, or a `redis://`/`mysql://` address.
struct OutboundUrl {
    scheme: String,
    host: Host,
    port: Option<u16>,
}

impl OutboundUrl {
    /// Parses like Spin: credentials are percent-encoded first (they never affect the host),
    /// and a string without a scheme is retried with `default_scheme://` in front.
    fn parse(address: &str, default_scheme: &str) -> Option<Self> {
        let mut address = address.to_string();
        if let Some(at) = address.find('@') {
            let authority_start = address.find("://").map_or(0, |i| i + 3);
            let path_start = address[authority_start..]
                .find('/')
                .map_or(usize::MAX, |i| i + authority_start);
            if at < path_start {
                let userinfo = &address[authority_start..at];
                let encoded = urlencoding_encode(userinfo);
                address = format!(
                    "{}{encoded}{}",
                    &address[..authority_start],
                    &address[at..]
                );
            }
        }
        let parsed = match url::Url::parse(&address) {
            Ok(u) if u.has_host() => u,
            _ => url::Url::parse(&format!("{default_scheme}://{address}")).ok()?,
        };
        // Read the host again as a special scheme's host would be, as Spin does: for `redis://`
        // and `mysql://` the URL parser keeps `127.0.0.1` an opaque name, not an address.
        Some(Self {
            scheme: parsed.scheme().to_string(),
            host: Host::parse(parsed.host_str()?).ok()?,
            port: parsed.port(),
        })
    }
}

/// RFC 3986 unreserved characters stay, everything else is `%XX` (as the `urlencoding` crate
/// Spin uses does).
fn urlencoding_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Load-time checks of one component's entries (Spin: `AllowedHostsConfig::validate` with the
/// manifest's defaults). `"insecure:allow-all"` alone is refused, as Spin refuses it.
pub fn validate(entries: &[String], variables: &BTreeMap<String, VariableDecl>) -> Result<()> {
    if entries.len() == 1 && entries[0] == "insecure:allow-all" {
        bail!("'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'");
    }
    for entry in entries {
        let names = crate::variables::template_references(entry)?;
        if names.is_empty() {
            AllowedHost::parse(entry)?;
            continue;
        }
        for name in &names {
            if !variables.contains_key(name) {
                bail!("{entry:?} refers to {{{{ {name} }}}}, which is not declared in [variables]");
            }
        }
        let defaults = names
            .iter()
            .filter_map(|n| Some((n.clone(), variables[n].default.clone()?)))
            .collect::<std::collections::HashMap<_, _>>();
        if defaults.len() < names.len() {
            continue; // a variable without a default: only its run-time value can be checked
        }
        let resolved = crate::variables::render(entry, &defaults)?;
        AllowedHost::parse(&resolved).with_context(|| {
            format!("using default variable value(s) with template {entry:?} results in invalid config {resolved:?}")
        })?;
    }
    Ok(())
}

/// A component's allow-list with its templates resolved, or why it could not be.
#[derive(Debug, Clone)]
pub enum AllowedHosts {
    Hosts(Vec<AllowedHost>),
    /// A run-time value made an invalid entry: nothing is allowed (Spin denies every request
    /// when its allow-list fails to resolve).
    Unresolvable(String),
}

impl Default for AllowedHosts {
    fn default() -> Self {
        Self::Hosts(Vec::new())
    }
}

impl AllowedHosts {
    /// `entries` have their templates resolved already.
    pub fn resolve(entries: &[String]) -> Self {
        match entries.iter().map(|e| AllowedHost::parse(e)).collect() {
            Ok(hosts) => Self::Hosts(hosts),
            Err(e) => Self::Unresolvable(format!("{e:#}")),
        }
    }

    /// An outbound HTTP request's destination.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let Ok(host) = Host::parse(host.trim_matches(['[', ']'])).or_else(|_| {
            // `Host::parse` reads an IPv6 literal only in brackets.
            Host::parse(&format!("[{host}]"))
        }) else {
            return false;
        };
        self.allows_url(&OutboundUrl {
            scheme: scheme.to_string(),
            host,
            port,
        })
    }

    /// An address given to `fermyon:spin/redis` or `mysql` (`scheme` when it has none).
    pub fn allows_address(&self, address: &str, scheme: &str) -> bool {
        OutboundUrl::parse(address, scheme).is_some_and(|url| self.allows_url(&url))
    }

    fn allows_url(&self, url: &OutboundUrl) -> bool {
        match self {
            Self::Hosts(hosts) => hosts.iter().any(|h| h.allows(url)),
            Self::Unresolvable(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    //! Each case follows Spin's own tests of `crates/outbound-networking-config/src/allowed_hosts.rs`.
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        let hosts = AllowedHosts::resolve(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(matches!(hosts, AllowedHosts::Hosts(_)), "{hosts:?}");
        hosts
    }

    fn err(entry: &str) -> String {
        format!("{:#}", AllowedHost::parse(entry).unwrap_err())
    }

    #[test]
    fn exact_host_with_default_port() {
        let a = hosts(&["https://example.com"]);
        assert!(a.allows("https", "example.com", None));
        assert!(a.allows("https", "EXAMPLE.com", Some(443)));
        assert!(!a.allows("https", "example.com", Some(8443)));
        assert!(!a.allows("http", "example.com", None));
        assert!(!a.allows("https", "evil.com", None));
    }

    #[test]
    fn wildcards_ranges_and_networks() {
        let a = hosts(&[
            "http://*.minio.local:9000",
            "*://127.0.0.1:*",
            "http://10.0.0.0/8:80",
            "http://example.org:8000..8010",
            "mysql://[::1]:3306",
        ]);
        assert!(a.allows("http", "s3.minio.local", Some(9000)));
        assert!(!a.allows("http", "minio.local", Some(9000)));
        assert!(a.allows("https", "127.0.0.1", Some(1234)));
        assert!(a.allows("redis", "127.0.0.1", None));
        assert!(!a.allows("http", "127.0.0.2", Some(80)));
        assert!(a.allows("http", "10.1.2.3", None));
        assert!(!a.allows("http", "11.1.2.3", None));
        assert!(a.allows("http", "example.org", Some(8009)));
        assert!(!a.allows("http", "example.org", Some(8010)), "a range's end is excluded");
        assert!(a.allows_address("mysql://u:p@[::1]/db", "mysql"));
    }

    #[test]
    fn addresses_for_redis_and_mysql() {
        let a = hosts(&["redis://127.0.0.1:6379", "mysql://localhost"]);
        assert!(a.allows_address("redis://127.0.0.1:6379", "redis"));
        assert!(a.allows_address("redis://127.0.0.1:6379/0", "redis"));
        assert!(a.allows_address("127.0.0.1:6379", "redis"), "no scheme: the interface's");
        assert!(!a.allows_address("redis://127.0.0.1:6380", "redis"));
        assert!(a.allows_address("mysql://user:pa#ss@localhost/db", "mysql"));
        assert!(!a.allows_address("not a url", "mysql"));
    }

    /// Spin: `AllowedHostConfig::parse`'s messages, word for word where it has its own.
    #[test]
    fn malformed_entries_are_refused_as_spin_refuses_them() {
        assert!(err("").contains("\"\" is not an allowed outbound host format"));
        assert!(err("*").contains("is not an allowed outbound host format"));
        assert!(err("example.com").contains("does not contain a scheme"));
        assert!(err("example.com:80").contains("does not contain a scheme"));
        assert!(err("http://a:80/b").contains("has a path but is not allowed to"));
        assert!(err("http://a/b").contains("must not include a path"));
        assert!(err("http://ex*ample.com").contains("wildcards are allowed only as subdomains"));
        assert!(err("http://*.a*.com").contains("wildcards are allowed only as prefixes"));
        assert!(err("http://a:port").contains("port \"port\" is not a number"));
        assert!(err("ftp://a").contains("does not have a known default port number"));
        assert!(err("*://a").contains("does not have a known default port number"));
        assert!(err("rediss://a").contains("does not have a known default port number"));
        // The port is what follows the last ':', so an IPv6 host needs its port spelled out.
        assert!(err("mysql://[::1]").contains("Invalid allowed host port \"1]\""));
        assert!(err("h2c://a:80").contains("only alphabetic characters are allowed"));
        assert!(err("http://a:1..x").contains("contains non-number"));
        // Credentials are not part of a host: Spin reads them as an invalid domain.
        assert!(AllowedHost::parse("redis://:secret@127.0.0.1:6380").is_err());
        for ok in [
            "http://self",
            "*://*:*",
            "https://spin.fermyon.dev/",
            "http://spin.fermyon.dev:4444/",
            "rediss://cache.example:6380",
        ] {
            AllowedHost::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e:#}"));
        }
    }

    fn decls(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, VariableDecl> {
        pairs
            .iter()
            .map(|(name, default)| {
                (
                    name.to_string(),
                    VariableDecl {
                        default: default.map(str::to_string),
                        required: default.is_none(),
                        secret: false,
                        description: None,
                    },
                )
            })
            .collect()
    }

    /// Spin: `PartialAllowedHostConfig::validate` — templates are checked with the defaults.
    #[test]
    fn templates_are_checked_with_their_defaults() {
        let vars = decls(&[
            ("empty", Some("")),
            ("good", Some("redis://127.0.0.1:6379")),
            ("required", None),
        ]);
        let e = format!(
            "{:#}",
            validate(&["{{ empty }}".to_string()], &vars).unwrap_err()
        );
        assert!(
            e.contains("using default variable value(s) with template \"{{ empty }}\" results in invalid config \"\"")
                && e.contains("\"\" is not an allowed outbound host format"),
            "{e}"
        );
        validate(&["{{ good }}".to_string()], &vars).unwrap();
        // No default to check with: left to run time.
        validate(&["{{ required }}".to_string()], &vars).unwrap();
        assert!(validate(&["{{ undeclared }}".to_string()], &vars).is_err());
        assert!(validate(&["insecure:allow-all".to_string()], &vars).is_err());
        assert!(validate(&["nohost".to_string()], &vars).is_err());
    }

    #[test]
    fn an_unresolvable_list_allows_nothing() {
        let a = AllowedHosts::resolve(&["http://127.0.0.1".to_string(), String::new()]);
        assert!(matches!(a, AllowedHosts::Unresolvable(ref e) if e.contains("allowed outbound host format")));
        assert!(!a.allows("http", "127.0.0.1", None));
    }
}
