//! `GET /docs`: the OpenAPI document (`/v1/openapi.json`) rendered by Redoc, for a person
//! who opens it in a browser (the residents' FAQ home at `/` links to it: see
//! [`super::site`]). Redoc's standalone bundle is vendored
//! (`vendor/redoc/`) and served from the binary: no CDN.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::AppState;

/// Redoc's standalone bundle (`vendor/redoc/README.md` says which version).
pub const REDOC_JS: &str = include_str!("../../vendor/redoc/redoc.standalone.js");

/// The pages' routes, merged into `http::app` (documented like every route).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(docs))
        .routes(routes!(redoc_js))
}

const DOCS: &str = "<!doctype html>
<html lang=\"zh-CN\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>yidi API 文档</title>
</head>
<body>
<redoc spec-url=\"/v1/openapi.json\"></redoc>
<script src=\"/docs/redoc.standalone.js\"></script>
</body>
</html>
";

/// Redoc's: its script from here, the styles it writes into the page, its search worker
/// (a blob), the document from here.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                        img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                        worker-src blob:; frame-ancestors 'none'; base-uri 'none'; \
                        form-action 'none'";

fn page(body: &'static str, csp: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[utoipa::path(get, path = "/docs", tag = "pages", summary = "this API document, readable in a browser (HTML, Redoc)",
    responses((status = 200, description = "the page", content_type = "text/html", body = String)))]
async fn docs() -> Response {
    page(DOCS, DOCS_CSP)
}

#[utoipa::path(get, path = "/docs/redoc.standalone.js", tag = "pages", summary = "Redoc, which renders /docs (vendored)",
    responses((status = 200, description = "the script", content_type = "text/javascript", body = String)))]
async fn redoc_js() -> Response {
    let mut response = REDOC_JS.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_vendored_redoc_is_the_recorded_one() {
        use sha2::{Digest, Sha256};
        let digest: String = Sha256::digest(super::REDOC_JS.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let readme = include_str!("../../vendor/redoc/README.md");
        assert!(
            readme.contains(&digest),
            "update vendor/redoc/README.md: {digest}"
        );
    }
}
