//! Running tower services, and so axum routers, on hangup: [`serve`],
//! [`serve_with_connect_info`], the [`service`] and
//! [`service_with_connect_info`] adapters they use, and the
//! [`HangupPolicy`] layer.
//!
//! A service is a [`Handler`] like any other here: it runs inside the
//! connection's task, raced against the socket watch, and its response
//! goes through the same writer, with the same framing rules, counters,
//! outcome and access-log line as a native handler's. What it adds:
//!
//! - the request becomes an `http::Request<hangup::Body>` (the body
//!   streams, implements `http_body::Body`), with a [`HangupSignal`], a
//!   `CancellationToken` and the [`ConnectionAddrs`] in its extensions, so
//!   `Extension<CancellationToken>` works with no hangup code at all;
//! - the service is cloned per request and driven with `poll_ready`, then
//!   `call`;
//! - the response's status and fields are the response head; its body
//!   (any `http_body::Body`) is framed by its `Content-Length`, or an
//!   exact size hint, else chunked (close-delimited on HTTP/1.0); HEAD
//!   keeps the length and sends no body (the body is not polled; without
//!   a length field or a nonzero exact size hint the head has no length,
//!   as hyper sends it: axum empties every HEAD response's body); 1xx, 204
//!   and 304 carry none. Data frames go through the writer's buffer: small
//!   ones leave with the head in one write, and whatever is buffered is
//!   sent as soon as the body has nothing ready (a server-sent event is
//!   not held back). Trailers are sent when the body is chunked;
//! - a client gone for good (a reset, a failed write, a FIN under
//!   `OnFin::Abort`) stops the body at once: it is dropped, not polled
//!   again, even while it waits for its next frame. With
//!   `OnHangup::Cancel` the service's future itself is dropped.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use bytes::Buf;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, StatusCode};
use http_body::Body as HttpBody;
use tokio::net::TcpListener;
use tower_service::Service;

use crate::body::Body;
use crate::config::Config;
use crate::error::{BoxError, Error, Result};
use crate::exchange::{OnFin, OnHangup};
use crate::handler::Handler;
use crate::request::Request;
use crate::response::ResponseWriter;
use crate::server::Server;
use crate::signal::HangupSignal;

/// The addresses of the connection a request came on, in every tower
/// request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionAddrs {
    /// The client's address.
    pub remote: SocketAddr,
    /// The server address the client connected to.
    pub local: SocketAddr,
}

/// Serves `service` on `listener` until the server shuts down: the tower
/// counterpart of [`Server::run`], and of `axum::serve(listener, app)`:
///
/// ```no_run
/// # async fn run() -> hangup::Result<()> {
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// hangup::serve(listener, hangup::Config::default(), app).await
/// # }
/// ```
///
/// For a handle to shut it down or read its metrics, build the server
/// yourself: `Server::from_listener(listener, config, hangup::service(app))`.
///
/// # Errors
///
/// As [`Server::run`].
pub async fn serve<S, B>(listener: TcpListener, config: Config, service: S) -> Result<()>
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Server::from_listener(listener, config, self::service(service))
        .run()
        .await
}

/// Serves the services that `make_service` makes from each client's
/// address: what axum's `into_make_service_with_connect_info::<SocketAddr>()`
/// is, so that its `ConnectInfo<SocketAddr>` extractor works unchanged:
///
/// ```text
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
/// hangup::serve_with_connect_info(listener, config, app.into_make_service_with_connect_info::<SocketAddr>())
/// ```
///
/// The make-service is called once per request (it clones the app, as the
/// plain [`serve`] does per request too).
///
/// # Errors
///
/// As [`Server::run`].
pub async fn serve_with_connect_info<M, S, B>(
    listener: TcpListener,
    config: Config,
    make_service: M,
) -> Result<()>
where
    M: Service<SocketAddr, Response = S> + Clone + Send + Sync + 'static,
    M::Future: Send,
    M::Error: Into<BoxError>,
    S: Service<http::Request<Body>, Response = http::Response<B>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Server::from_listener(listener, config, service_with_connect_info(make_service))
        .run()
        .await
}

/// A tower service as a [`Handler`]: see the module docs. With
/// [`Server::from_listener`] it gives a handle to shut the server down
/// (what `axum::serve(..).with_graceful_shutdown(signal)` does) and to
/// read its metrics. The configuration below also drops a handler's
/// future when its client closes, as hyper does (hangup's default tells
/// the handler and lets it finish: see [`OnHangup::Cancel`]):
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hangup::{Config, OnFin, OnHangup, Server};
///
/// let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let config = Config::builder()
///     .on_fin(OnFin::Abort)
///     .on_hangup(OnHangup::Cancel)
///     .build()?;
/// let server = Server::from_listener(listener, config, hangup::service(app));
/// let shutdown = server.shutdown_handle();
/// tokio::spawn(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     // In-flight requests get 10 s; what still runs then is closed.
///     shutdown.shutdown(std::time::Duration::from_secs(10));
/// });
/// server.run().await?;
/// # Ok(())
/// # }
/// ```
pub fn service<S>(service: S) -> ServiceHandler<S> {
    ServiceHandler { service }
}

/// A tower service run as a [`Handler`]; made by [`service`].
#[derive(Debug, Clone)]
pub struct ServiceHandler<S> {
    service: S,
}

impl<S, B> Handler for ServiceHandler<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn call(
        &self,
        request: Request,
        response: ResponseWriter,
    ) -> impl Future<Output = Result<()>> + Send {
        let service = self.service.clone();
        call_service(service, request, response)
    }
}

/// A make-service (axum's `into_make_service_with_connect_info`) as a
/// [`Handler`]: what [`serve_with_connect_info`] serves. With
/// `Server::from_listener(listener, config, hangup::service_with_connect_info(make))`
/// it gives a handle for metrics and shutdown too.
pub fn service_with_connect_info<M>(make_service: M) -> MakeServiceHandler<M> {
    MakeServiceHandler { make_service }
}

/// A make-service called with each client's address, run as a [`Handler`];
/// made by [`service_with_connect_info`].
#[derive(Debug, Clone)]
pub struct MakeServiceHandler<M> {
    make_service: M,
}

impl<M, S, B> Handler for MakeServiceHandler<M>
where
    M: Service<SocketAddr, Response = S> + Clone + Send + Sync + 'static,
    M::Future: Send,
    M::Error: Into<BoxError>,
    S: Service<http::Request<Body>, Response = http::Response<B>> + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn call(
        &self,
        request: Request,
        response: ResponseWriter,
    ) -> impl Future<Output = Result<()>> + Send {
        let mut make_service = self.make_service.clone();
        async move {
            poll_fn(|cx| make_service.poll_ready(cx))
                .await
                .map_err(service_error)?;
            let service = make_service
                .call(request.remote_addr())
                .await
                .map_err(service_error)?;
            call_service(service, request, response).await
        }
    }
}

fn service_error(err: impl Into<BoxError>) -> Error {
    Error::Service(err.into())
}

/// Drives one request through `service` and writes its response.
async fn call_service<S, B>(
    mut service: S,
    request: Request,
    mut writer: ResponseWriter,
) -> Result<()>
where
    S: Service<http::Request<Body>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let request = service_request(request);
    poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(service_error)?;
    let response = service.call(request).await.map_err(service_error)?;
    write_response(response, &mut writer).await
}

/// The request as a tower service gets it: `http`'s type, with its
/// [`HangupSignal`], its `CancellationToken` and the connection's
/// addresses in the extensions.
fn service_request(request: Request) -> http::Request<Body> {
    let signal = request.hangup_signal();
    let addrs = ConnectionAddrs {
        remote: request.remote_addr(),
        local: request.local_addr(),
    };
    let token = signal.cancellation_token();
    let mut request = request.into_http();
    let mut extensions = extensions_with_room();
    extensions.extend(std::mem::take(request.extensions_mut()));
    extensions.insert(signal);
    extensions.insert(token);
    extensions.insert(addrs);
    *request.extensions_mut() = extensions;
    request
}

/// Entries a tower request's extensions have room for from the start:
/// hangup's three, the three axum's router adds (`OriginalUri`,
/// `MatchedPath`, its path parameters) and as many again for the app's
/// layers.
const EXTENSIONS_ROOM: usize = 12;

/// An empty extensions map with room for [`EXTENSIONS_ROOM`] entries.
///
/// `http::Extensions` has no `with_capacity`, and its map starts with room
/// for three, so hangup's three and axum's three made it allocate a table
/// twice per request (and move the entries between them). A clone of an
/// empty map keeps the original's table size (std's `HashMap`, hashbrown
/// inside, allocates the same number of buckets), so one map is grown
/// once, emptied, and cloned for every request: one table allocation, no
/// rehash (bench/RESULTS.md prices it). Should a later toolchain clone to
/// a smaller table, requests only grow their map again, as before, and
/// `tests/allocations.rs` says so.
fn extensions_with_room() -> http::Extensions {
    /// Placeholder entries of distinct types: zero-sized, so their boxes
    /// allocate nothing.
    #[derive(Clone)]
    struct Room<const N: usize>;
    static EMPTY_WITH_ROOM: OnceLock<http::Extensions> = OnceLock::new();
    EMPTY_WITH_ROOM
        .get_or_init(|| {
            let mut extensions = http::Extensions::new();
            macro_rules! grow {
                ($($n:literal)*) => { $(extensions.insert(Room::<$n>);)* };
            }
            grow!(0 1 2 3 4 5 6 7 8 9 10 11);
            debug_assert_eq!(extensions.len(), EXTENSIONS_ROOM);
            extensions.clear();
            extensions
        })
        .clone()
}

/// Writes a service's response through the writer: the module docs say how.
async fn write_response<B>(response: http::Response<B>, writer: &mut ResponseWriter) -> Result<()>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    writer.set_status(parts.status)?;
    let has_length = parts.headers.contains_key(CONTENT_LENGTH);
    *writer.headers_mut()? = parts.headers;
    let allows_body = !(parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED);
    let is_head = writer.is_head();
    // For HEAD an empty body says nothing: axum, for one, empties the
    // body of every HEAD response, whatever the GET's length.
    let exact = body
        .size_hint()
        .exact()
        .filter(|&n| !has_length && allows_body && !(is_head && n == 0));
    if let Some(exact) = exact {
        writer
            .headers_mut()?
            .insert(CONTENT_LENGTH, HeaderValue::from(exact));
    }
    if is_head || !allows_body {
        // Not polled: a HEAD response has no body, whatever the GET's
        // would be (hyper does the same), so its length is the service's
        // or the size hint's, else none.
        if is_head && !has_length && exact.is_none() {
            writer.set_head_length_unknown();
        }
        return Ok(());
    }
    let mut body = pin!(body);
    let mut unsent = false;
    loop {
        // Whatever is buffered goes out as soon as the body has nothing
        // ready: a stream's pieces are not held back by the buffer.
        let frame = match poll_fn(|cx| Poll::Ready(poll_frame(body.as_mut(), cx))).await {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if unsent || !writer.is_committed() {
                    writer.flush().await?;
                    unsent = false;
                }
                tokio::select! {
                    biased;
                    frame = poll_fn(|cx| poll_frame(body.as_mut(), cx)) => frame,
                    hangup = writer.gone() => return Err(Error::ClientGone(hangup)),
                }
            }
        };
        let Some(frame) = frame else { return Ok(()) };
        let frame = frame?;
        match frame.into_data() {
            Ok(mut data) => {
                while data.has_remaining() {
                    let chunk = data.chunk();
                    let len = chunk.len();
                    writer.write_all(chunk).await?;
                    data.advance(len);
                }
                unsent = true;
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    writer.set_trailers(trailers)?;
                }
            }
        }
    }
}

/// The body's next frame, its error made ours at once (a body's error
/// type need not be `Send`, and must not live across an await).
fn poll_frame<B>(
    body: std::pin::Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<http_body::Frame<B::Data>>>>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    body.poll_frame(cx)
        .map(|frame| frame.map(|frame| frame.map_err(service_error)))
}

/// A tower layer that sets the hang-up policies of the requests that pass
/// through it: one route cancelled when its client leaves, another
/// notified, whatever the server's defaults. Reads the request's
/// [`HangupSignal`]; outside hangup (no signal in the extensions) it does
/// nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct HangupPolicy {
    on_fin: Option<OnFin>,
    on_hangup: Option<OnHangup>,
}

impl HangupPolicy {
    /// A layer that changes nothing until told what to set.
    pub fn new() -> Self {
        HangupPolicy::default()
    }

    /// Sets the [`OnFin`] policy of the requests it sees.
    pub fn on_fin(mut self, policy: OnFin) -> Self {
        self.on_fin = Some(policy);
        self
    }

    /// Sets the [`OnHangup`] policy of the requests it sees.
    /// `OnHangup::Cancel` acts once the client is gone for good: with a
    /// FIN too only under [`OnFin::Abort`] (`.on_fin(OnFin::Abort)`).
    pub fn on_hangup(mut self, policy: OnHangup) -> Self {
        self.on_hangup = Some(policy);
        self
    }
}

impl<S> tower_layer::Layer<S> for HangupPolicy {
    type Service = HangupPolicyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HangupPolicyService {
            inner,
            policy: *self,
        }
    }
}

/// The service [`HangupPolicy`] wraps around another.
#[derive(Debug, Clone)]
pub struct HangupPolicyService<S> {
    inner: S,
    policy: HangupPolicy,
}

impl<S, B> Service<http::Request<B>> for HangupPolicyService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Some(signal) = request.extensions().get::<HangupSignal>() {
            if let Some(policy) = self.policy.on_fin {
                signal.set_on_fin(policy);
            }
            if let Some(policy) = self.policy.on_hangup {
                signal.set_on_hangup(policy);
            }
        }
        self.inner.call(request)
    }
}

/// The request's [`HangupSignal`] as an axum extractor (with the `axum`
/// feature). Rejected with a 500 when the app does not run on hangup.
#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for HangupSignal {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        parts.extensions.get::<HangupSignal>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "no hangup::HangupSignal: is this app served by hangup?",
        ))
    }
}
