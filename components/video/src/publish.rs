//! `POST /douyin/publish/action/`: the upload streams from the request into the blob store
//! through the MP4 inspector, a body chunk at a time, so memory stays at one storage chunk and a file that is not a video is
//! refused as soon as its first bytes say so. Nothing is left behind on any failure: the
//! upload is aborted (its chunks deleted) or, after the row failed, the stored object removed.

use spin_sdk::http::IncomingRequest;
use tikspin_core::api::Empty;
use tikspin_core::migrate::with_schema;
use tikspin_core::publish::{self, PublishRequest, StoredVideo};
use tikspin_core::{auth, ApiError, Env, Params, Reply};
use tikspin_media::{MediaError, UploadInspector};
use tikspin_spin::blobs::{new_key, BlobStore, Upload};
use tikspin_spin::config::var;
use tikspin_spin::form::{self, FormEvent, FormStream};
use tikspin_core::limits::Action;
use tikspin_spin::http::{json, JsonResponse, Ports, RequestHead};
use tikspin_spin::limits;
use tikspin_spin::jobs;

/// Text fields (token, title) are small; anything bigger is not a form this API sends.
const MAX_TEXT_FIELD: usize = 64 * 1024;

pub async fn publish(head: &RequestHead, req: IncomingRequest) -> JsonResponse {
    let ports = match Ports::open(head) {
        Ok(p) => p,
        Err(e) => return json(200, Reply::error::<Empty>(e)),
    };
    let env = ports.env();
    let blobs = match BlobStore::open() {
        Ok(b) => b,
        Err(e) => return json(200, Reply::error::<Empty>(publish::storage_failed(e))),
    };
    match run(&env, &blobs, head, req).await {
        Ok(created) => {
            let (redis, channel) = (var("redis_address"), var("jobs_channel"));
            let trace = head.header("traceparent");
            jobs::dispatch(&env, &blobs, created.job_id, &redis, &channel, trace).await;
            jobs::redrive_stranded(&env, &blobs, &redis, &channel).await;
            json(200, Reply::ok(Empty::default()))
        }
        Err(Failed::Refused(refused)) => refused.response::<Empty>(),
        Err(Failed::Api(e)) => json(200, Reply::error::<Empty>(e)),
    }
}

/// Why a publish failed: an error, or the publish limit.
enum Failed {
    Api(ApiError),
    Refused(limits::Refused),
}

impl From<ApiError> for Failed {
    fn from(e: ApiError) -> Self {
        Failed::Api(e)
    }
}

/// The publish limit, for the author once known: before the upload when the token came in
/// the query or header, else after it (the form's fields come in the body).
fn check_limit(env: &Env<'_>, head: &RequestHead, author: i64) -> Result<(), Failed> {
    limits::check(Action::Publish, head, env, Some(author)).map_err(Failed::Refused)
}

fn max_upload_bytes() -> u64 {
    var("max_upload_mb")
        .trim()
        .parse::<u64>()
        .unwrap_or(100)
        .saturating_mul(1024 * 1024)
}

fn authenticate(env: &Env<'_>, params: &Params) -> Result<i64, ApiError> {
    with_schema(env.sql, || auth::authenticate(env, params))
}

async fn run(
    env: &Env<'_>,
    blobs: &BlobStore,
    head: &RequestHead,
    req: IncomingRequest,
) -> Result<tikspin_core::videos::Created, Failed> {
    let max = max_upload_bytes();
    let mut params = head.params(&[]);
    // Fail fast on what the head already tells: a bad token in the query, a declared size
    // over the limit, a body that is not a form.
    let mut author = match params.token() {
        Some(_) => Some(authenticate(env, &params)?),
        None => None,
    };
    if let Some(author) = author {
        check_limit(env, head, author)?;
    }
    if head
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max + MAX_TEXT_FIELD as u64 * 4)
    {
        return Err(publish::video_too_large(max).into());
    }
    let boundary = head
        .header("content-type")
        .and_then(form::boundary)
        .ok_or_else(|| {
            ApiError::bad_parameter(
                "publish expects a multipart/form-data body with a `data` file part",
            )
        })?;

    let mut form = FormStream::new(req.into_body_stream(), &boundary);
    let key = new_key("videos", "mp4");
    let mut upload: Option<(Upload<'_>, UploadInspector)> = None;

    let streamed = async {
        // What the current part is being read into.
        enum Part {
            Video,
            Text(String, Vec<u8>),
            Ignored,
        }
        let mut part = Part::Ignored;
        loop {
            match form
                .next()
                .await
                .map_err(|e| ApiError::bad_parameter(e.to_string()))?
            {
                FormEvent::Field { name, .. } if name == "data" && upload.is_none() => {
                    upload = Some((
                        blobs.begin_upload(&key),
                        UploadInspector::new().with_max_size(max),
                    ));
                    part = Part::Video;
                }
                FormEvent::Field { name, .. } if name == "data" => part = Part::Ignored,
                FormEvent::Field { name, .. } => part = Part::Text(name, Vec::new()),
                FormEvent::Data(bytes) => match &mut part {
                    Part::Video => {
                        let (up, inspector) = upload.as_mut().expect("a video part has an upload");
                        inspector.feed(&bytes).map_err(|e| media_error(e, max))?;
                        up.write(&bytes).await.map_err(publish::storage_failed)?;
                    }
                    Part::Text(name, text) => {
                        text.extend_from_slice(&bytes);
                        if text.len() > MAX_TEXT_FIELD {
                            return Err(ApiError::bad_parameter(format!(
                                "form field `{name}` is too long"
                            )));
                        }
                    }
                    Part::Ignored => {}
                },
                FormEvent::FieldEnd => {
                    if let Part::Text(name, text) = std::mem::replace(&mut part, Part::Ignored) {
                        params.insert(name, String::from_utf8_lossy(&text).into_owned());
                    }
                }
                FormEvent::End => return Ok(()),
            }
        }
    }
    .await;

    let Some((up, inspector)) = upload else {
        streamed?;
        return Err(publish::video_missing().into());
    };
    let checked = streamed.map_err(Failed::from).and_then(|()| {
        let info = inspector.finish().map_err(|e| media_error(e, max))?;
        let request = PublishRequest::parse(&params)?;
        let author = match author.take() {
            Some(a) => a,
            None => {
                let a = authenticate(env, &params)?;
                check_limit(env, head, a)?;
                a
            }
        };
        Ok((info, request, author))
    });
    let (info, request, author) = match checked {
        Ok(ok) => ok,
        Err(e) => {
            up.abort().await;
            return Err(e);
        }
    };
    let content_type = if info.brand.trim() == "qt" {
        "video/quicktime"
    } else {
        "video/mp4"
    };
    let meta = up
        .finish(content_type)
        .await
        .map_err(publish::storage_failed)?;
    let stored = StoredVideo {
        play_key: key.clone(),
        content_type: content_type.to_string(),
        size_bytes: meta.size as i64,
    };
    let recorded = publish::record(env, author, &request, &stored);
    if recorded.is_err() {
        // No row, so no object either.
        if let Err(e) = blobs.delete(&key).await {
            eprintln!("could not remove {key} after a failed publish: {e}");
        }
    }
    Ok(recorded?)
}

fn media_error(e: MediaError, max: u64) -> ApiError {
    match e {
        MediaError::Empty => publish::video_empty(),
        MediaError::Truncated { .. } => publish::video_truncated(),
        MediaError::TooLarge { .. } => publish::video_too_large(max),
        MediaError::NotAVideo => publish::not_a_video(""),
        other => publish::not_a_video(&other.to_string()),
    }
}
