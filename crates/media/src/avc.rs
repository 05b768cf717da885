//! The H.264 decoder configuration (avcC) and the conversion of MP4 samples to Annex B.

use h264_reader::avcc::AvcDecoderConfigurationRecord;
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::nal::{Nal, RefNal};

use crate::error::MediaError;

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// How the stream's YUV maps to RGB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ColorInfo {
    /// Luma coefficients of red and blue.
    pub kr: f32,
    pub kb: f32,
    /// Y spans 0–255 instead of 16–235.
    pub full_range: bool,
}

impl ColorInfo {
    pub const BT601: (f32, f32) = (0.299, 0.114);
    pub const BT709: (f32, f32) = (0.2126, 0.0722);

    /// For a stream that does not say: BT.601, limited range. Streams without colour
    /// information are in practice ffmpeg transcodes, whose RGB→YUV conversion defaults to
    /// BT.601 whatever the size; phones label their recordings.
    pub const UNLABELLED: ColorInfo = ColorInfo {
        kr: Self::BT601.0,
        kb: Self::BT601.1,
        full_range: false,
    };

    pub(crate) fn from_vui(matrix_coefficients: Option<u8>, full_range: bool) -> ColorInfo {
        // H.273 MatrixCoefficients.
        let (kr, kb) = match matrix_coefficients {
            Some(1) => Self::BT709,
            Some(4) => (0.30, 0.11),
            Some(7) => (0.212, 0.087),
            Some(9) | Some(10) => (0.2627, 0.0593),
            _ => Self::BT601,
        };
        ColorInfo { kr, kb, full_range }
    }
}

/// The parts of an avcC record cover extraction needs.
#[derive(Debug, Clone)]
pub(crate) struct AvcConfig {
    /// Bytes of the length prefix before each NAL unit in a sample.
    length_size: usize,
    param_sets: Vec<Vec<u8>>,
    pub color: Option<ColorInfo>,
}

impl AvcConfig {
    pub fn parse(avcc: &[u8]) -> Result<AvcConfig, MediaError> {
        let bad = |why: String| MediaError::Undecodable(format!("bad H.264 configuration: {why}"));
        let record =
            AvcDecoderConfigurationRecord::try_from(avcc).map_err(|e| bad(format!("{e:?}")))?;
        let length_size = record.length_size_minus_one() as usize + 1;
        if length_size == 3 {
            // Allowed by the syntax but not by ISO 14496-15.
            return Err(bad("3-byte NAL lengths".into()));
        }
        let mut param_sets = Vec::new();
        let mut color = None;
        for sps in record.sequence_parameter_sets() {
            let sps = sps.map_err(|e| bad(format!("{e:?}")))?;
            if color.is_none() {
                color = sps_color(sps);
            }
            param_sets.push(sps.to_vec());
        }
        for pps in record.picture_parameter_sets() {
            param_sets.push(pps.map_err(|e| bad(format!("{e:?}")))?.to_vec());
        }
        Ok(AvcConfig {
            length_size,
            param_sets,
            color,
        })
    }

    /// One access unit in Annex B form, parameter sets first, as the decoder wants it.
    pub fn to_annex_b(&self, sample: &[u8]) -> Result<Vec<u8>, MediaError> {
        let extra: usize = self.param_sets.iter().map(|p| p.len() + 4).sum();
        let mut out = Vec::with_capacity(sample.len() + extra + 64);
        for p in &self.param_sets {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(p);
        }
        let mut rest = sample;
        while !rest.is_empty() {
            if rest.len() < self.length_size {
                return Err(malformed());
            }
            let len = rest[..self.length_size]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | b as usize);
            rest = &rest[self.length_size..];
            if len > rest.len() {
                return Err(malformed());
            }
            if len > 0 {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(&rest[..len]);
            }
            rest = &rest[len..];
        }
        Ok(out)
    }
}

fn malformed() -> MediaError {
    MediaError::Undecodable("the key frame's NAL units overrun the sample".into())
}

/// The colour description in an SPS's VUI, when it has one.
fn sps_color(sps: &[u8]) -> Option<ColorInfo> {
    let nal = RefNal::new(sps, &[], true);
    let sps = SeqParameterSet::from_bits(nal.rbsp_bits()).ok()?;
    let signal = sps.vui_parameters?.video_signal_type?;
    Some(ColorInfo::from_vui(
        signal.colour_description.map(|c| c.matrix_coefficients),
        signal.video_full_range_flag,
    ))
}
