//! A tenant's gRPC client of a farm: one channel, the API key on every call.

use std::path::Path;

use anyhow::{bail, Context, Result};
use proto::v1;
use proto::v1::render_service_client::RenderServiceClient;
use proto::v1::template_service_client::TemplateServiceClient;
use proto::v1::trigger_service_client::TriggerServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::cli::ClientArgs;

/// Adds `authorization: Bearer <key>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut()
            .insert(proto::AUTHORIZATION, self.0.clone());
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// Clients of the tenant-facing services.
#[derive(Clone)]
pub struct Farm {
    pub renders: RenderServiceClient<Authed>,
    pub templates: TemplateServiceClient<Authed>,
    pub triggers: TriggerServiceClient<Authed>,
}

/// Largest message the client accepts (batch submission answers).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Opens a channel to `url` (TLS with `tls_ca` for https://).
pub async fn channel(url: &str, tls_ca: Option<&Path>) -> Result<Channel> {
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

impl Farm {
    /// Connects as the tenant whose API key `args` carries.
    pub async fn connect(args: &ClientArgs) -> Result<Farm> {
        let key = args.api_key.as_deref().context(
            "no API key: pass --api-key or set REELFARM_API_KEY (create one with `reelfarm tenant create NAME`)",
        )?;
        Farm::connect_with(&args.coordinator, key, args.tls_ca.as_deref()).await
    }

    pub async fn connect_with(url: &str, api_key: &str, tls_ca: Option<&Path>) -> Result<Farm> {
        let channel = channel(url, tls_ca).await?;
        let value: MetadataValue<Ascii> = format!("Bearer {api_key}")
            .parse()
            .context("the API key holds characters that cannot be sent")?;
        let bearer = Bearer(value);
        Ok(Farm {
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
