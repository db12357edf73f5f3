use std::process::ExitCode;

use clap::Parser;

use cnet::cli::{Cli, Command};
use cnet::{client, network, system};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(err) if client::is_broken_pipe(&err) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("{}", client::render_error(&err));
            ExitCode::FAILURE
        }
    }
}

/// One arm per top-level command; each hands off to the module implementing it.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let socket = cli.host.as_path();
    match cli.command {
        Command::Network(args) => network::run(socket, args.command).await,
        Command::Create(args) => network::create(socket, &args, &mut std::io::stdout().lock()).await,
        Command::Info(args) => system::info(socket, &args).await,
    }
}
