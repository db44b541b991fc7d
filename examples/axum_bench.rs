//! One axum `Router` served two ways, for `bench/` (issue 16): on hangup,
//! and on `axum::serve` (hyper), same binary, same router, same runtime.
//!
//! - `GET /plaintext` (and `GET /`) → `Hello, World!`
//!   (`text/plain; charset=utf-8`, axum's answer for a `&'static str`)
//!
//! ```text
//! cargo run --release --example axum_bench [ADDR]            # on hangup::serve
//! cargo run --release --example axum_bench [ADDR] --hyper    # on axum::serve
//! ```
//!
//! ADDR defaults to 127.0.0.1:3000; the flag and the address may come in
//! either order (the harnesses append the address). One thread
//! (current-thread runtime), like `bench_server`: the harness pins it to
//! one core. Both set `TCP_NODELAY` on accepted sockets (hangup always
//! does; for `axum::serve` it is the `tap_io` line axum's docs show), as
//! `bench/peers`' hyper-hello does.

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;

/// The router, as one would write it for either server.
fn app() -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/plaintext", get(hello))
}

async fn hello() -> &'static str {
    "Hello, World!"
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:3000".to_owned();
    let mut on_hyper = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--hyper" => on_hyper = true,
            "--hangup" => on_hyper = false,
            _ if arg.starts_with("--") => {
                return Err(format!("unknown flag {arg} (known: --hyper, --hangup)").into());
            }
            _ => addr = arg,
        }
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!(
        "axum_bench: listening on http://{} ({})",
        listener.local_addr()?,
        if on_hyper {
            "axum::serve, hyper"
        } else {
            "hangup::serve"
        }
    );
    if on_hyper {
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app()).await?;
    } else {
        hangup::serve(listener, hangup::Config::default(), app()).await?;
    }
    Ok(())
}
