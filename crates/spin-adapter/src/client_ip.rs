//! The real client address behind trusted reverse proxies.
//!
//! The direct peer (Spin's `spin-client-addr`) is the client unless it is inside the
//! `trusted_proxies` variable (comma- or space-separated CIDRs or bare addresses; empty by
//! default, so nothing is trusted and forwarding headers are never read). Only then is the
//! forwarding header read **right to left**: each address a trusted hop wrote is believed, and
//! the first one that is not itself a trusted proxy is the client. Everything left of that was
//! written by the client and is ignored, so a spoofed `X-Forwarded-For` changes nothing.
//!
//! Which header: `X-Forwarded-For` when the request has one (every common proxy and ingress
//! writes it: nginx, Envoy, Traefik, Caddy, cloud load balancers), else `Forwarded` (RFC 7239).
//! A proxy that writes only `Forwarded` must drop any `X-Forwarded-For` the client sent, or the
//! client can pick its own address.
//!
//! Bad input never fails a request: an entry that is not an address (`unknown`, an obfuscated
//! `_hidden` identifier, garbage, an over-long value) stops the walk, and the answer is the
//! nearest address that is trustworthy: the last trusted hop, which vouched for nothing better.
//! The walk looks at most [`MAX_HOPS`] entries, so an absurdly long header costs one scan for
//! commas and no more. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address, both when it is
//! matched against the CIDRs and when it is returned (so it keys the same counters).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::http::RequestHead;

/// How many forwarded entries are looked at, right to left: more trusted hops than any real
/// deployment has in a row. Past them, the last trusted hop is the answer.
pub const MAX_HOPS: usize = 16;

/// Longest forwarded entry worth parsing: `for="[ffff:…:ffff]:65535"` with some other
/// parameters (`proto`, `by`, `host`). A longer one is treated as malformed.
const MAX_ENTRY: usize = 256;

/// The parsed `trusted_proxies` variable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a list of CIDRs (`10.0.0.0/8`, `fd00::/8`) or bare addresses (one host), separated
    /// by commas or whitespace. Entries that do not parse are returned too, for the caller to
    /// report; they are left out (trusting less is the safe side).
    pub fn parse(list: &str) -> (Self, Vec<String>) {
        let mut nets = Vec::new();
        let mut bad = Vec::new();
        for entry in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let parsed = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map(|net| match net {
                    // An IPv4-mapped range is the IPv4 range: addresses are compared canonical.
                    IpNet::V6(v6)
                        if v6.addr().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 =>
                    {
                        IpNet::new(
                            IpAddr::V4(v6.addr().to_ipv4_mapped().expect("checked")),
                            v6.prefix_len() - 96,
                        )
                        .expect("a prefix of at most 32")
                    }
                    net => net,
                });
            match parsed {
                Ok(net) => nets.push(net.trunc()),
                Err(_) => bad.push(entry.to_string()),
            }
        }
        (TrustedProxies(nets), bad)
    }

    /// The `trusted_proxies` variable of this component (undeclared or empty: none). Entries
    /// that do not parse are logged, naming the variable, and ignored.
    pub fn from_variable() -> Self {
        let (trusted, bad) = Self::parse(&crate::config::var("trusted_proxies"));
        if !bad.is_empty() {
            eprintln!(
                "tikspin: variable trusted_proxies: ignoring {bad:?}: not a CIDR or an IP address"
            );
        }
        trusted
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// The request's real client address, with `trusted_proxies` read from the component's
/// variables (only when the request carries a forwarding header: most do not, and they cost
/// no variable lookup). `None` when the runtime gave no parseable peer address (no request,
/// as for the worker).
pub fn client_ip(head: &RequestHead) -> Option<IpAddr> {
    let forwarded = head.header("x-forwarded-for").is_some() || head.header("forwarded").is_some();
    let trusted = if forwarded {
        TrustedProxies::from_variable()
    } else {
        TrustedProxies::default()
    };
    real_client_ip(head, &trusted)
}

/// [`client_ip`] with the trusted proxies given.
pub fn real_client_ip(head: &RequestHead, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = parse_peer(head.client_addr())?;
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let lines = |name: &'static str| {
        head.headers
            .iter()
            .rev()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    // Several header lines are one list, in order (RFC 9110 §5.3): last line's last entry first.
    let hops: Box<dyn Iterator<Item = Option<IpAddr>>> = if head.header("x-forwarded-for").is_some()
    {
        Box::new(
            lines("x-forwarded-for")
                .flat_map(|v| v.rsplit(','))
                .map(parse_xff_entry),
        )
    } else {
        Box::new(
            lines("forwarded")
                .flat_map(|v| v.rsplit(','))
                .map(parse_forwarded_element),
        )
    };
    Some(walk(peer, hops, trusted))
}

/// Right to left from a trusted peer: believe each hop while the one that wrote it is trusted.
fn walk(
    peer: IpAddr,
    hops: impl Iterator<Item = Option<IpAddr>>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut nearest = peer;
    for hop in hops.take(MAX_HOPS) {
        match hop {
            // Unknown, obfuscated or malformed: the trusted hop that wrote it is all we know.
            None => return nearest,
            Some(ip) if trusted.contains(ip) => nearest = ip,
            Some(ip) => return ip,
        }
    }
    nearest
}

/// `spin-client-addr`: `a.b.c.d:port` or `[v6]:port` (a bare address is taken too).
fn parse_peer(addr: &str) -> Option<IpAddr> {
    let addr = addr.trim();
    addr.parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| addr.parse::<IpAddr>())
        .ok()
        .map(|ip| ip.to_canonical())
}

/// One `X-Forwarded-For` entry: an address; some proxies add a port (`a.b.c.d:port`,
/// `[v6]:port`) or brackets, which are accepted.
fn parse_xff_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if entry.len() > MAX_ENTRY {
        return None;
    }
    parse_node(entry)
}

/// One `Forwarded` element (`for=…;proto=…;by=…`): its `for` node. An element without one, or
/// with `unknown` or an obfuscated identifier, or one that does not parse, is `None`.
fn parse_forwarded_element(element: &str) -> Option<IpAddr> {
    let element = element.trim();
    if element.len() > MAX_ENTRY {
        return None;
    }
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim())
    })?;
    // A quoted-string (RFC 7230 §3.2.6); node values never need escapes, so one with a
    // backslash is malformed.
    let node = match value.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|n| !n.contains(['"', '\\']))?,
        None => value,
    };
    parse_node(node)
}

/// A node (RFC 7239 §6): `a.b.c.d`, `a.b.c.d:port`, `[v6]`, `[v6]:port`; also a bare IPv6
/// address, which X-Forwarded-For writers use. `unknown` and `_obfuscated` do not parse.
fn parse_node(node: &str) -> Option<IpAddr> {
    let ip = if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        IpAddr::V6(v6.parse().ok()?)
    } else if let Ok(ip) = node.parse::<IpAddr>() {
        ip
    } else {
        let (v4, port) = node.split_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(v4.parse().ok()?)
    };
    Some(ip.to_canonical())
}

/// A port, or an obfuscated one (`_abc`, RFC 7239 §6.3).
fn is_port(port: &str) -> bool {
    port.parse::<u16>().is_ok()
        || (port.starts_with('_')
            && port.len() > 1
            && port
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::http::Method;

    fn head(peer: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("spin-client-addr".into(), peer.into()));
        RequestHead::new(Method::Get, "/", "", all)
    }

    fn trusted(list: &str) -> TrustedProxies {
        let (t, bad) = TrustedProxies::parse(list);
        assert!(bad.is_empty(), "{bad:?}");
        t
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn client(list: &str, peer: &str, headers: &[(&str, &str)]) -> Option<IpAddr> {
        real_client_ip(&head(peer, headers), &trusted(list))
    }

    #[test]
    fn parses_cidrs_and_bare_addresses_and_reports_the_rest() {
        let (t, bad) =
            TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.7  fd00::/8,garbage ,1.2.3.4/33");
        assert_eq!(bad, ["garbage", "1.2.3.4/33"]);
        assert!(t.contains("10.200.0.1".parse().unwrap()));
        assert!(t.contains("192.168.1.7".parse().unwrap()));
        assert!(!t.contains("192.168.1.8".parse().unwrap()));
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(!t.contains("fe80::1".parse().unwrap()));
        assert!(TrustedProxies::parse("").0.is_empty());
        // Host bits in a CIDR are ignored (10.1.2.3/8 is 10.0.0.0/8), as routers do.
        assert!(trusted("10.1.2.3/8").contains("10.9.9.9".parse().unwrap()));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_ranges_both_ways() {
        let t = trusted("127.0.0.1/32");
        assert!(t.contains("::ffff:127.0.0.1".parse().unwrap()));
        let mapped = trusted("::ffff:10.0.0.0/104");
        assert!(mapped.contains("10.1.1.1".parse().unwrap()));
        assert!(!mapped.contains("11.1.1.1".parse().unwrap()));
        // And a mapped peer or hop is returned as the IPv4 address (one counter, not two).
        assert_eq!(client("", "[::ffff:10.0.0.9]:80", &[]), ip("10.0.0.9"));
        assert_eq!(
            client(
                "127.0.0.1",
                "127.0.0.1:1",
                &[("x-forwarded-for", "::ffff:203.0.113.5")]
            ),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn with_no_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() {
        let spoof = [("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")];
        assert_eq!(client("", "127.0.0.1:5555", &spoof), ip("127.0.0.1"));
        assert_eq!(client("", "[::1]:5555", &spoof), ip("::1"));
        // A trusted list that does not hold the peer is the same.
        assert_eq!(
            client("10.0.0.0/8", "127.0.0.1:5555", &spoof),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn no_peer_address_is_none() {
        assert_eq!(client("", "", &[]), None);
        assert_eq!(client("", "not an address", &[]), None);
    }

    #[test]
    fn a_trusted_peer_is_read_right_to_left_skipping_trusted_hops() {
        let t = "127.0.0.1, 10.0.0.0/8";
        let chain = [(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.0.0.2, 10.0.0.3",
        )];
        // 6.6.6.6 is what the client claimed; 203.0.113.9 is where 10.0.0.2 got it from.
        assert_eq!(client(t, "127.0.0.1:1", &chain), ip("203.0.113.9"));
        // Every hop trusted: the leftmost (an internal client).
        let internal = [("x-forwarded-for", "10.0.0.5, 10.0.0.2")];
        assert_eq!(client(t, "127.0.0.1:1", &internal), ip("10.0.0.5"));
        // A trusted peer with no forwarding header is itself the client.
        assert_eq!(client(t, "127.0.0.1:1", &[]), ip("127.0.0.1"));
    }

    #[test]
    fn several_header_lines_are_one_list_in_order() {
        let lines = [
            ("x-forwarded-for", "6.6.6.6, 198.51.100.1"),
            ("x-forwarded-for", "10.0.0.2"),
        ];
        assert_eq!(
            client("127.0.0.1, 10.0.0.0/8", "127.0.0.1:1", &lines),
            ip("198.51.100.1")
        );
        let lines = [
            ("forwarded", "for=6.6.6.6, for=198.51.100.2"),
            ("forwarded", "for=10.0.0.2"),
        ];
        assert_eq!(
            client("127.0.0.1, 10.0.0.0/8", "127.0.0.1:1", &lines),
            ip("198.51.100.2")
        );
    }

    #[test]
    fn forwarded_elements_per_rfc_7239() {
        let t = "127.0.0.1";
        for (value, want) in [
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=\"[2001:db8:cafe::17]\"", "2001:db8:cafe::17"),
            ("for=\"192.0.2.43:47011\"", "192.0.2.43"),
            ("for=\"192.0.2.43:_port\"", "192.0.2.43"),
            ("proto=https; for=198.51.100.17 ;by=x", "198.51.100.17"),
            ("for=6.6.6.6, for=198.51.100.17", "198.51.100.17"),
            ("for=\"[::ffff:192.0.2.1]:80\"", "192.0.2.1"),
        ] {
            assert_eq!(
                client(t, "127.0.0.1:1", &[("forwarded", value)]),
                ip(want),
                "{value}"
            );
        }
    }

    /// Whatever a trusted proxy says that is not an address ends the walk at the proxy.
    #[test]
    fn unknown_obfuscated_and_malformed_entries_fall_back_to_the_nearest_trusted_hop() {
        let t = "127.0.0.1, 10.0.0.0/8";
        for (name, value) in [
            ("forwarded", "for=unknown"),
            ("forwarded", "for=_hidden"),
            ("forwarded", "for=\"_gazonk\""),
            ("forwarded", "proto=http"),
            ("forwarded", "for="),
            ("forwarded", "for=\"192.0.2.1"),
            ("forwarded", "for=\"[2001:db8::1\""),
            ("forwarded", "for=\"[2001:db8::1]x\""),
            ("forwarded", "for=\"1.2.3.4:99999\""),
            ("forwarded", "for=\"1.2\\.3.4\""),
            ("forwarded", ";;;==="),
            ("x-forwarded-for", "unknown"),
            ("x-forwarded-for", ""),
            ("x-forwarded-for", " , "),
            ("x-forwarded-for", "999.1.1.1"),
            ("x-forwarded-for", "1.2.3.4.5"),
            ("x-forwarded-for", "<script>"),
            ("x-forwarded-for", "1.2.3.4:port"),
        ] {
            assert_eq!(
                client(t, "127.0.0.1:1", &[(name, value)]),
                ip("127.0.0.1"),
                "{name}: {value}"
            );
            // Behind one more trusted hop, that hop is the answer.
            let two = format!("{value}, 10.0.0.7");
            let two = if name == "forwarded" {
                format!("{value}, for=10.0.0.7")
            } else {
                two
            };
            assert_eq!(
                client(t, "127.0.0.1:1", &[(name, &two)]),
                ip("10.0.0.7"),
                "{name}: {two}"
            );
        }
        // Garbage left of the client is never reached.
        let xff = [("x-forwarded-for", "garbage, unknown, 203.0.113.1")];
        assert_eq!(client(t, "127.0.0.1:1", &xff), ip("203.0.113.1"));
    }

    #[test]
    fn x_forwarded_for_wins_over_forwarded() {
        let both = [
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "203.0.113.2"),
        ];
        assert_eq!(client("127.0.0.1", "127.0.0.1:1", &both), ip("203.0.113.2"));
    }

    #[test]
    fn x_forwarded_for_ports_and_brackets_are_accepted() {
        for (value, want) in [
            ("203.0.113.3:4444", "203.0.113.3"),
            ("[2001:db8::3]:4444", "2001:db8::3"),
            ("[2001:db8::3]", "2001:db8::3"),
            ("2001:db8::3", "2001:db8::3"),
            ("  203.0.113.3  ", "203.0.113.3"),
        ] {
            let got = client("127.0.0.1", "127.0.0.1:1", &[("x-forwarded-for", value)]);
            assert_eq!(got, ip(want), "{value}");
        }
    }

    #[test]
    fn absurdly_long_values_are_bounded() {
        let t = "127.0.0.1, 10.0.0.0/8";
        // One enormous entry: malformed.
        let huge = "1".repeat(1 << 20);
        assert_eq!(
            client(t, "127.0.0.1:1", &[("x-forwarded-for", &huge)]),
            ip("127.0.0.1")
        );
        assert_eq!(
            client(t, "127.0.0.1:1", &[("forwarded", &format!("for={huge}"))]),
            ip("127.0.0.1")
        );
        // A million trusted hops: the walk stops after MAX_HOPS, at the last one it believed.
        let hops: Vec<String> = (0..100_000)
            .map(|i| format!("10.0.{}.{}", i / 250 % 250, i % 250))
            .collect();
        let value = hops.join(",");
        let want = hops[hops.len() - MAX_HOPS].parse().ok();
        assert_eq!(
            client(t, "127.0.0.1:1", &[("x-forwarded-for", &value)]),
            want
        );
    }
}
