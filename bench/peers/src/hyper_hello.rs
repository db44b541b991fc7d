//! hyper 1.x "Hello, World!" peer for hangup's benchmarks.
//!
//! Usage: hyper-hello [ADDR] [--pipeline-flush]
//!
//! * ADDR defaults to 127.0.0.1:3001.
//! * `--pipeline-flush` (or env `PIPELINE_FLUSH=1`) turns on hyper's
//!   `http1::Builder::pipeline_flush(true)`, which batches the responses to
//!   pipelined requests into one write. Pipelined comparisons use it, since
//!   that is hyper at its best for that workload.
//!
//! One tokio current-thread runtime, like hangup's `hello` example, so both
//! servers are single-threaded and can be pinned to one core.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, World!";

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let found = req.method() == Method::GET && matches!(req.uri().path(), "/" | "/plaintext");
    let mut res = if found {
        let mut res = Response::new(Full::new(Bytes::from_static(BODY)));
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        res
    } else {
        Response::new(Full::new(Bytes::new()))
    };
    if !found {
        *res.status_mut() = StatusCode::NOT_FOUND;
    }
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
        let conn = builder.serve_connection(TokioIo::new(stream), service_fn(hello));
        tokio::task::spawn(async move {
            let _ = conn.await;
        });
    }
}
