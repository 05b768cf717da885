#![allow(dead_code)]

use std::path::PathBuf;

use tikspin_media::{MediaError, UploadInspector, VideoInfo};

/// The fixtures live in the repository's `tests/fixtures`; `TIKSPIN_FIXTURES` points
/// elsewhere.
pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TIKSPIN_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} not readable ({e}); set TIKSPIN_FIXTURES to the fixtures directory",
            path.display()
        )
    })
}

/// Feeds `data` in `chunk`-sized pieces, stopping at the first error as the HTTP layer does.
pub fn inspect(data: &[u8], chunk: usize) -> Result<VideoInfo, MediaError> {
    let mut inspector = UploadInspector::new();
    for piece in data.chunks(chunk) {
        if inspector.feed(piece).is_err() {
            break;
        }
    }
    inspector.finish()
}

pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Rgb {
    /// The pixel at fractions (fx, fy) of the width and height.
    pub fn at(&self, fx: f64, fy: f64) -> [u8; 3] {
        let x = ((fx * self.width as f64) as usize).min(self.width - 1);
        let y = ((fy * self.height as f64) as usize).min(self.height - 1);
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Variance of luma over the whole picture: near zero for a flat fill.
    pub fn luma_variance(&self) -> f64 {
        let lumas: Vec<f64> = self
            .pixels
            .chunks(3)
            .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
            .collect();
        let mean = lumas.iter().sum::<f64>() / lumas.len() as f64;
        lumas.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / lumas.len() as f64
    }
}

pub fn decode_jpeg(jpeg: &[u8]) -> Rgb {
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "no JPEG SOI marker");
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    let pixels = decoder.decode().expect("the JPEG decodes");
    let info = decoder.info().expect("JPEG info");
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    Rgb {
        width: info.width as usize,
        height: info.height as usize,
        pixels,
    }
}

pub fn decode_png(data: &[u8]) -> (png::OutputInfo, Vec<u8>, Option<Vec<u8>>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(data));
    let mut reader = decoder.read_info().expect("PNG header");
    let palette = reader.info().palette.as_ref().map(|p| p.to_vec());
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG decodes");
    buf.truncate(info.buffer_size());
    (info, buf, palette)
}

/// Asserts two colours are within `tol` per channel.
#[track_caller]
pub fn assert_color(got: [u8; 3], want: [u8; 3], tol: u8, what: &str) {
    let close = got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= tol);
    assert!(close, "{what}: got {got:?}, want {want:?} ± {tol}");
}

/// Offset of the first occurrence of `needle` (a box type) in `data`.
pub fn find(data: &[u8], needle: &[u8]) -> usize {
    data.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}
