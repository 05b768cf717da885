//! TikSpin's media code, pure Rust so it runs inside a Spin component (wasm32-wasip2):
//!
//! - [`UploadInspector`]: streaming, sans-IO validation of an upload as an MP4/MOV video, by
//!   its box structure, never its name or content type.
//! - [`extract_cover`]: the first key frame of a stored video as a JPEG cover, reading only
//!   the index and that one frame through [`ReadAt`].
//! - [`generated_cover`], [`placeholder_cover`], [`avatar_png`], [`background_png`]: images
//!   TikSpin draws itself.

mod avc;
mod cover;
mod error;
mod generated;
mod picture;
mod sniff;
mod source;

pub use cover::{extract_cover, extract_cover_with_moov, Cover, DEFAULT_MAX_LONG_SIDE};
pub use error::MediaError;
pub use generated::{
    avatar_png, background_png, generated_cover, placeholder_cover, AVATAR_SIZE, BACKGROUND_SIZE,
    PLACEHOLDER_SIZE,
};
pub use sniff::{ByteRange, UploadInspector, VideoInfo, VideoTrack};
pub use source::{ReadAt, SeekSource};

/// Clockwise rotation in degrees (0, 90, 180, 270) of a track matrix's `a b / c d` part
/// (16.16 fixed point, as in `tkhd`). Mirrored or skewed matrices count as unrotated: phones
/// only ever write the four rotations.
pub(crate) fn rotation_from_matrix(a: i32, b: i32, c: i32, d: i32) -> u16 {
    // ISO 14496-12 maps (x, y) to (a·x + c·y, b·x + d·y) with y pointing down, so
    // b = 1, c = −1 sends the top edge to the right: a quarter turn clockwise.
    match (a.signum(), b.signum(), c.signum(), d.signum()) {
        (0, 1, -1, 0) => 90,
        (-1, 0, 0, -1) => 180,
        (0, -1, 1, 0) => 270,
        _ => 0,
    }
}
