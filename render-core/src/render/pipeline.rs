//! The frame loop: a three-stage pipeline on three threads joined by bounded channels.
//!
//! A decode thread reads video layers ahead of time, the calling thread uploads them and keeps a
//! ring of frames in flight on the GPU, and an encoder thread feeds x264 and the muxer. Buffers
//! travel back through return channels, so the steady state allocates nothing per frame.

use std::ops::{ControlFlow, Range};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use template::Timeline;

use crate::audio::{self, Pcm};
use crate::gpu::{Compositor, GpuContext, Readback, DEFAULT_RING};
use crate::media::{EncoderSettings, Mp4Writer, VideoReader};
use crate::scene::Scene;
use crate::RenderError;

/// One job's frames of `timeline` (the ranges `frames`, in order), composited from `scene` on
/// `gpu`.
pub(super) struct Pipeline<'a> {
    pub gpu: &'a GpuContext,
    pub scene: &'a Scene,
    pub timeline: &'a Timeline,
    pub frames: Vec<Range<u64>>,
}

/// The time each stage was busy, and the byte count the consumer reported.
#[derive(Debug, Default)]
pub(super) struct StageBusy {
    pub decode: Duration,
    pub gpu: Duration,
    pub encode: Duration,
    pub bytes: u64,
}

impl Pipeline<'_> {
    /// Runs the pipeline: decode thread → this thread (GPU) → `consume` on its own thread,
    /// which gets the YUV frames in order and a channel to return their buffers, and returns
    /// its busy time and a byte count. `progress` is called after each frame with (frames done,
    /// frames total) and may stop the loop.
    pub fn run<C>(
        self,
        progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
        consume: C,
    ) -> Result<StageBusy, RenderError>
    where
        C: FnOnce(Receiver<Vec<u8>>, SyncSender<Vec<u8>>) -> Result<(Duration, u64), RenderError>
            + Send,
    {
        let Pipeline {
            gpu,
            scene,
            timeline,
            frames,
        } = self;
        let total = frames.iter().map(|r| r.end - r.start).sum();
        let (dec_tx, dec_rx) = mpsc::sync_channel(4);
        let (dec_recycle_tx, dec_recycle_rx) = mpsc::sync_channel(16);
        let (enc_tx, enc_rx) = mpsc::sync_channel::<Vec<u8>>(4);
        let (enc_recycle_tx, enc_recycle_rx) = mpsc::sync_channel(8);
        // Scoped threads borrow the scene and timeline instead of copying them per job.
        let (loop_result, decode_busy, consumed) = thread::scope(|s| {
            let decoder =
                s.spawn(|| decode_frames(scene, timeline, &frames, dec_tx, dec_recycle_rx));
            let consumer = s.spawn(move || consume(enc_rx, enc_recycle_tx));
            let loop_result = frame_loop(
                gpu,
                scene,
                timeline,
                total,
                LoopChannels {
                    decoded: dec_rx,
                    decode_recycle: dec_recycle_tx,
                    enc_tx,
                    enc_recycle: enc_recycle_rx,
                },
                progress,
            );
            (
                loop_result,
                decoder.join().unwrap_or_default(),
                consumer.join(),
            )
        });
        let consumed = consumed.map_err(|_| RenderError::EncoderStopped)?;
        // Report the first failure: a decode or GPU error stops the encoder, not the reverse.
        let (gpu_busy, (encode_busy, bytes)) = match (loop_result, consumed) {
            (Ok(g), Ok(c)) => (g, c),
            (Err(RenderError::EncoderStopped), Err(e)) | (Ok(_), Err(e)) | (Err(e), _) => {
                return Err(e)
            }
        };
        Ok(StageBusy {
            decode: decode_busy,
            gpu: gpu_busy,
            encode: encode_busy,
            bytes,
        })
    }
}

/// Decoded video frames for one output frame: (slot, rgba) pairs.
type DecodedFrame = (u64, Vec<(usize, Vec<u8>)>);

/// The decode stage: reads every active video layer for each frame of `frames`, in order.
/// Returns the time it was busy.
fn decode_frames(
    scene: &Scene,
    timeline: &Timeline,
    frames: &[Range<u64>],
    tx: SyncSender<Result<DecodedFrame, RenderError>>,
    recycle: Receiver<Vec<u8>>,
) -> Duration {
    let slots = &scene.videos;
    let mut busy = Duration::ZERO;
    let mut readers: Vec<Option<VideoReader>> = slots.iter().map(|_| None).collect();
    for frame in frames.iter().flat_map(|r| r.clone()) {
        let t0 = Instant::now();
        let t = timeline.frame_time(frame);
        let mut out = Vec::new();
        for (slot, local) in scene.active_videos(timeline, t) {
            let reader = match &mut readers[slot] {
                Some(r) => r,
                empty => match VideoReader::open(&slots[slot].path, slots[slot].options.clone()) {
                    Ok(r) => empty.insert(r),
                    Err(e) => {
                        let _ = tx.send(Err(e.into()));
                        return busy;
                    }
                },
            };
            match reader.frame_at(local) {
                Ok(px) => {
                    let mut buf = recycle.try_recv().unwrap_or_default();
                    buf.clear();
                    buf.extend_from_slice(px);
                    out.push((slot, buf));
                }
                Err(e) => {
                    let _ = tx.send(Err(e.into()));
                    return busy;
                }
            }
        }
        busy += t0.elapsed();
        if tx.send(Ok((frame, out))).is_err() {
            break;
        }
    }
    busy
}

/// Encodes frames from `rx` with the range's `audio` into an MP4 at `out`. Returns the time
/// spent in the encoder and muxer and the file size.
pub(super) fn encode_frames(
    out: &Path,
    settings: EncoderSettings,
    audio: &Pcm,
    rx: Receiver<Vec<u8>>,
    recycle: SyncSender<Vec<u8>>,
) -> Result<(Duration, u64), RenderError> {
    let mut busy = Duration::ZERO;
    let t = Instant::now();
    let mut writer = Mp4Writer::create(out, &settings)?;
    let fps = f64::from(settings.fps);
    let total_audio = audio.frames();
    let mut audio_pos = 0usize;
    let mut index = 0u64;
    busy += t.elapsed();
    for frame in rx {
        let t = Instant::now();
        writer.write_video_frame(&frame)?;
        index += 1;
        let until = ((index as f64 / fps) * f64::from(audio::SAMPLE_RATE)).round() as usize;
        let until = until.min(total_audio);
        if until > audio_pos {
            writer.write_audio(&audio.samples[audio_pos * 2..until * 2])?;
            audio_pos = until;
        }
        busy += t.elapsed();
        // The frame loop may have finished; a closed recycle channel is fine.
        let _ = recycle.try_send(frame);
    }
    let t = Instant::now();
    if audio_pos < total_audio {
        writer.write_audio(&audio.samples[audio_pos * 2..])?;
    }
    writer.finish()?;
    busy += t.elapsed();
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok((busy, bytes))
}

/// The GPU stage's ends of the pipeline's channels.
struct LoopChannels {
    /// Decoded video frames, or the decoder's error.
    decoded: Receiver<Result<DecodedFrame, RenderError>>,
    /// Uploaded frames' buffers, back to the decoder.
    decode_recycle: SyncSender<Vec<u8>>,
    /// YUV frames to the encoder.
    enc_tx: SyncSender<Vec<u8>>,
    /// Encoded frames' buffers, back from the encoder.
    enc_recycle: Receiver<Vec<u8>>,
}

/// The GPU stage: uploads decoded frames, composites, and hands YUV frames to the encoder.
/// Returns the time this thread was busy. Dropping `enc_tx` on return ends the encoder.
fn frame_loop(
    gpu: &GpuContext,
    scene: &Scene,
    timeline: &Timeline,
    total: u64,
    channels: LoopChannels,
    progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
) -> Result<Duration, RenderError> {
    let LoopChannels {
        decoded,
        decode_recycle,
        enc_tx,
        enc_recycle,
    } = channels;
    let mut busy = Duration::ZERO;
    let mut comp = Compositor::new(
        gpu,
        scene.width,
        scene.height,
        &scene.atlas,
        &scene.video,
        DEFAULT_RING,
    )?;
    let mut layers = Vec::new();
    let mut done = 0u64;
    let mut flush = |comp: &mut Compositor<'_>| -> Result<bool, RenderError> {
        let mut buf = enc_recycle.try_recv().unwrap_or_default();
        if comp.read_oldest(&mut buf)?.is_none() {
            return Ok(false);
        }
        // A closed channel means the encoder failed; its own error is reported by the caller.
        enc_tx.send(buf).map_err(|_| RenderError::EncoderStopped)?;
        done += 1;
        if progress(done, total).is_break() {
            // Dropping the channels on return stops the decoder and ends the encoder.
            return Err(RenderError::Cancelled);
        }
        Ok(true)
    };
    for item in decoded {
        let (frame, videos) = item?;
        let t = Instant::now();
        for (slot, px) in videos {
            comp.upload_video(scene.videos[slot].rect, &px);
            // The decoder may already be done; then the buffer is simply freed.
            let _ = decode_recycle.try_send(px);
        }
        scene.frame_layers(timeline, timeline.frame_time(frame), &mut layers);
        if comp.is_full() {
            flush(&mut comp)?;
        }
        comp.submit(scene.background, &layers, Readback::Yuv420, frame)?;
        busy += t.elapsed();
    }
    let t = Instant::now();
    while flush(&mut comp)? {}
    busy += t.elapsed();
    Ok(busy)
}
