//! The pages for a person who opens the server in a browser: `GET /`, what this server is
//! with links to the agent console and the API document, and `GET /docs`, the OpenAPI
//! document (`/v1/openapi.json`) rendered by Redoc. Redoc's standalone bundle is vendored
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
        .routes(routes!(home))
        .routes(routes!(docs))
        .routes(routes!(redoc_js))
}

const HOME: &str = "<!doctype html>
<html lang=\"zh-CN\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>异地就医小助手 · yidi</title>
<link rel=\"stylesheet\" href=\"/console/assets/console.css\">
</head>
<body>
<main class=\"home\">
<h1>异地就医小助手</h1>
<p>为苏州、张家港参保人解答异地就医问题：异地就医备案、直接结算、零星（手工）报销；按情况列出备案材料清单，估算医保大概能报多少。居民可通过微信公众号、Telegram 或网站对话使用；热线坐席使用坐席控制台。</p>
<ul>
<li><a id=\"console-link\" href=\"/console\">坐席控制台</a>：热线坐席用坐席令牌登录，查问答、填来电者情况、看未答问题。</li>
<li><a id=\"docs-link\" href=\"/docs\">接口文档</a>：HTTP API 的说明（OpenAPI 文档：<a href=\"/v1/openapi.json\">/v1/openapi.json</a>）。</li>
<li><a href=\"/healthz\">运行状态</a>：服务正常时显示 {\"status\":\"ok\"}。</li>
</ul>
</main>
</body>
</html>
";

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

/// The home page's policy: only this site's stylesheet.
const HOME_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                        frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

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

#[utoipa::path(get, path = "/", tag = "pages", summary = "what this server is (HTML), with links to the console and the API document",
    responses((status = 200, description = "the page", content_type = "text/html", body = String)))]
async fn home() -> Response {
    page(HOME, HOME_CSP)
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
