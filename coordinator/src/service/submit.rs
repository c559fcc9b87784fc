//! Validation of a render request against its template version, into a [`NewJob`].

use std::collections::BTreeMap;

use proto::v1;
use sha2::{Digest, Sha256};

use super::convert::{lane_from_proto, parse_template_ref, preset_from_proto};
use super::{Callbacks, Shared};
use crate::error::ApiError;
use crate::model::{NewJob, Tenant};

/// Longest accepted token value, in characters, before the template's own `max_length`.
pub const MAX_TOKEN_CHARS: usize = 256;
/// Deadline when the request sets none, and the longest allowed.
pub const DEFAULT_DEADLINE_S: u32 = 3_600;
pub const MAX_DEADLINE_S: u32 = 86_400;
/// Most metadata entries on a render.
pub const MAX_METADATA_ENTRIES: usize = 16;
/// Longest metadata key, in characters (a-z, A-Z, 0-9, `_`, `-`, `.`).
pub const MAX_METADATA_KEY_CHARS: usize = 40;
/// Longest metadata value, in characters.
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
/// Longest callback URL, in bytes.
pub const MAX_CALLBACK_URL_BYTES: usize = 2048;

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
    check_metadata(&spec.metadata)?;
    check_callback(shared.settings.callbacks, &spec.callback_url).await?;
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
        metadata: spec.metadata.clone(),
        callback_url: spec.callback_url.clone(),
    })
}

/// The client's labels: a few short entries with plain keys; values are kept exactly as given
/// (they are the client's, returned and delivered to the client only).
fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(ApiError::invalid(
            "spec.metadata",
            format!("at most {MAX_METADATA_ENTRIES} entries"),
        ));
    }
    for (key, value) in metadata {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS || !key.chars().all(plain)
        {
            return Err(ApiError::invalid(
                format!("spec.metadata.{}", printable(key)),
                format!(
                    "keys are 1 to {MAX_METADATA_KEY_CHARS} characters of a-z, A-Z, 0-9, `_`, `-` \
                     and `.`"
                ),
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(ApiError::invalid(
                format!("spec.metadata.{key}"),
                format!("longer than {MAX_METADATA_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// A callback URL is refused when the farm delivers none, and otherwise checked the way a
/// campaign's destination is (`proto::destination::check_destination`).
async fn check_callback(policy: Callbacks, url: &str) -> Result<(), ApiError> {
    if url.is_empty() {
        return Ok(());
    }
    if url.len() > MAX_CALLBACK_URL_BYTES {
        return Err(ApiError::invalid(
            "spec.callback_url",
            format!("longer than {MAX_CALLBACK_URL_BYTES} bytes"),
        ));
    }
    let allow_private =
        match policy {
            Callbacks::Refused => return Err(ApiError::invalid(
                "spec.callback_url",
                "this farm delivers no callbacks (the coordinator runs without the trigger layer)",
            )),
            Callbacks::Public => false,
            Callbacks::AnyAddress => true,
        };
    proto::destination::check_destination(url, allow_private)
        .await
        .map(drop)
        .map_err(|e| ApiError::invalid("spec.callback_url", e.to_string()))
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
    let mut canonical = serde_json::json!({
        "template": spec.template,
        "lang": spec.lang,
        "tokens": spec.tokens.iter().collect::<BTreeMap<_, _>>(),
        "preset": spec.preset,
        "lane": spec.lane,
        "deadline_s": spec.deadline_s,
    });
    // Only when set, so a request without them hashes as it did before they existed (a retry
    // across an upgrade is still recognised).
    if !spec.metadata.is_empty() {
        canonical["metadata"] = serde_json::json!(spec.metadata);
    }
    if !spec.callback_url.is_empty() {
        canonical["callback_url"] = serde_json::json!(spec.callback_url);
    }
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}
