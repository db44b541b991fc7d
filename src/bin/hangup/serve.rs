//! `hangup serve [DIR]`: a static file server (being written).

use std::path::PathBuf;

/// Arguments of `hangup serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to serve.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
}

pub fn run(_args: Args) -> Result<(), Box<dyn std::error::Error>> {
    Err("serve is not implemented yet".into())
}
