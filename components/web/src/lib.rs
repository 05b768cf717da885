//! Route group `web`: the browser client, at `/` (every path no other group claims comes here,
//! and answers the API's JSON 404 unless it is one of the client's files).
//!
//! - `/`: `index.html`, revalidated on every load (`no-cache` with an ETag, 304 when unchanged),
//!   so a deployment is seen at once. It is rendered per request with the app's upload limit
//!   (`max_upload_mb`, in a `<meta>`), so the page can refuse a file over it before sending a
//!   byte: a request refused by its declared size is answered before its body is read, and the
//!   runtime (this host, like Spin's hyper) then closes the connection, so the browser sees no
//!   answer. The ETag covers the template and the value; the gzip is made per request;
//! - `/assets/<name>.<hash>.<ext>`: everything else, named by content, cached for a year as
//!   `immutable`;
//! - text in gzip when the request accepts it (precompressed by `build.rs`);
//! - a Content-Security-Policy on the page: scripts, styles and API calls from this origin only,
//!   no inline script; images and video also from the media origin when it is another one.

use spin_sdk::http::{IncomingRequest, Method, ResponseOutparam};
use spin_sdk::http_component;
use spin_sdk::variables;
use tikspin_spin::http::{resolve, send, send_json, RequestHead, Route};

/// One file of the client, embedded by `build.rs`.
struct File {
    path: &'static str,
    content_type: &'static str,
    /// The quoted content hash.
    etag: &'static str,
    /// Named by its hash: cached forever.
    immutable: bool,
    body: &'static [u8],
    gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Where `index.html` (the template) takes the upload limit; `build.rs` checks it is there once.
const MAX_UPLOAD_MB: &str = "{{max_upload_mb}}";

#[http_component]
fn web(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::from_incoming(&req);
    // GET and HEAD for each file; any other path is the API's JSON 404, a wrong method its 405.
    let routes: Vec<Route<&File>> = FILES
        .iter()
        .flat_map(|f| [Method::Get, Method::Head].map(|m| Route::to(m, f.path, f)))
        .collect();
    let file = match resolve(&head.method, &head.path, &routes) {
        Ok(file) => *file,
        Err(refused) => return send_json(out, refused),
    };
    let cache = if file.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let page = file.path == "/";
    let csp = if page {
        content_security_policy()
    } else {
        String::new()
    };
    // The page: the template with the limit, tagged by both.
    let (rendered, etag) = if page {
        let mb = max_upload_mb();
        let tag = format!("{}-{mb}\"", file.etag.trim_end_matches('"'));
        let html = std::str::from_utf8(file.body).unwrap_or_default();
        (Some(html.replacen(MAX_UPLOAD_MB, &mb.to_string(), 1)), tag)
    } else {
        (None, file.etag.to_string())
    };
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("content-type", file.content_type.as_bytes()),
        ("cache-control", cache.as_bytes()),
        ("etag", etag.as_bytes()),
        ("x-content-type-options", b"nosniff"),
    ];
    if page {
        headers.push(("content-security-policy", csp.as_bytes()));
        headers.push(("referrer-policy", b"same-origin"));
    }
    if file.gzip.is_some() {
        headers.push(("vary", b"accept-encoding"));
    }
    if head
        .header("if-none-match")
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return send(out, 304, &headers, &[]);
    }
    let wants_gzip =
        file.gzip.is_some() && accepts_gzip(head.header("accept-encoding").unwrap_or_default());
    // The page is gzipped here (level 1: it is small), the assets were at build time.
    let compressed = match &rendered {
        Some(html) if wants_gzip => tikspin_spin::encoding::gzip(html.as_bytes()),
        _ => None,
    };
    let (body, gzipped): (&[u8], bool) = match (&rendered, &compressed) {
        (Some(_), Some(gz)) => (gz, true),
        (Some(html), None) => (html.as_bytes(), false),
        (None, _) => match file.gzip {
            Some(gz) if wants_gzip => (gz, true),
            _ => (file.body, false),
        },
    };
    if gzipped {
        headers.push(("content-encoding", b"gzip"));
    }
    let length = body.len().to_string();
    headers.push(("content-length", length.as_bytes()));
    let body = if head.method == Method::Head { &[][..] } else { body };
    send(out, 200, &headers, body);
}

/// The upload limit in MB as the video component reads it (`components/video/src/publish.rs`:
/// a whole number, 100 when unset or not one), so the page refuses exactly what it would.
fn max_upload_mb() -> u64 {
    variables::get("max_upload_mb")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(100)
}

/// Whether `Accept-Encoding` allows gzip: listed (or `*`) with a non-zero q (RFC 9110 §12.5.3).
fn accepts_gzip(accept: &str) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(q > 0.0),
            "*" => any = Some(q > 0.0),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// The page's policy. Everything from this origin; no inline script or style attribute, no
/// plugin, no framing. Video, covers and avatars may come from elsewhere: from `public_base_url`
/// when it names another origin than the one the page was loaded from, and from the object store
/// in the S3 layout (presigned URLs on `s3_endpoint`, or `media_public_base_url`), so those
/// origins, and only those, are added to `img-src` and `media-src`.
fn content_security_policy() -> String {
    let var = |name: &str| variables::get(name).unwrap_or_default();
    let mut media = String::from("'self'");
    let mut add = |url: &str| {
        if let Some(origin) = origin(url) {
            media.push(' ');
            media.push_str(origin);
        }
    };
    add(&var("public_base_url"));
    if !var("s3_bucket").is_empty() {
        let public = var("media_public_base_url");
        let store = if public.is_empty() { var("s3_endpoint") } else { public };
        add(&store);
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src {media} data: blob:; media-src {media} blob:; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// `scheme://host[:port]` of an absolute http(s) URL; `None` for anything else (so a variable
/// can never inject a directive: no spaces or semicolons pass).
fn origin(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let valid = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    valid.then(|| &url[..url.len() - rest.len() + end])
}
