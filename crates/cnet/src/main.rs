use std::process::ExitCode;

use clap::Parser;

use cnet::cli::{Cli, Command, NetworkSubcommand};
use cnet::{client, container, context, image, network, system};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.debug {
        init_debug_output();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) if client::is_broken_pipe(&err) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("{}", client::render_error(&err));
            ExitCode::FAILURE
        }
    }
}

/// `-D`: cnet's spans, each printed when it closes with the time it took (`time.busy` working,
/// `time.idle` waiting for the daemon, the supervisor or the container), and debug events.
fn init_debug_output() {
    let filter = tracing_subscriber::EnvFilter::new("cnet=debug,cnet_runtime=debug,cnet_registry=debug");
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
}

/// One arm per top-level command; each hands off to the module implementing it.
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let socket = cli.host.as_path();
    let ctx = context::Ctx::new(&cli);
    match cli.command {
        Command::Network(args) => match args.command {
            NetworkSubcommand::Network(command) => network::run(socket, command).await,
            NetworkSubcommand::Connect(args) => network::connect(&ctx, &args).await,
            NetworkSubcommand::Disconnect(args) => network::disconnect(&ctx, &args).await,
        },
        Command::Create(args) => network::create(socket, &args, &mut std::io::stdout().lock()).await,
        Command::Info(args) => system::info(socket, &args).await,
        Command::Events(args) => cnet::events::events(socket, &args).await,
        Command::Version => system::version(socket).await,
        Command::Completion(args) => cnet::manual::completion(args.shell),
        Command::Man(args) => cnet::manual::man_pages(&args.dir),
        Command::Node(args) => match args.command {
            cnet::cli::NodeCommand::Ls(args) => system::node_ls(socket, &args).await,
        },
        Command::Lab(args) => cnet::lab::run(&ctx, args).await,
        Command::Link(args) => cnet::link::run(&ctx, args).await,
        Command::Run(args) => container::run(&ctx, &args).await,
        Command::Ps(args) => container::ps(&ctx, &args).await,
        Command::Port(args) => container::port(&ctx, &args).await,
        Command::Start(args) => container::start(&ctx, &args),
        Command::Stop(args) => container::stop(&ctx, &args),
        Command::Kill(args) => container::kill(&ctx, &args),
        Command::Rm(args) => container::rm(&ctx, &args).await,
        Command::Logs(args) => container::logs(&ctx, &args),
        Command::Exec(args) => container::exec(&ctx, &args),
        Command::Inspect(args) => container::inspect(&ctx, &args).await,
        Command::Top(args) => container::top(&ctx, &args),
        Command::Capture(args) => cnet::capture::capture(&ctx, &args),
        Command::Wait(args) => container::wait(&ctx, &args),
        Command::Image(args) => image::run(&ctx, args.command).await,
        Command::Pull(args) => cnet::pull::pull(&ctx, &args).await,
        Command::Import(args) => image::import(&ctx, &args),
        Command::Images(args) => image::ls(&ctx, &args),
        Command::Rmi(args) => image::rm(&ctx, &args),
    }
}
