//! Images TikSpin draws itself: fallback and placeholder covers, default avatars and profile
//! backgrounds. All are pure functions of their input (integer hashing, IEEE arithmetic, and
//! deterministic encoders), so a URL can be served again byte for byte after a restart.

use std::sync::OnceLock;

use crate::picture::encode_jpeg;

/// Size of [`placeholder_cover`]: a 9:16 portrait frame, the shape of most uploads.
pub const PLACEHOLDER_SIZE: (u32, u32) = (360, 640);
/// Size of [`avatar_png`].
pub const AVATAR_SIZE: u32 = 128;
/// Size of [`background_png`].
pub const BACKGROUND_SIZE: (u32, u32) = (720, 400);

/// The largest side a generated cover is drawn at; larger requests are clamped.
const MAX_GENERATED_SIDE: u32 = 2048;

/// A gradient cover for a video whose frames cannot be decoded. `seed` picks the colours
/// (use the video id, so each video keeps its look); `width`/`height` are clamped to
/// 1..=2048.
pub fn generated_cover(seed: u64, width: u32, height: u32) -> Vec<u8> {
    let w = width.clamp(1, MAX_GENERATED_SIDE);
    let h = height.clamp(1, MAX_GENERATED_SIDE);
    let mut rng = SplitMix(seed ^ 0x7C0F_E12A_5EED_0001);
    let hue = rng.unit() * 360.0;
    let from = hsl(hue, 0.65, 0.55);
    let to = hsl(hue + 50.0 + rng.unit() * 70.0, 0.70, 0.35);
    // A soft light spot somewhere in the upper half keeps it from looking like a flat fill.
    let (gx, gy) = (0.2 + rng.unit() * 0.6, 0.15 + rng.unit() * 0.35);
    let glow_radius = 0.45 + rng.unit() * 0.25;
    let rgb = paint(w, h, |fx, fy| {
        let t = (fx * 0.35 + fy * 0.65).clamp(0.0, 1.0);
        let base = mix(from, to, t);
        let d = ((fx - gx).powi(2) + (fy - gy).powi(2) * 0.6).sqrt() / glow_radius;
        let glow = (1.0 - d).max(0.0).powi(2) * 0.35;
        mix(base, [1.0, 1.0, 1.0], glow)
    });
    encode_jpeg(&rgb, w, h, 85).unwrap_or_default()
}

/// The neutral "still processing" cover served until the real one exists.
pub fn placeholder_cover() -> &'static [u8] {
    static PLACEHOLDER: OnceLock<Vec<u8>> = OnceLock::new();
    PLACEHOLDER.get_or_init(|| {
        let (w, h) = PLACEHOLDER_SIZE;
        let aspect = w as f32 / h as f32;
        let top = [0.24, 0.25, 0.28];
        let bottom = [0.12, 0.12, 0.14];
        let dot = [0.80, 0.80, 0.82];
        // Three dots across the middle: the ellipsis of "loading".
        let dots = [-0.12f32, 0.0, 0.12];
        let r = 0.028;
        let rgb = paint(w, h, |fx, fy| {
            let base = mix(top, bottom, fy);
            // Distance in units of the width, so the dots are round in a tall frame.
            let dy = (fy - 0.5) / aspect;
            let cover = dots
                .iter()
                .map(|&cx| {
                    let d = ((fx - 0.5 - cx).powi(2) + dy * dy).sqrt();
                    // About one pixel of antialiasing.
                    ((r - d) * w as f32 + 0.5).clamp(0.0, 1.0)
                })
                .fold(0.0f32, f32::max);
            mix(base, dot, cover)
        });
        encode_jpeg(&rgb, w, h, 85).unwrap_or_default()
    })
}

/// A default avatar: a 5×5 mirrored pattern in a colour derived from the user id, like
/// GitHub's identicons. 128×128 PNG.
pub fn avatar_png(user_id: i64) -> Vec<u8> {
    let mut rng = SplitMix(user_id as u64 ^ 0xA7A7_A7A7_0000_0001);
    let bits = rng.next();
    let hue = rng.unit() * 360.0;
    let fg = to_u8(hsl(hue, 0.55 + rng.unit() * 0.2, 0.45 + rng.unit() * 0.12));
    let bg = [240u8, 240, 240];
    // Columns 0..3 decide; 3 and 4 mirror 1 and 0.
    let mut cells = [[false; 5]; 5];
    for (row, cells_row) in cells.iter_mut().enumerate() {
        for col in 0..3 {
            let on = bits >> (row * 3 + col) & 1 == 1;
            cells_row[col] = on;
            cells_row[4 - col] = on;
        }
    }
    if cells.iter().flatten().all(|&c| !c) {
        cells[2][2] = true;
    }
    let size = AVATAR_SIZE as usize;
    let cell = 24;
    let margin = (size - 5 * cell) / 2;
    let mut indexed = vec![0u8; size * size];
    for (y, row) in indexed.chunks_mut(size).enumerate() {
        for (x, px) in row.iter_mut().enumerate() {
            let (cx, cy) = (x.wrapping_sub(margin) / cell, y.wrapping_sub(margin) / cell);
            if cx < 5 && cy < 5 && cells[cy][cx] {
                *px = 1;
            }
        }
    }
    let palette = [bg, fg].concat();
    encode_png(
        AVATAR_SIZE,
        AVATAR_SIZE,
        png::ColorType::Indexed,
        Some(&palette),
        None,
        &indexed,
    )
}

/// A default profile background: a diagonal two-colour gradient derived from the user id.
/// 720×400 PNG.
pub fn background_png(user_id: i64) -> Vec<u8> {
    let mut rng = SplitMix(user_id as u64 ^ 0xB6B6_0000_B6B6_0002);
    let hue = rng.unit() * 360.0;
    let from = hsl(hue, 0.55, 0.62);
    let to = hsl(hue + 30.0 + rng.unit() * 40.0, 0.60, 0.42);
    let (w, h) = BACKGROUND_SIZE;
    // The colour depends on x + y only, so each row repeats the one above shifted by a
    // pixel: deflate finds whole-row matches and the PNG stays small.
    let span = (w + h - 2) as f32;
    let ramp: Vec<[u8; 3]> = (0..(w + h - 1))
        .map(|i| to_u8(mix(from, to, i as f32 / span)))
        .collect();
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&ramp[(x + y) as usize]);
        }
    }
    // Unfiltered rows keep the exact repeats that deflate matches: 7 KB in ~5 ms, where a
    // filtered image or the fast compressor gives over 100 KB.
    encode_png(
        w,
        h,
        png::ColorType::Rgb,
        None,
        Some(png::Filter::NoFilter),
        &rgb,
    )
}

/// `filter`: `None` lets the encoder choose per row.
fn encode_png(
    w: u32,
    h: u32,
    color: png::ColorType,
    palette: Option<&[u8]>,
    filter: Option<png::Filter>,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Balanced);
    if let Some(f) = filter {
        enc.set_filter(f);
    }
    if let Some(p) = palette {
        enc.set_palette(p.to_vec());
    }
    // Encoding an in-memory image of the declared size cannot fail; an empty result would
    // show up in tests rather than panic a request.
    let ok = enc
        .write_header()
        .and_then(|mut wr| wr.write_image_data(data));
    if ok.is_err() {
        out.clear();
    }
    out
}

/// Packed RGB of `w`×`h`, each pixel from `f(x, y)` with x, y in 0..=1 and colours in 0..=1.
fn paint(w: u32, h: u32, f: impl Fn(f32, f32) -> [f32; 3]) -> Vec<u8> {
    let (w, h) = (w as usize, h as usize);
    let mut out = Vec::with_capacity(w * h * 3);
    let sx = 1.0 / (w.max(2) - 1) as f32;
    let sy = 1.0 / (h.max(2) - 1) as f32;
    for y in 0..h {
        for x in 0..w {
            out.extend_from_slice(&to_u8(f(x as f32 * sx, y as f32 * sy)));
        }
    }
    out
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn to_u8(c: [f32; 3]) -> [u8; 3] {
    c.map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// HSL to linear-ish RGB in 0..=1; hue in degrees (any value, wrapped).
fn hsl(h: f32, s: f32, l: f32) -> [f32; 3] {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [r + m, g + m, b + m]
}

/// SplitMix64: a tiny, well-mixed, platform-independent generator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}
