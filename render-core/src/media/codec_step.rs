//! How one call of FFmpeg's send/receive codec API ended, for the loops that drive codecs.
//!
//! FFmpeg reports the two ordinary outcomes of a codec loop as errors: EAGAIN ("call the
//! other side first") and EOF ("flushed, nothing more will come"). Every decode and encode
//! loop has to tell them apart from real failures; [`CodecStep::of`] does it in one place.

use ffmpeg_next::error::EAGAIN;
use ffmpeg_next::Error;

/// What a codec's `send_*` or `receive_*` call said, real failures apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodecStep {
    /// The call did its work: input accepted, or a packet or frame received.
    Done,
    /// EAGAIN: the other call must come first. A receive needs more input; a send needs the
    /// output already waiting to be taken.
    Again,
    /// End of stream: the codec is flushed and gives nothing more.
    Eof,
}

impl CodecStep {
    /// Sorts a codec call's result; `Err` is left only for real failures.
    pub(crate) fn of(result: Result<(), Error>) -> Result<Self, Error> {
        match result {
            Ok(()) => Ok(CodecStep::Done),
            Err(Error::Other { errno: EAGAIN }) => Ok(CodecStep::Again),
            Err(Error::Eof) => Ok(CodecStep::Eof),
            Err(e) => Err(e),
        }
    }

    /// The FFmpeg error this step stands for (`None` for [`CodecStep::Done`]), for a caller
    /// that has to treat EAGAIN or EOF as a failure after all.
    pub(crate) fn error(self) -> Option<Error> {
        match self {
            CodecStep::Done => None,
            CodecStep::Again => Some(Error::Other { errno: EAGAIN }),
            CodecStep::Eof => Some(Error::Eof),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_codec_results() {
        assert_eq!(CodecStep::of(Ok(())), Ok(CodecStep::Done));
        assert_eq!(
            CodecStep::of(Err(Error::Other { errno: EAGAIN })),
            Ok(CodecStep::Again)
        );
        assert_eq!(CodecStep::of(Err(Error::Eof)), Ok(CodecStep::Eof));
        assert_eq!(
            CodecStep::of(Err(Error::InvalidData)),
            Err(Error::InvalidData)
        );
        for step in [CodecStep::Done, CodecStep::Again, CodecStep::Eof] {
            let back = step.error().map_or(Ok(()), Err);
            assert_eq!(CodecStep::of(back), Ok(step));
        }
    }
}
