//! Live test against `s3s-fs`, a real S3 server that verifies SigV4 (header and presigned).
//!
//! Compiled with the `live` feature (on by default); it FAILS, not skips, without `s3s-fs`: it runs the
//! binary named by `TIKSPIN_S3S_FS`, else `s3s-fs` from `PATH`. Install it with
//! `cargo install s3s-fs@0.14.1 --features binary --locked`.
#![cfg(feature = "live")]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tikspin_s3::{
    complete_multipart_upload_body, complete_multipart_upload_result, etag, parse_upload_id,
    ByteRange, Credentials, Method, PayloadHash, S3Client, S3Config, S3Error, S3ErrorCode,
    SignedRequest,
};

const ACCESS_KEY: &str = "TIKSPINLIVEACCESS123";
const SECRET_KEY: &str = "tikspin/Live+Secret0123456789abcdefGHIJK";
const WRONG_SECRET: &str = "tikspin/Wrong+Secret987654321abcdefGHIJ";

fn s3s_fs_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TIKSPIN_S3S_FS") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "TIKSPIN_S3S_FS={} is not a file", p.display());
        return p;
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("s3s-fs"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the live S3 test needs the s3s-fs binary: install it with \
                 `cargo install s3s-fs@0.14.1 --features binary --locked` (about 4.5 minutes), \
                 or set TIKSPIN_S3S_FS=/path/to/s3s-fs"
            )
        })
}

/// The running server; killed (by its own PID) and its directory removed on drop, panic or not.
struct Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server() -> Server {
    let bin = s3s_fs_binary();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!("tikspin-s3-live-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut server = Server { child, dir, port };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        if let Some(status) = server.child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = server.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("s3s-fs exited early ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "s3s-fs did not listen on port {port} within 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends a SignedRequest exactly as a component would: method, URL, its headers, the body.
fn send(req: &SignedRequest, body: &[u8]) -> Answer {
    let mut b = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(&req.url);
    for (k, v) in &req.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let resp =
        if body.is_empty() && matches!(req.method, Method::Get | Method::Head | Method::Delete) {
            agent().run(b.body(()).unwrap())
        } else {
            agent().run(b.body(body.to_vec()).unwrap())
        };
    into_answer(resp.unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.url)))
}

fn into_answer(mut resp: ureq::http::Response<ureq::Body>) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

fn client(port: u16, secret: &str) -> S3Client {
    S3Client::new(S3Config {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: "tikspin-live".into(),
        region: "us-east-1".into(),
        credentials: Credentials::new(ACCESS_KEY, secret),
    })
    .unwrap()
}

fn expect(a: &Answer, status: u16, what: &str) {
    assert_eq!(
        a.status,
        status,
        "{what}: {}",
        S3Error::from_response(a.status, &a.body)
    );
}

#[test]
fn live_against_s3s_fs() {
    let server = start_server();
    let s3 = client(server.port, SECRET_KEY);

    // Bucket.
    expect(&send(&s3.create_bucket(now()), b""), 200, "CreateBucket");

    // PutObject + GetObject of a small object with a key that needs encoding.
    let small_key = "users/7/a clip+(1)$.txt";
    let small = b"hello from tikspin";
    let put = s3
        .put_object(small_key, PayloadHash::of(small), Some("text/plain"), now())
        .unwrap();
    let a = send(&put, small);
    expect(&a, 200, "PutObject");
    assert!(
        etag(a.headers.iter().map(|(k, v)| (k, v))).is_some(),
        "PutObject ETag"
    );
    let a = send(&s3.get_object(small_key, None, now()).unwrap(), b"");
    expect(&a, 200, "GetObject small");
    assert_eq!(a.body, small);

    // Multipart: 5 MiB + 7 bytes (hashed payload), then 1000 bytes (UNSIGNED-PAYLOAD).
    let key = "videos/clip one.mp4";
    let part1: Vec<u8> = (0..(5 << 20) + 7).map(|i: u32| (i % 251) as u8).collect();
    let part2: Vec<u8> = (0..1000u32).map(|i| (i % 13) as u8 + b'a').collect();
    let a = send(
        &s3.create_multipart_upload(key, Some("video/mp4"), now())
            .unwrap(),
        b"",
    );
    expect(&a, 200, "CreateMultipartUpload");
    let upload_id = parse_upload_id(&a.body).unwrap();
    let a = send(
        &s3.upload_part(key, &upload_id, 1, PayloadHash::of(&part1), now())
            .unwrap(),
        &part1,
    );
    expect(&a, 200, "UploadPart 1");
    let etag1 = etag(a.headers.iter().map(|(k, v)| (k, v))).expect("part 1 ETag");
    let a = send(
        &s3.upload_part(key, &upload_id, 2, PayloadHash::Unsigned, now())
            .unwrap(),
        &part2,
    );
    expect(&a, 200, "UploadPart 2 (unsigned payload)");
    let etag2 = etag(a.headers.iter().map(|(k, v)| (k, v))).expect("part 2 ETag");
    let body = complete_multipart_upload_body(&[(1, &etag1), (2, &etag2)]).unwrap();
    let req = s3
        .complete_multipart_upload(key, &upload_id, PayloadHash::of(body.as_bytes()), now())
        .unwrap();
    let a = send(&req, body.as_bytes());
    let final_etag = complete_multipart_upload_result(a.status, &a.body)
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload: {e}"));
    assert!(!final_etag.is_empty(), "CompleteMultipartUpload ETag");
    let whole: Vec<u8> = part1.iter().chain(&part2).copied().collect();

    // Range GET across the part boundary.
    let (first, last) = (part1.len() as u64 - 10, part1.len() as u64 + 9);
    let a = send(
        &s3.get_object(key, Some(ByteRange::FromTo(first, last)), now())
            .unwrap(),
        b"",
    );
    expect(&a, 206, "GetObject range");
    assert_eq!(a.body, whole[first as usize..=last as usize]);
    assert_eq!(
        a.header("content-range"),
        Some(format!("bytes {first}-{last}/{}", whole.len()).as_str())
    );

    // HEAD.
    let a = send(&s3.head_object(key, now()).unwrap(), b"");
    expect(&a, 200, "HeadObject");
    assert_eq!(
        a.header("content-length"),
        Some(whole.len().to_string().as_str())
    );
    assert!(a.header("etag").is_some());
    assert!(a.body.is_empty());

    // Presigned GET, fetched by a plain client with no S3 headers at all.
    let url = s3.presign_get(key, 300, now()).unwrap();
    let a = into_answer(agent().get(&url).call().unwrap());
    expect(&a, 200, "presigned GET");
    assert_eq!(a.body.len(), whole.len());
    assert!(a.body == whole, "presigned GET body differs");
    // The server does check presigned signatures: one changed digit is refused.
    let last_char = url.chars().last().unwrap();
    let tampered = format!(
        "{}{}",
        &url[..url.len() - 1],
        if last_char == '0' { '1' } else { '0' }
    );
    let a = into_answer(agent().get(&tampered).call().unwrap());
    assert_eq!(a.status, 403, "tampered presigned URL");
    assert_eq!(
        S3Error::from_response(a.status, &a.body).code(),
        &S3ErrorCode::SignatureDoesNotMatch
    );

    // Wrong secret key → SignatureDoesNotMatch, shown without secrets or signatures.
    let bad = client(server.port, WRONG_SECRET);
    let req = bad.get_object(key, None, now()).unwrap();
    let a = send(&req, b"");
    let err = S3Error::from_response(a.status, &a.body);
    assert_eq!(a.status, 403, "{err}");
    assert_eq!(err.code(), &S3ErrorCode::SignatureDoesNotMatch, "{err}");
    let shown = format!("{err} {err:?}");
    let signature = req
        .header("authorization")
        .unwrap()
        .rsplit("Signature=")
        .next()
        .unwrap();
    assert_eq!(signature.len(), 64);
    for secret in [SECRET_KEY, WRONG_SECRET, signature, ACCESS_KEY] {
        assert!(
            !shown.contains(secret),
            "error text leaks {secret}: {shown}"
        );
    }
    assert!(shown.contains("SignatureDoesNotMatch"), "{shown}");

    // Abort leaves no object.
    let aborted = "videos/aborted.mp4";
    let a = send(
        &s3.create_multipart_upload(aborted, None, now()).unwrap(),
        b"",
    );
    expect(&a, 200, "CreateMultipartUpload (to abort)");
    let abort_id = parse_upload_id(&a.body).unwrap();
    let a = send(
        &s3.upload_part(aborted, &abort_id, 1, PayloadHash::of(&part2), now())
            .unwrap(),
        &part2,
    );
    expect(&a, 200, "UploadPart (to abort)");
    let a = send(
        &s3.abort_multipart_upload(aborted, &abort_id, now())
            .unwrap(),
        b"",
    );
    expect(&a, 204, "AbortMultipartUpload");
    let a = send(&s3.head_object(aborted, now()).unwrap(), b"");
    assert_eq!(a.status, 404, "aborted upload left an object");
    assert_eq!(
        S3Error::from_response(a.status, &a.body).code(),
        &S3ErrorCode::NotFound
    );
    let body = complete_multipart_upload_body(&[(1, "\"x\"")]).unwrap();
    let req = s3
        .complete_multipart_upload(aborted, &abort_id, PayloadHash::of(body.as_bytes()), now())
        .unwrap();
    let a = send(&req, body.as_bytes());
    assert!(
        complete_multipart_upload_result(a.status, &a.body).is_err(),
        "completing an aborted upload"
    );

    // Delete, then it is gone.
    for k in [key, small_key] {
        expect(
            &send(&s3.delete_object(k, now()).unwrap(), b""),
            204,
            "DeleteObject",
        );
    }
    let a = send(&s3.get_object(key, None, now()).unwrap(), b"");
    assert_eq!(a.status, 404);
    assert_eq!(
        S3Error::from_response(a.status, &a.body).code(),
        &S3ErrorCode::NoSuchKey
    );

    drop(server);
}
