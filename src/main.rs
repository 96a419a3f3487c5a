//! The `kube-idp` command: `serve`, `crd` and `hash-password`.

use std::io::Read as _;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kube::CustomResourceExt as _;
use kube_idp::config::{Config, LogFormat, ServeArgs};
use kube_idp::model::User;

/// A Kubernetes-native OpenID Connect identity provider.
#[derive(Parser)]
#[command(name = "kube-idp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider.
    Serve(Box<ServeArgs>),
    /// Print the CustomResourceDefinitions kube-idp reads.
    Crd,
    /// Read a password on standard input and print its bcrypt hash.
    HashPassword,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(*args).await,
        Command::Crd => {
            print!("{}", serde_yaml::to_string(&User::crd())?);
            Ok(())
        }
        Command::HashPassword => hash_password(),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    init_logging(config.log_format);
    let running = kube_idp::server::start(config, None).await?;
    running.wait().await.context("HTTP server failed")
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUBE_IDP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn hash_password() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the password from stdin")?;
    let password = input
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&input);
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    println!(
        "{}",
        bcrypt::hash(password, kube_idp::model::PASSWORD_COST)?
    );
    Ok(())
}
