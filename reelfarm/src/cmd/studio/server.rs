//! The studio's HTTP server: the embedded page, the JSON API, the frame renderer behind a
//! mutex, the folder watcher and the background preview renders.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use render_core::check::{CheckOptions, WorstCase};
use render_core::{RenderRequest, Renderer};
use serde_json::{json, Value};
use template::{Manifest, Preset, ResolvedContent};

use super::grid;
use super::problems::{fingerprint, ProblemView, Snapshot};

const INDEX_HTML: &str = include_str!("index.html");
const STUDIO_JS: &str = include_str!("studio.js");
const STUDIO_CSS: &str = include_str!("studio.css");

/// How often the folder is checked for changes.
const POLL: Duration = Duration::from_millis(500);
/// Frames kept in memory before the cache is emptied.
const MAX_CACHED_FRAMES: usize = 512;

/// A frame in the cache: folder version, language, values key, frame index, width.
type FrameKey = (u64, String, String, u64, u32);

/// A preview MP4 render.
#[derive(Debug, Clone)]
struct Preview {
    lang: String,
    sample: String,
    file: PathBuf,
    done: u64,
    total: u64,
    error: Option<String>,
    finished: bool,
}

/// Everything the handlers share.
struct Studio {
    dir: PathBuf,
    out: PathBuf,
    /// Moves each time a file in the folder changes.
    version: AtomicU64,
    snapshot: Mutex<Snapshot>,
    /// The frame renderer, started on first use; one frame at a time.
    renderer: Mutex<Option<Renderer>>,
    frames: Mutex<HashMap<FrameKey, Arc<Vec<u8>>>>,
    /// Worst cases by language, for the current version.
    worst: Mutex<HashMap<String, Vec<WorstCase>>>,
    /// The deep checks of the latest version they ran on.
    deep: Mutex<Deep>,
    previews: Mutex<Vec<Preview>>,
}

/// The deep checks' state.
#[derive(Debug, Default)]
struct Deep {
    /// The folder version the problems are of (0: none yet).
    version: u64,
    /// The version being checked now, if any.
    running: Option<u64>,
    /// Errors and warnings found.
    problems: Vec<ProblemView>,
}

/// Locks `m`, going on with the data when another thread panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An API error: a status and a JSON body `{"error": ..., "problems": [...]}`.
struct ApiError {
    status: StatusCode,
    error: String,
    problems: Vec<Value>,
}

impl ApiError {
    fn bad(error: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            error: error.into(),
            problems: Vec::new(),
        }
    }

    fn render(error: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            error: error.into(),
            problems: Vec::new(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.error, "problems": self.problems})),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

impl Studio {
    /// The manifest and samples, or the error a render request answers with while the
    /// template is broken.
    fn loaded(&self) -> ApiResult<(Manifest, Vec<template::Recipient>)> {
        let snap = lock(&self.snapshot);
        match &snap.manifest {
            Some(m) => Ok((m.clone(), snap.samples.clone())),
            None => Err(ApiError {
                status: StatusCode::CONFLICT,
                error: "the template has problems; fix them to see frames".to_owned(),
                problems: snap.problems.iter().map(|p| p.json()).collect(),
            }),
        }
    }

    /// Reloads the folder and moves the version.
    fn reload(&self) {
        let snap = Snapshot::load(&self.dir);
        *lock(&self.snapshot) = snap;
        self.version.fetch_add(1, Ordering::SeqCst);
        lock(&self.frames).clear();
        lock(&self.worst).clear();
    }

    /// The worst cases of `lang`, computed once per version.
    fn worst_cases(&self, manifest: &Manifest, lang: &str) -> Vec<WorstCase> {
        if let Some(cases) = lock(&self.worst).get(lang) {
            return cases.clone();
        }
        let cases = grid::worst_cases(manifest, lang);
        lock(&self.worst).insert(lang.to_owned(), cases.clone());
        cases
    }
}

/// Runs the studio on `listen` until interrupted, printing its URL on stdout.
pub async fn serve(dir: PathBuf, out: PathBuf, listen: SocketAddr, deep: bool) -> Result<()> {
    let studio = Arc::new(Studio {
        snapshot: Mutex::new(Snapshot::load(&dir)),
        dir,
        out,
        version: AtomicU64::new(1),
        renderer: Mutex::new(None),
        frames: Mutex::new(HashMap::new()),
        worst: Mutex::new(HashMap::new()),
        deep: Mutex::new(Deep::default()),
        previews: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("--listen {listen}: cannot listen"))?;
    let addr = listener.local_addr().context("the listening address")?;

    let watched = studio.clone();
    std::thread::Builder::new()
        .name("studio-watch".into())
        .spawn(move || watch(&watched))
        .context("starting the folder watcher")?;
    if deep {
        let checked = studio.clone();
        std::thread::Builder::new()
            .name("studio-deep".into())
            .spawn(move || deep_checks(&checked))
            .context("starting the deep checks")?;
    }

    let app = Router::new()
        .route(
            "/",
            get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/studio.js",
            get(|| async { page(STUDIO_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/studio.css",
            get(|| async { page(STUDIO_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/version", get(version))
        .route("/api/state", get(state))
        .route("/api/frame", get(frame))
        .route("/api/layers", get(layers))
        .route("/api/grid", get(grid_rows))
        .route("/api/preview", post(start_preview))
        .route("/api/preview/{id}", get(preview_status))
        .route("/out/{id}", get(preview_file))
        .with_state(studio.clone());

    // A closed stdout (a parent that read the URL and went away) must not stop the studio.
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "studio: http://{addr}/");
        let _ = writeln!(stdout, "template: {}", studio.dir.display());
        let _ = writeln!(stdout, "previews: {}", studio.out.display());
        let _ = stdout.flush();
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the studio")
}

fn page(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Polls the folder and reloads it when a file is added, removed or changed.
fn watch(studio: &Studio) {
    let mut seen = fingerprint(&studio.dir);
    loop {
        std::thread::sleep(POLL);
        let now = fingerprint(&studio.dir);
        if now != seen {
            seen = now;
            studio.reload();
        }
    }
}

/// Runs the deep checks (media decoding, text fit and voice length with worst-case values) on
/// each new version of a template that loads, one run at a time, keeping the latest results.
fn deep_checks(studio: &Studio) {
    let mut done = 0;
    loop {
        let version = studio.version.load(Ordering::SeqCst);
        if version == done {
            std::thread::sleep(POLL);
            continue;
        }
        // Waits for the folder to settle, so that a burst of saves is checked once.
        std::thread::sleep(POLL);
        if studio.version.load(Ordering::SeqCst) != version {
            continue;
        }
        done = version;
        let problems = match template::Bundle::load(&studio.dir) {
            Ok(bundle) => {
                lock(&studio.deep).running = Some(version);
                let report = render_core::check::deep_check(&bundle, &CheckOptions::default());
                let mut problems: Vec<ProblemView> = report
                    .errors
                    .iter()
                    .map(|p| ProblemView::new("deep", p))
                    .collect();
                problems.extend(
                    report
                        .warnings
                        .iter()
                        .map(|p| ProblemView::new("deep", p).warning()),
                );
                problems
            }
            // The manifest's own problems are listed already.
            Err(_) => Vec::new(),
        };
        let mut deep = lock(&studio.deep);
        deep.running = None;
        deep.version = version;
        deep.problems = problems;
    }
}

async fn version(State(s): State<Arc<Studio>>) -> Json<Value> {
    Json(json!({"version": s.version.load(Ordering::SeqCst)}))
}

async fn state(State(s): State<Arc<Studio>>) -> Json<Value> {
    let version = s.version.load(Ordering::SeqCst);
    let snap = lock(&s.snapshot);
    let mut problems: Vec<Value> = snap.problems.iter().map(|p| p.json()).collect();
    let deep = {
        let deep = lock(&s.deep);
        // Deep results of an older version are shown until the new ones are in.
        problems.extend(deep.problems.iter().map(|p| p.json()));
        json!({
            "checked_version": deep.version,
            "running": deep.running.is_some(),
            "errors": deep.problems.iter().filter(|p| p.severity == "error").count(),
            "warnings": deep.problems.iter().filter(|p| p.severity == "warning").count(),
        })
    };
    let samples: Vec<Value> = snap
        .samples
        .iter()
        .map(|r| json!({"id": r.id, "lang": r.lang}))
        .collect();
    let template = snap.manifest.as_ref().map(|m| {
        json!({
            "name": m.name,
            "width": m.width,
            "height": m.height,
            "fps": m.fps,
            "duration": m.duration,
            "languages": m.languages,
            "default_language": m.default_language,
            "default_times": grid::default_times(m.duration),
        })
    });
    Json(json!({
        "version": version,
        "dir": s.dir.display().to_string(),
        "template": template,
        "samples": samples,
        "problems": problems,
        "deep": deep,
    }))
}

#[derive(Debug, serde::Deserialize)]
struct FrameQuery {
    lang: String,
    sample: String,
    t: f64,
    w: Option<u32>,
}

/// The values `sample` names in `lang`, checked against the manifest.
fn values(
    studio: &Studio,
    manifest: &Manifest,
    samples: &[template::Recipient],
    lang: &str,
    sample: &str,
) -> ApiResult<BTreeMap<String, String>> {
    if !manifest.languages.iter().any(|l| l == lang) {
        return Err(ApiError::bad(format!(
            "language `{lang}` is not one of the template's ({})",
            manifest.languages.join(", ")
        )));
    }
    let worst = |l: &str| studio.worst_cases(manifest, l);
    grid::values_for(samples, &worst, lang, sample).map_err(|e| ApiError::bad(e.to_string()))
}

/// Runs `f` on a blocking thread (text measuring, rendering).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::render(format!("the task failed: {e}")))?
}

fn check_time(manifest: &Manifest, t: f64) -> ApiResult<()> {
    if !(t.is_finite() && t >= 0.0 && t < manifest.duration) {
        return Err(ApiError::bad(format!(
            "t={t}: times go from 0 up to the template's {} s",
            manifest.duration
        )));
    }
    Ok(())
}

/// `GET /api/frame?lang=&sample=&t=&w=`: a PNG of that frame, `w` pixels wide (640 unless
/// said).
async fn frame(State(s): State<Arc<Studio>>, Query(q): Query<FrameQuery>) -> ApiResult<Response> {
    let version = s.version.load(Ordering::SeqCst);
    let (manifest, samples) = s.loaded()?;
    check_time(&manifest, q.t)?;
    let width = q.w.unwrap_or(grid::FRAME_WIDTH).clamp(16, grid::MAX_WIDTH);
    let index = (q.t * f64::from(manifest.fps) + 1e-6).floor() as u64;
    let key: FrameKey = (version, q.lang.clone(), q.sample.clone(), index, width);
    let cached = lock(&s.frames).get(&key).cloned();
    let bytes = match cached {
        Some(bytes) => bytes,
        None => {
            let studio = s.clone();
            let t = index as f64 / f64::from(manifest.fps);
            let bytes = blocking(move || {
                let tokens = values(&studio, &manifest, &samples, &q.lang, &q.sample)?;
                let mut renderer = lock(&studio.renderer);
                let mut render = || -> Result<Vec<u8>> {
                    if renderer.is_none() {
                        *renderer = Some(Renderer::new().context("starting the renderer")?);
                    }
                    let Some(r) = renderer.as_mut() else {
                        unreachable!("the renderer was just started")
                    };
                    let image = grid::frame(r, &studio.dir, &q.lang, &tokens, t, width)?;
                    grid::png(&image)
                };
                render().map_err(|e| ApiError::render(format!("{e:#}")))
            })
            .await?;
            let bytes = Arc::new(bytes);
            let mut frames = lock(&s.frames);
            if frames.len() >= MAX_CACHED_FRAMES {
                frames.clear();
            }
            frames.insert(key, bytes.clone());
            bytes
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes.as_ref().clone(),
    )
        .into_response())
}

#[derive(Debug, serde::Deserialize)]
struct LayersQuery {
    lang: String,
    sample: String,
    t: f64,
}

/// `GET /api/layers?lang=&sample=&t=`: each visible layer's box at `t` as four corners in
/// canvas pixels (top layer last), from the resolved timeline.
async fn layers(
    State(s): State<Arc<Studio>>,
    Query(q): Query<LayersQuery>,
) -> ApiResult<Json<Value>> {
    let (manifest, samples) = s.loaded()?;
    check_time(&manifest, q.t)?;
    let values = {
        let (studio, manifest, q) = (
            s.clone(),
            manifest.clone(),
            (q.lang.clone(), q.sample.clone()),
        );
        blocking(move || values(&studio, &manifest, &samples, &q.0, &q.1)).await?
    };
    let tokens = template::resolve_tokens(&manifest, &q.lang, &values)
        .map_err(|e| ApiError::render(e.to_string()))?;
    let timeline = template::resolve(&manifest, &q.lang, &tokens)
        .map_err(|e| ApiError::render(e.to_string()))?;
    let canvas = (timeline.width, timeline.height);
    let mut out = Vec::new();
    for layer in &timeline.layers {
        let Some(size) = content_size(&s.dir, &layer.content, canvas) else {
            continue;
        };
        let Some(state) = layer.state_at(q.t, size) else {
            continue;
        };
        let (w, h) = size;
        let corners: Vec<[f64; 2]> = [[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]]
            .into_iter()
            .map(|p| state.matrix.apply(p))
            .collect();
        out.push(json!({
            "id": layer.id,
            "index": layer.index,
            "kind": kind(&layer.content),
            "corners": corners,
            "opacity": state.opacity,
            "tokens": layer.tokens,
        }));
    }
    Ok(Json(json!({
        "width": timeline.width,
        "height": timeline.height,
        "layers": out,
    })))
}

fn kind(content: &ResolvedContent) -> &'static str {
    match content {
        ResolvedContent::Video { .. } => "video",
        ResolvedContent::Image { .. } => "image",
        ResolvedContent::Text { .. } => "text",
        ResolvedContent::Solid { .. } => "solid",
        ResolvedContent::Presenter { .. } => "presenter",
    }
}

/// The size a layer's content is drawn at before its transform: as declared, else the size of
/// its image or video file.
fn content_size(dir: &Path, content: &ResolvedContent, canvas: (u32, u32)) -> Option<(f64, f64)> {
    if let Some(size) = content.declared_size(canvas) {
        return Some(size);
    }
    let (src, still) = match content {
        ResolvedContent::Image { src, .. } => (src, true),
        ResolvedContent::Presenter { src, still, .. } => (src, *still),
        _ => return None,
    };
    let path = dir.join(src);
    let (w, h) = if still {
        image::image_dimensions(&path).ok()?
    } else {
        render_core::media::probe_video_size(&path).ok()?
    };
    Some((f64::from(w), f64::from(h)))
}

#[derive(Debug, serde::Deserialize)]
struct GridQuery {
    langs: Option<String>,
    times: Option<String>,
    /// `0` leaves out the worst-case rows.
    worst: Option<u8>,
}

/// `GET /api/grid?langs=hi,ta&times=1,5`: the contact sheet's times and rows (language, values
/// key, label); each cell is `/api/frame` of its row and time.
async fn grid_rows(
    State(s): State<Arc<Studio>>,
    Query(q): Query<GridQuery>,
) -> ApiResult<Json<Value>> {
    let (manifest, samples) = s.loaded()?;
    let langs = match q.langs.as_deref().filter(|l| !l.trim().is_empty()) {
        Some(l) => {
            grid::parse_langs(l, &manifest).map_err(|e| ApiError::bad(format!("languages: {e}")))?
        }
        None => manifest.languages.clone(),
    };
    let times = match q.times.as_deref().filter(|t| !t.trim().is_empty()) {
        Some(t) => grid::parse_times(t, manifest.duration)
            .map_err(|e| ApiError::bad(format!("times: {e}")))?,
        None => grid::default_times(manifest.duration),
    };
    let with_worst = q.worst != Some(0);
    let rows = {
        let studio = s.clone();
        blocking(move || {
            let worst = |l: &str| studio.worst_cases(&manifest, l);
            Ok(grid::rows(
                &samples,
                &langs,
                with_worst.then_some(&worst as grid::WorstFn<'_>),
            ))
        })
        .await?
    };
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "lang": r.lang,
                "key": r.key(),
                "describe": r.describe(),
                "labels": times.iter().map(|&t| r.label(t)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "version": s.version.load(Ordering::SeqCst),
        "times": times,
        "cell_width": grid::CELL_WIDTH,
        "rows": rows,
    })))
}

#[derive(Debug, serde::Deserialize)]
struct PreviewQuery {
    lang: String,
    sample: String,
}

/// `POST /api/preview?lang=&sample=`: starts a 720p MP4 render of that recipient in the
/// background, with its own renderer; answers with the id to follow it by.
async fn start_preview(
    State(s): State<Arc<Studio>>,
    Query(q): Query<PreviewQuery>,
) -> ApiResult<Json<Value>> {
    let (manifest, samples) = s.loaded()?;
    let tokens = {
        let (studio, q) = (s.clone(), (q.lang.clone(), q.sample.clone()));
        blocking(move || values(&studio, &manifest, &samples, &q.0, &q.1)).await?
    };
    let id = {
        let mut previews = lock(&s.previews);
        let id = previews.len();
        let safe: String = q
            .sample
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        previews.push(Preview {
            lang: q.lang.clone(),
            sample: q.sample.clone(),
            file: s.out.join(format!("preview-{id}-{}-{safe}.mp4", q.lang)),
            done: 0,
            total: 0,
            error: None,
            finished: false,
        });
        id
    };
    let studio = s.clone();
    std::thread::Builder::new()
        .name("studio-preview".into())
        .spawn(move || {
            let file = lock(&studio.previews)[id].file.clone();
            let req = RenderRequest {
                template_dir: studio.dir.clone(),
                lang: q.lang.clone(),
                tokens,
                voice: None,
                preset: Preset::P720,
                range: None,
                mouth_track: None,
            };
            let result = Renderer::new()
                .context("starting the renderer")
                .and_then(|mut r| {
                    r.render(&req, &file, &mut |done, total| {
                        let mut previews = lock(&studio.previews);
                        previews[id].done = done;
                        previews[id].total = total;
                    })
                    .map_err(anyhow::Error::from)
                });
            let mut previews = lock(&studio.previews);
            previews[id].finished = true;
            if let Err(e) = result {
                previews[id].error = Some(format!("{e:#}"));
            }
        })
        .map_err(|e| ApiError::render(format!("starting the preview render: {e}")))?;
    Ok(Json(json!({"id": id})))
}

/// `GET /api/preview/{id}`: a preview's progress, error or link.
async fn preview_status(
    State(s): State<Arc<Studio>>,
    UrlPath(id): UrlPath<usize>,
) -> ApiResult<Json<Value>> {
    let previews = lock(&s.previews);
    let p = previews
        .get(id)
        .ok_or_else(|| ApiError::bad(format!("no preview {id}")))?;
    let state = match (&p.error, p.finished) {
        (Some(_), _) => "failed",
        (None, true) => "done",
        (None, false) => "running",
    };
    Ok(Json(json!({
        "id": id,
        "lang": p.lang,
        "sample": p.sample,
        "state": state,
        "done": p.done,
        "total": p.total,
        "error": p.error,
        "file": p.file.display().to_string(),
        "url": (state == "done").then(|| format!("/out/{id}")),
    })))
}

/// `GET /out/{id}`: a finished preview's MP4.
async fn preview_file(
    State(s): State<Arc<Studio>>,
    UrlPath(id): UrlPath<usize>,
) -> ApiResult<Response> {
    let file = {
        let previews = lock(&s.previews);
        match previews.get(id) {
            Some(p) if p.finished && p.error.is_none() => p.file.clone(),
            _ => return Err(ApiError::bad(format!("no finished preview {id}"))),
        }
    };
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| ApiError::render(format!("{}: {e}", file.display())))?;
    Ok(([(header::CONTENT_TYPE, "video/mp4")], bytes).into_response())
}
