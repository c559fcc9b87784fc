//! Validation of a render request against its template version, into a [`NewJob`].

use std::collections::BTreeMap;

use proto::v1;
use sha2::{Digest, Sha256};

use super::convert::{lane_from_proto, parse_template_ref, preset_from_proto};
use super::Shared;
use crate::error::ApiError;
use crate::model::{NewJob, Tenant};

/// Longest accepted token value, in characters, before the template's own `max_length`.
pub const MAX_TOKEN_CHARS: usize = 256;
/// Deadline when the request sets none, and the longest allowed.
pub const DEFAULT_DEADLINE_S: u32 = 3_600;
pub const MAX_DEADLINE_S: u32 = 86_400;

/// Checks one request and turns it into a job to store. `field` prefixes field paths in errors
/// (empty for SubmitRender; `requests[7].` in a batch is left to the caller's message).
pub async fn prepare(
    shared: &Shared,
    tenant: &Tenant,
    req: &v1::SubmitRenderRequest,
) -> Result<NewJob, ApiError> {
    let key = &req.idempotency_key;
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(ApiError::invalid(
            "idempotency_key",
            "required: 1 to 128 printable ASCII characters without spaces",
        ));
    }
    let spec = req
        .spec
        .as_ref()
        .ok_or_else(|| ApiError::invalid("spec", "required"))?;
    let tref = parse_template_ref(&spec.template, "spec.template")?;
    let preset = preset_from_proto(spec.preset, "spec.preset")?;
    let lane = lane_from_proto(spec.lane, "spec.lane")?;
    let deadline_s = match spec.deadline_s {
        0 => DEFAULT_DEADLINE_S,
        s if s <= MAX_DEADLINE_S => s,
        _ => {
            return Err(ApiError::invalid(
                "spec.deadline_s",
                format!("at most {MAX_DEADLINE_S} seconds"),
            ))
        }
    };
    for (name, value) in &spec.tokens {
        if value.chars().count() > MAX_TOKEN_CHARS {
            return Err(ApiError::invalid(
                format!("spec.tokens.{}", printable(name)),
                format!("longer than {MAX_TOKEN_CHARS} characters"),
            ));
        }
    }
    let record = shared
        .store
        .template(&tenant.id, &tref)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(
                "spec.template",
                format!(
                    "no template `{}` (upload it with TemplateService.UploadTemplate)",
                    spec.template
                ),
            )
        })?;
    let manifest = shared.manifest(&record)?;
    // A tag such as `en-IN` renders in the template's `en`, and the job records `en`.
    let lang = if spec.lang.is_empty() {
        manifest.default_language.clone()
    } else {
        template::template_language(&manifest, &spec.lang)
            .unwrap_or(&spec.lang)
            .to_owned()
    };
    let tokens = template::resolve_tokens(&manifest, &lang, &spec.tokens).map_err(|e| {
        let field = match e.token() {
            Some(name) => format!("spec.tokens.{}", printable(name)),
            None => "spec.lang".to_owned(),
        };
        ApiError::invalid(field, e.to_string())
    })?;
    let now = shared.now();
    Ok(NewJob {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant.id.clone(),
        idempotency_key: key.clone(),
        request_hash: request_hash(spec),
        template_name: record.name.clone(),
        template_version: record.version,
        template_digest: record.digest.clone(),
        lang,
        tokens,
        preset: preset.to_owned(),
        lane,
        created_ms: now,
        deadline_ms: now + i64::from(deadline_s) * 1000,
    })
}

/// Token names come from the caller: keep error field paths short and printable.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

/// SHA-256 over the request as sent (template reference as written, so a later alias move does
/// not turn a retry into a conflict).
pub fn request_hash(spec: &v1::RenderSpec) -> String {
    let canonical = serde_json::json!({
        "template": spec.template,
        "lang": spec.lang,
        "tokens": spec.tokens.iter().collect::<BTreeMap<_, _>>(),
        "preset": spec.preset,
        "lane": spec.lane,
        "deadline_s": spec.deadline_s,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}
