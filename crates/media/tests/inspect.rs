mod common;

use common::{find, fixture, inspect};
use tikspin_media::{ByteRange, MediaError, UploadInspector, VideoInfo};

struct Expect {
    name: &'static str,
    brand: &'static str,
    display: (u32, u32),
    moov: (u64, u64),
    faststart: bool,
    duration_ms: u64,
}

/// Box layouts read off the fixtures by hand (a box-tree dump); durations from mvhd.
const GOOD: [Expect; 5] = [
    Expect {
        name: "portrait-3s.mp4",
        brand: "isom",
        display: (360, 640),
        moov: (32, 3922),
        faststart: true,
        duration_ms: 3000,
    },
    Expect {
        name: "landscape-2s-noaudio.mp4",
        brand: "isom",
        display: (640, 360),
        moov: (2352, 1427),
        faststart: false,
        duration_ms: 2000,
    },
    Expect {
        name: "large-20s.mp4",
        brand: "isom",
        display: (720, 1280),
        moov: (7756667, 22979),
        faststart: false,
        duration_ms: 20000,
    },
    Expect {
        name: "bear.mp4",
        brand: "mp42",
        display: (320, 240),
        moov: (28, 8864),
        faststart: true,
        duration_ms: 12612,
    },
    Expect {
        name: "not-faststart.mov",
        brand: "qt  ",
        display: (360, 640),
        moov: (86816, 1498),
        faststart: false,
        duration_ms: 2000,
    },
];

#[test]
fn accepts_every_good_fixture_whatever_the_chunking() {
    for e in &GOOD {
        let data = fixture(e.name);
        let whole = inspect(&data, data.len()).unwrap_or_else(|err| panic!("{}: {err}", e.name));
        for chunk in [1, 7, 64 * 1024] {
            let got =
                inspect(&data, chunk).unwrap_or_else(|err| panic!("{} /{chunk}: {err}", e.name));
            assert_eq!(got, whole, "{} fed in {chunk}-byte chunks", e.name);
        }
        check(e, &whole, data.len() as u64);
    }
}

fn check(e: &Expect, info: &VideoInfo, size: u64) {
    assert_eq!(info.brand, e.brand, "{}", e.name);
    assert_eq!(info.size, size, "{}", e.name);
    assert_eq!(
        info.moov,
        ByteRange {
            offset: e.moov.0,
            len: e.moov.1
        },
        "{}",
        e.name
    );
    assert_eq!(info.faststart, e.faststart, "{}", e.name);
    assert_eq!(info.video.codec, "avc1", "{}", e.name);
    assert!(info.video.is_h264());
    assert_eq!(info.video.rotation, 0, "{}", e.name);
    assert_eq!(
        (info.video.display_width, info.video.display_height),
        e.display,
        "{}",
        e.name
    );
    let d = info
        .duration_ms
        .unwrap_or_else(|| panic!("{}: no duration", e.name));
    assert!(
        d.abs_diff(e.duration_ms) <= 150,
        "{}: duration {d} ms, want ~{}",
        e.name,
        e.duration_ms
    );
}

#[test]
fn moov_range_points_at_the_moov_box() {
    for e in &GOOD {
        let data = fixture(e.name);
        let info = inspect(&data, 4096).expect("accepted");
        let m = info.moov;
        let head = &data[m.offset as usize..m.offset as usize + 8];
        assert_eq!(&head[4..8], b"moov", "{}", e.name);
        assert_eq!(
            u32::from_be_bytes(head[0..4].try_into().unwrap()) as u64,
            m.len,
            "{}",
            e.name
        );
    }
}

#[test]
fn refuses_empty_input() {
    assert_eq!(UploadInspector::new().finish(), Err(MediaError::Empty));
    let mut i = UploadInspector::new();
    i.feed(&[]).expect("an empty chunk is fine");
    assert_eq!(i.finish(), Err(MediaError::Empty));
    assert_eq!(MediaError::Empty.to_string(), "the uploaded file is empty");
}

#[test]
fn refuses_text_pretending_to_be_a_video() {
    let data = fixture("not-a-video.mp4");
    for chunk in [1, 7, 64 * 1024] {
        assert_eq!(
            inspect(&data, chunk),
            Err(MediaError::NotAVideo),
            "chunk {chunk}"
        );
    }
    // Known after the first box header: the upload can be cut off there.
    let mut i = UploadInspector::new();
    assert_eq!(i.feed(&data[..8]), Err(MediaError::NotAVideo));
    assert_eq!(
        i.feed(&data[8..]),
        Err(MediaError::NotAVideo),
        "errors are sticky"
    );
    assert_eq!(
        MediaError::NotAVideo.to_string(),
        "the uploaded file is not an MP4 or MOV video"
    );
}

#[test]
fn refuses_other_formats_and_tiny_files() {
    let png = [
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    assert_eq!(inspect(&png, 3), Err(MediaError::NotAVideo));
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0];
    assert_eq!(inspect(&jpeg, 3), Err(MediaError::NotAVideo));
    assert_eq!(inspect(b"\0\0\0", 1), Err(MediaError::NotAVideo));
    // A HEIF photo: the same container, no movie.
    let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    heic.extend_from_slice(b"\0\0\0\x08meta");
    assert_eq!(inspect(&heic, 3), Err(MediaError::NotAVideo));
    // An ftyp whose size is smaller than its own header.
    assert_eq!(
        inspect(b"\0\0\0\x04ftypisom", 5),
        Err(MediaError::NotAVideo)
    );
}

#[test]
fn refuses_the_truncated_fixture() {
    // portrait-3s.mp4 cut at 20,000 bytes: moov is whole, mdat (3962 + 166885) is not.
    let data = fixture("truncated.mp4");
    for chunk in [1, 7, 64 * 1024] {
        assert_eq!(
            inspect(&data, chunk),
            Err(MediaError::Truncated {
                expected: 170_847,
                received: 20_000
            }),
            "chunk {chunk}"
        );
    }
    assert_eq!(
        MediaError::Truncated {
            expected: 170_847,
            received: 20_000
        }
        .to_string(),
        "the video upload is incomplete: received 20000 of 170847 bytes; please upload it again"
    );
}

#[test]
fn refuses_cuts_anywhere() {
    let data = fixture("portrait-3s.mp4");
    // Inside moov (which ends at 3954).
    assert_eq!(
        inspect(&data[..2000], 7),
        Err(MediaError::Truncated {
            expected: 3954,
            received: 2000
        })
    );
    // Inside a box header.
    assert_eq!(
        inspect(&data[..3958], 7),
        Err(MediaError::Truncated {
            expected: 3962,
            received: 3958
        })
    );
    // Right after moov, or after the free box: clean box boundaries, but the index points
    // at media data (the first chunk at 4181) that never arrived.
    for cut in [3954, 3962] {
        assert!(
            matches!(inspect(&data[..cut], 7), Err(MediaError::Truncated { received, expected })
                if received == cut as u64 && expected > 4181),
            "cut at {cut}"
        );
    }
    // Right after ftyp: a clean box boundary, but no moov yet.
    assert_eq!(inspect(&data[..32], 7), Err(MediaError::MissingMoov));
    // Every cut from the first byte on is refused.
    for cut in (1..data.len()).step_by(997) {
        assert!(
            inspect(&data[..cut], 4096).is_err(),
            "cut at {cut} accepted"
        );
    }
}

#[test]
fn refuses_garbage_after_the_last_box() {
    let mut data = fixture("portrait-3s.mp4");
    data.extend_from_slice(&[1, 2, 3]);
    assert!(matches!(
        inspect(&data, 7),
        Err(MediaError::Truncated { .. })
    ));
    // A few zero bytes of padding are harmless.
    let mut data = fixture("portrait-3s.mp4");
    data.extend_from_slice(&[0, 0, 0, 0]);
    assert!(inspect(&data, 7).is_ok());
}

#[test]
fn refuses_a_file_without_moov() {
    let mut data = fixture("portrait-3s.mp4");
    let at = find(&data, b"moov");
    data[at..at + 4].copy_from_slice(b"free");
    assert_eq!(inspect(&data, 1000), Err(MediaError::MissingMoov));
    assert!(MediaError::MissingMoov.to_string().contains("moov"));
}

#[test]
fn refuses_a_movie_without_video() {
    // Hide the video trak (the first one) from the walk: only the audio track remains.
    let mut data = fixture("portrait-3s.mp4");
    let at = find(&data, b"trak");
    data[at..at + 4].copy_from_slice(b"skip");
    assert_eq!(inspect(&data, 1000), Err(MediaError::NoVideoTrack));
}

#[test]
fn refuses_two_moovs_and_broken_nesting() {
    let data = fixture("portrait-3s.mp4");
    let moov = &data[32..3954];
    let mut twice = data[..3954].to_vec();
    twice.extend_from_slice(moov);
    assert!(matches!(inspect(&twice, 500), Err(MediaError::Corrupt(m)) if m.contains("two moov")));

    // A trak claiming more bytes than its moov has.
    let mut data = data.clone();
    let at = find(&data, b"trak") - 4;
    data[at..at + 4].copy_from_slice(&100_000u32.to_be_bytes());
    assert!(matches!(inspect(&data, 500), Err(MediaError::Corrupt(m)) if m.contains("overruns")));
}

#[test]
fn size_limit_stops_the_upload_early() {
    let data = fixture("portrait-3s.mp4");
    let mut i = UploadInspector::new().with_max_size(100_000);
    let mut fed = 0;
    let mut result = Ok(());
    for chunk in data.chunks(16 * 1024) {
        result = i.feed(chunk);
        if result.is_err() {
            break;
        }
        fed += chunk.len();
    }
    assert_eq!(result, Err(MediaError::TooLarge { limit: 100_000 }));
    assert!(fed <= 100_000);
    assert_eq!(i.finish(), Err(MediaError::TooLarge { limit: 100_000 }));
    assert_eq!(
        MediaError::TooLarge { limit: 50 << 20 }.to_string(),
        "the video is too large: the limit is 50 MB"
    );
    // At the limit exactly is fine.
    let mut i = UploadInspector::new().with_max_size(data.len() as u64);
    i.feed(&data).expect("at the limit");
    assert!(i.finish().is_ok());
}

#[test]
fn reports_rotation_and_rotated_display_size() {
    for (matrix, rotation, display) in [
        ((0, 1, -1, 0), 90, (360, 640)),
        ((-1, 0, 0, -1), 180, (640, 360)),
        ((0, -1, 1, 0), 270, (360, 640)),
    ] {
        let data = with_matrix(&fixture("landscape-2s-noaudio.mp4"), matrix);
        let info = inspect(&data, 7).expect("accepted");
        assert_eq!(info.video.rotation, rotation);
        assert_eq!(
            (info.video.display_width, info.video.display_height),
            display
        );
        assert_eq!(
            (info.video.coded_width, info.video.coded_height),
            (640, 360)
        );
    }
}

/// Legacy QuickTime files begin with an atom other than ftyp.
#[test]
fn accepts_quicktime_without_ftyp() {
    let data = fixture("not-faststart.mov");
    // Drop the 20-byte ftyp: the file then starts with `wide`.
    let legacy = &data[20..];
    let info = inspect(legacy, 7).expect("accepted");
    assert_eq!(info.brand, "qt  ");
    assert_eq!(info.moov.offset, 86816 - 20);
}

/// Replaces the first tkhd's matrix (a, b, c, d in whole units).
pub fn with_matrix(data: &[u8], (a, b, c, d): (i32, i32, i32, i32)) -> Vec<u8> {
    let mut data = data.to_vec();
    let body = find(&data, b"tkhd") + 4;
    assert_eq!(data[body], 0, "version 0 tkhd");
    let m = body + 40;
    for (i, v) in [(0, a), (1, b), (3, c), (4, d)] {
        data[m + i * 4..m + i * 4 + 4].copy_from_slice(&(v * 0x10000).to_be_bytes());
    }
    data
}
