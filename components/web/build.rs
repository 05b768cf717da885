//! Embeds the browser client (`static/`) in the component, so the app serves it with no files on
//! disk and no build tool a newcomer must install:
//!
//! - every file but `index.html` gets a content-hashed name (`app.js` → `app.3f2a…c1.js`), so it
//!   can be cached forever (`immutable`): a change makes a new name;
//! - `index.html` is rewritten to reference the hashed names; it is the one file browsers
//!   revalidate (its ETag is its own hash, with the upload limit the component renders into it);
//! - text files are gzipped here, once, at the best level, instead of per request.
//!
//! Writes `$OUT_DIR/assets.rs`: `static FILES: &[File]`, the bodies as `include_bytes!` of files
//! in `$OUT_DIR`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("static");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().expect("UTF-8 file name"))
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert!(names.iter().any(|n| n == "index.html"), "static/index.html is missing");

    let mut index = read(&dir.join("index.html"));
    // The one value the component renders into the page per request (src/lib.rs).
    assert_eq!(
        index.matches("{{max_upload_mb}}").count(),
        1,
        "static/index.html must hold {{{{max_upload_mb}}}} once"
    );
    let mut table = String::new();
    for name in names.iter().filter(|n| *n != "index.html") {
        println!("cargo:rerun-if-changed={}", dir.join(name).display());
        let body = std::fs::read(dir.join(name)).unwrap();
        let hash = hex(&Sha256::digest(&body)[..8]);
        let (stem, ext) = name.rsplit_once('.').expect("a static file has an extension");
        let hashed = format!("{stem}.{hash}.{ext}");
        // index.html names its assets as `assets/<name>`; each must be referenced.
        let reference = format!("assets/{name}\"");
        assert!(
            index.contains(&reference),
            "static/index.html does not reference assets/{name}"
        );
        index = index.replace(&reference, &format!("assets/{hashed}\""));
        entry(&mut table, &out, &format!("/assets/{hashed}"), &hashed, ext, &body, &hash, true);
    }
    let hash = hex(&Sha256::digest(index.as_bytes())[..8]);
    entry(&mut table, &out, "/", "index.html", "html", index.as_bytes(), &hash, false);

    let source = format!("static FILES: &[File] = &[\n{table}];\n");
    std::fs::write(out.join("assets.rs"), source).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One `File { .. }` of the table, its bodies written to `$OUT_DIR`.
#[allow(clippy::too_many_arguments)]
fn entry(
    table: &mut String,
    out: &Path,
    path: &str,
    file: &str,
    ext: &str,
    body: &[u8],
    hash: &str,
    immutable: bool,
) {
    let content_type = match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/manifest+json",
        other => panic!("static/{file}: no content type for .{other}"),
    };
    let raw = out.join(file);
    std::fs::write(&raw, body).unwrap();
    // Only text compresses; a gzip that does not save anything is not served.
    let gzip = if content_type.starts_with("text/") || ext == "svg" || ext == "webmanifest" {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(body).unwrap();
        let gz = encoder.finish().unwrap();
        (gz.len() < body.len()).then_some(gz)
    } else {
        None
    };
    let gzip = match gzip {
        Some(gz) => {
            let path = out.join(format!("{file}.gz"));
            std::fs::write(&path, gz).unwrap();
            format!("Some(include_bytes!({:?}))", path.display().to_string())
        }
        None => "None".into(),
    };
    let _ = writeln!(
        table,
        "    File {{ path: {path:?}, content_type: {content_type:?}, etag: \"\\\"{hash}\\\"\", \
         immutable: {immutable}, body: include_bytes!({:?}), gzip: {gzip} }},",
        raw.display().to_string()
    );
}
