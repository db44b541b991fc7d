//! [`Request`]: the parsed head, the streamed [`Body`], the addresses, and
//! the exchange's hang-up signal.

use std::net::SocketAddr;

use http::{HeaderMap, Method, Uri, Version};
use tokio_util::sync::CancellationToken;

use crate::body::Body;
use crate::exchange::hangup::Hangup;
use crate::exchange::{OnFin, OnHangup};
use crate::h1::head::Parts;
use crate::h1::link::Link;
use crate::signal::HangupSignal;

/// One HTTP request, handed to the handler by value.
///
/// Dropped (the handler is done with it), it leaves its head's allocations
/// to the connection's next request.
#[derive(Debug)]
pub struct Request {
    /// The parsed head. `None` only once [`into_parts`](Self::into_parts)
    /// took it.
    parts: Option<Box<Parts>>,
    /// The body, which also holds the connection this request came on (one
    /// reference for both: each costs a locked instruction to take and to
    /// drop). `None` only once [`into_body`](Self::into_body) or
    /// [`into_parts`](Self::into_parts) took it.
    body: Option<Body>,
    generation: u64,
}

// Handlers hold a `Request` across awaits in futures that must be `Send`,
// and share `&Request` with tasks: keep it `Send + Sync`.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Request>();
};

const PARTS: &str = "a request's head is only taken by into_parts, which consumes it";
const BODY: &str = "a request's body is only taken by into_body or into_parts, which consume it";

impl From<Request> for http::Request<Body> {
    fn from(request: Request) -> Self {
        request.into_http()
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.recycle_parts();
    }
}

impl Request {
    pub(crate) fn new(parts: Box<Parts>, body: Body, generation: u64) -> Self {
        Request {
            parts: Some(parts),
            body: Some(body),
            generation,
        }
    }

    fn parts(&self) -> &Parts {
        self.parts.as_deref().expect(PARTS)
    }

    fn body(&self) -> &Body {
        self.body.as_ref().expect(BODY)
    }

    /// The connection this request came on.
    fn link(&self) -> &Link {
        self.body().link()
    }

    /// Leaves the head's allocations to the connection's next request:
    /// they go back with the body's state.
    fn recycle_parts(&mut self) {
        if let (Some(parts), Some(body)) = (self.parts.take(), self.body.as_mut()) {
            body.keep_spare_parts(parts);
        }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.parts().method
    }

    /// The request target as sent (origin form `/path?query` in practice).
    ///
    /// For a plain origin-form target the parser only checks it, and the
    /// `Uri` is built on the first call, or while parsing on a connection
    /// whose handlers ask for it; [`path`](Self::path) is cheaper when the
    /// path is all a handler needs.
    pub fn uri(&self) -> &Uri {
        self.parts().uri()
    }

    /// The target's path, exactly as [`uri`](Self::uri)`.path()` gives it,
    /// but without building a [`Uri`] for a plain origin-form target: the
    /// cheapest way to route.
    ///
    /// `/a/b` for `/a/b?c`; `/a` for `http://h/a?b` (absolute form) and `/`
    /// for `http://h`; `*` for `OPTIONS *`; empty for `CONNECT h:443`
    /// (authority form). A fragment is dropped, and percent-encoding is
    /// left as sent.
    pub fn path(&self) -> &str {
        self.parts().path()
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.parts().version
    }

    /// The header fields (names lowercased): names in the order first
    /// received, each name's values in the order received.
    ///
    /// Until a handler asks, the fields are only located in the received
    /// bytes: the map is built on the first call, or while parsing on a
    /// connection whose handlers ask for it, so a connection whose handlers
    /// never ask does not pay for it. Later calls return the same map.
    pub fn headers(&self) -> &HeaderMap {
        self.parts().headers()
    }

    /// Typed extra data, for middleware.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.parts.as_deref_mut().expect(PARTS).extensions
    }

    /// The client's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.link().transport.remote_addr()
    }

    /// The server address the client connected to.
    pub fn local_addr(&self) -> SocketAddr {
        self.link().transport.local_addr()
    }

    /// The body, to read from.
    pub fn body_mut(&mut self) -> &mut Body {
        self.body.as_mut().expect(BODY)
    }

    /// Splits off the body. The hang-up signal stays available through
    /// [`ResponseWriter::hangup`](crate::ResponseWriter::hangup).
    pub fn into_body(mut self) -> Body {
        // Recycle first: emptying the head drops the handler's extensions,
        // whose `Drop` may panic. Before the take, the body is still a
        // field and goes back to the connection as the request unwinds; a
        // `Body` already taken out could be leaked by that panic, leaving
        // the connection waiting for it.
        self.recycle_parts();
        self.body.take().expect(BODY)
    }

    /// The head and the body, apart. Builds the `Uri` and the header map
    /// if they were not yet. The connection's next request reuses the
    /// head's other allocations, as when a `Request` is dropped.
    pub fn into_parts(mut self) -> (http::request::Parts, Body) {
        let parts = self.parts.as_mut().expect(PARTS).take_http();
        self.recycle_parts();
        (parts, self.body.take().expect(BODY))
    }

    /// A handle to this request's hang-up that can be cloned and moved into
    /// a task or a stream: see [`HangupSignal`].
    pub fn hangup_signal(&self) -> HangupSignal {
        HangupSignal::new(self.body().link_arc().clone(), self.generation)
    }

    /// The bytes the client sent after this request, already read (the
    /// request is done with): for an upgrade.
    pub(crate) fn into_after(mut self) -> crate::Result<bytes::Bytes> {
        self.body_mut().take_after()
    }

    /// The request as `http`'s type: head (the `Uri` and header map are
    /// built if they were not) and streamed [`Body`]. Costs the building of
    /// those views, which a handler that asks for them pays anyway.
    pub fn into_http(self) -> http::Request<Body> {
        let (parts, body) = self.into_parts();
        http::Request::from_parts(parts, body)
    }

    /// Resolves when the client hangs up: closes its side (FIN, unless
    /// [`OnFin::Ignore`]), resets, or stops reading.
    /// Pending forever if it never does.
    ///
    /// Works while the handler has not read the body and while pipelined
    /// requests wait: the server watches socket readiness, not bytes.
    pub async fn hung_up(&self) -> Hangup {
        self.link().exchange.hung_up(self.generation).await
    }

    /// The hang-up so far, without waiting.
    pub fn hangup(&self) -> Option<Hangup> {
        self.link().exchange.hangup(self.generation)
    }

    /// Overrides the server's [`OnFin`] policy for this request: how the
    /// client closing its sending side is treated (per route, say, a
    /// download that must `Abort` while the rest of the server `Notify`s).
    ///
    /// Applies to a FIN noticed from now on. Switching to
    /// [`OnFin::Abort`] after a FIN was already reported makes the client
    /// gone at once: later writes fail.
    pub fn set_on_fin(&self, policy: OnFin) {
        if self.is_current() {
            let link = self.link();
            link.exchange.set_on_fin(policy, &link.transport);
        }
    }

    /// Overrides the server's [`OnHangup`] policy for this request, for
    /// hang-ups noticed from now on: with [`OnHangup::Cancel`] the handler
    /// is dropped as soon as its client is known gone.
    pub fn set_on_hangup(&self, policy: OnHangup) {
        if self.is_current() {
            self.link().exchange.set_on_hangup(policy);
        }
    }

    /// True while this request's exchange is the connection's current one
    /// (a request kept past its handler may outlive it).
    fn is_current(&self) -> bool {
        self.link().exchange.generation() == self.generation
    }

    /// A token cancelled when the client hangs up (as
    /// [`hung_up`](Self::hung_up) resolves), to pass down to work that
    /// should stop with it.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.link().exchange.token(self.generation)
    }
}
