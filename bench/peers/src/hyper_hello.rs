//! hyper 1.x peer for hangup's benchmarks, with the routes of hangup's
//! `bench_server` example:
//!
//! - `GET /plaintext` (and `GET /`) → `200 Hello, World!` (`text/plain`)
//! - `GET /bytes/N` → N bytes (N ≤ 64 MiB) with a `Content-Length`, the body
//!   a slice of one preallocated buffer (`Bytes::from_static`, no copy in the
//!   handler), so hyper writes head and body in one vectored write
//! - `POST /echo` → the request body, streamed back (the request's
//!   `Incoming` body is the response body)
//!
//! Usage: hyper-hello [ADDR] [--pipeline-flush]
//!
//! * ADDR defaults to 127.0.0.1:3001.
//! * `--pipeline-flush` (or env `PIPELINE_FLUSH=1`) turns on hyper's
//!   `http1::Builder::pipeline_flush(true)`, which batches the responses to
//!   pipelined requests into one write. Pipelined comparisons use it, since
//!   that is hyper at its best for that workload.
//!
//! One tokio current-thread runtime, like hangup's examples, so both
//! servers are single-threaded and can be pinned to one core.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, World!";

/// The largest `/bytes/N` body, in bytes (as in hangup's bench_server).
const MAX_BYTES: usize = 64 << 20;

/// The `/bytes/N` bodies: slices of one buffer, allocated on first use.
fn zeroes() -> &'static [u8] {
    static ZEROES: OnceLock<&'static [u8]> = OnceLock::new();
    ZEROES.get_or_init(|| Vec::leak(vec![b'0'; MAX_BYTES]))
}

type Body = Either<Full<Bytes>, Incoming>;

fn full(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut res = Response::new(Either::Left(Full::new(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

async fn route(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let res = match (req.method(), path) {
        (&Method::GET, "/plaintext" | "/") => {
            full(StatusCode::OK, "text/plain", Bytes::from_static(BODY))
        }
        (&Method::GET, _) if path.starts_with("/bytes/") => {
            match path["/bytes/".len()..].parse::<usize>() {
                // hyper sets Content-Length from the body's exact size.
                Ok(n) if n <= MAX_BYTES => full(
                    StatusCode::OK,
                    "application/octet-stream",
                    Bytes::from_static(&zeroes()[..n]),
                ),
                _ => full(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    Bytes::from_static(b"N must be a byte count up to 64 MiB\n"),
                ),
            }
        }
        (&Method::POST, "/echo") => Response::new(Either::Right(req.into_body())),
        _ => full(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found\n"),
        ),
    };
    Ok(res)
}

struct Args {
    addr: SocketAddr,
    pipeline_flush: bool,
}

fn parse_args() -> Args {
    let mut addr: SocketAddr = "127.0.0.1:3001".parse().unwrap();
    let mut pipeline_flush = std::env::var("PIPELINE_FLUSH")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    for arg in std::env::args().skip(1) {
        if arg == "--pipeline-flush" {
            pipeline_flush = true;
        } else if arg == "-h" || arg == "--help" {
            eprintln!("usage: hyper-hello [ADDR] [--pipeline-flush]");
            std::process::exit(0);
        } else {
            addr = arg.parse().unwrap_or_else(|e| {
                eprintln!("hyper-hello: bad address {arg:?}: {e}");
                std::process::exit(2);
            });
        }
    }
    Args {
        addr,
        pipeline_flush,
    }
}

fn main() {
    let args = parse_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(serve(args));
}

async fn serve(args: Args) {
    let listener = TcpListener::bind(args.addr).await.unwrap_or_else(|e| {
        eprintln!("hyper-hello: bind {}: {e}", args.addr);
        std::process::exit(1);
    });
    eprintln!(
        "hyper-hello listening on {} (pipeline_flush={})",
        args.addr, args.pipeline_flush
    );
    let mut builder = http1::Builder::new();
    builder.pipeline_flush(args.pipeline_flush);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            // EMFILE and friends: keep serving the connections we have.
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(route));
        tokio::task::spawn(async move {
            let _ = conn.await;
        });
    }
}
