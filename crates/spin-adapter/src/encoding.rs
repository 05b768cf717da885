//! Content negotiation for JSON responses: gzip when the client's `Accept-Encoding` allows it
//! (RFC 9110 §12.5.3) and the body is large enough to gain.
//!
//! gzip only, with flate2's pure-Rust backend (miniz_oxide), which builds for wasm32-wasip2.
//! Brotli is not used: every client that sends `br` also sends `gzip`, and on these JSON bodies
//! its extra saving does not pay for its cost in Wasm (docs/api-decisions.md, "Compressed
//! responses", has the figures, and the threshold and level below come from them).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Bodies shorter than this go out as they are: under about one TCP segment, compression saves
/// no round trip, and its fixed cost (a 20-byte header and trailer, the encoder's set-up) is a
/// larger share of the work (docs/api-decisions.md, "Compressed responses").
pub const MIN_GZIP_BYTES: usize = 1024;

/// Level 1 (fastest): on API JSON it gives nearly all of level 6's saving at a fraction of
/// the CPU (measured inside Wasm; docs/api-decisions.md).
pub const GZIP_LEVEL: u32 = 1;

/// Longest `Accept-Encoding` value looked at; browsers send under 50 bytes. The rest of an
/// absurd one is ignored rather than scanned.
const MAX_ACCEPT_ENCODING: usize = 1024;

/// Whether the client accepts gzip and does not prefer no encoding: `gzip` (or `x-gzip`) with a
/// weight above 0, or `*` above 0 when gzip is not named; and, when the client weighed identity
/// too, not less than identity's weight.
/// No header means the client did not ask: identity. Malformed members are skipped.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    let value = match value.char_indices().nth(MAX_ACCEPT_ENCODING) {
        Some((cut, _)) => &value[..cut],
        None => value,
    };
    let (mut gzip, mut identity, mut any) = (None, None, None);
    for member in value.split(',') {
        let mut parts = member.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        if coding.is_empty() {
            continue;
        }
        let Some(q) = weight(parts) else { continue };
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding.eq_ignore_ascii_case("identity") {
            &mut identity
        } else if coding == "*" {
            &mut any
        } else {
            continue;
        };
        // A coding named twice: the higher weight (a client that lists both meant some).
        *slot = Some(slot.map_or(q, |old: u16| old.max(q)));
    }
    let gzip = gzip.or(any).unwrap_or(0);
    // Identity weighs only when the client weighed it (by name or by `*`): `gzip;q=0.5` alone
    // asks for gzip, `gzip;q=0.5, identity` prefers none.
    gzip > 0 && identity.or(any).is_none_or(|identity| gzip >= identity)
}

/// The `q` parameter in thousandths (`weight = OWS ";" OWS "q=" qvalue`, RFC 9110 §12.4.2);
/// 1000 when absent, `None` when malformed (the member is ignored).
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for param in params {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("q") {
            continue; // codings take no other parameters; ignore any
        }
        q = qvalue(value.trim())?;
    }
    Some(q)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac.bytes().chain(std::iter::repeat(b'0')).take(3);
    let frac = thousandths.fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match int {
        "0" => Some(frac),
        "1" if frac == 0 => Some(1000),
        _ => None,
    }
}

/// gzip of `body` at [`GZIP_LEVEL`]; `None` if it did not come out smaller (then the body goes
/// out as it is).
pub fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        Compression::new(GZIP_LEVEL),
    );
    encoder.write_all(body).ok()?;
    let compressed = encoder.finish().ok()?;
    (compressed.len() < body.len()).then_some(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_only_when_asked_for() {
        for (value, want) in [
            (None, false),
            (Some(""), false),
            (Some("gzip"), true),
            (Some("GZip"), true),
            (Some("x-gzip"), true),
            (Some("gzip, deflate, br"), true),
            (Some("br"), false),
            (Some("deflate, br;q=1.0"), false),
            (Some("identity"), false),
            (Some("*"), true),
            (Some("*;q=0"), false),
            (Some("gzip;q=0"), false),
            (Some("gzip;q=0.000"), false),
            (Some("gzip;q=0.001"), true),
            (Some("gzip; q=0.5"), true),
            (Some("gzip;Q=1"), true),
            (Some("gzip;q=1.000"), true),
            (Some("*, gzip;q=0"), false),
            (Some("gzip;q=0, *"), false),
            (Some("br, *;q=0.1"), true),
            (Some("identity;q=0"), false),
            (Some("identity;q=0, gzip"), true),
            (Some("gzip;q=0, identity;q=0"), false),
            // The client prefers no encoding.
            (Some("gzip;q=0.5, identity"), false),
            (Some("gzip;q=0.5, identity;q=0.5"), true),
            (Some("gzip;q=0.5, *;q=0.1"), true),
        ] {
            assert_eq!(accepts_gzip(value), want, "{value:?}");
        }
    }

    #[test]
    fn malformed_members_are_ignored() {
        for (value, want) in [
            ("gzip;q=2", false),
            ("gzip;q=1.5", false),
            ("gzip;q=0.0001", false),
            ("gzip;q=-1", false),
            ("gzip;q=", false),
            ("gzip;q", false),
            ("gzip;q=abc", false),
            ("gzip;q=2, br", false),
            ("gzip;q=2, *", true),
            (",,, ;;; ,gzip,", true),
            ("\u{0}\u{ff}", false),
            ("gzip;level=9", true),
        ] {
            assert_eq!(accepts_gzip(Some(value)), want, "{value:?}");
        }
    }

    #[test]
    fn an_absurd_header_is_bounded() {
        let long = "br, ".repeat(1 << 18) + "gzip";
        assert!(!accepts_gzip(Some(&long)), "only the first KiB is read");
        let long = "gzip, ".to_string() + "é".repeat(1 << 18).as_str();
        assert!(accepts_gzip(Some(&long)), "cut on a character boundary");
    }

    #[test]
    fn gzip_round_trips_and_refuses_to_grow() {
        let body = br#"{"status_code":0,"video_list":[]}"#.repeat(100);
        let compressed = gzip(&body).expect("repetitive JSON shrinks");
        assert!(compressed.len() < body.len() / 5);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        assert_eq!(gzip(b"{}"), None, "two bytes only grow");
    }
}
