//! The FFmpeg CLI side of W1: the same video as one `ffmpeg` filtergraph command, built from
//! the resolved timeline, and the run that times it.

use super::*;

pub(super) struct FfmpegRun {
    pub(super) measured: Measured,
    /// Time to rasterize and save the static layers as PNG; not part of `measured`.
    pub(super) layer_export: Duration,
    pub(super) notes: Vec<String>,
    pub(super) command_file: PathBuf,
}

/// Exports the static layers, builds the command, runs it and times it.
pub(super) fn run_ffmpeg(
    renderer: &mut Renderer,
    req: &RenderRequest,
    bundle: &Bundle,
    report: &RenderReport,
    settings: &EncoderSettings,
    out: &Path,
) -> Result<FfmpegRun> {
    let manifest = &bundle.manifest;
    let tokens = template::resolve_tokens(manifest, &req.lang, &req.tokens)?;
    let timeline = template::resolve(manifest, &req.lang, &tokens)?;

    let t = Instant::now();
    let layers_dir = out.join("layers");
    std::fs::create_dir_all(&layers_dir)
        .with_context(|| format!("cannot create {}", layers_dir.display()))?;
    let mut stills = BTreeMap::new();
    for (index, (id, image)) in renderer.layer_images(req)?.into_iter().enumerate() {
        let path = layers_dir.join(format!("{index:02}-{}.png", file_safe(&id)));
        media::save_png(&path, &image)?;
        stills.insert(
            id,
            Still {
                path,
                size: (image.width, image.height),
            },
        );
    }
    let layer_export = t.elapsed();

    let audio = audio_inputs(bundle, req)?;
    let mp4 = out.join("ffmpeg-filtergraph.mp4");
    let plan = ffmpeg_command(
        &timeline,
        bundle,
        report.size,
        &stills,
        &audio,
        settings,
        &mp4,
    );
    let command_file = out.join("ffmpeg-command.txt");
    let mut text = String::from("ffmpeg");
    for arg in &plan.args {
        text.push(' ');
        text.push_str(&shell_quote(arg));
    }
    text.push('\n');
    std::fs::write(&command_file, text)
        .with_context(|| format!("cannot write {}", command_file.display()))?;

    let wall = run_with_progress(&plan.args, report.frames)?;
    let bytes = std::fs::metadata(&mp4)
        .with_context(|| format!("ffmpeg wrote no {}", mp4.display()))?
        .len();
    Ok(FfmpegRun {
        measured: Measured {
            way: "FFmpeg CLI filtergraph",
            wall,
            frames: report.frames,
            bytes,
            path: Some(mp4),
        },
        layer_export,
        notes: plan.notes,
        command_file,
    })
}

/// Runs `ffmpeg args` (which include `-progress pipe:1`), drives a progress bar from its
/// `frame=` lines and returns the wall time from spawn to exit.
pub(super) fn run_with_progress(args: &[String], total: u64) -> Result<Duration> {
    let bar = progress_bar("ffmpeg");
    bar.set_length(total);
    let start = Instant::now();
    let mut child = Command::new("ffmpeg")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `ffmpeg` (is the FFmpeg CLI installed?)")?;
    let stderr = child.stderr.take();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            // Whatever could be read is reported; a read error only shortens the message.
            let _ = e.read_to_string(&mut text);
        }
        text
    });
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line
                .strip_prefix("frame=")
                .and_then(|v| v.trim().parse().ok())
            {
                bar.set_position(n);
            }
        }
    }
    let status = child.wait().context("waiting for ffmpeg")?;
    let wall = start.elapsed();
    bar.finish_and_clear();
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        bail!("ffmpeg failed ({status}): {}", errors.trim());
    }
    Ok(wall)
}

/// A static layer exported to PNG: its file and pixel size (its size on the canvas before the
/// layer's scale).
#[derive(Debug, Clone)]
pub(super) struct Still {
    pub(super) path: PathBuf,
    pub(super) size: (u32, u32),
}

/// The audio tracks of the job, as the FFmpeg command needs them.
#[derive(Debug, Clone, Default)]
pub(super) struct AudioInputs {
    pub(super) music: Option<PathBuf>,
    pub(super) voice: Option<PathBuf>,
    /// Speech level of the voice (RMS over its active 20 ms windows), dBFS; sets the
    /// side-chain threshold so the music drops by about the template's `duck_db`.
    pub(super) voice_level_db: f64,
}

/// The music and voice files of `req`, with the voice's speech level.
pub(super) fn audio_inputs(bundle: &Bundle, req: &RenderRequest) -> Result<AudioInputs> {
    let spec = &bundle.manifest.audio;
    let music = spec.music.as_ref().map(|m| bundle.media_path(&m.src));
    let voice = req.voice_file(bundle);
    let voice_level_db = match &voice {
        Some(path) => {
            let pcm = render_core::audio::decode_file(path)
                .with_context(|| format!("decoding {}", path.display()))?;
            speech_level_db(&pcm.samples)
        }
        None => -20.0,
    };
    Ok(AudioInputs {
        music,
        voice,
        voice_level_db,
    })
}

/// Mean power of the 20 ms windows of `stereo` louder than -50 dBFS, in dBFS (-20 if none).
pub(super) fn speech_level_db(stereo: &[f32]) -> f64 {
    let mut sum = 0.0;
    let mut n = 0usize;
    for window in stereo.chunks(960 * 2) {
        let ms = window
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / window.len() as f64;
        if ms > 1e-5 {
            sum += ms;
            n += 1;
        }
    }
    if n == 0 {
        return -20.0;
    }
    10.0 * (sum / n as f64).log10()
}

/// An FFmpeg command line (without the program name) and what it could not express.
#[derive(Debug, Clone, Default)]
pub(super) struct FfmpegPlan {
    pub(super) args: Vec<String>,
    pub(super) notes: Vec<String>,
}

/// Builds the FFmpeg command that renders `timeline` like reelfarm does:
///
/// - a `color` source of the canvas size and duration is the base;
/// - video layers are `-stream_loop -1` inputs (when looped), shifted to their start and scaled
///   to their drawn size; static layers are the exported PNGs looped at the frame rate;
/// - each layer is `overlay`ed in order, shown during `[start, end)`, at x/y expressions that
///   follow its keyframed position, anchor and scale with the same easings; opacity ramps 0→1
///   and 1→0 become `fade` on alpha; animated scale is `scale` with `eval=frame`;
/// - like reelfarm, layers are blended in RGB (planar, `gbrp`, FFmpeg's fastest RGB overlay)
///   and the result converted once to BT.709 limited-range YUV 4:2:0; overlaying in FFmpeg's
///   default YUV 4:2:0 would convert every RGBA layer with BT.601 and shift colours;
/// - audio: the music looped with its gain, the voice delayed to its slot, the music ducked under
///   it with `sidechaincompress`, summed, `loudnorm`, faded out and trimmed;
/// - the output uses reelfarm's encoder settings.
///
/// What the filtergraph cannot express (rotation, other opacity curves) is listed in the
/// plan's notes rather than dropped silently.
pub(super) fn ffmpeg_command(
    timeline: &Timeline,
    bundle: &Bundle,
    canvas: (u32, u32),
    stills: &BTreeMap<String, Still>,
    audio: &AudioInputs,
    settings: &EncoderSettings,
    out: &Path,
) -> FfmpegPlan {
    let mut plan = FfmpegPlan::default();
    let args = &mut plan.args;
    let notes = &mut plan.notes;
    let fps = timeline.fps;
    let duration = timeline.duration;
    let s = f64::from(canvas.0) / f64::from(timeline.width);
    for a in [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-nostats",
    ] {
        args.push(a.to_owned());
    }

    let mut graph: Vec<String> = Vec::new();
    let [r, g, b, a] = timeline.background;
    if a != 255 {
        notes.push(format!("background alpha {a}/255 drawn opaque"));
    }
    graph.push(format!(
        "color=c=0x{r:02x}{g:02x}{b:02x}:s={}x{}:r={fps}:d={},format=gbrp[base]",
        canvas.0,
        canvas.1,
        num(duration)
    ));
    let mut below = "base".to_owned();
    let mut subpixel = false;
    let mut input = 0usize;
    for (i, layer) in timeline.layers.iter().enumerate() {
        let mut chain: Vec<String> = Vec::new();
        let declared = layer
            .content
            .declared_size((timeline.width, timeline.height));
        // Content size in template pixels, before the layer's own scale.
        let content = match &layer.content {
            ResolvedContent::Video {
                src,
                trim_start,
                trim_duration,
                looped,
                ..
            } => {
                if *looped {
                    args.extend(["-stream_loop".into(), "-1".into()]);
                    if *trim_start > 0.0 || trim_duration.is_some() {
                        notes.push(format!(
                            "layer `{}`: FFmpeg's -stream_loop restarts at the start of the file, not at the trimmed part",
                            layer.id
                        ));
                    }
                }
                if *trim_start > 0.0 {
                    args.extend(["-ss".into(), num(*trim_start)]);
                }
                if let Some(d) = trim_duration {
                    args.extend(["-t".into(), num(*d)]);
                }
                args.extend(["-i".into(), path_arg(&bundle.media_path(src))]);
                chain.push(format!("setpts=PTS-STARTPTS+{}/TB", num(layer.start)));
                // Always declared for videos.
                declared.unwrap_or_default()
            }
            _ => {
                let Some(still) = stills.get(&layer.id) else {
                    notes.push(format!("layer `{}`: no exported image; left out", layer.id));
                    continue;
                };
                args.extend([
                    "-loop".into(),
                    "1".into(),
                    "-framerate".into(),
                    fps.to_string(),
                    "-t".into(),
                    num(layer.end.min(duration)),
                    "-i".into(),
                    path_arg(&still.path),
                ]);
                declared.unwrap_or((f64::from(still.size.0) / s, f64::from(still.size.1) / s))
            }
        };
        let (cw, ch) = (content.0 * s, content.1 * s);
        let tr = &layer.transform;
        subpixel |= matches!(tr.position, Animated::Keyframes(_))
            || matches!(tr.scale, Animated::Keyframes(_));
        if !matches!(tr.rotation, Animated::Constant(v) if v == 0.0) {
            notes.push(format!(
                "layer `{}`: rotation not expressed (drawn unrotated)",
                layer.id
            ));
        }
        let needs_alpha = !matches!(layer.opacity, Animated::Constant(v) if v >= 1.0)
            || matches!(layer.content, ResolvedContent::Video { .. })
                && !matches!(tr.scale, Animated::Constant(_));
        if needs_alpha {
            chain.push("format=rgba".to_owned());
        }
        match &tr.scale {
            Animated::Constant(k) => {
                let (w, h) = ((cw * k).round().max(1.0), (ch * k).round().max(1.0));
                let raster = stills.get(&layer.id).map(|st| st.size);
                if raster != Some((w as u32, h as u32)) {
                    chain.push(format!("scale={w}:{h}:flags=bilinear"));
                }
            }
            keyed => {
                let k = animated(keyed, |v| *v);
                chain.push(format!(
                    "scale=w='max(1,round({}*({k})))':h='max(1,round({}*({k})))':eval=frame:flags=bilinear",
                    num(cw),
                    num(ch)
                ));
            }
        }
        chain.extend(opacity_filters(layer, notes));
        let x = place(
            &scaled(&animated(&tr.position, |p| p[0]), s),
            tr.anchor[0] * cw,
            &tr.scale,
        );
        let y = place(
            &scaled(&animated(&tr.position, |p| p[1]), s),
            tr.anchor[1] * ch,
            &tr.scale,
        );
        // Visibility lives in x (off the canvas outside [start, end)) rather than in the
        // overlay's timeline `enable`: FFmpeg 5.1 evaluates `enable` of a two-input filter at
        // the time of the next main frame, which shows and hides layers one frame early.
        let x = if layer.start <= 0.0 && layer.end >= duration {
            x
        } else {
            format!(
                "if(gte(t,{})*lt(t,{}),{x},W)",
                num(layer.start),
                num(layer.end)
            )
        };
        let label = format!("l{i}");
        let chain = if chain.is_empty() {
            "null".to_owned()
        } else {
            chain.join(",")
        };
        graph.push(format!("[{input}:v]{chain}[{label}]"));
        let next = format!("v{i}");
        graph.push(format!(
            "[{below}][{label}]overlay=x='{x}':y='{y}':format=gbrp[{next}]"
        ));
        below = next;
        input += 1;
    }
    if subpixel {
        notes.push(
            "overlay places layers on whole pixels and an animated scale rounds sizes to whole pixels; \
             reelfarm samples at sub-pixel positions, so moving and scaling edges differ slightly"
                .to_owned(),
        );
    }
    graph.push(format!(
        "[{below}]scale=out_color_matrix=bt709:out_range=tv,format=yuv420p[vout]"
    ));

    let spec = &bundle.manifest.audio;
    let to_stereo = "aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo";
    let dur = num(duration);
    let mut music_label = None;
    if let (Some(path), Some(music)) = (&audio.music, &spec.music) {
        args.extend([
            "-stream_loop".into(),
            "-1".into(),
            "-i".into(),
            path_arg(path),
        ]);
        graph.push(format!(
            "[{input}:a]{to_stereo},atrim=0:{dur},asetpts=N/SR/TB,volume={}dB[music]",
            num(music.gain_db)
        ));
        music_label = Some("music");
        input += 1;
    }
    let mut voice_gain = None;
    if let (Some(path), Some(slot)) = (&audio.voice, &spec.voice) {
        args.extend(["-i".into(), path_arg(path)]);
        let delay_ms = (slot.start * 1000.0).round();
        graph.push(format!(
            "[{input}:a]{to_stereo},adelay=delays={delay_ms}:all=1,apad,atrim=0:{dur}[voice]"
        ));
        voice_gain = Some(format!("volume={}dB", num(slot.gain_db)));
    }
    let fade = spec
        .music
        .as_ref()
        .map_or(0.0, |m| m.fade_out.min(duration));
    let finish = format!(
        "loudnorm=I={}:TP=-1,{to_stereo}{},atrim=0:{dur}[aout]",
        num(spec.loudness_lufs),
        if fade > 0.0 {
            format!(",afade=t=out:st={}:d={}", num(duration - fade), num(fade))
        } else {
            String::new()
        }
    );
    let has_audio = match (music_label, voice_gain, &spec.music) {
        (Some(_), Some(voice_gain), Some(music)) => {
            // Ratio 20 is close to a hard knee; the threshold sits where speech at its measured
            // level pulls the music down by the template's duck depth.
            let ratio = 20.0;
            let threshold_db =
                (audio.voice_level_db - music.duck_db / (1.0 - 1.0 / ratio)).clamp(-60.0, 0.0);
            graph.push("[voice]asplit=2[vkey][vmix]".to_owned());
            graph.push(format!(
                "[music][vkey]sidechaincompress=threshold={}:ratio={ratio}:attack=50:release=300[ducked]",
                num(10f64.powf(threshold_db / 20.0))
            ));
            graph.push(format!("[vmix]{voice_gain}[vg]"));
            graph.push(format!(
                "[ducked][vg]amix=inputs=2:duration=first:normalize=0,{finish}"
            ));
            true
        }
        (Some(_), None, _) => {
            graph.push(format!("[music]{finish}"));
            true
        }
        (None, Some(voice_gain), _) => {
            graph.push(format!("[voice]{voice_gain},{finish}"));
            true
        }
        _ => false,
    };
    if has_audio {
        notes.push(
            "audio: loudnorm runs single-pass (dynamic); reelfarm measures the whole mix and applies one gain with a peak limiter"
                .to_owned(),
        );
    }

    args.extend(["-filter_complex".into(), graph.join(";")]);
    args.extend(["-map".into(), "[vout]".into()]);
    if has_audio {
        args.extend(["-map".into(), "[aout]".into()]);
    }
    let gop = settings.gop_frames.to_string();
    let out_args = [
        "-t",
        &dur,
        "-r",
        &fps.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        &settings.preset,
        "-crf",
        &num(f64::from(settings.crf)),
        "-profile:v",
        settings.profile.as_x264_str(),
        "-threads",
        &settings.threads.to_string(),
        "-pix_fmt",
        "yuv420p",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
    ]
    .map(str::to_owned);
    args.extend(out_args);
    if has_audio {
        let kbps = format!("{}k", settings.audio_bitrate / 1000);
        args.extend(["-c:a", "aac", "-b:a", &kbps, "-ar", "48000", "-ac", "2"].map(str::to_owned));
    }
    args.extend(["-movflags".into(), "+faststart".into(), path_arg(out)]);
    plan
}

/// `fade` filters for a layer's opacity keyframes, where each segment is a 0→1 or 1→0 ramp;
/// a constant opacity below 1 becomes an alpha multiply. Anything else is noted.
pub(super) fn opacity_filters(layer: &ResolvedLayer, notes: &mut Vec<String>) -> Vec<String> {
    let keys = match &layer.opacity {
        Animated::Constant(v) if *v >= 1.0 => return Vec::new(),
        Animated::Constant(v) => return vec![format!("colorchannelmixer=aa={}", num(*v))],
        Animated::Keyframes(keys) => keys,
    };
    let mut out = Vec::new();
    for pair in keys.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let d = b.t - a.t;
        let kind = match (a.value, b.value) {
            (x, y) if x == y => continue,
            (x, y) if x == 0.0 && y == 1.0 => "in",
            (x, y) if x == 1.0 && y == 0.0 => "out",
            (x, y) => {
                notes.push(format!(
                    "layer `{}`: opacity {x}→{y} at {} s is not a 0→1 or 1→0 ramp; not expressed",
                    layer.id, a.t
                ));
                continue;
            }
        };
        if a.easing != Easing::Linear {
            notes.push(format!(
                "layer `{}`: opacity easing {:?} at {} s drawn linear (fade is linear)",
                layer.id, a.easing, a.t
            ));
        }
        if d > 0.0 {
            out.push(format!(
                "fade=t={kind}:st={}:d={}:alpha=1",
                num(a.t),
                num(d)
            ));
        }
    }
    if keys
        .first()
        .is_some_and(|k| k.value != 0.0 && k.value != 1.0)
    {
        notes.push(format!(
            "layer `{}`: starting opacity {} not expressed",
            layer.id,
            keys.first().map_or(1.0, |k| k.value)
        ));
    }
    out
}

/// A keyframed value as an FFmpeg expression in `t`: the first value before the first keyframe,
/// each segment interpolated with its easing, the last value after the last keyframe.
pub(super) fn animated<T>(value: &Animated<T>, component: impl Fn(&T) -> f64) -> String {
    let keys = match value {
        Animated::Constant(v) => return num(component(v)),
        Animated::Keyframes(keys) => keys,
    };
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return "0".to_owned();
    };
    let v0 = component(&first.value);
    if keys.iter().all(|k| component(&k.value) == v0) {
        return num(v0);
    }
    let mut expr = num(component(&last.value));
    for pair in keys.windows(2).rev() {
        let (a, b) = (&pair[0], &pair[1]);
        let (va, vb) = (component(&a.value), component(&b.value));
        let span = b.t - a.t;
        let segment = if va == vb || span.is_nan() || span <= 0.0 || a.easing == Easing::Hold {
            num(va)
        } else {
            let u = format!("clip((t-{})/{},0,1)", num(a.t), num(span));
            let (sign, delta) = if vb < va {
                ('-', va - vb)
            } else {
                ('+', vb - va)
            };
            format!("{}{sign}{}*({})", num(va), num(delta), ease(a.easing, &u))
        };
        expr = format!("if(lt(t,{}),{segment},{expr})", num(b.t));
    }
    format!("if(lt(t,{}),{},{expr})", num(first.t), num(v0))
}

/// Easing of progress `u` (an expression in 0..=1), as in [`Easing::apply`].
pub(super) fn ease(easing: Easing, u: &str) -> String {
    match easing {
        Easing::Linear => u.to_owned(),
        Easing::EaseIn => format!("pow({u},3)"),
        Easing::EaseOut => format!("1-pow(1-{u},3)"),
        Easing::EaseInOut => format!("if(lt({u},0.5),4*pow({u},3),1-pow(2-2*{u},3)/2)"),
        Easing::Hold => "0".to_owned(),
    }
}

/// The canvas coordinate of a layer's top-left edge: its anchor's position `pos` minus the
/// anchor's offset `anchor_px` (in drawn pixels) times the layer's scale.
pub(super) fn place(pos: &str, anchor_px: f64, scale: &Animated<f64>) -> String {
    match scale {
        _ if anchor_px == 0.0 => pos.to_owned(),
        Animated::Constant(k) => format!("{pos}-{}", num(anchor_px * k)),
        keyed => format!("{pos}-{}*({})", num(anchor_px), animated(keyed, |v| *v)),
    }
}

/// `expr` multiplied by the canvas scale `s`, without noise when `s` is 1.
pub(super) fn scaled(expr: &str, s: f64) -> String {
    if s == 1.0 {
        expr.to_owned()
    } else {
        format!("{}*({expr})", num(s))
    }
}

/// A number for an FFmpeg expression: at most 6 decimals, no trailing zeros, no exponent.
pub(super) fn num(v: f64) -> String {
    let v = (v * 1e6).round() / 1e6;
    let v = if v == 0.0 { 0.0 } else { v };
    format!("{v}")
}

pub(super) fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A layer id made safe for a file name.
pub(super) fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `arg` quoted for a POSIX shell when it needs it.
pub(super) fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// How close another way's video is to reelfarm's: PSNR over all frames (average of Y, U, V),
/// infinite when the video streams decode to identical frames.
#[cfg(test)]
mod tests {
    use super::*;
    use template::Keyframe;

    /// Evaluates the subset of FFmpeg's expression language [`animated`] emits, at time `t`.
    fn eval(expr: &str, t: f64) -> f64 {
        struct P<'a> {
            s: &'a [u8],
            i: usize,
            t: f64,
        }
        impl P<'_> {
            fn peek(&self) -> u8 {
                self.s.get(self.i).copied().unwrap_or(0)
            }
            fn sum(&mut self) -> f64 {
                let mut v = self.product();
                loop {
                    match self.peek() {
                        b'+' => {
                            self.i += 1;
                            v += self.product();
                        }
                        b'-' => {
                            self.i += 1;
                            v -= self.product();
                        }
                        _ => return v,
                    }
                }
            }
            fn product(&mut self) -> f64 {
                let mut v = self.atom();
                loop {
                    match self.peek() {
                        b'*' => {
                            self.i += 1;
                            v *= self.atom();
                        }
                        b'/' => {
                            self.i += 1;
                            v /= self.atom();
                        }
                        _ => return v,
                    }
                }
            }
            fn args(&mut self) -> Vec<f64> {
                let mut out = vec![self.sum()];
                while self.peek() == b',' {
                    self.i += 1;
                    out.push(self.sum());
                }
                assert_eq!(self.peek(), b')');
                self.i += 1;
                out
            }
            fn atom(&mut self) -> f64 {
                let c = self.peek();
                if c == b'(' {
                    self.i += 1;
                    let v = self.sum();
                    self.i += 1;
                    return v;
                }
                if c == b'-' {
                    self.i += 1;
                    return -self.atom();
                }
                let start = self.i;
                if c.is_ascii_digit() || c == b'.' {
                    while self.peek().is_ascii_digit() || self.peek() == b'.' {
                        self.i += 1;
                    }
                    let text = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
                    return text.parse().expect("number");
                }
                while self.peek().is_ascii_alphabetic() {
                    self.i += 1;
                }
                let name = std::str::from_utf8(&self.s[start..self.i])
                    .expect("ascii")
                    .to_owned();
                if name == "t" {
                    return self.t;
                }
                assert_eq!(self.peek(), b'(', "function call");
                self.i += 1;
                let a = self.args();
                match name.as_str() {
                    "if" => {
                        if a[0] != 0.0 {
                            a[1]
                        } else {
                            a[2]
                        }
                    }
                    "lt" => f64::from(u8::from(a[0] < a[1])),
                    "clip" => a[0].clamp(a[1], a[2]),
                    "pow" => a[0].powf(a[1]),
                    other => panic!("unknown function {other}"),
                }
            }
        }
        let mut p = P {
            s: expr.as_bytes(),
            i: 0,
            t,
        };
        let v = p.sum();
        assert_eq!(p.i, expr.len(), "trailing input in {expr}");
        v
    }

    fn kf(t: f64, value: f64, easing: Easing) -> Keyframe<f64> {
        Keyframe { t, value, easing }
    }

    #[test]
    fn keyframe_expressions_match_the_timeline() {
        let cases = [
            Animated::Constant(3.5),
            Animated::Keyframes(vec![
                kf(0.5, 100.0, Easing::EaseOut),
                kf(1.5, 40.0, Easing::Linear),
            ]),
            Animated::Keyframes(vec![
                kf(1.0, 0.0, Easing::EaseIn),
                kf(2.0, 10.0, Easing::EaseInOut),
                kf(4.0, -30.0, Easing::Hold),
                kf(5.0, 7.0, Easing::Linear),
                kf(6.0, 7.0, Easing::Linear),
            ]),
            Animated::Keyframes(vec![
                kf(0.0, 1080.0, Easing::EaseOut),
                kf(0.6, 1080.0, Easing::Linear),
            ]),
        ];
        for value in &cases {
            let expr = animated(value, |v| *v);
            for step in 0..=140 {
                let t = f64::from(step) * 0.05;
                let want = value.value_at(t).expect("non-empty");
                let got = eval(&expr, t);
                assert!((got - want).abs() < 1e-4, "{expr} at {t}: {got} != {want}");
            }
        }
    }

    const MANIFEST: &str = r##"{
      "schema_version": 1, "name": "t", "width": 320, "height": 240, "fps": 30, "duration": 2,
      "languages": ["en"], "default_language": "en",
      "layers": [
        {"id": "bg", "type": "video", "src": "bg.mp4", "loop": true},
        {"id": "box", "type": "solid", "color": "#ff0000", "size": {"width": 60, "height": 40},
         "start": 0.5, "end": 1.5,
         "transform": {"position": [100, 50], "anchor": [0.5, 0.5],
                       "scale": [{"t": 0.5, "value": 1}, {"t": 1, "value": 2}]},
         "opacity": [{"t": 0.5, "value": 0}, {"t": 1, "value": 1}]},
        {"id": "tilted", "type": "solid", "color": "#00ff00", "size": {"width": 8, "height": 8},
         "transform": {"rotation": 10}}
      ],
      "audio": {"music": {"src": "m.wav", "gain_db": -6, "fade_out": 0.5}}
    }"##;

    #[test]
    fn filtergraph_expresses_the_timeline() {
        let manifest = template::Manifest::from_json(MANIFEST.as_bytes()).expect("manifest");
        let timeline = template::resolve(&manifest, "en", &BTreeMap::new()).expect("timeline");
        let bundle = Bundle {
            dir: PathBuf::from("tpl"),
            manifest,
        };
        let stills = ["box", "tilted"]
            .map(|id| {
                let still = Still {
                    path: PathBuf::from(format!("{id}.png")),
                    size: if id == "box" { (60, 40) } else { (8, 8) },
                };
                (id.to_owned(), still)
            })
            .into_iter()
            .collect();
        let audio = AudioInputs {
            music: Some(PathBuf::from("tpl/m.wav")),
            voice: None,
            voice_level_db: -20.0,
        };
        let settings = EncoderSettings::for_preset(Preset::P1080, 320, 240, 30);
        let plan = ffmpeg_command(
            &timeline,
            &bundle,
            (320, 240),
            &stills,
            &audio,
            &settings,
            Path::new("out.mp4"),
        );
        let graph = plan
            .args
            .iter()
            .skip_while(|a| *a != "-filter_complex")
            .nth(1)
            .expect("a filtergraph");
        for piece in [
            "color=c=0x000000:s=320x240:r=30:d=2",
            "[0:v]setpts=PTS-STARTPTS+0/TB,scale=320:240:flags=bilinear[l0]",
            "eval=frame",
            "fade=t=in:st=0.5:d=0.5:alpha=1",
            "if(gte(t,0.5)*lt(t,1.5),",
            "[3:a]aresample=48000",
            "volume=-6dB",
            "loudnorm=I=-16:TP=-1",
            "afade=t=out:st=1.5:d=0.5",
        ] {
            assert!(graph.contains(piece), "`{piece}` missing from {graph}");
        }
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("`tilted`") && n.contains("rotation")),
            "{:?}",
            plan.notes
        );
        for (flag, value) in [
            ("-crf", "23"),
            ("-preset", "veryfast"),
            ("-g", "30"),
            ("-b:a", "128k"),
        ] {
            let i = plan.args.iter().position(|a| a == flag).expect(flag);
            assert_eq!(plan.args[i + 1], value, "{flag}");
        }
        assert_eq!(plan.args.last().map(String::as_str), Some("out.mp4"));
    }

    #[test]
    fn numbers_are_plain() {
        assert_eq!(num(30.0), "30");
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(1e-9), "0");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("-i"), "-i");
        assert_eq!(shell_quote("[0:v]null[l0]"), "'[0:v]null[l0]'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
