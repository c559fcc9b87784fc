//! The HTTP/JSON render API beside gRPC, on the coordinator's public HTTP listener:
//!
//! - `POST /v1/renders` (SubmitRender; the `Idempotency-Key` header may carry the key),
//! - `GET /v1/renders/{id}` (GetRender), `GET /v1/renders` (ListRenders, paged),
//! - `POST /v1/renders/{id}:cancel` (CancelRender),
//! - `GET /openapi.json`: the OpenAPI 3.1 document of these routes, generated from the types
//!   and handlers here ([`openapi`]) and committed as `docs/openapi.json`.
//!
//! The handlers authenticate with the same [`Authenticator`](crate::auth::Authenticator) as
//! gRPC (`Authorization: Bearer <API key>`), translate JSON to the wire request
//! ([`json`]) and call the same [`RenderApi`] functions as the gRPC methods; errors become
//! problem documents ([`problem`]).

pub mod json;
pub mod problem;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use proto::v1;
use serde::Serialize;
use tonic::metadata::MetadataMap;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::OpenApi;

use self::json::{Links, Render, RenderList, RenderState, SubmitRenderRequest};
use self::problem::{Problem, ProblemResponse, PROBLEM_JSON, TYPE_PREFIX};
use crate::error::ApiError;
use crate::model::Tenant;
use crate::service::{RenderApi, Shared};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The routes of the render API and its OpenAPI document.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/v1/renders", post(submit).get(list))
        // `{id}:cancel` shares a path segment with the id, so the action is split off in
        // the handler.
        .route("/v1/renders/{id}", get(get_render).post(render_action))
        .route("/openapi.json", get(openapi_json))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

type Answer = Result<Response, ProblemResponse>;

fn answer(result: Answer) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The tenant whose API key the request carries.
async fn tenant(shared: &Shared, headers: &HeaderMap) -> Result<Tenant, ProblemResponse> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(
            ApiError::Unauthenticated("missing `Authorization: Bearer <API key>` header").into(),
        );
    }
    Ok(shared
        .auth
        .tenant(&MetadataMap::from_headers(headers.clone()))
        .await?)
}

/// The JSON form of a render, with signed download links when this coordinator serves them.
fn render_json(shared: &Shared, render: v1::Render) -> Render {
    let links = shared.downloads.as_ref().map(|signer| Links {
        signer,
        now: shared.now(),
    });
    Render::from_proto(render, links)
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(value)).into_response()
}

/// Refuses a body declared as something other than JSON (no `Content-Type` is taken as JSON).
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ProblemResponse> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ProblemResponse::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The body must be JSON",
            format!("Content-Type `{essence}`: send application/json"),
        ))
    }
}

/// Queue one render.
///
/// The same call as gRPC `SubmitRender`: validated against the template version's tokens,
/// languages and limits, and idempotent on (tenant, idempotency key).
#[utoipa::path(
    post,
    path = "/v1/renders",
    operation_id = "submitRender",
    tag = "renders",
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "The idempotency key, instead of `idempotency_key` in the body (if both are given they must be equal).",
            example = "order-4711-delivered"),
    ),
    request_body(content = SubmitRenderRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The render was created.", body = Render,
            headers(("Location" = String, description = "The render's path, `/v1/renders/{id}`."))),
        (status = 200, description = "The idempotency key was already used for this same request: the render it created.", body = Render),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = LaneFull),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
)]
async fn submit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    answer(submit_json(&shared, &headers, body).await)
}

async fn submit_json(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let tenant = tenant(shared, headers).await?;
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ProblemResponse::too_large(MAX_BODY_BYTES))
        }
        Err(e) => return Err(ProblemResponse::invalid("", &e.body_text())),
    };
    check_json_content_type(headers)?;
    let request: SubmitRenderRequest =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&body))
            .map_err(|e| problem::from_json_error(&e))?;
    let header_key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ProblemResponse::invalid("idempotency_key", "the Idempotency-Key header is not ASCII")
        })?),
        None => None,
    };
    let request = request.into_proto(header_key)?;
    let answer = RenderApi::new(shared.clone())
        .submit(&tenant, request)
        .await?;
    let render = answer
        .render
        .ok_or_else(|| ApiError::Internal("SubmitRender answered without a render".into()))?;
    let render = render_json(shared, render);
    if answer.created {
        let mut response = json_response(StatusCode::CREATED, &render);
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/renders/{}", render.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    } else {
        Ok(json_response(StatusCode::OK, &render))
    }
}

/// One render, with its tokens.
///
/// The same call as gRPC `GetRender`.
#[utoipa::path(
    get,
    path = "/v1/renders/{id}",
    operation_id = "getRender",
    tag = "renders",
    params(("id" = String, Path, description = "The render's id.", example = "0b7e3c1e-5f0e-4a53-9d8c-2f1f0f7d2a11")),
    responses(
        (status = 200, description = "The render, with its tokens.", body = Render),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
)]
async fn get_render(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(
        async {
            let tenant = tenant(&shared, &headers).await?;
            let render = RenderApi::new(shared.clone())
                .get(&tenant, v1::GetRenderRequest { id })
                .await?;
            Ok(json_response(StatusCode::OK, &render_json(&shared, render)))
        }
        .await,
    )
}

/// The tenant's renders, newest first, a page at a time.
///
/// The same call as gRPC `ListRenders`. Renders in a list carry no tokens.
#[utoipa::path(
    get,
    path = "/v1/renders",
    operation_id = "listRenders",
    tag = "renders",
    params(
        ("state" = Option<RenderState>, Query, description = "Only renders in this state."),
        ("page_size" = Option<u32>, Query, description = "Renders per page, 1 to 1000; default 50.", minimum = 1, maximum = 1000, example = 50),
        ("page_token" = Option<String>, Query, description = "`next_page_token` of the previous page; absent for the first page."),
    ),
    responses(
        (status = 200, description = "A page of renders.", body = RenderList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
)]
async fn list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    answer(
        async {
            let tenant = tenant(&shared, &headers).await?;
            let Query(params) = query.map_err(|e| ProblemResponse::invalid("", &e.body_text()))?;
            let request = list_request(&params)?;
            let page = RenderApi::new(shared.clone())
                .list(&tenant, request)
                .await?;
            let list = RenderList {
                renders: page
                    .renders
                    .into_iter()
                    .map(|r| render_json(&shared, r))
                    .collect(),
                next_page_token: (!page.next_page_token.is_empty()).then_some(page.next_page_token),
            };
            Ok(json_response(StatusCode::OK, &list))
        }
        .await,
    )
}

/// The wire request of a list's query parameters.
fn list_request(params: &[(String, String)]) -> Result<v1::ListRendersRequest, ApiError> {
    let mut request = v1::ListRendersRequest::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in params {
        if seen.contains(&name.as_str()) {
            return Err(ApiError::invalid(name.as_str(), "given more than once"));
        }
        seen.push(name);
        match name.as_str() {
            "state" => {
                let state = RenderState::ALL
                    .into_iter()
                    .find(|s| s.as_str() == value)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "state",
                            "one of queued, running, succeeded, failed, cancelled",
                        )
                    })?;
                request.state = state.to_proto() as i32;
            }
            "page_size" => {
                request.page_size = value
                    .parse()
                    .map_err(|_| ApiError::invalid("page_size", "a whole number from 1 to 1000"))?;
                if request.page_size == 0 {
                    return Err(ApiError::invalid(
                        "page_size",
                        "a whole number from 1 to 1000",
                    ));
                }
            }
            "page_token" => request.page_token = value.clone(),
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown query parameter (known: state, page_size, page_token)",
                ))
            }
        }
    }
    Ok(request)
}

/// `POST /v1/renders/{id}:{action}`: the one action is `cancel`.
async fn render_action(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id_action): Path<String>,
) -> Response {
    match id_action.rsplit_once(':') {
        Some((id, "cancel")) => cancel(State(shared), headers, Path(id.to_owned())).await,
        _ => ProblemResponse::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "no such action: renders take POST /v1/renders/{id}:cancel",
        )
        .into_response(),
    }
}

/// Cancel a render that has not finished.
///
/// The same call as gRPC `CancelRender`: a running render's worker is told to stop at its next
/// heartbeat (within 5 s). Cancelling a finished render changes nothing and returns it.
#[utoipa::path(
    post,
    path = "/v1/renders/{id}:cancel",
    operation_id = "cancelRender",
    tag = "renders",
    params(("id" = String, Path, description = "The render's id.", example = "0b7e3c1e-5f0e-4a53-9d8c-2f1f0f7d2a11")),
    responses(
        (status = 200, description = "The render after the cancellation (or as it finished).", body = Render),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
    security(("bearer" = [])),
)]
async fn cancel(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(
        async {
            let tenant = tenant(&shared, &headers).await?;
            let render = RenderApi::new(shared.clone())
                .cancel(&tenant, v1::CancelRenderRequest { id })
                .await?;
            Ok(json_response(StatusCode::OK, &render_json(&shared, render)))
        }
        .await,
    )
}

/// `GET /openapi.json`: the document, without authentication.
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi_pretty(),
    )
        .into_response()
}

/// The OpenAPI 3.1 document of the render API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// [`openapi`] as pretty JSON with a final newline, as committed in `docs/openapi.json`.
pub fn openapi_pretty() -> String {
    let mut text = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "reelfarm render API",
        description = "Submit personalized video renders, follow them and fetch the results over HTTP/JSON. \
The same service as the gRPC `reelfarm.v1.RenderService`, on the coordinator's HTTP listener. \
Authenticate with a tenant API key (`reelfarm tenant create`) as `Authorization: Bearer rf_…`. \
Errors are problem documents (RFC 9457, `application/problem+json`); a validation error names the \
request field in `field`.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    paths(submit, get_render, list, cancel),
    components(
        schemas(Problem),
        responses(BadRequest, Unauthorized, NotFound, Conflict, TooLarge, UnsupportedMediaType, LaneFull, InternalError, Unavailable),
    ),
    modifiers(&BearerAuth),
    tags((name = "renders", description = "Personalized video renders.")),
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the operations name.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rf_ and 64 hex digits")
                    .description(Some(
                        "A tenant API key from `reelfarm tenant create` or `reelfarm tenant add-key`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// A reusable problem response: its description, an example problem and the headers it sets.
fn problem_response(
    description: &str,
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: &str,
    field: Option<&str>,
    headers: &[(&str, &str)],
) -> RefOr<utoipa::openapi::Response> {
    let example = Problem {
        kind: format!("{TYPE_PREFIX}{kind}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail: detail.to_owned(),
        field: field.map(str::to_owned),
    };
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .example(serde_json::to_value(&example).ok())
            .build(),
    );
    for (name, description) in headers {
        let schema = if *name == "Retry-After" {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
        } else {
            ObjectBuilder::new().schema_type(Type::String)
        };
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(schema)
                .description(Some(*description))
                .build(),
        );
    }
    response.build().into()
}

/// Declares a unit type whose reusable response is a problem document.
macro_rules! problem_responses {
    ($($name:ident => ($($arg:expr),* $(,)?);)*) => {$(
        struct $name;
        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                (stringify!($name), problem_response($($arg),*))
            }
        }
    )*};
}

problem_responses! {
    BadRequest => (
        "A request field is wrong (a body that is not JSON, a missing template, a token the template does not have, a value too long); `field` names it.",
        StatusCode::BAD_REQUEST, "invalid-argument", "The request is invalid",
        "tokens.first_name: longer than 256 characters", Some("tokens.first_name"), &[],
    );
    Unauthorized => (
        "No API key, or one the coordinator does not know.",
        StatusCode::UNAUTHORIZED, "unauthenticated", "Missing or unknown API key",
        "unknown API key", None, &[("WWW-Authenticate", "`Bearer`.")],
    );
    NotFound => (
        "No such render for this tenant.",
        StatusCode::NOT_FOUND, "not-found", "Not found",
        "render `0b7e3c1e-5f0e-4a53-9d8c-2f1f0f7d2a11` not found", None, &[],
    );
    Conflict => (
        "The idempotency key was already used for a different request.",
        StatusCode::CONFLICT, "conflict", "Idempotency key already used for another request",
        "idempotency key `order-4711-delivered` was used for another request (render 0b7e3c1e-5f0e-4a53-9d8c-2f1f0f7d2a11)",
        None, &[],
    );
    TooLarge => (
        "The request body is larger than 1 MiB.",
        StatusCode::PAYLOAD_TOO_LARGE, "too-large", "The request is too large",
        "the request body is larger than 1048576 bytes", None, &[],
    );
    UnsupportedMediaType => (
        "The body is declared as something other than JSON.",
        StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "The body must be JSON",
        "Content-Type `text/plain`: send application/json", None, &[],
    );
    LaneFull => (
        "The lane is full: retry after `Retry-After` seconds.",
        StatusCode::TOO_MANY_REQUESTS, "lane-full", "The lane is full; retry later",
        "the realtime lane is full (100000 renders waiting, limit 100000); retry after 1000 ms",
        None, &[("Retry-After", "Seconds to wait before retrying (rounded up).")],
    );
    InternalError => (
        "An unexpected error; the coordinator's log has the details.",
        StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error",
        "internal error; see the coordinator log", None, &[],
    );
    Unavailable => (
        "The job store is busy or unreachable; retry the same call.",
        StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Temporarily unavailable; retry",
        "database unavailable: pool timed out", None, &[("Retry-After", "Seconds to wait before retrying.")],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn list_parameters_become_a_request() {
        let r = list_request(&params(&[
            ("state", "failed"),
            ("page_size", "7"),
            ("page_token", "1:x"),
        ]))
        .expect("valid");
        assert_eq!(r.state, v1::RenderState::Failed as i32);
        assert_eq!(r.page_size, 7);
        assert_eq!(r.page_token, "1:x");
        for (bad, field) in [
            (&[("state", "done")][..], "state"),
            (&[("page_size", "ten")][..], "page_size"),
            (&[("page_size", "0")][..], "page_size"),
            (&[("page_size", "1"), ("page_size", "2")][..], "page_size"),
            (&[("colour", "red")][..], "colour"),
        ] {
            match list_request(&params(bad)) {
                Err(ApiError::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{bad:?}: expected a field error, got {other:?}"),
            }
        }
    }

    #[test]
    fn document_declares_security_and_problems() {
        let doc: serde_json::Value =
            serde_json::from_str(&openapi_pretty()).expect("the document is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let cancel = &doc["paths"]["/v1/renders/{id}:cancel"]["post"];
        assert_eq!(cancel["operationId"], "cancelRender");
        assert_eq!(
            cancel["responses"]["404"]["$ref"],
            "#/components/responses/NotFound"
        );
        let bad = &doc["components"]["responses"]["BadRequest"]["content"][PROBLEM_JSON];
        assert_eq!(bad["schema"]["$ref"], "#/components/schemas/Problem");
        assert_eq!(bad["example"]["field"], "tokens.first_name");
    }
}
