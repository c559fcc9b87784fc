//! Media IO through FFmpeg: video decoding, image loading, H.264/AAC/MP4 encoding.
