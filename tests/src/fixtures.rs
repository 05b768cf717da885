//! The test videos (`tests/fixtures`, or `TIKSPIN_FIXTURES`), what ffprobe/ffmpeg
//! say about the good ones, and a JPEG decoder to compare covers with them.
//!
//! Cover fingerprints ([`Fixture::fingerprint`]) are the mean luma (0.299 R + 0.587 G + 0.114 B)
//! of a 4×4 grid over each fixture's first frame, computed once with ffmpeg
//! (`ffmpeg -i F -frames:v 1 -f rawvideo -pix_fmt rgb24 -`), an independent decoder: a cover that
//! is a placeholder, a generated gradient or a broken decode does not match them.

use std::path::PathBuf;

use crate::workspace_root;

/// `TIKSPIN_FIXTURES`, else the repository's `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("TIKSPIN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("tests/fixtures"))
}

pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} unreadable ({e}); set TIKSPIN_FIXTURES",
            path.display()
        )
    })
}

/// A good fixture and what ffprobe/ffmpeg say about it.
pub struct Fixture {
    pub name: &'static str,
    /// Display size of the video track (no rotation in any fixture, square pixels).
    pub width: u32,
    pub height: u32,
    pub content_type: &'static str,
    /// See the module doc.
    pub fingerprint: [u8; 16],
}

pub const PORTRAIT: Fixture = Fixture {
    name: "portrait-3s.mp4",
    width: 360,
    height: 640,
    content_type: "video/mp4",
    fingerprint: [
        92, 194, 56, 153, 100, 199, 58, 148, 100, 199, 59, 155, 100, 199, 60, 156,
    ],
};
pub const LANDSCAPE: Fixture = Fixture {
    name: "landscape-2s-noaudio.mp4",
    width: 640,
    height: 360,
    content_type: "video/mp4",
    fingerprint: [
        181, 132, 86, 38, 181, 132, 86, 38, 125, 104, 83, 61, 104, 132, 6, 2,
    ],
};
pub const LARGE: Fixture = Fixture {
    name: "large-20s.mp4",
    width: 720,
    height: 1280,
    content_type: "video/mp4",
    fingerprint: [
        101, 198, 55, 154, 100, 199, 56, 151, 100, 199, 59, 156, 100, 199, 60, 156,
    ],
};
pub const BEAR: Fixture = Fixture {
    name: "bear.mp4",
    width: 320,
    height: 240,
    content_type: "video/mp4",
    fingerprint: [
        107, 106, 98, 109, 105, 76, 71, 106, 87, 61, 99, 105, 113, 105, 114, 110,
    ],
};
pub const MOV: Fixture = Fixture {
    name: "not-faststart.mov",
    width: 360,
    height: 640,
    content_type: "video/quicktime",
    fingerprint: [
        92, 193, 56, 154, 100, 199, 58, 149, 100, 199, 59, 155, 100, 199, 60, 156,
    ],
};

/// A decoded cover.
pub struct Jpeg {
    pub width: u32,
    pub height: u32,
    /// Luma, row-major.
    pub luma: Vec<f64>,
}

#[track_caller]
pub fn decode_jpeg(bytes: &[u8]) -> Jpeg {
    assert!(
        bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "not a JPEG (no SOI marker): {:02x?}",
        &bytes[..bytes.len().min(16)]
    );
    let mut d = jpeg_decoder::Decoder::new(bytes);
    let pixels = d
        .decode()
        .unwrap_or_else(|e| panic!("the JPEG does not decode: {e}"));
    let info = d.info().unwrap();
    let (w, h) = (info.width as u32, info.height as u32);
    let luma: Vec<f64> = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => pixels.iter().map(|&p| p as f64).collect(),
        jpeg_decoder::PixelFormat::RGB24 => pixels
            .chunks(3)
            .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
            .collect(),
        other => panic!("unexpected JPEG pixel format {other:?}"),
    };
    assert_eq!(
        luma.len(),
        (w * h) as usize,
        "decoded size does not match the header"
    );
    Jpeg {
        width: w,
        height: h,
        luma,
    }
}

impl Jpeg {
    /// Mean luma of a 4×4 grid (the same computation as the fixtures' fingerprints).
    pub fn grid(&self) -> [f64; 16] {
        let (mut sums, mut counts) = ([0.0; 16], [0u32; 16]);
        for y in 0..self.height {
            let gy = (y * 4 / self.height) as usize;
            for x in 0..self.width {
                let gx = (x * 4 / self.width) as usize;
                sums[gy * 4 + gx] += self.luma[(y * self.width + x) as usize];
                counts[gy * 4 + gx] += 1;
            }
        }
        std::array::from_fn(|i| sums[i] / counts[i] as f64)
    }
}
