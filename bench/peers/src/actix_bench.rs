//! actix-web 4 peer for hangup's benchmarks, with the routes of hangup's
//! `bench_server` example:
//!
//! - `GET /plaintext` (and `GET /`) → `200 Hello, World!` (`text/plain`)
//! - `GET /bytes/N` → N bytes (N ≤ 64 MiB) with a `Content-Length`, the body
//!   a slice of one preallocated buffer (`Bytes::from_static`: no copy in the
//!   handler; actix-http may still copy it into its write buffer)
//! - `POST /echo` → the request body, streamed back (`web::Payload` as the
//!   response's stream)
//!
//! Usage: actix-bench [ADDR]   (default 127.0.0.1:3002)
//!
//! `HttpServer::workers(1)`: one worker thread, with its own single-threaded
//! runtime, serves every connection. actix also runs an accept thread and the
//! `System` thread (main); the harness pins the whole process to one core and
//! counts the CPU time of all its threads.
//!
//! Keep-alive timeout 60 s, as hangup's idle timeout (actix's default of 5 s
//! would close the idle-connections scenario's connections under it).

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::http::KeepAlive;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpResponse, HttpServer};

/// The largest `/bytes/N` body, in bytes (as in hangup's bench_server).
const MAX_BYTES: usize = 64 << 20;

/// The `/bytes/N` bodies: slices of one buffer, allocated on first use.
fn zeroes() -> &'static [u8] {
    static ZEROES: OnceLock<&'static [u8]> = OnceLock::new();
    ZEROES.get_or_init(|| Vec::leak(vec![b'0'; MAX_BYTES]))
}

async fn plaintext() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(Bytes::from_static(b"Hello, World!"))
}

async fn bytes(n: web::Path<String>) -> HttpResponse {
    match n.parse::<usize>() {
        // actix sets Content-Length from the body's size.
        Ok(n) if n <= MAX_BYTES => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(Bytes::from_static(&zeroes()[..n])),
        _ => HttpResponse::BadRequest()
            .content_type("text/plain")
            .body("N must be a byte count up to 64 MiB\n"),
    }
}

async fn echo(payload: web::Payload) -> HttpResponse {
    HttpResponse::Ok().streaming(payload)
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3002".to_owned());
    if addr == "-h" || addr == "--help" {
        eprintln!("usage: actix-bench [ADDR]");
        return Ok(());
    }
    eprintln!("actix-bench listening on {addr} (workers=1)");
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
                .route("/plaintext", web::get().to(plaintext))
                .route("/", web::get().to(plaintext))
                .route("/bytes/{n}", web::get().to(bytes))
                .route("/echo", web::post().to(echo))
        })
        .workers(1)
        .keep_alive(KeepAlive::Timeout(Duration::from_secs(60)))
        .backlog(1024)
        .bind(addr.as_str())?
        .run()
        .await
    })
}
