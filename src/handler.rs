//! [`Handler`]: what the server calls for each request.

use std::future::Future;

use crate::error::Result;
use crate::request::Request;
use crate::response::ResponseWriter;

/// Serves one request: reads what it needs from the [`Request`], writes
/// the response with the [`ResponseWriter`], and returns.
///
/// Implemented for every `Fn(Request, ResponseWriter) -> impl Future<Output
/// = Result<()>>`, so an `async fn` or a closure returning an `async` block
/// is a handler:
///
/// ```
/// async fn hello(_req: hangup::Request, mut res: hangup::ResponseWriter) -> hangup::Result<()> {
///     res.write_all(b"Hello, World!").await
/// }
/// ```
///
/// Returning `Err` before the response head is committed makes the server
/// answer with [`Error::status`](crate::Error::status) (500 for most errors,
/// 413 for [`BodyTooLarge`](crate::Error::BodyTooLarge), 400 for a malformed
/// body) and close the connection. After the head is committed, an error
/// closes the connection; a chunked response then lacks its last chunk, so
/// the client knows it is incomplete. A panic is treated as an error.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request.
    fn call(
        &self,
        request: Request,
        response: ResponseWriter,
    ) -> impl Future<Output = Result<()>> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request, ResponseWriter) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    fn call(
        &self,
        request: Request,
        response: ResponseWriter,
    ) -> impl Future<Output = Result<()>> + Send {
        self(request, response)
    }
}
