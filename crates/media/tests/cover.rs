mod common;

use std::io;

use common::{assert_color, decode_jpeg, find, fixture, inspect};
use tikspin_media::{
    extract_cover, extract_cover_with_moov, MediaError, ReadAt, SeekSource, DEFAULT_MAX_LONG_SIDE,
};

type Size = (u32, u32);

/// (fixture, display size as players show it, expected cover size).
const GOOD: [(&str, Size, Size); 5] = [
    ("portrait-3s.mp4", (360, 640), (360, 640)),
    ("landscape-2s-noaudio.mp4", (640, 360), (640, 360)),
    ("large-20s.mp4", (720, 1280), (405, 720)),
    ("bear.mp4", (320, 240), (320, 240)),
    ("not-faststart.mov", (360, 640), (360, 640)),
];

/// Counts what extraction reads, to prove it reads the index and one frame only.
struct Counting<'a> {
    data: &'a [u8],
    reads: usize,
    bytes: u64,
}

impl ReadAt for Counting<'_> {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        assert!(
            offset + len as u64 <= self.len(),
            "read past the end: {offset}+{len}"
        );
        self.reads += 1;
        self.bytes += len as u64;
        Ok(self.data[offset as usize..offset as usize + len].to_vec())
    }
}

fn cover_of(data: &[u8]) -> Result<tikspin_media::Cover, MediaError> {
    let mut src: &[u8] = data;
    extract_cover(&mut src, DEFAULT_MAX_LONG_SIDE)
}

#[test]
fn every_good_fixture_gives_a_real_frame() {
    for (name, (dw, dh), size) in GOOD {
        let data = fixture(name);
        let cover = cover_of(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        let img = decode_jpeg(&cover.jpeg);
        assert_eq!(
            (img.width as u32, img.height as u32),
            (cover.width, cover.height),
            "{name}"
        );
        assert_eq!((cover.width, cover.height), size, "{name}");
        assert!(cover.width.max(cover.height) <= 720, "{name}: long side");

        let want = dw as f64 / dh as f64;
        let got = cover.width as f64 / cover.height as f64;
        assert!(
            (got / want - 1.0).abs() < 0.02,
            "{name}: aspect {got:.4}, want {want:.4}"
        );

        let var = img.luma_variance();
        assert!(
            var > 200.0,
            "{name}: luma variance {var:.1}: a flat picture, not the frame"
        );
    }
}

/// The test patterns' colours, as ffmpeg renders the first frame (sampled by hand). They pin
/// down the YUV→RGB conversion and that nothing is mirrored or rotated.
#[test]
fn covers_have_the_frames_colours_in_place() {
    let bars = decode_jpeg(&cover_of(&fixture("landscape-2s-noaudio.mp4")).unwrap().jpeg);
    for (fx, want, what) in [
        (0.05, [190, 190, 190], "grey"),
        (0.20, [192, 190, 0], "yellow"),
        (0.35, [0, 190, 189], "cyan"),
        (0.50, [0, 188, 0], "green"),
        (0.65, [190, 0, 191], "magenta"),
        (0.80, [191, 0, 0], "red"),
        (0.95, [0, 0, 191], "blue"),
    ] {
        assert_color(bars.at(fx, 0.3), want, 12, what);
    }
    assert_color(bars.at(0.5, 0.9), [62, 0, 118], 16, "purple (-Q) patch");

    let large = decode_jpeg(&cover_of(&fixture("large-20s.mp4")).unwrap().jpeg);
    for (fx, want, what) in [
        (0.05, [253, 0, 0], "red"),
        (0.20, [0, 254, 0], "green"),
        (0.35, [253, 253, 0], "yellow"),
        (0.65, [0, 0, 254], "blue"),
        (0.80, [254, 0, 253], "magenta"),
        (0.95, [0, 255, 255], "cyan"),
    ] {
        assert_color(large.at(fx, 0.3), want, 12, what);
    }

    let bear = decode_jpeg(&cover_of(&fixture("bear.mp4")).unwrap().jpeg);
    assert_color(
        bear.at(0.5, 0.9),
        [240, 234, 239],
        20,
        "bear: the gull at the bottom",
    );
    assert_color(
        bear.at(0.05, 0.3),
        [120, 115, 114],
        20,
        "bear: water at the left",
    );
}

#[test]
fn reads_only_the_index_and_one_frame() {
    let data = fixture("large-20s.mp4");
    let info = inspect(&data, 64 * 1024).unwrap();
    let mut src = Counting {
        data: &data,
        reads: 0,
        bytes: 0,
    };
    let cover = extract_cover(&mut src, 720).unwrap();
    // The head (ftyp, free, mdat's header), the tail from moov on, the first sample.
    assert_eq!(src.reads, 3);
    assert!(
        src.bytes < 64 * 1024 * 2 + 200_000,
        "{} bytes read of {}",
        src.bytes,
        data.len()
    );

    // A faststart file: the first window holds ftyp and moov.
    let portrait = fixture("portrait-3s.mp4");
    let mut src = Counting {
        data: &portrait,
        reads: 0,
        bytes: 0,
    };
    extract_cover(&mut src, 720).unwrap();
    assert_eq!(src.reads, 2);

    // With the range from the inspector, no header walk.
    let mut src = Counting {
        data: &data,
        reads: 0,
        bytes: 0,
    };
    let again = extract_cover_with_moov(&mut src, info.moov, 720).unwrap();
    assert_eq!(src.reads, 2);
    assert_eq!(again, cover);
}

#[test]
fn works_from_a_seekable_file() {
    let path = common::fixtures_dir().join("not-faststart.mov");
    let mut src = SeekSource::new(std::fs::File::open(path).unwrap()).unwrap();
    let from_file = extract_cover(&mut src, 720).unwrap();
    assert_eq!(from_file, cover_of(&fixture("not-faststart.mov")).unwrap());
}

#[test]
fn honours_max_long_side_and_never_enlarges() {
    let data = fixture("large-20s.mp4");
    let mut src: &[u8] = &data;
    let small = extract_cover(&mut src, 320).unwrap();
    assert_eq!((small.width, small.height), (180, 320));
    decode_jpeg(&small.jpeg);
    let bear = fixture("bear.mp4");
    let mut src: &[u8] = &bear;
    let big = extract_cover(&mut src, 4000).unwrap();
    assert_eq!((big.width, big.height), (320, 240));
}

#[test]
fn rotated_tracks_give_upright_covers() {
    let data = fixture("landscape-2s-noaudio.mp4");
    // Where the grey bar (top-left in the coded frame) and the blue bar (top-right) end up,
    // checked against ffmpeg's autorotated output of the same files.
    for (matrix, size, grey_at, blue_at) in [
        ((0, 1, -1, 0), (360, 640), (0.9, 0.03), (0.9, 0.97)),
        ((-1, 0, 0, -1), (640, 360), (0.97, 0.9), (0.03, 0.9)),
        ((0, -1, 1, 0), (360, 640), (0.1, 0.97), (0.1, 0.03)),
    ] {
        let rotated = with_matrix(&data, matrix);
        let cover = cover_of(&rotated).unwrap();
        assert_eq!((cover.width, cover.height), size, "{matrix:?}");
        let img = decode_jpeg(&cover.jpeg);
        assert_color(
            img.at(grey_at.0, grey_at.1),
            [190, 190, 190],
            14,
            "grey bar",
        );
        assert_color(img.at(blue_at.0, blue_at.1), [0, 0, 191], 14, "blue bar");
    }
}

#[test]
fn the_truncated_fixture_has_no_frame_to_read() {
    // Its index is whole, so a cover job could get this far if it were ever stored.
    let data = fixture("truncated.mp4");
    match cover_of(&data) {
        // The first video sample is at 4181 and fits in 20,000 bytes: fine either way, but
        // it must be the real frame, not garbage.
        Ok(cover) => assert!(decode_jpeg(&cover.jpeg).luma_variance() > 200.0),
        Err(e) => panic!("first frame lies inside the file, yet: {e}"),
    }
    // Cut before the first frame ends: the frame is missing.
    let cut = &data[..5000];
    assert!(matches!(
        cover_of(cut),
        Err(MediaError::Truncated { received: 5000, .. })
    ));
}

#[test]
fn other_codecs_are_undecodable_not_corrupt() {
    // Relabel the sample entry and its configuration box as HEVC's.
    let mut data = fixture("portrait-3s.mp4");
    let stsd = find(&data, b"stsd");
    for (from, to) in [(b"avc1", b"hvc1"), (b"avcC", b"hvcC")] {
        let at = stsd + find(&data[stsd..], from);
        data[at..at + 4].copy_from_slice(to);
    }
    // Still a valid video for the inspector…
    let info = inspect(&data, 7).unwrap();
    assert_eq!(info.video.codec, "hvc1");
    assert!(!info.video.is_h264());
    // …but its cover must be generated.
    let err = cover_of(&data).unwrap_err();
    assert!(
        matches!(&err, MediaError::Undecodable(m) if m.contains("HEVC")),
        "{err:?}"
    );
    assert!(err.is_permanent());
}

#[test]
fn frames_that_do_not_decode_are_undecodable() {
    let data = fixture("portrait-3s.mp4");
    let at = 4181; // the first video sample (stco)
                   // A key frame of zero-length NAL units: no picture at all.
    let mut empty = data.clone();
    let size = u32::from_be_bytes(data[find(&data, b"stsz") + 16..][..4].try_into().unwrap());
    empty[at..at + size as usize].fill(0);
    let err = cover_of(&empty).unwrap_err();
    assert!(matches!(err, MediaError::Undecodable(_)), "{err:?}");
    // NAL lengths that overrun the sample.
    let mut overrun = data.clone();
    overrun[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = cover_of(&overrun).unwrap_err();
    assert!(matches!(err, MediaError::Undecodable(_)), "{err:?}");
    // Random bytes in place of the frame: an error, never a panic.
    let mut noise = data.clone();
    let mut x = 0x1234_5678u32;
    for b in &mut noise[at + 5..at + size as usize] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let _ = cover_of(&noise);
}

#[test]
fn bad_inputs_give_container_errors() {
    assert_eq!(cover_of(&[]), Err(MediaError::Empty));
    assert_eq!(
        cover_of(&fixture("not-a-video.mp4")),
        Err(MediaError::NotAVideo)
    );
    let data = fixture("portrait-3s.mp4");
    assert_eq!(cover_of(&data[..32]), Err(MediaError::MissingMoov));
    let mut no_video = data.clone();
    let at = find(&no_video, b"trak");
    no_video[at..at + 4].copy_from_slice(b"skip");
    assert_eq!(cover_of(&no_video), Err(MediaError::NoVideoTrack));
}

#[test]
fn source_failures_are_retryable() {
    struct Broken;
    impl ReadAt for Broken {
        fn len(&self) -> u64 {
            1000
        }
        fn read_at(&mut self, _: u64, _: usize) -> io::Result<Vec<u8>> {
            Err(io::Error::other("connection reset"))
        }
    }
    let err = extract_cover(&mut Broken, 720).unwrap_err();
    assert_eq!(err, MediaError::Source("connection reset".into()));
    assert!(!err.is_permanent());
}

fn with_matrix(data: &[u8], (a, b, c, d): (i32, i32, i32, i32)) -> Vec<u8> {
    let mut data = data.to_vec();
    let body = find(&data, b"tkhd") + 4;
    let m = body + 40;
    for (i, v) in [(0, a), (1, b), (3, c), (4, d)] {
        data[m + i * 4..m + i * 4 + 4].copy_from_slice(&(v * 0x10000).to_be_bytes());
    }
    data
}
