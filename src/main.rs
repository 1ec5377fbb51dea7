//! The `hearth` command: serve (the default) or print a token.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hearth::auth::Authenticator;
use hearth::config::Config;
use hearth_actors::model::ids::PlayerId;

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "Realtime messaging server: therapeutic chat over WebSocket"
)]
struct Cli {
    /// Configuration file; without it ./config.toml is read when present.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Development mode: accept the shipped development secret on any
    /// bind address (otherwise only on a loopback one).
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print a JWT for PLAYER signed with the configured HS256 secret.
    Token {
        player: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Display name (the `name` claim).
        #[arg(long)]
        name: Option<String>,
    },
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let (path, required) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    let mut config = Config::load(&path, required).map_err(|e| e.to_string())?;
    config.apply_env(|key| std::env::var(key).ok());
    config.server.dev |= cli.dev;
    Ok(config)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("hearth: {err}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Some(Command::Token { player, ttl, name }) => token(&config, &player, ttl, name),
        None | Some(Command::Serve) => serve(config),
    }
}

fn token(config: &Config, player: &str, ttl: u64, name: Option<String>) -> ExitCode {
    let issued = PlayerId::parse(player)
        .map_err(|e| e.to_string())
        .and_then(|player| {
            let auth = Authenticator::from_config(&config.auth).map_err(|e| e.to_string())?;
            auth.issue(&player, ttl, name).map_err(|e| e.to_string())
        });
    match issued {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("hearth: {err}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Config) -> ExitCode {
    hearth::logging::init(&config.log.level);
    if config.uses_dev_secret() {
        log::warn!(
            "insecure_config reason=dev_jwt_secret detail=\"auth.secret is the shipped development secret: \
             anyone can mint tokens. Set HEARTH_JWT_SECRET before exposing this server.\""
        );
    }
    let system = actix::System::new();
    let result = system.block_on(async move {
        let listener = TcpListener::bind(&config.server.bind)?;
        let running = hearth::start(config, listener).map_err(std::io::Error::other)?;
        log::info!("listening addr={}", running.addr);
        let shutdown = running.shutdown.clone();
        actix_rt::spawn(async move {
            let signal = stop_signal().await;
            log::info!("signal_received signal={signal}");
            shutdown.run().await;
        });
        running.server.await
    });
    match result {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            log::error!("fatal error={err}");
            eprintln!("hearth: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for SIGTERM or SIGINT and names it.
async fn stop_signal() -> &'static str {
    use actix_rt::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(err) => {
            log::warn!("signal_handler_failed signal=SIGTERM error={err}");
            let _ = actix_rt::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = actix_rt::signal::ctrl_c() => "SIGINT",
    }
}
