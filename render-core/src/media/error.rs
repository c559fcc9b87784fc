//! The error type of media IO.

use std::path::PathBuf;

/// A failure in media IO. Every variant names the file it concerns and what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The input file does not exist.
    #[error("media file `{path}` not found")]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },

    /// Reading or writing a file failed at the OS level.
    #[error("I/O error on `{path}`: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// FFmpeg could not open or probe the file (unknown format, random bytes, truncated header).
    #[error("cannot open `{path}` as a media file: {source}")]
    Open {
        /// The file concerned.
        path: PathBuf,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },

    /// The file opened but holds no video stream.
    #[error("`{path}` has no video stream")]
    NoVideoStream {
        /// The file concerned.
        path: PathBuf,
    },

    /// The file's video stream has a width or height of zero.
    #[error("video stream of `{path}` has invalid size {width}x{height}")]
    ZeroSize {
        /// The file concerned.
        path: PathBuf,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },

    /// Demuxing, decoding or pixel conversion failed part-way (corrupt data).
    #[error("decoding `{path}` failed while {stage}: {source}")]
    Decode {
        /// The file concerned.
        path: PathBuf,
        /// What the decoder was doing ("reading a packet", "decoding", ...).
        stage: &'static str,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },

    /// The video stream ended without producing a single frame in the requested range.
    #[error("`{path}` has no decodable video frame at or after {seconds:.3} s")]
    NoFrames {
        /// The file concerned.
        path: PathBuf,
        /// Source time (seconds) the reader was looking for.
        seconds: f64,
    },

    /// Reader options or a requested time are out of range.
    #[error("invalid video reader request for `{path}`: {message}")]
    InvalidRequest {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong and the valid range.
        message: String,
    },

    /// The image crate could not decode or encode an image.
    #[error("image `{path}`: {source}")]
    Image {
        /// The file concerned.
        path: PathBuf,
        /// The image crate's error.
        #[source]
        source: image::ImageError,
    },

    /// An image exceeds the decode limits.
    #[error("image `{path}` is {width}x{height} ({bytes} bytes decoded); the limit is {max_side}x{max_side} and {max_bytes} bytes")]
    ImageTooLarge {
        /// The file concerned.
        path: PathBuf,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Bytes the decoded image would take.
        bytes: u64,
        /// Largest width or height accepted.
        max_side: u32,
        /// Largest decoded size accepted.
        max_bytes: u64,
    },

    /// An in-memory image's pixel buffer does not match its dimensions.
    #[error(
        "image for `{path}` is {width}x{height} but has {actual} pixel bytes, expected {expected}"
    )]
    ImageBuffer {
        /// The file concerned.
        path: PathBuf,
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Bytes present.
        actual: usize,
        /// Bytes required (width × height × 4).
        expected: usize,
    },

    /// Encoder settings are out of range; nothing was written.
    #[error("invalid encoder settings for `{path}`: {message}")]
    InvalidSettings {
        /// The output file.
        path: PathBuf,
        /// What is wrong and the valid range.
        message: String,
    },

    /// A required FFmpeg encoder is not available in this FFmpeg build.
    #[error("FFmpeg encoder `{name}` needed for `{path}` is not available")]
    EncoderNotFound {
        /// The output file.
        path: PathBuf,
        /// The encoder's FFmpeg name.
        name: &'static str,
    },

    /// Creating, feeding or flushing the encoders or the muxer failed.
    #[error("encoding `{path}` failed while {stage}: {source}")]
    Encode {
        /// The output file.
        path: PathBuf,
        /// What the writer was doing ("opening libx264", "writing the trailer", ...).
        stage: &'static str,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },

    /// A video frame handed to the writer has the wrong number of bytes.
    #[error("video frame {index} for `{path}` has {actual} bytes, expected {expected} (I420 {width}x{height})")]
    FrameSize {
        /// The output file.
        path: PathBuf,
        /// Zero-based index the frame would have had.
        index: u64,
        /// Bytes given.
        actual: usize,
        /// Bytes required (width × height × 3 / 2).
        expected: usize,
        /// Frame width.
        width: u32,
        /// Frame height.
        height: u32,
    },

    /// Audio handed to the writer is malformed (odd sample count, NaN or infinity).
    #[error("invalid audio for `{path}`: {message}")]
    InvalidAudio {
        /// The output file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl MediaError {
    /// The same error naming its file by `rename(path)`, when that gives a name (a path relative
    /// to the template folder, the file the caller asked for instead of a temporary one).
    pub fn renamed(mut self, rename: impl Fn(&std::path::Path) -> Option<PathBuf>) -> Self {
        let path = match &mut self {
            MediaError::NotFound { path, .. }
            | MediaError::Io { path, .. }
            | MediaError::Open { path, .. }
            | MediaError::NoVideoStream { path, .. }
            | MediaError::ZeroSize { path, .. }
            | MediaError::Decode { path, .. }
            | MediaError::NoFrames { path, .. }
            | MediaError::InvalidRequest { path, .. }
            | MediaError::Image { path, .. }
            | MediaError::ImageTooLarge { path, .. }
            | MediaError::ImageBuffer { path, .. }
            | MediaError::InvalidSettings { path, .. }
            | MediaError::EncoderNotFound { path, .. }
            | MediaError::Encode { path, .. }
            | MediaError::FrameSize { path, .. }
            | MediaError::InvalidAudio { path, .. } => path,
        };
        if let Some(name) = rename(path) {
            *path = name;
        }
        self
    }
}
