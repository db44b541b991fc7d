//! `hangup lab` (being written).

/// Arguments of `hangup lab`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<(), Box<dyn std::error::Error>> {
    Err("lab is not implemented yet".into())
}
