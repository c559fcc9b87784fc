//! `reelfarm render get|list|cancel|watch|callback-secret`: a tenant's renders on a farm, and
//! the progress lines `render watch` and `submit --wait` print. Human-readable by default;
//! `--json` prints one JSON object (an array for `list`) for scripts.

use std::io::{IsTerminal as _, Write as _};

use anyhow::{bail, Result};
use farm::{failure_class_name, lane_name, preset_name, state_name, watch};
use proto::v1;
use serde_json::{json, Value};

use super::connect;
use crate::cli::{ClientArgs, RenderCommand, StateArg};

/// Runs one of the farm subcommands of `render`.
pub fn run(command: RenderCommand) -> Result<()> {
    farm::runtime()?.block_on(async move {
        match command {
            RenderCommand::Get { id, json, client } => {
                let r = connect(&client).await?.get_render(&id).await?;
                print_render(&r, json)
            }
            RenderCommand::List {
                state,
                limit,
                json,
                client,
            } => list(state, limit, json, &client).await,
            RenderCommand::Cancel { id, json, client } => {
                let r = connect(&client).await?.cancel_render(&id).await?;
                if json {
                    return print_json(&render_json(&r));
                }
                let what = if r.state == v1::RenderState::Cancelled as i32 {
                    "cancelled".to_owned()
                } else {
                    format!("not cancelled: it had already {}", state_name(r.state))
                };
                println!("render {}: {what}", r.id);
                println!("state: {}", state_name(r.state));
                Ok(())
            }
            RenderCommand::Watch { id, json, client } => {
                let mut farm = connect(&client).await?;
                let mut lines = ProgressLines::default();
                let done = watch(&mut farm, &id, |r| {
                    if let Some(line) = lines.line(r) {
                        if json {
                            eprintln!("{line}");
                        } else {
                            // A reader gone away stops the lines, not the watch: its exit
                            // status still says how the render ended.
                            let _ = emit(&format!("{line}\n"));
                        }
                    }
                })
                .await?;
                if json {
                    print_json(&render_json(&done))?;
                }
                ended(&done)
            }
            RenderCommand::CallbackSecret { json, client } => {
                let secret = connect(&client).await?.callback_secret().await?;
                if json {
                    print_json(&json!({ "secret": secret }))
                } else {
                    println!("{secret}");
                    Ok(())
                }
            }
        }
    })
}

/// `render list`: the newest renders, as a table or one JSON array.
async fn list(state: Option<StateArg>, limit: u32, json: bool, client: &ClientArgs) -> Result<()> {
    let state = state.map(|s| match s {
        StateArg::Queued => v1::RenderState::Queued,
        StateArg::Running => v1::RenderState::Running,
        StateArg::Succeeded => v1::RenderState::Succeeded,
        StateArg::Failed => v1::RenderState::Failed,
        StateArg::Cancelled => v1::RenderState::Cancelled,
    });
    let renders = connect(client)
        .await?
        .list_renders(state, limit as usize)
        .await?;
    if json {
        return print_json(&Value::Array(renders.iter().map(render_json).collect()));
    }
    if renders.is_empty() {
        return emit("no renders\n");
    }
    let mut rows = vec![["ID", "STATE", "TEMPLATE", "LANG", "PRESET", "CREATED"]
        .map(str::to_owned)
        .to_vec()];
    rows.extend(renders.iter().map(|r| {
        vec![
            r.id.clone(),
            state_cell(r),
            format!("{}@{}", r.template_name, r.template_version),
            r.lang.clone(),
            preset_name(r.preset).to_owned(),
            time_text(r.created_unix_ms),
        ]
    }));
    emit(&table(&rows))
}

/// Rows as a table: each column as wide as its widest cell, two spaces apart.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
pub fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// A state with the progress of a running render: `running 42%`.
fn state_cell(r: &v1::Render) -> String {
    if r.state == v1::RenderState::Running as i32 {
        format!("running {}%", percent(r.progress))
    } else {
        state_name(r.state).to_owned()
    }
}

/// `Ok` for a render that succeeded; an error saying how it ended otherwise.
pub fn ended(r: &v1::Render) -> Result<()> {
    match v1::RenderState::try_from(r.state) {
        Ok(v1::RenderState::Succeeded) => Ok(()),
        Ok(v1::RenderState::Failed) => {
            let why = r
                .failure
                .as_ref()
                .map(|f| format!(": {}: {}", failure_class_name(f.class), f.message))
                .unwrap_or_default();
            bail!("render {} failed{why}", r.id)
        }
        Ok(v1::RenderState::Cancelled) => bail!("render {} was cancelled", r.id),
        _ => bail!(
            "render {}: the watch ended while it was {}",
            r.id,
            state_name(r.state)
        ),
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &Value) -> Result<()> {
    emit(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

/// Prints one render: JSON, or one `field: value` line per field that is set.
fn print_render(r: &v1::Render, json: bool) -> Result<()> {
    if json {
        return print_json(&render_json(r));
    }
    let text: String = render_lines(r)
        .into_iter()
        .map(|(field, value)| format!("{field:<10} {value}\n"))
        .collect();
    emit(&text)
}

/// A render's fields as (label, text), leaving out those that are not set.
fn render_lines(r: &v1::Render) -> Vec<(&'static str, String)> {
    let mut lines = vec![
        ("render:", r.id.clone()),
        ("state:", progress_text(r)),
        (
            "template:",
            format!(
                "{}@{}, {}, {}, {} lane",
                r.template_name,
                r.template_version,
                r.lang,
                preset_name(r.preset),
                lane_name(r.lane)
            ),
        ),
        ("key:", r.idempotency_key.clone()),
        ("created:", time_text(r.created_unix_ms)),
    ];
    if r.started_unix_ms > 0 {
        lines.push(("started:", time_text(r.started_unix_ms)));
    }
    if r.finished_unix_ms > 0 {
        lines.push((
            "finished:",
            format!(
                "{} ({:.1} s after submission)",
                time_text(r.finished_unix_ms),
                (r.finished_unix_ms - r.created_unix_ms) as f64 / 1000.0
            ),
        ));
    } else if r.not_before_unix_ms > 0 {
        lines.push(("retry at:", time_text(r.not_before_unix_ms)));
    }
    if r.deadline_unix_ms > 0 && r.finished_unix_ms == 0 {
        lines.push(("deadline:", time_text(r.deadline_unix_ms)));
    }
    lines.push(("attempts:", r.attempts.to_string()));
    if let Some(o) = &r.output {
        lines.push((
            "output:",
            format!(
                "video {:.2} MB (sha256 {}), poster {:.1} KB",
                o.video_bytes as f64 / 1e6,
                short(&o.video_sha256),
                o.poster_bytes as f64 / 1e3
            ),
        ));
    }
    if let Some(f) = &r.failure {
        lines.push((
            "failure:",
            format!("{}: {}", failure_class_name(f.class), f.message),
        ));
    }
    for w in &r.warnings {
        lines.push(("warning:", w.clone()));
    }
    if !r.tokens.is_empty() {
        lines.push(("tokens:", pairs(&r.tokens)));
    }
    lines.push((
        "metadata:",
        if r.metadata.is_empty() {
            "none".to_owned()
        } else {
            pairs(&r.metadata)
        },
    ));
    lines.push((
        "callback:",
        if r.callback_url.is_empty() {
            "none".to_owned()
        } else {
            r.callback_url.clone()
        },
    ));
    if !r.stream_url.is_empty() {
        lines.push(("stream:", r.stream_url.clone()));
    }
    lines
}

/// `a=b, c=d`.
fn pairs(map: &std::collections::BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first 12 digits of a digest.
fn short(digest: &str) -> &str {
    &digest[..12.min(digest.len())]
}

/// A time in milliseconds since the Unix epoch as `2026-01-31 17:04:05 UTC`; `-` for 0.
pub fn time_text(unix_ms: i64) -> String {
    if unix_ms <= 0 {
        return "-".to_owned();
    }
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| unix_ms.to_string())
}

/// A time in milliseconds since the Unix epoch as RFC 3339, or null for 0.
fn time_json(unix_ms: i64) -> Value {
    if unix_ms <= 0 {
        return Value::Null;
    }
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// A render as a JSON object: the wire's fields, with names for its enumerations and RFC 3339
/// times (null when not reached).
pub fn render_json(r: &v1::Render) -> Value {
    json!({
        "id": r.id,
        "idempotency_key": r.idempotency_key,
        "template": r.template_name,
        "template_version": r.template_version,
        "lang": r.lang,
        "preset": preset_name(r.preset),
        "lane": lane_name(r.lane),
        "state": state_name(r.state),
        "progress": r.progress,
        "stage": r.stage,
        "attempts": r.attempts,
        "created": time_json(r.created_unix_ms),
        "updated": time_json(r.updated_unix_ms),
        "started": time_json(r.started_unix_ms),
        "finished": time_json(r.finished_unix_ms),
        "not_before": time_json(r.not_before_unix_ms),
        "deadline": time_json(r.deadline_unix_ms),
        "output": r.output.as_ref().map(|o| json!({
            "video_bytes": o.video_bytes,
            "video_sha256": o.video_sha256,
            "poster_bytes": o.poster_bytes,
            "poster_sha256": o.poster_sha256,
            "stage_seconds": o.stage_seconds,
        })),
        "failure": r.failure.as_ref().map(|f| json!({
            "class": failure_class_name(f.class),
            "message": f.message,
        })),
        "warnings": r.warnings,
        "tokens": r.tokens,
        "metadata": r.metadata,
        "callback_url": r.callback_url,
        "stream_url": r.stream_url,
    })
}

/// Whole percent of a progress fraction, 0 to 100.
fn percent(progress: f32) -> u32 {
    (progress.clamp(0.0, 1.0) * 100.0).floor() as u32
}

/// One render's state in a few words: `queued`, `running: render 42%`, `succeeded`,
/// `failed: application: …`, `queued after a failed attempt: …`.
pub fn progress_text(r: &v1::Render) -> String {
    let state = state_name(r.state);
    let failure = r
        .failure
        .as_ref()
        .map(|f| format!("{}: {}", failure_class_name(f.class), f.message));
    match v1::RenderState::try_from(r.state) {
        Ok(v1::RenderState::Running) => {
            let stage = if r.stage.is_empty() {
                String::new()
            } else {
                format!(" {}", r.stage)
            };
            format!("running:{stage} {}%", percent(r.progress))
        }
        Ok(v1::RenderState::Queued) => match failure {
            Some(f) => format!("queued after a failed attempt ({f})"),
            None => state.to_owned(),
        },
        Ok(v1::RenderState::Failed) => match failure {
            Some(f) => format!("failed: {f}"),
            None => state.to_owned(),
        },
        _ => state.to_owned(),
    }
}

/// Decides which updates of a render are worth a line of their own: a change of state or
/// stage, and every 10 % of progress.
#[derive(Debug, Default)]
pub struct ProgressLines {
    last: Option<(i32, String, u32)>,
}

impl ProgressLines {
    /// The line for `r`, or `None` when it says nothing the last line did not.
    pub fn line(&mut self, r: &v1::Render) -> Option<String> {
        let decile = percent(r.progress) / 10;
        let key = (r.state, r.stage.clone(), decile);
        if self.last.as_ref() == Some(&key) {
            return None;
        }
        self.last = Some(key);
        Some(progress_text(r))
    }
}

/// A render's progress on stderr: one line rewritten in place when stderr is a terminal,
/// otherwise the lines of [`ProgressLines`].
pub struct StatusLine {
    terminal: bool,
    lines: ProgressLines,
    shown: bool,
}

impl StatusLine {
    /// A status line on this process's stderr.
    pub fn stderr() -> StatusLine {
        StatusLine {
            terminal: std::io::stderr().is_terminal(),
            lines: ProgressLines::default(),
            shown: false,
        }
    }

    /// Shows an update of the render.
    pub fn update(&mut self, r: &v1::Render) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            // Carriage return, the text, then erase what a longer previous text left.
            let _ = write!(err, "\r{}\x1b[K", progress_text(r));
            let _ = err.flush();
            self.shown = true;
        } else if let Some(line) = self.lines.line(r) {
            let _ = writeln!(err, "{line}");
        }
    }

    /// Ends the line rewritten in place, so that what follows starts on a line of its own.
    pub fn finish(&mut self) {
        if self.shown {
            eprintln!();
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(state: v1::RenderState, stage: &str, progress: f32) -> v1::Render {
        v1::Render {
            id: "r1".into(),
            state: state as i32,
            stage: stage.into(),
            progress,
            ..Default::default()
        }
    }

    #[test]
    fn a_line_per_state_stage_and_tenth() {
        use v1::RenderState::{Queued, Running, Succeeded};
        let mut lines = ProgressLines::default();
        let updates = [
            render(Queued, "", 0.0),
            render(Running, "prepare", 0.0),
            render(Running, "render", 0.01),
            render(Running, "render", 0.05),
            render(Running, "render", 0.12),
            render(Running, "render", 0.19),
            render(Running, "render", 0.42),
            render(Running, "upload", 0.99),
            render(Running, "upload", 1.0),
            render(Succeeded, "", 1.0),
        ];
        let printed: Vec<String> = updates.iter().filter_map(|r| lines.line(r)).collect();
        assert_eq!(
            printed,
            [
                "queued",
                "running: prepare 0%",
                "running: render 1%",
                "running: render 12%",
                "running: render 42%",
                "running: upload 99%",
                "running: upload 100%",
                "succeeded",
            ]
        );
    }

    #[test]
    fn failures_say_their_class_and_message() {
        let mut r = render(v1::RenderState::Failed, "", 0.3);
        r.failure = Some(v1::RenderFailure {
            class: v1::FailureClass::InvalidInput as i32,
            message: "token `first_name`: too long".into(),
        });
        assert_eq!(
            progress_text(&r),
            "failed: invalid_input: token `first_name`: too long"
        );
        assert_eq!(
            ended(&r).expect_err("failed").to_string(),
            "render r1 failed: invalid_input: token `first_name`: too long"
        );
        r.state = v1::RenderState::Queued as i32;
        assert!(progress_text(&r).starts_with("queued after a failed attempt"));
        let cancelled = render(v1::RenderState::Cancelled, "", 0.0);
        assert_eq!(
            ended(&cancelled).expect_err("cancelled").to_string(),
            "render r1 was cancelled"
        );
        assert!(ended(&render(v1::RenderState::Succeeded, "", 1.0)).is_ok());
    }

    #[test]
    fn tables_fit_their_widest_cell() {
        let rows: Vec<Vec<String>> = [["ID", "STATE", "CREATED"], ["r-1", "running 5%", "-"]]
            .iter()
            .map(|r| r.map(str::to_owned).to_vec())
            .collect();
        assert_eq!(
            table(&rows),
            "ID   STATE       CREATED\nr-1  running 5%  -\n"
        );
    }

    #[test]
    fn renders_as_json_and_lines() {
        let mut r = render(v1::RenderState::Succeeded, "", 1.0);
        r.template_name = "order-delivered".into();
        r.template_version = 3;
        r.lang = "hi".into();
        r.created_unix_ms = 1_767_225_600_000;
        r.finished_unix_ms = 1_767_225_612_500;
        r.metadata = [("order".to_owned(), "4711".to_owned())].into();
        r.callback_url = "https://example.com/hook".into();
        let j = render_json(&r);
        assert_eq!(j["state"], "succeeded");
        assert_eq!(j["preset"], "720p", "unset is the default preset");
        assert_eq!(j["lane"], "realtime");
        assert_eq!(j["metadata"]["order"], "4711");
        assert_eq!(j["callback_url"], "https://example.com/hook");
        assert_eq!(j["created"], "2026-01-01T00:00:00.000Z");
        assert_eq!(j["started"], Value::Null);
        let lines = render_lines(&r);
        let get = |label: &str| {
            lines
                .iter()
                .find(|(l, _)| *l == label)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {label} in {lines:?}"))
        };
        assert_eq!(
            get("template:"),
            "order-delivered@3, hi, 720p, realtime lane"
        );
        assert_eq!(
            get("finished:"),
            "2026-01-01 00:00:12 UTC (12.5 s after submission)"
        );
        assert_eq!(get("metadata:"), "order=4711");
        assert_eq!(get("callback:"), "https://example.com/hook");
    }
}
