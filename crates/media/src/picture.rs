//! From decoded YUV planes to an upright, scaled RGB picture, and JPEG encoding.

use resize::{Pixel, Type};
use rgb::FromSlice;

use crate::avc::ColorInfo;
use crate::error::MediaError;

/// A decoded 4:2:0 picture, borrowed from the decoder's output.
pub(crate) struct Frame<'a> {
    pub width: usize,
    pub height: usize,
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
}

/// Scales `frame` to `w`×`h` and converts it to packed RGB, then turns it `rotation` degrees
/// clockwise. Returns the pixels of the rotated picture.
pub(crate) fn render(
    frame: &Frame<'_>,
    color: ColorInfo,
    w: u32,
    h: u32,
    rotation: u16,
) -> Result<Vec<u8>, MediaError> {
    let (fw, fh) = (frame.width, frame.height);
    let (w, h) = (w as usize, h as usize);
    let (cw, ch) = chroma_size(frame)?;
    if frame.y.len() < fw * fh {
        return Err(internal("luma plane too small"));
    }
    // Scaling happens on the planes, before colour conversion: fewer pixels to convert when
    // shrinking, and the chroma planes get a filtered upsampling for free.
    let y = scale_plane(&frame.y[..fw * fh], fw, fh, w, h, Type::Lanczos3)?;
    let u = scale_plane(&frame.u[..cw * ch], cw, ch, w, h, Type::Triangle)?;
    let v = scale_plane(&frame.v[..cw * ch], cw, ch, w, h, Type::Triangle)?;
    let rgb = yuv_to_rgb(&y, &u, &v, color);
    Ok(rotate(rgb, w, h, rotation))
}

fn chroma_size(frame: &Frame<'_>) -> Result<(usize, usize), MediaError> {
    // Odd sizes (after cropping) may round either way; accept the one the planes match.
    for (cw, ch) in [
        (frame.width.div_ceil(2), frame.height.div_ceil(2)),
        (frame.width / 2, frame.height / 2),
    ] {
        if cw > 0 && ch > 0 && frame.u.len() >= cw * ch && frame.v.len() >= cw * ch {
            return Ok((cw, ch));
        }
    }
    Err(internal("chroma planes too small"))
}

fn scale_plane(
    src: &[u8],
    sw: usize,
    sh: usize,
    dw: usize,
    dh: usize,
    filter: Type,
) -> Result<Vec<u8>, MediaError> {
    if (sw, sh) == (dw, dh) {
        return Ok(src.to_vec());
    }
    let mut resizer = resize::new(sw, sh, dw, dh, Pixel::Gray8, filter)
        .map_err(|e| internal(&format!("scaler: {e:?}")))?;
    let mut dst = vec![0u8; dw * dh];
    resizer
        .resize(src.as_gray(), dst.as_gray_mut())
        .map_err(|e| internal(&format!("scaler: {e:?}")))?;
    Ok(dst)
}

/// Same-sized Y, U, V planes to packed RGB, in 16-bit fixed point.
fn yuv_to_rgb(y: &[u8], u: &[u8], v: &[u8], c: ColorInfo) -> Vec<u8> {
    let kg = 1.0 - c.kr - c.kb;
    let (y_scale, c_scale, y_off) = if c.full_range {
        (1.0, 1.0, 0)
    } else {
        (255.0 / 219.0, 255.0 / 224.0, 16)
    };
    let fix = |x: f32| (x * 65536.0).round() as i32;
    let ky = fix(y_scale);
    let rv = fix(2.0 * (1.0 - c.kr) * c_scale);
    let bu = fix(2.0 * (1.0 - c.kb) * c_scale);
    let gu = fix(2.0 * c.kb * (1.0 - c.kb) / kg * c_scale);
    let gv = fix(2.0 * c.kr * (1.0 - c.kr) / kg * c_scale);
    let mut out = Vec::with_capacity(y.len() * 3);
    for ((&yy, &uu), &vv) in y.iter().zip(u).zip(v) {
        let l = (yy as i32 - y_off) * ky + (1 << 15);
        let cb = uu as i32 - 128;
        let cr = vv as i32 - 128;
        out.push(clamp((l + rv * cr) >> 16));
        out.push(clamp((l - gu * cb - gv * cr) >> 16));
        out.push(clamp((l + bu * cb) >> 16));
    }
    out
}

fn clamp(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}

/// Turns packed RGB `w`×`h` by `degrees` clockwise (0, 90, 180 or 270).
pub(crate) fn rotate(rgb: Vec<u8>, w: usize, h: usize, degrees: u16) -> Vec<u8> {
    if degrees.is_multiple_of(360) {
        return rgb;
    }
    let mut out = vec![0u8; rgb.len()];
    for y in 0..h {
        for x in 0..w {
            let (dx, dy, dw) = match degrees % 360 {
                90 => (h - 1 - y, x, h),
                180 => (w - 1 - x, h - 1 - y, w),
                _ => (y, w - 1 - x, h), // 270
            };
            let s = (y * w + x) * 3;
            let d = (dy * dw + dx) * 3;
            out[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
        }
    }
    out
}

/// Encodes packed RGB as a baseline JPEG.
pub(crate) fn encode_jpeg(rgb: &[u8], w: u32, h: u32, quality: u8) -> Result<Vec<u8>, MediaError> {
    let (w16, h16) = match (u16::try_from(w), u16::try_from(h)) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Err(internal("picture too large for JPEG")),
    };
    let mut out = Vec::with_capacity(rgb.len() / 10 + 1024);
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| internal(&format!("JPEG encoder: {e}")))?;
    Ok(out)
}

fn internal(why: &str) -> MediaError {
    MediaError::Undecodable(format!("cannot render the picture: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(y: u8, u: u8, v: u8, c: ColorInfo) -> [u8; 3] {
        let rgb = yuv_to_rgb(&[y], &[u], &[v], c);
        [rgb[0], rgb[1], rgb[2]]
    }

    fn near(got: [u8; 3], want: [u8; 3]) -> bool {
        got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 2)
    }

    /// Reference values computed from the standards' equations, not from this code.
    #[test]
    fn conversion_follows_the_labelled_matrix_and_range() {
        let bt709 = ColorInfo {
            kr: 0.2126,
            kb: 0.0722,
            full_range: false,
        };
        let bt601 = ColorInfo::UNLABELLED;
        let bt601_full = ColorInfo {
            full_range: true,
            ..bt601
        };
        // Limited range: 16 is black, 235 white.
        assert_eq!(px(16, 128, 128, bt709), [0, 0, 0]);
        assert_eq!(px(235, 128, 128, bt709), [255, 255, 255]);
        // 100% red in each encoding.
        assert!(
            near(px(63, 102, 240, bt709), [255, 0, 0]),
            "{:?}",
            px(63, 102, 240, bt709)
        );
        assert!(
            near(px(81, 90, 240, bt601), [255, 0, 0]),
            "{:?}",
            px(81, 90, 240, bt601)
        );
        assert!(
            near(px(76, 85, 255, bt601_full), [255, 0, 0]),
            "{:?}",
            px(76, 85, 255, bt601_full)
        );
        // Full range: 0 and 255 are the ends.
        assert_eq!(px(0, 128, 128, bt601_full), [0, 0, 0]);
        assert_eq!(px(255, 128, 128, bt601_full), [255, 255, 255]);
        // The wrong matrix visibly shifts a saturated colour.
        assert!(!near(px(63, 102, 240, bt601), [255, 0, 0]));
    }

    #[test]
    fn vui_codes_pick_the_matrix() {
        assert_eq!(ColorInfo::from_vui(Some(1), false).kr, 0.2126);
        assert_eq!(ColorInfo::from_vui(Some(6), true).kr, 0.299);
        assert!(ColorInfo::from_vui(Some(6), true).full_range);
        assert_eq!(ColorInfo::from_vui(Some(2), false), ColorInfo::UNLABELLED);
        assert_eq!(ColorInfo::from_vui(Some(9), false).kb, 0.0593);
    }

    #[test]
    fn rotation_moves_corners_clockwise() {
        // 2×1: red, blue.
        let rgb = vec![255, 0, 0, 0, 0, 255];
        // A quarter turn clockwise puts the left pixel on top.
        assert_eq!(rotate(rgb.clone(), 2, 1, 90), vec![255, 0, 0, 0, 0, 255]);
        assert_eq!(rotate(rgb.clone(), 2, 1, 180), vec![0, 0, 255, 255, 0, 0]);
        assert_eq!(rotate(rgb.clone(), 2, 1, 270), vec![0, 0, 255, 255, 0, 0]);
        assert_eq!(rotate(rgb.clone(), 2, 1, 0), rgb);
    }
}
