use std::fmt;

/// Why an upload was refused or a cover could not be made.
///
/// `Display` is written for the person who uploaded the video: the API shows it verbatim as
/// `status_msg`. The variants are the kinds a caller branches on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaError {
    /// Nothing was uploaded.
    Empty,
    /// The bytes are not an MP4/MOV container at all (wrong signature, text, an image, …).
    NotAVideo,
    /// An MP4/MOV container that ends before its last box does: an interrupted upload.
    Truncated {
        /// Bytes the container's boxes declare (a lower bound when only the index tells that
        /// media data is missing).
        expected: u64,
        /// Bytes actually received.
        received: u64,
    },
    /// A well-formed container with no `moov` (index) box: nothing can play it.
    MissingMoov,
    /// A movie whose index lists no video track (e.g. an audio-only .m4a).
    NoVideoTrack,
    /// The container's structure is broken in a way other than truncation.
    Corrupt(String),
    /// The upload is larger than the configured limit.
    TooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The container is fine but its first key frame cannot be turned into a picture here:
    /// another codec (HEVC, AV1, …), an H.264 profile the decoder lacks, or a decode failure.
    /// The caller should fall back to [`crate::generated_cover`].
    Undecodable(String),
    /// Reading the stored object failed (network, storage). Worth retrying; says nothing
    /// about the video itself.
    Source(String),
}

impl MediaError {
    /// True when the video itself is at fault and retrying cannot help: a cover job should
    /// then store a generated cover instead of retrying.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, MediaError::Source(_))
    }
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaError::Empty => f.write_str("the uploaded file is empty"),
            MediaError::NotAVideo => f.write_str("the uploaded file is not an MP4 or MOV video"),
            MediaError::Truncated { expected, received } => write!(
                f,
                "the video upload is incomplete: received {received} of {expected} bytes; \
                 please upload it again"
            ),
            MediaError::MissingMoov => f.write_str(
                "the video cannot be played: its index (moov box) is missing, \
                 perhaps the recording was not finished",
            ),
            MediaError::NoVideoTrack => f.write_str("the file contains no video track"),
            MediaError::Corrupt(why) => write!(f, "the video file is damaged: {why}"),
            MediaError::TooLarge { limit } => write!(
                f,
                "the video is too large: the limit is {}",
                human_size(*limit)
            ),
            MediaError::Undecodable(why) => write!(f, "cannot decode the video's frames: {why}"),
            MediaError::Source(why) => write!(f, "could not read the stored video: {why}"),
        }
    }
}

impl std::error::Error for MediaError {}

fn human_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}
