//! Prints how long cover extraction takes per fixture, natively.
//!
//! `cargo run -p tikspin-media --release --example cover_bench [FIXTURES_DIR] [OUT_DIR]`
//! FIXTURES_DIR defaults to `TIKSPIN_FIXTURES`, else the repository's `tests/fixtures`.
//! With OUT_DIR, also writes each cover there for a look.

use std::time::{Duration, Instant};

use tikspin_media::{
    avatar_png, background_png, extract_cover, generated_cover, placeholder_cover, UploadInspector,
    DEFAULT_MAX_LONG_SIDE,
};

const FIXTURES: [&str; 5] = [
    "portrait-3s.mp4",
    "landscape-2s-noaudio.mp4",
    "large-20s.mp4",
    "bear.mp4",
    "not-faststart.mov",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .or_else(|| std::env::var("TIKSPIN_FIXTURES").ok())
        .unwrap_or_else(|| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures").to_string()
        });
    let out = args.next();
    println!(
        "{:<26} {:>10} {:>9} {:>12} {:>12} {:>9} {:>7}  fnv",
        "fixture", "bytes", "inspect", "cover 1st", "cover med", "size", "jpeg"
    );
    for name in FIXTURES {
        let path = format!("{dir}/{name}");
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));

        let inspect = median(5, || {
            let mut i = UploadInspector::new();
            for chunk in data.chunks(64 * 1024) {
                i.feed(chunk).expect("feed");
            }
            i.finish().expect("inspect");
        });

        let mut cover = None;
        let first = median(1, || {
            let mut src: &[u8] = &data;
            extract_cover(&mut src, DEFAULT_MAX_LONG_SIDE).expect("cover");
        });
        let time = median(7, || {
            let mut src: &[u8] = &data;
            cover = Some(extract_cover(&mut src, DEFAULT_MAX_LONG_SIDE).expect("cover"));
        });
        let cover = cover.expect("ran");
        println!(
            "{:<26} {:>10} {:>7.0}us {:>10.2}ms {:>10.2}ms {:>9} {:>7}  {:016x}",
            name,
            data.len(),
            ms(inspect) * 1000.0,
            ms(first),
            ms(time),
            format!("{}x{}", cover.width, cover.height),
            cover.jpeg.len(),
            fnv(&cover.jpeg)
        );
        if let Some(out) = &out {
            std::fs::write(format!("{out}/{name}.jpg"), &cover.jpeg).expect("write cover");
        }
    }
    generated(out.as_deref());
}

fn generated(out: Option<&str>) {
    type Make = Box<dyn Fn() -> Vec<u8>>;
    let rows: [(&str, &str, Make); 4] = [
        (
            "generated_cover 360x640",
            "generated.jpg",
            Box::new(|| generated_cover(7, 360, 640)),
        ),
        // Built once per process: the first call is the cost a fresh component instance pays.
        (
            "placeholder_cover",
            "placeholder.jpg",
            Box::new(|| placeholder_cover().to_vec()),
        ),
        ("avatar_png", "avatar.png", Box::new(|| avatar_png(7))),
        (
            "background_png 720x400",
            "background.png",
            Box::new(|| background_png(7)),
        ),
    ];
    for (name, file, f) in rows {
        let mut bytes = Vec::new();
        let time = median(5, || bytes = f());
        println!(
            "{name:<26} {:>10.2}ms {:>9} bytes  fnv {:016x}",
            ms(time),
            bytes.len(),
            fnv(&bytes)
        );
        if let Some(out) = out {
            std::fs::write(format!("{out}/{file}"), &bytes).expect("write image");
        }
    }
}

/// A fingerprint of the output, to compare native and wasm32 runs byte for byte.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
