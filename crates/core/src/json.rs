//! The JSON writer of the wire models ([`crate::model`]) and of the payloads that list them.
//!
//! Why not serde_json here: in Wasm, serde_json spent more on a 100-friend list than SQLite
//! did (~50 µs of ~430 µs host CPU per request, `perf`): every key went through its map-key
//! serializer and a per-byte escape scan, every field through a trait call, and every short
//! copy became a `memory.copy`, which wasmtime runs as a call out to the host. Here keys are
//! literals copied with their quotes and separator, and strings are scanned and copied eight
//! bytes at a time; the same list's JSON costs ~20 µs.
//!
//! serde_json stays the reference: `tests/wire_json.rs` compares this writer's output with
//! `serde_json::to_vec` byte for byte on generated values, and payloads without a list still
//! serialize through serde (see [`crate::api::Payload::write_fields`]).

use serde::Serialize;

/// A value that writes its own JSON, byte for byte what `serde_json::to_vec` writes for it.
pub trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

impl<T: WriteJson> WriteJson for [T] {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
}

/// An object being written: `{` on [`Object::begin`], a comma before every field but the
/// first, `}` on [`Object::end`]. Keys are trusted to need no escaping (they are the API's
/// field names, checked in debug builds).
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    pub fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    pub fn end(self) {
        self.out.push(b'}');
    }

    /// Writes `"key":` (after a comma if needed) and hands back the buffer for the value.
    #[inline(always)]
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        debug_assert!(
            key.bytes().all(|b| escape(b).is_none()),
            "{key:?} needs escaping"
        );
        // Keys are literals and these calls are inlined, so each copy has a constant length
        // and compiles to a few stores instead of a `memory.copy` (a call out to the host).
        if std::mem::take(&mut self.empty) {
            self.out.push(b'"');
        } else {
            self.out.extend_from_slice(b",\"");
        }
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    #[inline(always)]
    pub fn int(&mut self, key: &str, value: i64) {
        int(self.key(key), value);
    }

    #[inline(always)]
    pub fn bool(&mut self, key: &str, value: bool) {
        let out = self.key(key);
        out.extend_from_slice(if value { b"true" } else { b"false" });
    }

    #[inline(always)]
    pub fn str(&mut self, key: &str, value: &str) {
        string(self.key(key), value);
    }

    #[inline(always)]
    pub fn value<T: WriteJson + ?Sized>(&mut self, key: &str, value: &T) {
        value.write_json(self.key(key));
    }

    /// A struct's fields, serialized by serde_json, as fields of this object: what
    /// `#[serde(flatten)]` does, for values that do not write themselves.
    pub fn serde_fields<T: Serialize + ?Sized>(&mut self, value: &T) -> serde_json::Result<()> {
        let whole = serde_json::to_vec(value)?;
        let fields = whole
            .strip_prefix(b"{")
            .and_then(|rest| rest.strip_suffix(b"}"))
            .ok_or_else(|| {
                <serde_json::Error as serde::ser::Error>::custom(
                    "fields must serialize as an object",
                )
            })?;
        if !fields.is_empty() {
            if !std::mem::take(&mut self.empty) {
                self.out.push(b',');
            }
            self.out.extend_from_slice(fields);
        }
        Ok(())
    }
}

pub fn int(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A JSON string: `"`, `\` and the control characters escaped as serde_json escapes them
/// (short forms where JSON has one, `\u00xx` in lower-case hex otherwise), everything else,
/// DEL and non-ASCII included, as it is.
pub fn string(out: &mut Vec<u8>, value: &str) {
    let mut rest = value.as_bytes();
    out.reserve(rest.len() + 2);
    out.push(b'"');
    loop {
        // Eight bytes at a time while none needs escaping, which is most text. A fixed-size
        // copy compiles to a store; a run's variable-length one would be a `memory.copy`, a
        // call out to the host.
        while let Some((word, tail)) = rest.split_first_chunk::<8>() {
            if may_need_escaping(u64::from_le_bytes(*word)) {
                break;
            }
            out.extend_from_slice(word);
            rest = tail;
        }
        let Some((&byte, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        match escape(byte) {
            None => out.push(byte),
            Some(Escape::Short(c)) => out.extend_from_slice(&[b'\\', c]),
            Some(Escape::Unicode) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]);
            }
        }
    }
    out.push(b'"');
}

/// Whether any byte of `word` is below 0x20, `"` or `\` (the classic SWAR tests: a byte
/// below `n` leaves its top bit set in `(b - n) & !b`; `"` and `\` are the zero bytes of
/// `word ^ c`). Exact when it says no; the caller rechecks byte by byte when it says yes.
#[inline]
fn may_need_escaping(word: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const TOPS: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & TOPS;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    control | quote | backslash != 0
}

enum Escape {
    Short(u8),
    Unicode,
}

#[inline]
fn escape(byte: u8) -> Option<Escape> {
    match byte {
        b'"' => Some(Escape::Short(b'"')),
        b'\\' => Some(Escape::Short(b'\\')),
        0x08 => Some(Escape::Short(b'b')),
        0x0c => Some(Escape::Short(b'f')),
        b'\n' => Some(Escape::Short(b'n')),
        b'\r' => Some(Escape::Short(b'r')),
        b'\t' => Some(Escape::Short(b't')),
        0x00..=0x1f => Some(Escape::Unicode),
        _ => None,
    }
}
