//! Plain HTTP routes on the RPC port, beside JSON-RPC: `GET /model.safetensors?height=H`.
//!
//! [`ModelFileLayer`] is a tower layer in front of jsonrpsee's service. A request for
//! [`MODEL_FILE_PATH`] is answered here with the bytes of [`NodeApi::model_file`] (the
//! same bytes `learnchain model export` writes), computed on tokio's blocking pool; every
//! other request goes on to JSON-RPC untouched. The query may hold only `height` (a
//! decimal block height; absent = the head). Errors are plain text with the status their
//! [`ApiError`] kind means: 400 invalid params, 404 not found, 503 unavailable, 500
//! internal, 405 a method other than GET.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use http::{Method, StatusCode};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use tower::{Layer, Service};

use crate::api::{ApiError, NodeApi};

/// The path of the model file route.
pub const MODEL_FILE_PATH: &str = "/model.safetensors";

/// Serves [`MODEL_FILE_PATH`] from a [`NodeApi`]; see the module docs.
#[derive(Clone)]
pub struct ModelFileLayer {
    api: Arc<dyn NodeApi>,
}

impl ModelFileLayer {
    /// The layer over `api`.
    pub fn new(api: Arc<dyn NodeApi>) -> Self {
        Self { api }
    }
}

impl<S> Layer<S> for ModelFileLayer {
    type Service = ModelFileService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ModelFileService { inner, api: self.api.clone() }
    }
}

/// The service [`ModelFileLayer`] wraps around jsonrpsee's.
#[derive(Clone)]
pub struct ModelFileService<S> {
    inner: S,
    api: Arc<dyn NodeApi>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send + 'static>>;

impl<S, B> Service<HttpRequest<B>> for ModelFileService<S>
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
        if request.uri().path() != MODEL_FILE_PATH {
            let fut = self.inner.call(request);
            return Box::pin(async move { fut.await.map_err(Into::into) });
        }
        if request.method() != Method::GET {
            return ready(text(StatusCode::METHOD_NOT_ALLOWED, format!("{MODEL_FILE_PATH} answers GET only")));
        }
        let height = match parse_height(request.uri().query()) {
            Ok(h) => h,
            Err(why) => return ready(text(StatusCode::BAD_REQUEST, why)),
        };
        let api = self.api.clone();
        Box::pin(async move {
            let answer = tokio::task::spawn_blocking(move || api.model_file(height)).await;
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
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(parse_height(None), Ok(None));
        assert_eq!(parse_height(Some("")), Ok(None));
        assert_eq!(parse_height(Some("height=12")), Ok(Some(12)));
        assert!(parse_height(Some("height=x")).expect_err("refused").contains("\"x\""));
        assert!(parse_height(Some("height=1&height=2")).expect_err("refused").contains("twice"));
        assert!(parse_height(Some("h=1")).expect_err("refused").contains("\"h=1\""));
    }
}
