//! `shoal get|set|del|keyslot|status|cluster`: small tools built on the cluster
//! client, for scripts and for looking at a running cluster.

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Args, Subcommand};
use shoal_client::{ClusterClient, RetryPolicy};
use shoal_engine::slot::key_slot;
use shoal_proto::Frame;

#[derive(Debug, Args)]
pub struct Target {
    /// Any node(s) of the cluster, HOST:PORT[,HOST:PORT…].
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub cluster: String,
    /// Per-command deadline, in milliseconds (retries happen within it).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Print a key's value (`(nil)` when missing).
    Get {
        key: String,
        #[command(flatten)]
        target: Target,
    },
    /// Set a key.
    Set {
        key: String,
        value: String,
        /// Expire after this many seconds.
        #[arg(long)]
        ex: Option<u64>,
        #[command(flatten)]
        target: Target,
    },
    /// Delete keys; prints how many existed.
    Del {
        #[arg(required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Print the hash slot of a key (computed locally).
    Keyslot { key: String },
    /// Print the cluster's nodes and shards with their slot ranges and key counts.
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// The cluster's shape (nodes, shards, moves) and changes to it.
    Cluster {
        #[command(subcommand)]
        tool: crate::admin::ClusterTool,
    },
}

pub fn run(tool: Tool) -> ExitCode {
    if let Tool::Keyslot { key } = &tool {
        println!("{}", key_slot(key.as_bytes()));
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run_async(tool)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("shoal: {message}");
    ExitCode::FAILURE
}

async fn connect(target: &Target) -> Result<ClusterClient, String> {
    let seeds: Vec<String> =
        target.cluster.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let policy =
        RetryPolicy { deadline: std::time::Duration::from_millis(target.timeout_ms), ..RetryPolicy::default() };
    ClusterClient::connect(&seeds, policy).await.map_err(|e| e.to_string())
}

fn args(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
}

async fn run_async(tool: Tool) -> Result<(), String> {
    match tool {
        Tool::Get { key, target } => {
            let client = connect(&target).await?;
            print_reply(client.call(args(&["GET", &key])).await.map_err(|e| e.to_string())?)
        }
        Tool::Set { key, value, ex, target } => {
            let client = connect(&target).await?;
            let mut words = vec!["SET".to_string(), key, value];
            if let Some(ex) = ex {
                words.extend(["EX".to_string(), ex.to_string()]);
            }
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            print_reply(client.call(args(&words)).await.map_err(|e| e.to_string())?)
        }
        Tool::Del { keys, target } => {
            let client = connect(&target).await?;
            // One DEL per key: keys may live on different nodes.
            let mut deleted = 0;
            for key in keys {
                match client.call(args(&["DEL", &key])).await.map_err(|e| e.to_string())? {
                    Frame::Integer(n) => deleted += n,
                    other => return print_reply(other),
                }
            }
            println!("{deleted}");
            Ok(())
        }
        Tool::Status { target } => crate::status::print(&connect(&target).await?).await,
        Tool::Cluster { tool } => crate::admin::run(tool).await,
        Tool::Keyslot { .. } => unreachable!("handled without a runtime"),
    }
}

/// Prints a reply as redis-cli does without a terminal; errors fail.
fn print_reply(frame: Frame) -> Result<(), String> {
    match frame {
        Frame::Bulk(b) | Frame::Simple(b) | Frame::Verbatim(_, b) => println!("{}", String::from_utf8_lossy(&b)),
        Frame::Integer(n) => println!("{n}"),
        Frame::Null | Frame::NullArray => println!("(nil)"),
        Frame::Error(e) => return Err(String::from_utf8_lossy(&e).into_owned()),
        other => println!("{other:?}"),
    }
    Ok(())
}
