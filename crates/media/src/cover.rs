//! Cover extraction: the first key frame of the first video track, as a JPEG.
//!
//! Reads the stored object by ranges: a few box headers to find `moov`, `moov` itself, then
//! the one sample to decode. A 20 s phone clip costs three or four small reads, not a download.

use std::io::Cursor;

use mp4parse::{CodecType, SampleEntry, TrackType, VideoCodecSpecific};
use rusty_h264_decoder::{DecodeError, Decoder};

use crate::avc::{AvcConfig, ColorInfo};
use crate::error::MediaError;
use crate::picture::{self, Frame};
use crate::sniff::{
    be32, be64, fourcc, is_legacy_quicktime_start, ByteRange, UploadInspector, VideoTrack,
};
use crate::source::ReadAt;

/// The default bound on the cover's long side, in pixels.
pub const DEFAULT_MAX_LONG_SIDE: u32 = 720;

/// JPEG quality of covers: small files, no visible blocking on a phone grid.
const COVER_QUALITY: u8 = 80;

/// A `moov` larger than this is refused rather than read (and parsed, which multiplies it)
/// in a component's memory. An hour of 60 fps video with audio indexes to a few MiB.
const MAX_MOOV: u64 = 16 << 20;

/// A single coded frame larger than this is not a sane phone video (a 4K I-frame at very
/// high quality is a few MiB).
const MAX_SAMPLE: u64 = 32 << 20;

/// Finding `moov` costs one ranged read per top-level box; real files have fewer than ten.
const MAX_TOP_LEVEL_BOXES: usize = 64;

/// Size of the ranged reads that look for `moov`.
const WINDOW: u64 = 64 << 10;

/// A cover image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Extracts the cover of the video in `source`: its first key frame, upright, scaled so the
/// long side is at most `max_long_side` pixels (never enlarged), as a JPEG.
///
/// Errors: [`MediaError::Undecodable`] when the frames are not H.264 or do not decode (fall
/// back to [`crate::generated_cover`]); [`MediaError::Source`] when reading failed (retry);
/// the container errors of [`crate::UploadInspector`] otherwise.
pub fn extract_cover(source: &mut dyn ReadAt, max_long_side: u32) -> Result<Cover, MediaError> {
    let (_, moov) = find_moov(source)?;
    cover_from_moov(source, moov, max_long_side)
}

/// [`extract_cover`] when the `moov` range is already known (from [`crate::VideoInfo::moov`]),
/// saving the reads that find it.
pub fn extract_cover_with_moov(
    source: &mut dyn ReadAt,
    moov: ByteRange,
    max_long_side: u32,
) -> Result<Cover, MediaError> {
    if moov.len < 8 || moov.end() > source.len() {
        return Err(MediaError::Corrupt(
            "the index (moov box) lies outside the file".into(),
        ));
    }
    if moov.len > MAX_MOOV {
        return Err(MediaError::Corrupt(
            "the index (moov box) is implausibly large".into(),
        ));
    }
    let moov_bytes = read(source, moov.offset, moov.len as usize)?;
    if &moov_bytes[4..8] != b"moov" {
        return Err(MediaError::Corrupt(
            "no moov box at the recorded offset".into(),
        ));
    }
    cover_from_moov(source, moov_bytes, max_long_side)
}

fn cover_from_moov(
    source: &mut dyn ReadAt,
    moov_bytes: Vec<u8>,
    max_long_side: u32,
) -> Result<Cover, MediaError> {
    let file_len = source.len();

    // Orientation, display size and codec name come from our own walk (the same one that
    // validated the upload); the sample tables from mp4parse.
    let mut inspector = UploadInspector::for_index();
    inspector.feed(&moov_bytes)?;
    let track = inspector.finish()?.video;
    if !track.is_h264() {
        return Err(unsupported_codec(&track));
    }

    let ctx = mp4parse::read_mp4(&mut Cursor::new(&moov_bytes[..]))
        .map_err(|e| MediaError::Corrupt(format!("cannot read the index: {e:?}")))?;
    let trak = ctx
        .tracks
        .iter()
        .find(|t| t.track_type == TrackType::Video)
        .ok_or(MediaError::NoVideoTrack)?;

    let avcc = match trak.stsd.as_ref().and_then(|s| s.descriptions.first()) {
        Some(SampleEntry::Video(v)) => match (&v.codec_type, &v.codec_specific) {
            (CodecType::H264, VideoCodecSpecific::AVCConfig(raw)) => raw.to_vec(),
            (CodecType::EncryptedVideo, _) => {
                return Err(MediaError::Undecodable("the video is encrypted".into()))
            }
            _ => return Err(unsupported_codec(&track)),
        },
        _ => return Err(unsupported_codec(&track)),
    };
    let config = AvcConfig::parse(&avcc)?;

    let sample = first_sync_sample(trak)?;
    if sample.len > MAX_SAMPLE {
        return Err(MediaError::Corrupt(
            "the first frame is implausibly large".into(),
        ));
    }
    if sample.end() > file_len {
        return Err(MediaError::Truncated {
            expected: sample.end(),
            received: file_len,
        });
    }
    let data = read(source, sample.offset, sample.len as usize)?;
    let annex_b = config.to_annex_b(&data)?;

    let mut decoder = Decoder::new();
    let yuv = match decoder.decode(&annex_b) {
        Ok(Some(f)) => f,
        Ok(None) => {
            return Err(MediaError::Undecodable(
                "the first key frame holds no picture".into(),
            ))
        }
        Err(e) => return Err(decode_error(e)),
    };
    if yuv.width == 0 || yuv.height == 0 || yuv.y.len() < yuv.width * yuv.height {
        return Err(MediaError::Undecodable(
            "the decoder returned an empty picture".into(),
        ));
    }

    let frame = Frame {
        width: yuv.width,
        height: yuv.height,
        y: &yuv.y,
        u: &yuv.u,
        v: &yuv.v,
    };
    let colors = config.color.unwrap_or(ColorInfo::UNLABELLED);
    let (w, h) = cover_size(&track, yuv.width as u32, yuv.height as u32, max_long_side);
    let rgb = picture::render(&frame, colors, w, h, track.rotation)?;
    let (cw, ch) = if track.rotation % 180 == 90 {
        (h, w)
    } else {
        (w, h)
    };
    let jpeg = picture::encode_jpeg(&rgb, cw, ch, COVER_QUALITY)?;
    Ok(Cover {
        jpeg,
        width: cw,
        height: ch,
    })
}

/// The cover's size before rotation: the track's presentation size (which carries any
/// non-square pixel aspect), scaled down to fit `max_long_side`.
fn cover_size(track: &VideoTrack, frame_w: u32, frame_h: u32, max_long_side: u32) -> (u32, u32) {
    let (pw, ph) = if track.rotation % 180 == 90 {
        (track.display_height, track.display_width)
    } else {
        (track.display_width, track.display_height)
    };
    // A presentation size of nothing, or one wildly off the frame's shape, is a broken
    // header: trust the pixels.
    let (pw, ph) = if pw == 0 || ph == 0 || {
        let ratio = (pw as f64 / ph as f64) / (frame_w as f64 / frame_h as f64);
        !(0.25..=4.0).contains(&ratio)
    } {
        (frame_w, frame_h)
    } else {
        (pw, ph)
    };
    // Never enlarge: not past the bound, and not past the decoded pixels.
    let limit = max_long_side.max(1).min(frame_w.max(frame_h));
    let long = pw.max(ph);
    if long <= limit {
        return (pw, ph);
    }
    let scale = limit as f64 / long as f64;
    let w = ((pw as f64 * scale).round() as u32).max(1);
    let h = ((ph as f64 * scale).round() as u32).max(1);
    (w, h)
}

fn unsupported_codec(track: &VideoTrack) -> MediaError {
    let name = match track.codec.as_str() {
        "hvc1" | "hev1" => "HEVC (H.265)",
        "av01" => "AV1",
        "vp09" => "VP9",
        "vp08" => "VP8",
        "mp4v" => "MPEG-4 Part 2",
        "encv" => "encrypted",
        "ap4h" | "apch" | "apcn" | "apcs" | "apco" => "ProRes",
        other => other,
    };
    MediaError::Undecodable(format!("{name} video is not supported, only H.264"))
}

fn decode_error(e: DecodeError) -> MediaError {
    MediaError::Undecodable(format!("H.264 decoding failed: {e}"))
}

fn read(source: &mut dyn ReadAt, offset: u64, len: usize) -> Result<Vec<u8>, MediaError> {
    let data = source
        .read_at(offset, len)
        .map_err(|e| MediaError::Source(e.to_string()))?;
    if data.len() != len {
        return Err(MediaError::Source(format!(
            "short read: asked for {len} bytes at {offset}, got {}",
            data.len()
        )));
    }
    Ok(data)
}

/// Walks the top-level box headers to find `moov`, and returns its bytes.
///
/// Reads in windows rather than header by header: on object storage a 64 KiB range costs
/// about what 16 bytes do, and one window usually holds ftyp and a front moov whole, or a
/// tail moov whole once the walk has skipped the media data.
fn find_moov(source: &mut dyn ReadAt) -> Result<(ByteRange, Vec<u8>), MediaError> {
    let len = source.len();
    if len == 0 {
        return Err(MediaError::Empty);
    }
    let mut window_start = 0u64;
    let mut window: Vec<u8> = Vec::new();
    let mut offset = 0u64;
    for i in 0..MAX_TOP_LEVEL_BOXES {
        if offset + 8 > len {
            break;
        }
        let in_window = offset >= window_start
            && offset + 16.min(len - offset) <= window_start + window.len() as u64;
        if !in_window {
            window_start = offset;
            window = read(source, offset, (len - offset).min(WINDOW) as usize)?;
        }
        let head = &window[(offset - window_start) as usize..];
        let size = match be32(&head[0..4]) {
            0 => len - offset,
            1 if head.len() >= 16 => be64(&head[8..16]),
            n => n as u64,
        };
        let kind = [head[4], head[5], head[6], head[7]];
        if i == 0 && !(&kind == b"ftyp" || is_legacy_quicktime_start(&kind)) {
            return Err(MediaError::NotAVideo);
        }
        if size < 8 {
            return Err(if i == 0 {
                MediaError::NotAVideo
            } else {
                MediaError::Corrupt(format!(
                    "box '{}' at byte {offset} has an impossible size",
                    fourcc(&kind)
                ))
            });
        }
        if &kind == b"moov" {
            let range = ByteRange { offset, len: size };
            if range.end() > len {
                return Err(MediaError::Truncated {
                    expected: range.end(),
                    received: len,
                });
            }
            if range.len > MAX_MOOV {
                return Err(MediaError::Corrupt(
                    "the index (moov box) is implausibly large".into(),
                ));
            }
            let at = (offset - window_start) as usize;
            let bytes = match window.get(at..at + size as usize) {
                Some(b) => b.to_vec(),
                None => read(source, offset, size as usize)?,
            };
            return Ok((range, bytes));
        }
        offset = offset.saturating_add(size);
    }
    Err(MediaError::MissingMoov)
}

/// Where the first sync sample of a track lies in the file.
fn first_sync_sample(trak: &mp4parse::Track) -> Result<ByteRange, MediaError> {
    let missing = |what: &str| MediaError::Undecodable(format!("the video track has no {what}"));
    let stsz = trak
        .stsz
        .as_ref()
        .ok_or_else(|| missing("sample sizes (stsz)"))?;
    let stsc = trak
        .stsc
        .as_ref()
        .ok_or_else(|| missing("sample-to-chunk table (stsc)"))?;
    let stco = trak
        .stco
        .as_ref()
        .ok_or_else(|| missing("chunk offsets (stco)"))?;
    let sample_count = if stsz.sample_size > 0 {
        // Constant size: the count lives in the box but mp4parse does not keep it; the chunk
        // tables bound it instead.
        u32::MAX
    } else {
        stsz.sample_sizes.len() as u32
    };
    if sample_count == 0 || stco.offsets.is_empty() || stsc.samples.is_empty() {
        // A fragmented MP4 keeps its samples in moof boxes, not in moov's tables.
        return Err(MediaError::Undecodable(
            "the video track lists no samples (fragmented MP4 is not supported)".into(),
        ));
    }
    // 1-based, as in stss. No stss means every sample is a sync sample.
    let target = match &trak.stss {
        Some(stss) => *stss
            .samples
            .first()
            .ok_or_else(|| MediaError::Undecodable("the video has no key frame".into()))?,
        None => 1,
    };
    if target == 0 || target > sample_count {
        return Err(MediaError::Corrupt(
            "the key frame table points past the samples".into(),
        ));
    }
    let size_of = |sample: u32| -> Result<u64, MediaError> {
        if stsz.sample_size > 0 {
            Ok(stsz.sample_size as u64)
        } else {
            stsz.sample_sizes
                .get(sample as usize - 1)
                .map(|&s| s as u64)
                .ok_or_else(|| MediaError::Corrupt("sample size table too short".into()))
        }
    };

    // Walk stsc runs to the chunk holding `target`.
    let chunks = stco.offsets.len() as u64;
    let mut first_sample_of_run: u64 = 1;
    for (i, run) in stsc.samples.iter().enumerate() {
        let first_chunk = run.first_chunk as u64;
        let next_first_chunk = stsc
            .samples
            .get(i + 1)
            .map(|r| r.first_chunk as u64)
            .unwrap_or(chunks + 1);
        if first_chunk == 0 || next_first_chunk < first_chunk || run.samples_per_chunk == 0 {
            return Err(MediaError::Corrupt(
                "the sample-to-chunk table is inconsistent".into(),
            ));
        }
        let per_chunk = run.samples_per_chunk as u64;
        let run_chunks = next_first_chunk - first_chunk;
        let run_samples = run_chunks.saturating_mul(per_chunk);
        let target = target as u64;
        if target < first_sample_of_run + run_samples {
            let index_in_run = target - first_sample_of_run;
            let chunk = first_chunk + index_in_run / per_chunk; // 1-based
            let first_in_chunk = target - index_in_run % per_chunk;
            let chunk_offset = *stco
                .offsets
                .get(chunk as usize - 1)
                .ok_or_else(|| MediaError::Corrupt("chunk offset table too short".into()))?;
            let mut offset = chunk_offset;
            for s in first_in_chunk..target {
                offset = offset.saturating_add(size_of(s as u32)?);
            }
            return Ok(ByteRange {
                offset,
                len: size_of(target as u32)?,
            });
        }
        first_sample_of_run += run_samples;
    }
    Err(MediaError::Corrupt("the key frame lies in no chunk".into()))
}
