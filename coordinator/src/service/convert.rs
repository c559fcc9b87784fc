//! Conversions between prost types and domain types, at the services' edge.

use proto::v1;
use template::Manifest;

use crate::error::ApiError;
use crate::model::{
    ArtifactKind, FailureClass, Fence, Job, JobState, Lane, TemplateRecord, TemplateRef,
};

pub fn lane_from_proto(v: i32, field: &str) -> Result<Lane, ApiError> {
    match v1::Lane::try_from(v) {
        Ok(v1::Lane::Unspecified | v1::Lane::Realtime) => Ok(Lane::Realtime),
        Ok(v1::Lane::Bulk) => Ok(Lane::Bulk),
        Err(_) => Err(ApiError::invalid(field, format!("unknown lane {v}"))),
    }
}

pub fn lane_to_proto(l: Lane) -> v1::Lane {
    match l {
        Lane::Realtime => v1::Lane::Realtime,
        Lane::Bulk => v1::Lane::Bulk,
    }
}

/// The stored name of a wire preset (unset means 720p, as the protocol says).
pub fn preset_from_proto(v: i32, field: &str) -> Result<&'static str, ApiError> {
    proto::convert::preset_from_wire(v)
        .map(template::Preset::name)
        .ok_or_else(|| ApiError::invalid(field, format!("unknown preset {v}")))
}

/// The wire preset of a stored name.
pub fn preset_to_proto(name: &str) -> v1::Preset {
    name.parse::<template::Preset>()
        .map_or(v1::Preset::Preset720p, v1::Preset::from)
}

pub fn state_to_proto(s: JobState) -> v1::RenderState {
    match s {
        JobState::Queued => v1::RenderState::Queued,
        JobState::Running => v1::RenderState::Running,
        JobState::Succeeded => v1::RenderState::Succeeded,
        JobState::Failed => v1::RenderState::Failed,
        JobState::Cancelled => v1::RenderState::Cancelled,
    }
}

pub fn state_from_proto(v: i32, field: &str) -> Result<Option<JobState>, ApiError> {
    Ok(match v1::RenderState::try_from(v) {
        Ok(v1::RenderState::Unspecified) => None,
        Ok(v1::RenderState::Queued) => Some(JobState::Queued),
        Ok(v1::RenderState::Running) => Some(JobState::Running),
        Ok(v1::RenderState::Succeeded) => Some(JobState::Succeeded),
        Ok(v1::RenderState::Failed) => Some(JobState::Failed),
        Ok(v1::RenderState::Cancelled) => Some(JobState::Cancelled),
        Err(_) => return Err(ApiError::invalid(field, format!("unknown state {v}"))),
    })
}

pub fn class_to_proto(c: FailureClass) -> v1::FailureClass {
    match c {
        FailureClass::InvalidInput => v1::FailureClass::InvalidInput,
        FailureClass::Application => v1::FailureClass::Application,
        FailureClass::Infrastructure => v1::FailureClass::Infrastructure,
        FailureClass::DeadlineExceeded => v1::FailureClass::DeadlineExceeded,
    }
}

pub fn class_from_proto(v: i32, field: &str) -> Result<FailureClass, ApiError> {
    match v1::FailureClass::try_from(v) {
        Ok(v1::FailureClass::InvalidInput) => Ok(FailureClass::InvalidInput),
        Ok(v1::FailureClass::Application) => Ok(FailureClass::Application),
        Ok(v1::FailureClass::Infrastructure) => Ok(FailureClass::Infrastructure),
        Ok(v1::FailureClass::DeadlineExceeded) => Ok(FailureClass::DeadlineExceeded),
        Ok(v1::FailureClass::Unspecified) => Err(ApiError::invalid(field, "required")),
        Err(_) => Err(ApiError::invalid(
            field,
            format!("unknown failure class {v}"),
        )),
    }
}

pub fn artifact_from_proto(v: i32, field: &str) -> Result<ArtifactKind, ApiError> {
    match v1::Artifact::try_from(v) {
        Ok(v1::Artifact::Unspecified | v1::Artifact::Video) => Ok(ArtifactKind::Video),
        Ok(v1::Artifact::Poster) => Ok(ArtifactKind::Poster),
        Err(_) => Err(ApiError::invalid(field, format!("unknown artifact {v}"))),
    }
}

/// A render as the API shows it.
pub fn render_to_proto(job: &Job, with_tokens: bool) -> v1::Render {
    let output = job.output.as_ref().map(|o| v1::RenderOutput {
        video_bytes: o.video.as_ref().map_or(0, |f| f.bytes),
        video_sha256: o
            .video
            .as_ref()
            .map(|f| f.sha256.clone())
            .unwrap_or_default(),
        poster_bytes: o.poster.as_ref().map_or(0, |f| f.bytes),
        poster_sha256: o
            .poster
            .as_ref()
            .map(|f| f.sha256.clone())
            .unwrap_or_default(),
        stage_seconds: o.stage_seconds.clone(),
    });
    let failure = job
        .failure
        .as_ref()
        .map(|(class, message)| v1::RenderFailure {
            class: class_to_proto(*class) as i32,
            message: message.clone(),
        });
    v1::Render {
        id: job.id.clone(),
        idempotency_key: job.idempotency_key.clone(),
        template_name: job.template_name.clone(),
        template_version: job.template_version,
        lang: job.lang.clone(),
        preset: preset_to_proto(&job.preset) as i32,
        lane: lane_to_proto(job.lane) as i32,
        state: state_to_proto(job.state) as i32,
        progress: job.progress,
        stage: job.stage.clone(),
        created_unix_ms: job.created_ms,
        updated_unix_ms: job.updated_ms,
        finished_unix_ms: job.finished_ms,
        started_unix_ms: job.started_ms,
        not_before_unix_ms: if job.state == JobState::Queued {
            job.not_before_ms
        } else {
            0
        },
        deadline_unix_ms: job.deadline_ms,
        attempts: job.attempts,
        output,
        failure,
        warnings: job.warnings.clone(),
        tokens: if with_tokens {
            job.tokens.clone()
        } else {
            Default::default()
        },
        // Signed per response: see `super::stream::stream_url`.
        stream_url: String::new(),
        metadata: job.metadata.clone(),
        callback_url: job.callback_url.clone(),
    }
}

/// A template version as the API shows it.
pub fn template_to_proto(r: &TemplateRecord, m: &Manifest, created: bool) -> v1::TemplateVersion {
    v1::TemplateVersion {
        name: r.name.clone(),
        version: r.version,
        digest: r.digest.clone(),
        size_bytes: r.size_bytes,
        created_unix_ms: r.created_ms,
        aliases: r.aliases.clone(),
        languages: m.languages.clone(),
        default_language: m.default_language.clone(),
        tokens: m
            .tokens
            .iter()
            .map(|(name, spec)| v1::TokenInfo {
                name: name.clone(),
                required: spec.required,
                max_chars: spec.max_length as u32,
            })
            .collect(),
        width: m.width,
        height: m.height,
        fps: m.fps,
        duration_s: m.duration,
        created,
    }
}

/// `[a-z0-9-]{1,64}`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `[a-z0-9-]{1,32}`, not all digits (those are versions).
pub fn valid_alias(alias: &str) -> bool {
    valid_name(alias) && alias.len() <= 32 && !alias.bytes().all(|b| b.is_ascii_digit())
}

/// Parses `name`, `name@7` or `name@alias`.
pub fn parse_template_ref(s: &str, field: &str) -> Result<TemplateRef, ApiError> {
    let bad = |m: &str| ApiError::invalid(field, m.to_owned());
    if s.is_empty() {
        return Err(bad("required: `name`, `name@VERSION` or `name@ALIAS`"));
    }
    let (name, suffix) = match s.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    if !valid_name(name) {
        return Err(bad("template names are 1 to 64 of a-z, 0-9 and -"));
    }
    Ok(match suffix {
        None => TemplateRef::Latest(name.to_owned()),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = v.parse().map_err(|_| bad("version out of range"))?;
            if n == 0 {
                return Err(bad("versions start at 1"));
            }
            TemplateRef::Version(name.to_owned(), n)
        }
        Some(alias) if valid_alias(alias) => TemplateRef::Alias(name.to_owned(), alias.to_owned()),
        Some(_) => return Err(bad("aliases are 1 to 32 of a-z, 0-9 and -")),
    })
}

/// The fence of an AttemptRef; `field` names it in errors.
pub fn fence_from_proto(a: Option<&v1::AttemptRef>, field: &str) -> Result<Fence, ApiError> {
    let a = a.ok_or_else(|| ApiError::invalid(field, "required"))?;
    if a.render_id.is_empty() || a.attempt_id.is_empty() {
        return Err(ApiError::invalid(
            field,
            "render_id and attempt_id are required",
        ));
    }
    Ok(Fence {
        job_id: a.render_id.clone(),
        attempt_id: a.attempt_id.clone(),
        epoch: a.lease_epoch,
    })
}

pub fn fence_to_proto(f: &Fence) -> v1::AttemptRef {
    v1::AttemptRef {
        render_id: f.job_id.clone(),
        attempt_id: f.attempt_id.clone(),
        lease_epoch: f.epoch,
    }
}

/// Page size: 0 → 50, at most 1000.
pub fn page_size(v: u32, field: &str) -> Result<u32, ApiError> {
    match v {
        0 => Ok(50),
        1..=1000 => Ok(v),
        _ => Err(ApiError::invalid(field, "at most 1000")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_refs() {
        assert_eq!(
            parse_template_ref("order-delivered", "t").ok(),
            Some(TemplateRef::Latest("order-delivered".into()))
        );
        assert_eq!(
            parse_template_ref("a@12", "t").ok(),
            Some(TemplateRef::Version("a".into(), 12))
        );
        assert_eq!(
            parse_template_ref("a@live", "t").ok(),
            Some(TemplateRef::Alias("a".into(), "live".into()))
        );
        for bad in ["", "A", "a@", "a@0", "a@Live", "../x", "a@b@c"] {
            let err = parse_template_ref(bad, "spec.template");
            assert!(
                matches!(&err, Err(ApiError::InvalidArgument { field, .. }) if field == "spec.template"),
                "{bad}: {err:?}"
            );
        }
    }
}
