//! Audio decoding, resampling, mixing and loudness.
