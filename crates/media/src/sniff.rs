//! Streaming validation of uploads: is this an MP4/MOV video, complete, with an index?
//!
//! The inspector is sans-IO: the HTTP layer feeds it the body as it arrives and it keeps only
//! a box header and a few small boxes from the index, so its memory does not depend on the
//! size of the upload.

use crate::error::MediaError;
use crate::rotation_from_matrix;

/// A byte range inside the uploaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub len: u64,
}

impl ByteRange {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// What the inspector learnt about an accepted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInfo {
    /// The `ftyp` major brand, e.g. `"isom"`, `"mp42"`, `"qt  "`. A legacy QuickTime file
    /// without `ftyp` reports `"qt  "`, the brand such a file implies.
    pub brand: String,
    /// Total size in bytes.
    pub size: u64,
    /// Where the `moov` box (header included) sits, for a ranged read by the cover job.
    pub moov: ByteRange,
    /// `moov` precedes the media data, so a player can start before the download ends.
    pub faststart: bool,
    /// Movie duration from `mvhd`, when the header gives one.
    pub duration_ms: Option<u64>,
    /// The first video track.
    pub video: VideoTrack,
}

/// The first video track's description, as the index states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// The sample entry's four-character code: `"avc1"`/`"avc3"` for H.264, `"hvc1"`/`"hev1"`
    /// for HEVC, …
    pub codec: String,
    /// Coded size from the sample entry.
    pub coded_width: u32,
    pub coded_height: u32,
    /// Size as shown, after the track's rotation: a phone's portrait clip stored as rotated
    /// landscape has `display_height > display_width`.
    pub display_width: u32,
    pub display_height: u32,
    /// Clockwise rotation in degrees (0, 90, 180, 270) from the track matrix.
    pub rotation: u16,
}

impl VideoTrack {
    /// True for codecs [`crate::extract_cover`] can decode.
    pub fn is_h264(&self) -> bool {
        matches!(self.codec.as_str(), "avc1" | "avc3")
    }
}

/// Small boxes inside `moov` are copied up to this many bytes; everything we read from them
/// (tkhd's matrix and size, the first sample entry's size) lies within it.
const CAPTURE: usize = 96;
/// moov/trak/mdia/minf/stbl is five deep; anything deeper is skipped whole.
const MAX_DEPTH: usize = 8;

/// Box types whose children we walk (only ever inside `moov`).
fn is_container(kind: &[u8; 4]) -> bool {
    matches!(kind, b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl")
}

fn is_captured(kind: &[u8; 4]) -> bool {
    matches!(kind, b"mvhd" | b"tkhd" | b"hdlr" | b"stsd")
}

/// Top-level atoms a QuickTime file written before `ftyp` existed may start with.
pub(crate) fn is_legacy_quicktime_start(kind: &[u8; 4]) -> bool {
    matches!(
        kind,
        b"moov" | b"mdat" | b"wide" | b"free" | b"skip" | b"pnot"
    )
}

#[derive(Debug, Clone, Copy)]
struct Open {
    kind: [u8; 4],
    /// Absolute end offset; `None` for a top-level box of size 0 ("runs to end of file").
    end: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct TrakState {
    handler: Option<[u8; 4]>,
    codec: Option<[u8; 4]>,
    coded: (u32, u32),
    tkhd_size: (u32, u32),
    rotation: u16,
}

/// Validates an MP4/MOV upload as it streams past. See the module docs.
///
/// ```
/// # use tikspin_media::UploadInspector;
/// let mut inspector = UploadInspector::new();
/// # let chunks: Vec<&[u8]> = vec![b"not a video"];
/// for chunk in chunks {
///     if inspector.feed(chunk).is_err() {
///         break; // stop reading the body: the result is already known
///     }
/// }
/// assert!(inspector.finish().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct UploadInspector {
    max_size: Option<u64>,
    /// Bytes consumed so far (the absolute offset of the next byte).
    pos: u64,
    header: [u8; 16],
    header_len: usize,
    /// Absolute offset where the header being assembled starts.
    header_start: u64,
    /// Open boxes, outermost first: containers we are walking, and last possibly the leaf
    /// whose body we are skipping or capturing.
    stack: Vec<Open>,
    in_leaf: bool,
    capturing: bool,
    capture: Vec<u8>,
    boxes_seen: u64,
    brand: Option<[u8; 4]>,
    moov: Option<ByteRange>,
    mdat_seen_before_moov: bool,
    timescale: u32,
    duration: Option<u64>,
    trak: Option<TrakState>,
    video: Option<VideoTrack>,
    /// Scanning the entries of a chunk offset table (stco/co64) as they pass.
    offsets: Option<OffsetScan>,
    /// The largest chunk offset of any track: media data the index says exists.
    max_chunk_offset: Option<u64>,
    /// Off when only the index is fed (cover extraction), so offsets point outside it.
    check_offsets: bool,
    error: Option<MediaError>,
}

/// Streaming reader of a chunk offset table: 8 bytes of version, flags and count, then
/// 4-byte (stco) or 8-byte (co64) entries, which may straddle chunks of the upload.
#[derive(Debug, Clone)]
struct OffsetScan {
    entry_size: usize,
    skip: usize,
    partial: [u8; 8],
    partial_len: usize,
}

impl Default for UploadInspector {
    fn default() -> Self {
        Self::new()
    }
}

impl UploadInspector {
    pub fn new() -> Self {
        UploadInspector {
            max_size: None,
            pos: 0,
            header: [0; 16],
            header_len: 0,
            header_start: 0,
            stack: Vec::with_capacity(MAX_DEPTH + 1),
            in_leaf: false,
            capturing: false,
            capture: Vec::with_capacity(CAPTURE),
            boxes_seen: 0,
            brand: None,
            moov: None,
            mdat_seen_before_moov: false,
            timescale: 0,
            duration: None,
            trak: None,
            video: None,
            offsets: None,
            max_chunk_offset: None,
            check_offsets: true,
            error: None,
        }
    }

    /// An inspector for a `moov` box alone, read back from storage: its chunk offsets point
    /// into the rest of the file, which it does not see.
    pub(crate) fn for_index() -> Self {
        UploadInspector {
            check_offsets: false,
            ..Self::new()
        }
    }

    /// Refuse uploads larger than `limit` bytes as soon as the body passes it.
    pub fn with_max_size(mut self, limit: u64) -> Self {
        self.max_size = Some(limit);
        self
    }

    /// Bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.pos
    }

    /// Feeds the next piece of the body. Returns an error as soon as the upload is known to be
    /// unacceptable, so the caller can stop reading; the same error is then returned by every
    /// later call and by [`finish`](Self::finish).
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), MediaError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if let Some(limit) = self.max_size {
            if self.pos + data.len() as u64 > limit {
                return self.fail(MediaError::TooLarge { limit });
            }
        }
        while !data.is_empty() {
            let step = match self.step(data) {
                Ok(n) => n,
                Err(e) => return self.fail(e),
            };
            data = &data[step..];
        }
        Ok(())
    }

    /// Ends the upload and gives the verdict.
    pub fn finish(self) -> Result<VideoInfo, MediaError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.pos == 0 {
            return Err(MediaError::Empty);
        }
        if self.boxes_seen == 0 {
            // Fewer than 8 bytes: not even one box header.
            return Err(MediaError::NotAVideo);
        }
        // A box that declares more bytes than arrived: the upload was cut short.
        let declared_end = self
            .stack
            .iter()
            .filter_map(|o| o.end)
            .max()
            .unwrap_or(self.pos);
        if declared_end > self.pos {
            return Err(MediaError::Truncated {
                expected: declared_end,
                received: self.pos,
            });
        }
        if self.header_len > 0 {
            let tail = &self.header[..self.header_len];
            if self.stack.is_empty() && tail.iter().all(|&b| b == 0) {
                // A few zero bytes of padding after the last box: some writers leave them.
            } else {
                return Err(MediaError::Truncated {
                    expected: self.header_start + 8,
                    received: self.pos,
                });
            }
        }
        let Some(moov) = self.moov else {
            // HEIF/AVIF pictures share the container but index with `meta`, not `moov`.
            let image = matches!(
                self.brand.as_ref(),
                Some(b"heic" | b"heix" | b"mif1" | b"msf1" | b"avif" | b"avis" | b"jpeg")
            );
            return Err(if image {
                MediaError::NotAVideo
            } else {
                MediaError::MissingMoov
            });
        };
        let Some(video) = self.video else {
            return Err(MediaError::NoVideoTrack);
        };
        // Cut exactly at a box boundary, a file still lacks the media its index points to.
        if let (true, Some(max)) = (self.check_offsets, self.max_chunk_offset) {
            if max >= self.pos {
                return Err(MediaError::Truncated {
                    expected: max + 1,
                    received: self.pos,
                });
            }
        }
        let duration_ms = match (self.duration, self.timescale) {
            (Some(d), ts) if ts > 0 && d != u64::MAX && d != u32::MAX as u64 => {
                Some((d as u128 * 1000 / ts as u128) as u64)
            }
            _ => None,
        };
        Ok(VideoInfo {
            brand: fourcc(&self.brand.unwrap_or(*b"qt  ")),
            size: self.pos,
            moov,
            faststart: !self.mdat_seen_before_moov,
            duration_ms,
            video,
        })
    }

    fn fail(&mut self, e: MediaError) -> Result<(), MediaError> {
        self.error = Some(e.clone());
        Err(e)
    }

    /// Consumes a prefix of `data` and returns its length; zero when it only changed state.
    fn step(&mut self, data: &[u8]) -> Result<usize, MediaError> {
        if self.in_leaf {
            let Some(top) = self.stack.last().copied() else {
                return Err(MediaError::Corrupt("parser state".into()));
            };
            let take = match top.end {
                Some(end) => (end - self.pos).min(data.len() as u64) as usize,
                None => data.len(),
            };
            if self.capturing && self.capture.len() < CAPTURE {
                let room = CAPTURE - self.capture.len();
                self.capture.extend_from_slice(&data[..take.min(room)]);
            }
            if let Some(scan) = self.offsets.as_mut() {
                if let Some(max) = scan.feed(&data[..take]) {
                    self.max_chunk_offset = Some(self.max_chunk_offset.map_or(max, |m| m.max(max)));
                }
            }
            self.pos += take as u64;
            if top.end == Some(self.pos) {
                self.stack.pop();
                self.in_leaf = false;
                self.leaf_done(top.kind);
                self.close_finished()?;
            }
            return Ok(take);
        }

        // Assembling a box header.
        if self.header_len == 0 {
            self.header_start = self.pos;
        }
        let need = if self.header_len >= 8 && be32(&self.header[0..4]) == 1 {
            16
        } else {
            8
        };
        // Inside a container, a remainder too short for a header is padding (QuickTime ends
        // some atom lists with a 4-byte zero terminator): skip it as a body without a header.
        if self.header_len == 0 {
            if let Some(end) = self.stack.last().and_then(|o| o.end) {
                if end - self.pos < 8 {
                    self.stack.push(Open {
                        kind: *b"\0pad",
                        end: Some(end),
                    });
                    self.in_leaf = true;
                    self.capturing = false;
                    return Ok(0);
                }
            }
        }
        let take = (need - self.header_len).min(data.len());
        self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
        self.header_len += take;
        self.pos += take as u64;
        if self.header_len == 8 && be32(&self.header[0..4]) == 1 {
            return Ok(take); // a 64-bit size follows
        }
        if self.header_len == need {
            self.header_len = 0;
            self.open_box(need)?;
        }
        Ok(take)
    }

    fn open_box(&mut self, header_size: usize) -> Result<(), MediaError> {
        let start = self.header_start;
        let size32 = be32(&self.header[0..4]);
        let kind: [u8; 4] = [
            self.header[4],
            self.header[5],
            self.header[6],
            self.header[7],
        ];
        let top_level = self.stack.is_empty();
        self.boxes_seen += 1;

        if self.boxes_seen == 1 && !(&kind == b"ftyp" || is_legacy_quicktime_start(&kind)) {
            return Err(MediaError::NotAVideo);
        }
        let size = match size32 {
            0 => None,
            1 => Some(be64(&self.header[8..16])),
            n => Some(n as u64),
        };
        if let Some(size) = size {
            if size < header_size as u64 {
                return Err(if self.boxes_seen == 1 {
                    MediaError::NotAVideo
                } else {
                    MediaError::Corrupt(format!(
                        "box '{}' at byte {start} has an impossible size {size}",
                        fourcc(&kind)
                    ))
                });
            }
        }
        let parent_end = self.stack.last().and_then(|o| o.end);
        let end = match (size, parent_end) {
            (Some(s), _) => Some(start.checked_add(s).ok_or_else(|| {
                MediaError::Corrupt(format!("box '{}' has an impossible size", fourcc(&kind)))
            })?),
            // Size 0: to the end of the enclosing box, or of the file at top level.
            (None, pe) => pe,
        };
        if let (Some(end), Some(pe)) = (end, parent_end) {
            if end > pe {
                return Err(MediaError::Corrupt(format!(
                    "box '{}' at byte {start} overruns its parent",
                    fourcc(&kind)
                )));
            }
        }

        if top_level {
            match &kind {
                b"moov" => {
                    if self.moov.is_some() {
                        return Err(MediaError::Corrupt("the file has two moov boxes".into()));
                    }
                    let Some(end) = end else {
                        return Err(MediaError::Corrupt(
                            "the index (moov box) is unterminated".into(),
                        ));
                    };
                    self.moov = Some(ByteRange {
                        offset: start,
                        len: end - start,
                    });
                }
                b"mdat" if self.moov.is_none() => self.mdat_seen_before_moov = true,
                _ => {}
            }
        }

        let walk = if top_level {
            &kind == b"moov"
        } else {
            is_container(&kind) && self.stack.len() < MAX_DEPTH
        };
        if &kind == b"trak" && walk {
            self.trak = Some(TrakState::default());
        }
        self.stack.push(Open { kind, end });
        if walk {
            self.in_leaf = false;
        } else {
            self.in_leaf = true;
            self.capturing = if top_level {
                &kind == b"ftyp"
            } else {
                is_captured(&kind)
            };
            self.capture.clear();
            self.offsets = match (&kind, self.trak.is_some() && !top_level) {
                (b"stco", true) => Some(OffsetScan::new(4)),
                (b"co64", true) => Some(OffsetScan::new(8)),
                _ => None,
            };
        }
        if end == Some(self.pos) {
            // An empty box: done already.
            if self.in_leaf {
                self.stack.pop();
                self.in_leaf = false;
                self.leaf_done(kind);
            }
            self.close_finished()?;
        }
        Ok(())
    }

    /// Pops every container that ends exactly here.
    fn close_finished(&mut self) -> Result<(), MediaError> {
        while let Some(top) = self.stack.last().copied() {
            if top.end != Some(self.pos) {
                break;
            }
            self.stack.pop();
            if &top.kind == b"trak" {
                if let Some(t) = self.trak.take() {
                    self.trak_done(t);
                }
            }
        }
        Ok(())
    }

    fn leaf_done(&mut self, kind: [u8; 4]) {
        self.offsets = None;
        let body = std::mem::take(&mut self.capture);
        let in_moov = !self.stack.is_empty();
        match &kind {
            b"ftyp" if !in_moov && self.brand.is_none() => {
                self.brand = body.get(0..4).map(|b| [b[0], b[1], b[2], b[3]]);
            }
            b"mvhd" if in_moov => {
                if let Some((timescale, duration)) = parse_mvhd(&body) {
                    self.timescale = timescale;
                    self.duration = Some(duration);
                }
            }
            b"tkhd" => {
                if let (Some(t), Some((rot, w, h))) = (self.trak.as_mut(), parse_tkhd(&body)) {
                    t.rotation = rot;
                    t.tkhd_size = (w, h);
                }
            }
            b"hdlr" => {
                // Only the media handler (under mdia) names the track's kind; QuickTime also
                // puts a data handler ('alis') under minf.
                let parent_is_mdia = self.stack.last().map(|o| &o.kind == b"mdia") == Some(true);
                if let (Some(t), true, Some(h)) =
                    (self.trak.as_mut(), parent_is_mdia, body.get(8..12))
                {
                    t.handler = Some([h[0], h[1], h[2], h[3]]);
                }
            }
            b"stsd" => {
                if let (Some(t), Some((codec, w, h))) = (self.trak.as_mut(), parse_stsd(&body)) {
                    t.codec = Some(codec);
                    t.coded = (w, h);
                }
            }
            _ => {}
        }
        self.capture = body;
        self.capture.clear();
    }

    fn trak_done(&mut self, t: TrakState) {
        if self.video.is_some() || t.handler != Some(*b"vide") {
            return;
        }
        let Some(codec) = t.codec else { return };
        let (w, h) = if t.tkhd_size.0 > 0 && t.tkhd_size.1 > 0 {
            t.tkhd_size
        } else {
            t.coded
        };
        let (dw, dh) = if t.rotation % 180 == 90 {
            (h, w)
        } else {
            (w, h)
        };
        self.video = Some(VideoTrack {
            codec: fourcc(&codec),
            coded_width: t.coded.0,
            coded_height: t.coded.1,
            display_width: dw,
            display_height: dh,
            rotation: t.rotation,
        });
    }
}

impl OffsetScan {
    fn new(entry_size: usize) -> Self {
        OffsetScan {
            entry_size,
            skip: 8,
            partial: [0; 8],
            partial_len: 0,
        }
    }

    /// Consumes table bytes; returns the largest offset completed in them.
    fn feed(&mut self, mut data: &[u8]) -> Option<u64> {
        let skip = self.skip.min(data.len());
        self.skip -= skip;
        data = &data[skip..];
        let mut max = None;
        while !data.is_empty() {
            let take = (self.entry_size - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len == self.entry_size {
                self.partial_len = 0;
                let v = if self.entry_size == 4 {
                    be32(&self.partial[..4]) as u64
                } else {
                    be64(&self.partial)
                };
                max = Some(max.map_or(v, |m: u64| m.max(v)));
            }
        }
        max
    }
}

fn parse_mvhd(b: &[u8]) -> Option<(u32, u64)> {
    match *b.first()? {
        0 => Some((be32(b.get(12..16)?), be32(b.get(16..20)?) as u64)),
        1 => Some((be32(b.get(20..24)?), be64(b.get(24..32)?))),
        _ => None,
    }
}

/// (rotation, width, height) from a tkhd body; width/height are 16.16 fixed point.
pub(crate) fn parse_tkhd(b: &[u8]) -> Option<(u16, u32, u32)> {
    let at = match *b.first()? {
        0 => 40,
        1 => 52,
        _ => return None,
    };
    let m = b.get(at..at + 36)?;
    let rot = rotation_from_matrix(
        be32(&m[0..4]) as i32,
        be32(&m[4..8]) as i32,
        be32(&m[12..16]) as i32,
        be32(&m[16..20]) as i32,
    );
    let w = be32(b.get(at + 36..at + 40)?) >> 16;
    let h = be32(b.get(at + 40..at + 44)?) >> 16;
    Some((rot, w, h))
}

/// First sample entry's (type, width, height) from an stsd body.
fn parse_stsd(b: &[u8]) -> Option<([u8; 4], u32, u32)> {
    if be32(b.get(4..8)?) == 0 {
        return None;
    }
    let e = b.get(8..)?;
    let kind = e.get(4..8)?;
    // VisualSampleEntry: 8 header + 6 reserved + 2 dref index + 16 pre-defined, then w, h.
    let w = u16::from_be_bytes([*e.get(32)?, *e.get(33)?]) as u32;
    let h = u16::from_be_bytes([*e.get(34)?, *e.get(35)?]) as u32;
    Some(([kind[0], kind[1], kind[2], kind[3]], w, h))
}

pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

pub(crate) fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

pub(crate) fn fourcc(k: &[u8; 4]) -> String {
    k.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portrait() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/portrait-3s.mp4"
        );
        let dir = std::env::var("TIKSPIN_FIXTURES").ok();
        let path = dir.map_or(path.to_string(), |d| format!("{d}/portrait-3s.mp4"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// An 8 GiB upload (64-bit mdat size) streams through without any buffer growing.
    #[test]
    fn memory_does_not_grow_with_the_upload() {
        let src = portrait();
        let (ftyp, moov) = (&src[..32], &src[32..3954]);
        let mdat_len: u64 = 8 << 30;
        let mut i = UploadInspector::new();
        i.feed(ftyp).unwrap();
        let mut head = 1u32.to_be_bytes().to_vec();
        head.extend_from_slice(b"mdat");
        head.extend_from_slice(&(mdat_len + 16).to_be_bytes());
        i.feed(&head).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..(mdat_len >> 20) {
            i.feed(&chunk).unwrap();
        }
        i.feed(moov).unwrap();
        assert!(
            i.capture.capacity() <= CAPTURE,
            "capture grew to {}",
            i.capture.capacity()
        );
        assert!(
            i.stack.capacity() <= MAX_DEPTH + 1,
            "stack grew to {}",
            i.stack.capacity()
        );
        let info = i.finish().unwrap();
        assert_eq!(info.size, 32 + 16 + mdat_len + 3922);
        assert_eq!(
            info.moov,
            ByteRange {
                offset: 32 + 16 + mdat_len,
                len: 3922
            }
        );
        assert!(!info.faststart);
    }

    #[test]
    fn rotation_of_the_four_phone_matrices() {
        let one = 0x10000;
        assert_eq!(rotation_from_matrix(one, 0, 0, one), 0);
        assert_eq!(rotation_from_matrix(0, one, -one, 0), 90);
        assert_eq!(rotation_from_matrix(-one, 0, 0, -one), 180);
        assert_eq!(rotation_from_matrix(0, -one, one, 0), 270);
        // A mirror is not a rotation.
        assert_eq!(rotation_from_matrix(-one, 0, 0, one), 0);
    }
}
