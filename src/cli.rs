//! Command-line flags. Names carry units; every server limit is here.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use shoal_server::Config;

#[derive(Debug, Parser)]
#[command(
    name = "shoal",
    version,
    about = "A sharded, replicated key-value store that speaks the Redis protocol"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Run one shoal node (a standalone server holding every slot).
    Server(ServerArgs),
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// TCP port for RESP clients.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Data directory (created if missing; locked while the server runs).
    #[arg(long, default_value = "./shoal-data")]
    pub dir: PathBuf,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// Most clients connected at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_clients: usize,
    /// Largest bulk string a client may send (proto-max-bulk-len).
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    pub max_bulk_bytes: usize,
    /// Most elements in one request.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_array_len: usize,
    /// Longest inline command.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_inline_bytes: usize,
    /// Largest single reply buffered for a client before it is disconnected.
    #[arg(long, default_value_t = 1024 * 1024 * 1024)]
    pub max_output_bytes: usize,
}

impl ServerArgs {
    pub fn to_config(&self) -> Result<Config, String> {
        if self.max_clients == 0 {
            return Err("--max-clients must be at least 1".into());
        }
        if self.max_array_len == 0 || self.max_inline_bytes == 0 {
            return Err("--max-array-len and --max-inline-bytes must be at least 1".into());
        }
        let mut config = Config::new(SocketAddr::new(self.bind, self.port), self.dir.clone());
        config.limits.max_clients = self.max_clients;
        config.limits.decode.max_bulk_bytes = self.max_bulk_bytes;
        config.limits.decode.max_array_len = self.max_array_len;
        config.limits.decode.max_inline_bytes = self.max_inline_bytes;
        config.limits.max_output_bytes = self.max_output_bytes;
        Ok(config)
    }
}

/// Help and version go to stdout with success; any other parse error is
/// reduced to clap's one-line summary on stderr.
pub fn report_usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    eprintln!("shoal: {}", first.trim_start_matches("error: "));
    ExitCode::from(2)
}
