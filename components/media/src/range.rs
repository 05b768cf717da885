//! One `Range: bytes=…` request against an object of known size (RFC 9110 §14.1.2). Several
//! ranges in one header are answered with the whole object, which the RFC allows.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

impl ByteRange {
    /// `Ok(None)`: serve the whole object; `Err(())`: 416 Range Not Satisfiable.
    pub fn parse(header: &str, size: u64) -> Result<Option<Self>, ()> {
        let Some(spec) = header.trim().strip_prefix("bytes=") else {
            return Ok(None);
        };
        if spec.contains(',') {
            return Ok(None);
        }
        let (first, last) = spec.split_once('-').ok_or(())?;
        let (first, last) = (first.trim(), last.trim());
        let range = if first.is_empty() {
            // The last N bytes.
            let n: u64 = last.parse().map_err(|_| ())?;
            if n == 0 || size == 0 {
                return Err(());
            }
            ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            }
        } else {
            let start: u64 = first.parse().map_err(|_| ())?;
            let end = if last.is_empty() {
                size.saturating_sub(1)
            } else {
                last.parse::<u64>()
                    .map_err(|_| ())?
                    .min(size.saturating_sub(1))
            };
            if start >= size || end < start {
                return Err(());
            }
            ByteRange { start, end }
        };
        Ok(Some(range))
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange;

    #[test]
    fn forms() {
        assert_eq!(
            ByteRange::parse("bytes=0-9", 100),
            Ok(Some(ByteRange { start: 0, end: 9 }))
        );
        assert_eq!(
            ByteRange::parse("bytes=90-", 100),
            Ok(Some(ByteRange { start: 90, end: 99 }))
        );
        assert_eq!(
            ByteRange::parse("bytes=-10", 100),
            Ok(Some(ByteRange { start: 90, end: 99 }))
        );
        assert_eq!(
            ByteRange::parse("bytes=50-500", 100),
            Ok(Some(ByteRange { start: 50, end: 99 }))
        );
        assert_eq!(ByteRange::parse("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(ByteRange::parse("items=0-1", 100), Ok(None));
        assert_eq!(ByteRange::parse("bytes=100-", 100), Err(()));
        assert_eq!(ByteRange::parse("bytes=9-3", 100), Err(()));
        assert_eq!(ByteRange::parse("bytes=x-3", 100), Err(()));
    }
}
