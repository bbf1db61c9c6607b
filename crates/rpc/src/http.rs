//! Plain HTTP routes on the RPC port, beside JSON-RPC: the web explorer and the model file.
//!
//! [`HttpRoutes`] is a tower layer in front of jsonrpsee's service, and the one place that
//! decides what a request on the RPC port is, by its path and method:
//!
//! | path | method | answer |
//! |---|---|---|
//! | `/` | POST, or a WebSocket upgrade | JSON-RPC: passed on to jsonrpsee untouched; 403 if it carries an `Origin` other than this server's own (another site's page) |
//! | `/`, [`INDEX_PATH`] | GET, HEAD | the web explorer page (module `explorer`), from memory |
//! | [`MODEL_FILE_PATH`]`?height=H` | GET | the bytes of [`NodeApi::model_file`] |
//! | one of these | another method | 405, with `Allow` |
//! | anything else | any | 404 |
//!
//! The model file is the same bytes `learnchain model export` writes, computed on tokio's
//! blocking pool, at most [`MAX_MODEL_FILE_TASKS`] at once (more: 503 at once, so GETs
//! cannot take the blocking threads the JSON-RPC handlers need). Its query may hold only
//! `height` (a decimal block height; absent = the head). Its errors are plain text with the
//! status their [`ApiError`] kind means: 400 invalid params, 404 not found, 503 unavailable,
//! 500 internal.
//!
//! Bounds: request bodies are read only by jsonrpsee, up to its `max_request_bytes`; the
//! page and the model file never read one. A JSON-RPC call over HTTP, from its headers to
//! its answer, must complete within the request deadline ([`DEFAULT_REQUEST_DEADLINE`]),
//! or it is answered 408 and its connection slot is freed, so clients that send a body
//! slowly cannot hold the server's connection limit. Headers are hyper's to bound: at most
//! ~400 KiB buffered, and the first request of a connection must be complete within
//! jsonrpsee's 30 s. A later request on a kept-alive connection would have no deadline at
//! all (jsonrpsee gives hyper no timer, so hyper's header timeout is off), so every answer
//! but a WebSocket handshake says `Connection: close`: one request per connection, and no
//! connection stalls for more than 30 s. Every plain answer carries
//! `X-Content-Type-Options: nosniff`.

mod explorer;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{
    ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    HeaderName, HeaderValue, IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use http::{HeaderMap, Method, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::ws::is_upgrade_request;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::api::{ApiError, NodeApi};

/// The path of the model file route.
pub const MODEL_FILE_PATH: &str = "/model.safetensors";
/// The explorer page's second name, beside `/`.
pub const INDEX_PATH: &str = "/index.html";
/// Most model files computed at once.
pub const MAX_MODEL_FILE_TASKS: usize = 4;
/// How long a JSON-RPC call over HTTP may take, from its headers to its answer (reading
/// the body included): geth's default read and write timeouts.
pub const DEFAULT_REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// The plain HTTP routes in front of JSON-RPC; see the module docs.
#[derive(Clone)]
pub struct HttpRoutes {
    api: Arc<dyn NodeApi>,
    model_files: Arc<Semaphore>,
    request_deadline: Duration,
}

impl HttpRoutes {
    /// The routes over `api`, with the [`DEFAULT_REQUEST_DEADLINE`].
    pub fn new(api: Arc<dyn NodeApi>) -> Self {
        Self {
            api,
            model_files: Arc::new(Semaphore::new(MAX_MODEL_FILE_TASKS)),
            request_deadline: DEFAULT_REQUEST_DEADLINE,
        }
    }

    /// The same routes with another deadline for JSON-RPC calls over HTTP.
    pub fn with_request_deadline(self, request_deadline: Duration) -> Self {
        Self { request_deadline, ..self }
    }
}

impl<S> Layer<S> for HttpRoutes {
    type Service = HttpRoutesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpRoutesService { inner, routes: self.clone() }
    }
}

/// The service [`HttpRoutes`] wraps around jsonrpsee's.
#[derive(Clone)]
pub struct HttpRoutesService<S> {
    inner: S,
    routes: HttpRoutes,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'static>>;

/// What a request is, by its method and path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    JsonRpc,
    Page,
    ModelFile,
    /// A known path asked with a method it does not answer; the methods it does.
    NotAllowed(&'static str),
    NotFound,
}

/// Whether a request may reach JSON-RPC: it carries no `Origin` (not a browser, or a
/// same-origin GET), or its origin is this server as the request's `Host` names it. A web
/// page of another site can open a WebSocket to any port (WebSockets skip CORS) and read
/// what the node answers; this refuses it.
fn same_origin(headers: &http::HeaderMap) -> bool {
    let Some(origin) = headers.get(http::header::ORIGIN) else { return true };
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), headers.get(http::header::HOST).map(|h| h.to_str())) else {
        return false;
    };
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

fn route(method: &Method, path: &str, websocket_upgrade: bool) -> Route {
    let read = method == Method::GET || method == Method::HEAD;
    match path {
        "/" if websocket_upgrade || method == Method::POST => Route::JsonRpc,
        "/" | INDEX_PATH if read => Route::Page,
        "/" => Route::NotAllowed("GET, HEAD, POST"),
        INDEX_PATH => Route::NotAllowed("GET, HEAD"),
        MODEL_FILE_PATH if method == Method::GET => Route::ModelFile,
        MODEL_FILE_PATH => Route::NotAllowed("GET"),
        _ => Route::NotFound,
    }
}

impl<S, B> Service<HttpRequest<B>> for HttpRoutesService<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse>,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = BoxFuture<HttpResponse>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let answer = self.answer(request);
        Box::pin(async move {
            let mut response = answer.await?;
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}

impl<S> HttpRoutesService<S> {
    fn answer<B>(&mut self, request: HttpRequest<B>) -> BoxFuture<HttpResponse>
    where
        S: Service<HttpRequest<B>, Response = HttpResponse>,
        S::Error: Into<BoxError> + 'static,
        S::Future: Send + 'static,
    {
        match route(request.method(), request.uri().path(), is_upgrade_request(&request)) {
            Route::JsonRpc if !same_origin(request.headers()) => ready(text(
                StatusCode::FORBIDDEN,
                "cross-origin JSON-RPC is refused: a page may call this node only from the node's own \
                 origin (clients that send no Origin header, like curl, are not affected)"
                    .to_owned(),
            )),
            Route::JsonRpc => {
                let deadline = self.routes.request_deadline;
                let call = tokio::time::timeout(deadline, self.inner.call(request));
                Box::pin(async move {
                    match call.await {
                        Ok(answer) => answer.map_err(Into::into),
                        Err(_) => Ok(text(
                            StatusCode::REQUEST_TIMEOUT,
                            format!("the request did not complete within {} s", deadline.as_secs_f64()),
                        )),
                    }
                })
            }
            Route::Page => ready(page(request.headers())),
            Route::ModelFile => self.model_file(request.uri().query()),
            Route::NotAllowed(allow) => {
                let mut response = text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{} answers {allow} only", request.uri().path()),
                );
                response.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
                ready(response)
            }
            Route::NotFound => ready(text(
                StatusCode::NOT_FOUND,
                format!(
                    "not found: this port answers JSON-RPC (POST / and WebSocket), the explorer \
                     (GET /) and GET {MODEL_FILE_PATH}"
                ),
            )),
        }
    }

    fn model_file(&self, query: Option<&str>) -> BoxFuture<HttpResponse> {
        let height = match parse_height(query) {
            Ok(h) => h,
            Err(why) => return ready(text(StatusCode::BAD_REQUEST, why)),
        };
        let Ok(permit) = self.routes.model_files.clone().try_acquire_owned() else {
            return ready(text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("busy: {MAX_MODEL_FILE_TASKS} model files are being computed; try again"),
            ));
        };
        let api = self.routes.api.clone();
        Box::pin(async move {
            let answer = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                api.model_file(height)
            })
            .await;
            Ok(match answer {
                Ok(Ok(bytes)) => model_response(bytes, height),
                Ok(Err(e)) => text(status_of(&e), e.to_string()),
                Err(join) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("the model file task failed: {join}")),
            })
        })
    }
}

fn ready(response: HttpResponse) -> BoxFuture<HttpResponse> {
    Box::pin(std::future::ready(Ok(response)))
}

/// The explorer page, or 304 when the browser's copy (`If-None-Match`) is this one.
fn page(request: &HeaderMap) -> HttpResponse {
    let page = &*explorer::PAGE;
    let fresh = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == page.etag || tag == "*");
    let mut response = if fresh {
        let mut r = HttpResponse::new(HttpBody::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = HttpResponse::new(HttpBody::from(page.html.as_str()));
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        r
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, page.csp.as_str()),
        (ETAG, page.etag.as_str()),
        (CACHE_CONTROL, "no-cache"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "no-referrer"),
        (HeaderName::from_static("cross-origin-resource-policy"), "same-origin"),
    ] {
        // The values are ASCII built from constants and base64/hex digits.
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The `height` of the query string (`None`: absent, the head); anything else is refused.
fn parse_height(query: Option<&str>) -> Result<Option<u64>, String> {
    let mut height = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("height", v)) if height.is_none() => {
                height = Some(v.parse::<u64>().map_err(|_| format!("height {v:?} is not a block height"))?);
            }
            Some(("height", _)) => return Err("height is given twice".into()),
            _ => return Err(format!("unknown query parameter {pair:?} (only height=H is accepted)")),
        }
    }
    Ok(height)
}

fn status_of(e: &ApiError) -> StatusCode {
    match e {
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::InvalidParams(_) => StatusCode::BAD_REQUEST,
        ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn model_response(bytes: Vec<u8>, height: Option<u64>) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(bytes));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let name = match height {
        Some(h) => format!("attachment; filename=\"model-{h}.safetensors\""),
        None => "attachment; filename=\"model.safetensors\"".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(CONTENT_DISPOSITION, value);
    }
    response
}

fn text(status: StatusCode, message: String) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(format!("{message}\n").into_bytes()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}
