mod common;

use std::collections::HashSet;

use common::{decode_jpeg, decode_png};
use tikspin_media::{avatar_png, background_png, generated_cover, placeholder_cover};

#[test]
fn generated_covers_are_deterministic_gradients() {
    let a = generated_cover(42, 360, 640);
    assert_eq!(a, generated_cover(42, 360, 640), "same seed, same bytes");
    assert_ne!(
        a,
        generated_cover(43, 360, 640),
        "another seed, another cover"
    );
    let img = decode_jpeg(&a);
    assert_eq!((img.width, img.height), (360, 640));
    assert!(img.luma_variance() > 30.0, "a gradient, not a flat fill");
    assert!(a.len() < 40_000, "{} bytes", a.len());

    // Distinct seeds give visibly different colours.
    let colours: HashSet<[u8; 3]> = (0..20)
        .map(|s| {
            decode_jpeg(&generated_cover(s, 64, 64))
                .at(0.5, 0.5)
                .map(|c| c / 16)
        })
        .collect();
    assert!(
        colours.len() >= 10,
        "only {} distinct colours in 20 seeds",
        colours.len()
    );

    // Sizes are clamped, never refused.
    let tiny = decode_jpeg(&generated_cover(1, 0, 0));
    assert_eq!((tiny.width, tiny.height), (1, 1));
    let huge = decode_jpeg(&generated_cover(1, 100_000, 10));
    assert_eq!((huge.width, huge.height), (2048, 10));
}

#[test]
fn placeholder_is_a_neutral_portrait_jpeg() {
    let p = placeholder_cover();
    assert!(std::ptr::eq(p, placeholder_cover()), "built once");
    let img = decode_jpeg(p);
    assert_eq!((img.width, img.height), (360, 640));
    // Neutral: no pixel is strongly coloured.
    for y in (0..img.height).step_by(7) {
        for x in (0..img.width).step_by(7) {
            let [r, g, b] = img.at(x as f64 / img.width as f64, y as f64 / img.height as f64);
            let spread = r.max(g).max(b) - r.min(g).min(b);
            assert!(spread < 24, "coloured pixel {r},{g},{b} at {x},{y}");
        }
    }
    // The dots are there: the centre is much lighter than the background beside it.
    let centre = img.at(0.5, 0.5)[0];
    let beside = img.at(0.5, 0.4)[0];
    assert!(
        centre > beside + 100,
        "centre {centre}, background {beside}"
    );
}

#[test]
fn avatars_are_deterministic_identicons() {
    let a = avatar_png(7);
    assert_eq!(a, avatar_png(7));
    let (info, pixels, palette) = decode_png(&a);
    assert_eq!((info.width, info.height), (128, 128));
    assert_eq!(info.color_type, png::ColorType::Indexed);
    let palette = palette.expect("palette");
    assert_eq!(palette.len(), 6, "background and one colour");
    let on = pixels.iter().filter(|&&p| p == 1).count();
    assert!(on > 0 && on < 128 * 128, "{on} foreground pixels");
    // Mirror symmetry around the vertical axis.
    for row in pixels.chunks(128) {
        for x in 0..64 {
            assert_eq!(row[x], row[127 - x]);
        }
    }
    assert!(a.len() < 2_000, "{} bytes", a.len());

    let distinct: HashSet<Vec<u8>> = (0..50).map(avatar_png).collect();
    assert_eq!(distinct.len(), 50, "50 users, 50 avatars");
    assert_ne!(avatar_png(-1), avatar_png(1));
    assert_ne!(avatar_png(i64::MAX), avatar_png(i64::MIN));
}

#[test]
fn backgrounds_are_deterministic_gradients() {
    let a = background_png(7);
    assert_eq!(a, background_png(7));
    assert_ne!(a, background_png(8));
    let (info, pixels, _) = decode_png(&a);
    assert_eq!((info.width, info.height), (720, 400));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let left = &pixels[..3];
    let right = &pixels[(720 * 400 - 1) * 3..];
    let diff: u32 = left
        .iter()
        .zip(right)
        .map(|(&l, &r)| l.abs_diff(r) as u32)
        .sum();
    assert!(diff > 60, "corners {left:?} and {right:?} should differ");
    assert!(a.len() < 200_000, "{} bytes", a.len());
}
