//! `multipart/form-data`, read a chunk at a time with a sans-IO decoder (`multiparty`), so an
//! upload's memory is two body chunks whatever its size: the decoder only ever holds what the
//! caller wrote, and the caller writes the next chunk only when the decoder asks.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use multiparty::server::sans_io::{FormData, Read};

/// The `boundary` parameter of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty()).then(|| v.to_string())
    })
}

#[derive(Debug)]
pub enum FormEvent {
    /// A part begins.
    Field { name: String, is_file: bool },
    /// Bytes of the current part, in order.
    Data(Bytes),
    /// The current part is complete.
    FieldEnd,
    /// The form is complete.
    End,
}

#[derive(Debug)]
pub struct FormError(pub String);

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the upload could not be read as a form: {}", self.0)
    }
}

/// A form decoded as its body arrives.
pub struct FormStream<S> {
    form: FormData,
    body: S,
    /// Between a part's start and its end: the decoder treats the body ending here as the
    /// part's end, but a form that stops mid-part was cut off.
    in_part: bool,
}

impl<S, E> FormStream<S>
where
    S: Stream<Item = Result<Vec<u8>, E>> + Unpin,
    E: std::fmt::Debug,
{
    pub fn new(body: S, boundary: &str) -> Self {
        FormStream {
            form: FormData::new(boundary),
            body,
            in_part: false,
        }
    }

    pub async fn next(&mut self) -> Result<FormEvent, FormError> {
        loop {
            match self.form.read().map_err(|e| FormError(e.to_string()))? {
                Read::NeedsWrite => match self.body.next().await {
                    Some(Ok(chunk)) => {
                        if self.form.write(Bytes::from(chunk)).is_err() {
                            return Err(FormError("the decoder refused more input".into()));
                        }
                    }
                    Some(Err(e)) => return Err(FormError(format!("the body broke off ({e:?})"))),
                    None if self.in_part => {
                        return Err(FormError("the body ended in the middle of a part".into()))
                    }
                    None => self.form.write_eof(),
                },
                Read::NewPart { headers } => {
                    let headers = headers
                        .parse()
                        .map_err(|e| FormError(format!("bad part headers: {e:?}")))?;
                    self.in_part = true;
                    return Ok(FormEvent::Field {
                        name: headers.name,
                        is_file: headers.filename.is_some(),
                    });
                }
                Read::Part(bytes) => return Ok(FormEvent::Data(bytes)),
                Read::PartEof => {
                    self.in_part = false;
                    return Ok(FormEvent::FieldEnd);
                }
                Read::None => {}
                Read::Eof => return Ok(FormEvent::End),
            }
        }
    }
}

/// The text fields of a buffered form (file parts are skipped; a malformed form yields the
/// fields read before the fault, and the service then reports what is missing).
pub fn text_fields(body: &[u8], boundary: &str) -> Vec<(String, String)> {
    let chunk = std::iter::once(Ok::<_, std::convert::Infallible>(body.to_vec()));
    let mut form = FormStream::new(futures::stream::iter(chunk), boundary);
    // The body is in memory, so every step is ready at once.
    futures::executor::block_on(async {
        let mut fields = Vec::new();
        let mut current: Option<(String, Vec<u8>)> = None;
        loop {
            match form.next().await {
                Ok(FormEvent::Field { name, is_file }) => {
                    current = (!is_file).then(|| (name, Vec::new()))
                }
                Ok(FormEvent::Data(bytes)) => {
                    if let Some((_, text)) = current.as_mut() {
                        text.extend_from_slice(&bytes);
                    }
                }
                Ok(FormEvent::FieldEnd) => {
                    if let Some((name, text)) = current.take() {
                        fields.push((name, String::from_utf8_lossy(&text).into_owned()));
                    }
                }
                Ok(FormEvent::End) | Err(_) => return fields,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, filename, data) in parts {
            body.extend_from_slice(b"--XyZ\r\n");
            match filename {
                Some(f) => body.extend(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        body
    }

    #[test]
    fn boundary_parameter() {
        assert_eq!(
            boundary("multipart/form-data; boundary=XyZ"),
            Some("XyZ".into())
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\""),
            Some("a b".into())
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
    }

    #[test]
    fn text_fields_skip_files() {
        let body = form(&[
            ("token", None, b"t0k"),
            ("data", Some("../x.mp4"), b"\x00\x01binary"),
            ("title", None, "标题 🎬".as_bytes()),
        ]);
        assert_eq!(
            text_fields(&body, "XyZ"),
            vec![
                ("token".into(), "t0k".into()),
                ("title".into(), "标题 🎬".into())
            ]
        );
    }

    #[test]
    fn a_file_arrives_in_order_across_tiny_chunks() {
        let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let body = form(&[("data", Some("v.mp4"), &payload), ("title", None, b"t")]);
        let chunks: Vec<Result<Vec<u8>, ()>> = body.chunks(7).map(|c| Ok(c.to_vec())).collect();
        let mut stream = FormStream::new(futures::stream::iter(chunks), "XyZ");
        let mut got = Vec::new();
        futures::executor::block_on(async {
            loop {
                match stream.next().await.unwrap() {
                    FormEvent::Data(b) => got.extend_from_slice(&b),
                    FormEvent::FieldEnd => break,
                    _ => {}
                }
            }
        });
        assert_eq!(got, payload);
    }

    #[test]
    fn a_truncated_form_is_an_error() {
        let body = form(&[("data", Some("v.mp4"), b"abc")]);
        let cut = body[..body.len() - 12].to_vec();
        let mut stream = FormStream::new(futures::stream::iter([Ok::<_, ()>(cut)]), "XyZ");
        let outcome = futures::executor::block_on(async {
            loop {
                match stream.next().await {
                    Ok(FormEvent::End) => return Ok(()),
                    Err(e) => return Err(e),
                    Ok(_) => {}
                }
            }
        });
        assert!(outcome.is_err());
    }
}
