//! Route group `media`: what `play_url`, `cover_url`, `avatar` and `background_image` point at
//! when no object store is configured, and the JSON 404 for every path no other group claims.
//!
//! - `/media/videos/<key>.mp4`, `/media/covers/<id>.jpg`: stored objects, streamed chunk by
//!   chunk with `Content-Length`, `ETag`, `Accept-Ranges` and single `Range` requests (players
//!   seek with them).
//! - `/media/cover/<video_id>.jpg`: the video's stable cover URL — the real cover once it exists,
//!   a placeholder (not cached) until then.
//! - `/media/avatar/<user_id>.png`, `/media/background/<user_id>.png`: generated per user.
//! - `/openapi.json`: the API description, `openapi.yaml` rendered as JSON at build time
//!   (`build.rs`). This component serves it because it owns the catch-all route.

mod range;

use futures::SinkExt;
use spin_sdk::http::{IncomingRequest, Method, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;
use tikspin_core::api::{ApiError, Empty};
use tikspin_core::migrate::with_schema;
use tikspin_core::{videos, Reply};
use tikspin_spin::blobs::kv::KvBlobs;
use tikspin_spin::blobs::{BlobStore, ObjectMeta};
use tikspin_spin::http::{
    json, outgoing_response, resolve, send, send_json, Ports, RequestHead, Route,
};

use range::ByteRange;

/// What the files of a `/media/<dir>/` serve.
#[derive(Clone, Copy)]
enum Media {
    Avatar,
    Background,
    Cover,
    /// A stored object, by the key after `/media/` (`videos/<key>.mp4`, `covers/<id>.jpg`).
    Object,
    /// The API description.
    OpenApi,
}

/// The routes, by the directory of the URL (`/media/avatar/7.png` → `/media/avatar`): each
/// answers GET, and HEAD the same without the body. Every other path is the JSON 404.
static ROUTES: [Route<Media>; 10] = [
    Route::to(Method::Get, "/media/avatar", Media::Avatar),
    Route::to(Method::Head, "/media/avatar", Media::Avatar),
    Route::to(Method::Get, "/media/background", Media::Background),
    Route::to(Method::Head, "/media/background", Media::Background),
    Route::to(Method::Get, "/media/cover", Media::Cover),
    Route::to(Method::Head, "/media/cover", Media::Cover),
    Route::to(Method::Get, "/media/videos", Media::Object),
    Route::to(Method::Head, "/media/videos", Media::Object),
    Route::to(Method::Get, "/media/covers", Media::Object),
    Route::to(Method::Head, "/media/covers", Media::Object),
];

/// The API description's route, by its whole path (the media files route by directory). GET
/// only, like the API's own reads.
static DOCUMENT: [Route<Media>; 1] = [Route::to(Method::Get, OPENAPI_PATH, Media::OpenApi)];

const OPENAPI_PATH: &str = "/openapi.json";
const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

#[http_component]
async fn media(req: IncomingRequest, out: ResponseOutparam) {
    let head = RequestHead::from_incoming(&req);
    let (dir, file) = head.path.rsplit_once('/').unwrap_or_default();
    let routed = if head.path == OPENAPI_PATH {
        resolve(&head.method, &head.path, &DOCUMENT)
    } else {
        resolve(&head.method, dir, &ROUTES)
    };
    let media = match routed {
        Ok(media) => *media,
        Err(refused) => return send_json(out, refused),
    };
    let is_head = head.method == Method::Head;
    let served = match media {
        Media::OpenApi => {
            let headers = [
                ("content-type", "application/json".to_string()),
                ("content-length", OPENAPI_JSON.len().to_string()),
                // It changes with each deployment of a new version.
                ("cache-control", "no-cache".to_string()),
            ];
            send_bytes(out, 200, &headers, OPENAPI_JSON.as_bytes());
            return;
        }
        Media::Avatar => generated(out, file, tikspin_media::avatar_png, is_head).await,
        Media::Background => generated(out, file, tikspin_media::background_png, is_head).await,
        Media::Cover => cover(&head, out, file, is_head).await,
        Media::Object => {
            let key = &head.path["/media/".len()..];
            object(
                &head,
                out,
                key,
                is_head,
                "public, max-age=31536000, immutable",
            )
            .await
        }
    };
    if let Err(out) = served {
        send_json(
            out,
            json(
                404,
                Reply::error::<Empty>(ApiError::not_found("no such media")),
            ),
        );
    }
}

fn response(status: u16, headers: &[(&str, String)]) -> OutgoingResponse {
    outgoing_response(status, &as_bytes(headers))
}

fn as_bytes<'a>(headers: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a [u8])> {
    headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect()
}

fn send_bytes(out: ResponseOutparam, status: u16, headers: &[(&str, String)], body: &[u8]) {
    send(out, status, &as_bytes(headers), body);
}

/// `<id>.png` → an image generated for that user.
async fn generated(
    out: ResponseOutparam,
    file: &str,
    make: fn(i64) -> Vec<u8>,
    is_head: bool,
) -> Result<(), ResponseOutparam> {
    let Some(id) = file
        .strip_suffix(".png")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id > 0)
    else {
        return Err(out);
    };
    let png = make(id);
    let headers = [
        ("content-type", "image/png".to_string()),
        ("content-length", png.len().to_string()),
        ("cache-control", "public, max-age=86400".to_string()),
    ];
    send_bytes(out, 200, &headers, if is_head { &[] } else { &png });
    Ok(())
}

/// The stable cover URL of a video.
async fn cover(
    head: &RequestHead,
    out: ResponseOutparam,
    file: &str,
    is_head: bool,
) -> Result<(), ResponseOutparam> {
    let Some(video_id) = file
        .strip_suffix(".jpg")
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id > 0)
    else {
        return Err(out);
    };
    let stored = Ports::open(head).ok().and_then(|ports| {
        with_schema(&ports.sql, || videos::stored_media(&ports.sql, video_id))
            .ok()
            .flatten()
    });
    match stored {
        None => Err(out),
        Some(media) => match media.cover_key {
            Some(key) => object(head, out, &key, is_head, "public, max-age=300").await,
            None => {
                let jpeg = tikspin_media::placeholder_cover();
                let headers = [
                    ("content-type", "image/jpeg".to_string()),
                    ("content-length", jpeg.len().to_string()),
                    ("cache-control", "no-cache".to_string()),
                ];
                send_bytes(out, 200, &headers, if is_head { &[] } else { jpeg });
                Ok(())
            }
        },
    }
}

/// A stored object: from the object store by redirect, or from KV whole or one byte range,
/// streamed chunk by chunk.
async fn object(
    head: &RequestHead,
    out: ResponseOutparam,
    key: &str,
    is_head: bool,
    cache: &str,
) -> Result<(), ResponseOutparam> {
    let blobs = match BlobStore::open() {
        Ok(BlobStore::Kv(kv)) => kv,
        Ok(store) => {
            let Some(url) = store.direct_url(key) else {
                return Err(out);
            };
            // Presigned URLs expire: the redirect itself must not be cached for long.
            let headers = [
                ("location", url),
                ("cache-control", "private, max-age=60".to_string()),
            ];
            send_bytes(out, 302, &headers, &[]);
            return Ok(());
        }
        Err(e) => {
            eprintln!("media: {e}");
            return Err(out);
        }
    };
    let Ok(Some(meta)) = blobs.meta(key) else {
        return Err(out);
    };
    let etag = format!("\"{}\"", meta.etag);
    let common = |extra: &[(&'static str, String)]| {
        let mut h = vec![
            ("content-type", meta.content_type.clone()),
            ("etag", etag.clone()),
            ("accept-ranges", "bytes".to_string()),
            ("cache-control", cache.to_string()),
        ];
        h.extend_from_slice(extra);
        h
    };
    if head
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        send_bytes(out, 304, &common(&[]), &[]);
        return Ok(());
    }
    let range = match head.header("range").map(|r| ByteRange::parse(r, meta.size)) {
        None => None,
        Some(Ok(r)) => r,
        Some(Err(())) => {
            let headers = [("content-range", format!("bytes */{}", meta.size))];
            send_bytes(out, 416, &headers, &[]);
            return Ok(());
        }
    };
    let (status, start, end) = match range {
        Some(r) => (206, r.start, r.end),
        None => (200, 0, meta.size.saturating_sub(1)),
    };
    let len = if meta.size == 0 { 0 } else { end - start + 1 };
    let mut headers = common(&[("content-length", len.to_string())]);
    if status == 206 {
        headers.push((
            "content-range",
            format!("bytes {start}-{end}/{}", meta.size),
        ));
    }
    let resp = response(status, &headers);
    let mut sink = resp.take_body();
    out.set(resp);
    if !is_head && len > 0 {
        stream(&blobs, key, &meta, start, end, &mut sink).await;
    }
    Ok(())
}

async fn stream<S: futures::Sink<Vec<u8>> + Unpin>(
    blobs: &KvBlobs,
    key: &str,
    meta: &ObjectMeta,
    start: u64,
    end: u64,
    sink: &mut S,
) {
    let chunk = meta.chunk as u64;
    for index in start / chunk..=end / chunk {
        let Ok(bytes) = blobs.chunk(key, index) else {
            eprintln!("{key}: chunk {index} unreadable; response cut short");
            return;
        };
        let base = index * chunk;
        let from = start.saturating_sub(base) as usize;
        let to = ((end + 1 - base) as usize).min(bytes.len());
        if sink.send(bytes[from..to].to_vec()).await.is_err() {
            return; // the client went away
        }
    }
}
