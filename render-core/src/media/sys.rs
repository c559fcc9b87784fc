//! The few FFmpeg calls that `ffmpeg-next` does not expose safely.
//!
//! Each item is as small as possible and carries its own `SAFETY:` argument; the rest of the
//! media module is safe code.

use ffmpeg_next::{ffi, frame, software::scaling};

/// Makes `frame`'s data buffers writable by this owner alone, copying them if an encoder still
/// holds a reference. Without this, writing into a reused frame could change data an encoder
/// has queued but not yet consumed.
#[allow(unsafe_code)]
pub(crate) fn make_writable(frame: &mut frame::Frame) -> Result<(), ffmpeg_next::Error> {
    // SAFETY: `frame` owns a valid, allocated AVFrame for its whole lifetime (ffmpeg-next
    // allocates it in `Frame::empty` and frees it on drop); av_frame_make_writable only
    // replaces the frame's buffers with fresh ones when they are shared, keeping it valid.
    let ret = unsafe { ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if ret < 0 {
        Err(ffmpeg_next::Error::from(ret))
    } else {
        Ok(())
    }
}

/// Tells swscale which YUV→RGB matrix and input range to use. `colorspace` is an FFmpeg
/// `AVColorSpace` value (1 = BT.709, 5/6 = BT.601, 9/10 = BT.2020, ...); `full_range` is true
/// for JPEG-range input. The output is full-range RGB.
#[allow(unsafe_code)]
pub(crate) fn set_yuv_to_rgb_matrix(
    scaler: &mut scaling::Context,
    colorspace: i32,
    full_range: bool,
) -> bool {
    // Entries 0..=10 of swscale's coefficient table are defined; others fall back to BT.601.
    let colorspace = if (0..=10).contains(&colorspace) {
        colorspace
    } else {
        ffi::SWS_CS_DEFAULT
    };
    // SAFETY: `scaler` owns a valid, initialised SwsContext. sws_getCoefficients returns a
    // pointer into a static table (never null, valid for the program's lifetime), and
    // sws_setColorspaceDetails copies the coefficients it reads; it only reconfigures the
    // context's conversion tables.
    let ret = unsafe {
        let input = ffi::sws_getCoefficients(colorspace);
        let output = ffi::sws_getCoefficients(ffi::SWS_CS_DEFAULT);
        ffi::sws_setColorspaceDetails(
            scaler.as_mut_ptr(),
            input,
            i32::from(full_range),
            output,
            1,
            0,
            1 << 16,
            1 << 16,
        )
    };
    ret >= 0
}

/// An swscale context that may move to another thread.
pub(crate) struct SendScaler(pub(crate) scaling::Context);

// SAFETY: an SwsContext has no thread affinity: it is plain heap state used by one owner at a
// time. `SendScaler` is only moved between threads, never shared (it is not `Sync`).
#[allow(unsafe_code)]
unsafe impl Send for SendScaler {}

/// Sends FFmpeg's log lines (`moov atom not found`, x264's statistics) to `tracing` at debug
/// level, target `ffmpeg`, instead of FFmpeg writing them to stderr itself: a corrupt input then
/// shows reelfarm's one-line error alone, and `REELFARM_LOG=ffmpeg=debug` shows FFmpeg's view.
#[allow(unsafe_code)]
pub(crate) fn route_log_to_tracing() {
    // SAFETY: `log_line` has exactly the signature FFmpeg calls its log callback with, never
    // unwinds, and only reads its arguments for the duration of the call.
    unsafe { ffi::av_log_set_callback(Some(log_line)) };
}

/// FFmpeg's log callback: formats the line with FFmpeg's own formatter and emits it.
#[allow(unsafe_code)]
unsafe extern "C" fn log_line(
    avcl: *mut std::ffi::c_void,
    level: std::ffi::c_int,
    fmt: *const std::ffi::c_char,
    vl: *mut ffi::__va_list_tag,
) {
    if !tracing::enabled!(target: "ffmpeg", tracing::Level::DEBUG) {
        return;
    }
    let mut line = [0 as std::ffi::c_char; 1024];
    let mut print_prefix: std::ffi::c_int = 1;
    // SAFETY: FFmpeg passes a valid context pointer (or null), format string and va_list for
    // this call; `line` is a writable buffer of the size given, which av_log_format_line2
    // always NUL-terminates.
    let text = unsafe {
        ffi::av_log_format_line2(
            avcl,
            level,
            fmt,
            vl,
            line.as_mut_ptr(),
            line.len() as std::ffi::c_int,
            &mut print_prefix,
        );
        std::ffi::CStr::from_ptr(line.as_ptr())
    };
    let text = text.to_string_lossy();
    let text = text.trim_end();
    if !text.is_empty() {
        tracing::debug!(target: "ffmpeg", level, "{text}");
    }
}

/// The codec context's extradata (for H.264 with a global header: the SPS and PPS).
#[allow(unsafe_code)]
pub(crate) fn extradata(ctx: &ffmpeg_next::codec::Context) -> Vec<u8> {
    // SAFETY: `ctx` owns a valid AVCodecContext; extradata, when not null, points to
    // `extradata_size` bytes the context owns for as long as it lives.
    unsafe {
        let raw = ctx.as_ptr();
        let data = (*raw).extradata;
        let size = (*raw).extradata_size;
        if data.is_null() || size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(data, size as usize).to_vec()
        }
    }
}
