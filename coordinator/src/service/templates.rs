//! TemplateService: upload bundles as immutable versions, read them, move aliases.

use std::sync::Arc;

use proto::v1;
use proto::v1::template_service_server::TemplateService;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{page_size, parse_template_ref, template_to_proto, valid_alias, valid_name};
use super::transfer::{self, chunked};
use super::Shared;
use crate::blobs::Blobs;
use crate::error::ApiError;
use crate::model::{NewTemplate, TemplateRecord, Tenant};

/// The TemplateService implementation.
#[derive(Debug, Clone)]
pub struct TemplateApi {
    shared: Arc<Shared>,
}

impl TemplateApi {
    pub fn new(shared: Arc<Shared>) -> TemplateApi {
        TemplateApi { shared }
    }

    async fn tenant<T>(&self, req: &Request<T>) -> Result<Tenant, ApiError> {
        self.shared.auth.tenant(req.metadata()).await
    }

    async fn lookup(&self, tenant: &Tenant, r: &str) -> Result<TemplateRecord, ApiError> {
        let tref = parse_template_ref(r, "ref")?;
        self.shared
            .store
            .template(&tenant.id, &tref)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("template `{r}`")))
    }

    fn to_proto(&self, r: &TemplateRecord, created: bool) -> Result<v1::TemplateVersion, ApiError> {
        let manifest = self.shared.manifest(r)?;
        Ok(template_to_proto(r, &manifest, created))
    }
}

#[tonic::async_trait]
impl TemplateService for TemplateApi {
    async fn upload_template(
        &self,
        request: Request<Streaming<v1::UploadTemplateRequest>>,
    ) -> Result<Response<v1::TemplateVersion>, Status> {
        use v1::upload_template_request::Part;
        let tenant = self.tenant(&request).await?;
        let limits = template::Limits::default();
        let mut stream = request.into_inner();
        let header = transfer::header(&mut stream, |m| match m.part {
            Some(Part::Header(h)) => Some(h),
            _ => None,
        })
        .await?;
        for (i, alias) in header.aliases.iter().enumerate() {
            if !valid_alias(alias) {
                return Err(ApiError::invalid(
                    format!("header.aliases[{i}]"),
                    "aliases are 1 to 32 of a-z, 0-9 and -, not all digits",
                )
                .into());
            }
        }
        let limit = limits.max_archive_bytes;
        let received = transfer::receive(
            &mut stream,
            limit,
            |m| match m.part {
                Some(Part::Chunk(c)) => Some(c),
                _ => None,
            },
            || {
                ApiError::invalid(
                    "chunk",
                    format!("archive larger than the {} MiB limit", limit >> 20),
                )
            },
        )
        .await?;
        let archive = received.joined();
        // Parsing and validating a bundle is CPU work: keep it off the async threads.
        let checked = archive.clone();
        let info = tokio::task::spawn_blocking(move || template::inspect(&checked, &limits))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::invalid("archive", e.to_string()))?;
        let name = info.manifest.name.clone();
        if !valid_name(&name) {
            return Err(ApiError::invalid(
                "archive",
                format!("template name `{name}` is not 1 to 64 of a-z, 0-9 and -"),
            )
            .into());
        }
        let manifest_json = String::from_utf8(info.manifest_json)
            .map_err(|_| ApiError::invalid("archive", "template.json is not UTF-8"))?;
        let blob_key = Blobs::template_key(&tenant.id, &name, &info.digest);
        self.shared
            .blobs
            .put(&blob_key, archive.clone())
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let new = NewTemplate {
            tenant_id: tenant.id.clone(),
            name: name.clone(),
            digest: info.digest,
            size_bytes: archive.len() as u64,
            manifest_json,
            blob_key,
            created_ms: self.shared.now(),
        };
        let (mut record, created) = self
            .shared
            .store
            .insert_template(&new)
            .await
            .map_err(ApiError::from)?;
        for alias in &header.aliases {
            record = self
                .shared
                .store
                .set_alias(&tenant.id, &name, alias, record.version)
                .await
                .map_err(ApiError::from)?;
        }
        tracing::info!(template = %name, version = record.version, created, "template uploaded");
        Ok(Response::new(self.to_proto(&record, created)?))
    }

    async fn get_template(
        &self,
        request: Request<v1::GetTemplateRequest>,
    ) -> Result<Response<v1::TemplateVersion>, Status> {
        let tenant = self.tenant(&request).await?;
        let record = self.lookup(&tenant, &request.get_ref().r#ref).await?;
        Ok(Response::new(self.to_proto(&record, false)?))
    }

    async fn list_templates(
        &self,
        request: Request<v1::ListTemplatesRequest>,
    ) -> Result<Response<v1::ListTemplatesResponse>, Status> {
        let tenant = self.tenant(&request).await?;
        let req = request.into_inner();
        let limit = page_size(req.page_size, "page_size")?;
        let after = (!req.page_token.is_empty()).then_some(req.page_token.as_str());
        let records = self
            .shared
            .store
            .list_templates(&tenant.id, after, limit)
            .await
            .map_err(ApiError::from)?;
        let next_page_token = match records.last() {
            Some(last) if records.len() == limit as usize => last.name.clone(),
            _ => String::new(),
        };
        let templates = records
            .iter()
            .map(|r| self.to_proto(r, false))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(v1::ListTemplatesResponse {
            templates,
            next_page_token,
        }))
    }

    async fn set_alias(
        &self,
        request: Request<v1::SetAliasRequest>,
    ) -> Result<Response<v1::TemplateVersion>, Status> {
        let tenant = self.tenant(&request).await?;
        let req = request.into_inner();
        if !valid_name(&req.name) {
            return Err(ApiError::invalid("name", "1 to 64 of a-z, 0-9 and -").into());
        }
        if !valid_alias(&req.alias) {
            return Err(
                ApiError::invalid("alias", "1 to 32 of a-z, 0-9 and -, not all digits").into(),
            );
        }
        if req.version == 0 {
            return Err(ApiError::invalid("version", "required, versions start at 1").into());
        }
        let record = self
            .shared
            .store
            .set_alias(&tenant.id, &req.name, &req.alias, req.version)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(self.to_proto(&record, false)?))
    }

    type DownloadTemplateStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<v1::Chunk, Status>> + Send + 'static>>;

    async fn download_template(
        &self,
        request: Request<v1::GetTemplateRequest>,
    ) -> Result<Response<Self::DownloadTemplateStream>, Status> {
        let tenant = self.tenant(&request).await?;
        let record = self.lookup(&tenant, &request.get_ref().r#ref).await?;
        let stream = self
            .shared
            .blobs
            .get_stream(&record.blob_key)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        Ok(Response::new(chunked(stream)))
    }
}
