//! A tenant's client of a farm: the gRPC services on one channel with the API key on every
//! call, following a render to its end, and the HTTP event endpoint.

use std::path::Path;

use anyhow::{bail, Context, Result};
use proto::auth::Bearer;
use proto::v1;
use proto::v1::render_service_client::RenderServiceClient;
use proto::v1::template_service_client::TemplateServiceClient;
use proto::v1::trigger_service_client::TriggerServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

type Authed = InterceptedService<Channel, Bearer>;

/// Clients of the tenant-facing services.
#[derive(Clone)]
pub struct TenantClient {
    pub renders: RenderServiceClient<Authed>,
    pub templates: TemplateServiceClient<Authed>,
    pub triggers: TriggerServiceClient<Authed>,
}

/// Largest message the client accepts (batch submission answers).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Largest page the listing calls accept.
const MAX_PAGE_SIZE: u32 = 1000;

/// Opens a channel to `url` (TLS with `tls_ca` for https://).
async fn channel(url: &str, tls_ca: Option<&Path>) -> Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("coordinator URL `{url}` is not a valid URL"))?
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(10));
    if url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = tls_ca {
            let pem = std::fs::read(ca)
                .with_context(|| format!("--tls-ca {}: cannot read", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).context("configuring TLS")?;
    } else if tls_ca.is_some() {
        bail!("--tls-ca needs an https:// coordinator URL");
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("cannot reach the coordinator at {url}"))
}

impl TenantClient {
    /// Connects to the coordinator at `url` (TLS with `tls_ca` for https://) as the tenant
    /// whose API key is `api_key`.
    pub async fn connect(url: &str, api_key: &str, tls_ca: Option<&Path>) -> Result<TenantClient> {
        let channel = channel(url, tls_ca).await?;
        let bearer =
            Bearer::new(api_key).context("the API key holds characters that cannot be sent")?;
        Ok(TenantClient {
            renders: RenderServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            templates: TemplateServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            triggers: TriggerServiceClient::with_interceptor(channel, bearer),
        })
    }

    /// Uploads a template folder (packed as a deterministic tar) and returns its version.
    pub async fn push_template(
        &mut self,
        dir: &Path,
        aliases: &[String],
    ) -> Result<v1::TemplateVersion> {
        let archive = template::pack_dir(dir)
            .with_context(|| format!("packing template {}", dir.display()))?;
        let mut messages = vec![v1::UploadTemplateRequest {
            part: Some(v1::upload_template_request::Part::Header(
                v1::UploadTemplateHeader {
                    aliases: aliases.to_vec(),
                },
            )),
        }];
        for chunk in archive.chunks(proto::CHUNK_BYTES) {
            messages.push(v1::UploadTemplateRequest {
                part: Some(v1::upload_template_request::Part::Chunk(chunk.to_vec())),
            });
        }
        let version = self
            .templates
            .upload_template(futures::stream::iter(messages))
            .await
            .map_err(status_error)?
            .into_inner();
        Ok(version)
    }

    /// Every template of the tenant (the newest version of each), through every page of
    /// `ListTemplates`.
    pub async fn list_templates(&mut self) -> Result<Vec<v1::TemplateVersion>> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .templates
                .list_templates(v1::ListTemplatesRequest {
                    page_size: MAX_PAGE_SIZE,
                    page_token: page_token.clone(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            all.extend(page.templates);
            if page.next_page_token.is_empty() || page.next_page_token == page_token {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }

    /// The tenant's newest renders, at most `limit`, only those in `state` when given: pages of
    /// `ListRenders` until `limit` renders or the last page.
    pub async fn list_renders(
        &mut self,
        state: Option<v1::RenderState>,
        limit: usize,
    ) -> Result<Vec<v1::Render>> {
        self.list_renders_in_pages(state, limit, MAX_PAGE_SIZE)
            .await
    }

    /// [`TenantClient::list_renders`] asking for pages of at most `page_size` renders.
    pub async fn list_renders_in_pages(
        &mut self,
        state: Option<v1::RenderState>,
        limit: usize,
        page_size: u32,
    ) -> Result<Vec<v1::Render>> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        while all.len() < limit {
            let page_size =
                (limit - all.len()).min(page_size.clamp(1, MAX_PAGE_SIZE) as usize) as u32;
            let page = self
                .renders
                .list_renders(v1::ListRendersRequest {
                    page_size,
                    page_token: page_token.clone(),
                    state: state.map_or(v1::RenderState::Unspecified as i32, |s| s as i32),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            all.extend(page.renders);
            if page.next_page_token.is_empty() || page.next_page_token == page_token {
                break;
            }
            page_token = page.next_page_token;
        }
        all.truncate(limit);
        Ok(all)
    }

    /// One render, with its tokens.
    pub async fn get_render(&mut self, id: &str) -> Result<v1::Render> {
        Ok(self
            .renders
            .get_render(v1::GetRenderRequest { id: id.to_owned() })
            .await
            .map_err(status_error)
            .with_context(|| format!("render {id}"))?
            .into_inner())
    }

    /// Cancels a render that has not finished; returns it as it is after the call (a finished
    /// render is returned unchanged).
    pub async fn cancel_render(&mut self, id: &str) -> Result<v1::Render> {
        Ok(self
            .renders
            .cancel_render(v1::CancelRenderRequest { id: id.to_owned() })
            .await
            .map_err(status_error)
            .with_context(|| format!("cancelling render {id}"))?
            .into_inner())
    }

    /// The secret that signs the tenant's per-render callbacks (`whsec_…`).
    pub async fn callback_secret(&mut self) -> Result<String> {
        Ok(self
            .triggers
            .get_callback_secret(v1::GetCallbackSecretRequest {})
            .await
            .map_err(status_error)
            .context("reading the callback secret")?
            .into_inner()
            .secret)
    }

    /// Downloads a finished render's video or poster into `path` (written beside it, then
    /// renamed).
    pub async fn download(&mut self, id: &str, artifact: v1::Artifact, path: &Path) -> Result<u64> {
        use tokio::io::AsyncWriteExt as _;
        let mut stream = self
            .renders
            .download_render(v1::DownloadRenderRequest {
                id: id.to_owned(),
                artifact: artifact as i32,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        let partial = path.with_extension("partial");
        let mut file = tokio::fs::File::create(&partial)
            .await
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut bytes = 0u64;
        while let Some(chunk) = stream.message().await.map_err(status_error)? {
            bytes += chunk.data.len() as u64;
            file.write_all(&chunk.data).await?;
        }
        file.flush().await?;
        drop(file);
        tokio::fs::rename(&partial, path)
            .await
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(bytes)
    }
}

/// A gRPC status as an error whose message is the server's.
pub fn status_error(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", s.message(), s.code())
}

/// The name of a render state.
pub fn state_name(state: i32) -> &'static str {
    match v1::RenderState::try_from(state) {
        Ok(v1::RenderState::Queued) => "queued",
        Ok(v1::RenderState::Running) => "running",
        Ok(v1::RenderState::Succeeded) => "succeeded",
        Ok(v1::RenderState::Failed) => "failed",
        Ok(v1::RenderState::Cancelled) => "cancelled",
        _ => "unknown",
    }
}

/// The name of a render's lane.
pub fn lane_name(lane: i32) -> &'static str {
    match v1::Lane::try_from(lane) {
        Ok(v1::Lane::Realtime | v1::Lane::Unspecified) => "realtime",
        Ok(v1::Lane::Bulk) => "bulk",
        Err(_) => "unknown",
    }
}

/// The name of a render's preset (`1080p`, `720p`, `whatsapp`; unset is the default, 720p).
pub fn preset_name(preset: i32) -> &'static str {
    proto::convert::preset_from_wire(preset).map_or("unknown", template::Preset::name)
}

/// The name of a failure class.
pub fn failure_class_name(class: i32) -> &'static str {
    match v1::FailureClass::try_from(class) {
        Ok(v1::FailureClass::InvalidInput) => "invalid_input",
        Ok(v1::FailureClass::Application) => "application",
        Ok(v1::FailureClass::Infrastructure) => "infrastructure",
        Ok(v1::FailureClass::DeadlineExceeded) => "deadline_exceeded",
        _ => "unknown",
    }
}

/// Whether a render in `state` has ended.
pub fn is_terminal(state: i32) -> bool {
    matches!(
        v1::RenderState::try_from(state),
        Ok(v1::RenderState::Succeeded | v1::RenderState::Failed | v1::RenderState::Cancelled)
    )
}

/// Follows a render until it ends, calling `on_update` at every change.
pub async fn watch(
    client: &mut TenantClient,
    id: &str,
    mut on_update: impl FnMut(&v1::Render),
) -> Result<v1::Render> {
    let mut stream = client
        .renders
        .watch_render(v1::WatchRenderRequest { id: id.to_owned() })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut last = None;
    while let Some(r) = stream.message().await.map_err(status_error)? {
        on_update(&r);
        let done = is_terminal(r.state);
        last = Some(r);
        if done {
            break;
        }
    }
    last.context("the coordinator ended the watch without an update")
}

/// Posts events (one event object, or `{"events": [...]}`) to the farm's HTTP endpoint
/// `http_base` (`http://host:port`) as the tenant whose API key is `api_key`; the answer's
/// status and JSON body (null when it is not JSON).
pub async fn post_events(
    http_base: &str,
    api_key: &str,
    body: String,
) -> Result<(u16, serde_json::Value)> {
    let url = format!("{}/v1/events", http_base.trim_end_matches('/'));
    let answer = reqwest::Client::new()
        .post(&url)
        .bearer_auth(api_key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = answer.status().as_u16();
    let bytes = answer
        .bytes()
        .await
        .with_context(|| format!("POST {url}: reading the answer"))?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}
