//! The `hearth` command: serve (the default), check a configuration, or
//! print a token.

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
    /// Print every environment variable Hearth reads: the setting it sets
    /// and its default.
    Env,
    /// Read the configuration (the file, then the environment) and report
    /// every problem at once, without starting anything.
    CheckConfig,
    /// Print a JWT for PLAYER signed with the configured HS256 secret.
    Token {
        player: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Display name (the `name` claim).
        #[arg(long)]
        name: Option<String>,
        /// Channels the token grants (the `channels` claim), comma-separated.
        #[arg(long, value_delimiter = ',')]
        channels: Vec<String>,
    },
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let (path, required) = match &cli.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from("config.toml"), false),
    };
    let mut config = Config::load(&path, required).map_err(|e| e.to_string())?;
    config
        .apply_env(|key| std::env::var(key).ok())
        .map_err(|e| e.to_string())?;
    config.server.dev |= cli.dev;
    Ok(config)
}

/// `HEARTH_*` variables that set nothing (a typo, most likely).
fn unknown_env() -> Vec<String> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    hearth::config::unknown_env_names(names.iter().map(String::as_str))
        .into_iter()
        .map(str::to_string)
        .collect()
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
        Some(Command::Token {
            player,
            ttl,
            name,
            channels,
        }) => token(&config, &player, ttl, name, channels),
        Some(Command::CheckConfig) => check_config(&config),
        Some(Command::Env) => {
            print!("{}", hearth::config::env_table());
            ExitCode::SUCCESS
        }
        None | Some(Command::Serve) => serve(config),
    }
}

fn check_config(config: &Config) -> ExitCode {
    for name in unknown_env() {
        eprintln!("hearth: warning: {name} sets nothing");
    }
    let checked = config.validate().and_then(|()| {
        Authenticator::from_config(&config.auth)
            .map(|_| ())
            .map_err(|e| hearth::config::ConfigError::Invalid(e.to_string()))
    });
    match checked {
        Ok(()) => {
            println!("configuration is valid");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("hearth: {err}");
            ExitCode::FAILURE
        }
    }
}

fn token(
    config: &Config,
    player: &str,
    ttl: u64,
    name: Option<String>,
    channels: Vec<String>,
) -> ExitCode {
    let issued = PlayerId::parse(player)
        .map_err(|e| e.to_string())
        .and_then(|player| {
            let auth = Authenticator::from_config(&config.auth).map_err(|e| e.to_string())?;
            auth.issue(&player, ttl, name, channels)
                .map_err(|e| e.to_string())
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
    hearth::logging::init(&config.log);
    hearth_actors::support::pseudonym::set_key(config.log.pseudonym_key.as_bytes());
    for name in unknown_env() {
        log::warn!(name:%; "config_env_unknown");
    }
    hearth::system::raise_open_files(config.limits.max_connections);
    if config.uses_dev_secret() {
        log::warn!(
            reason = "dev_jwt_secret",
            detail = "auth.secret is the shipped development secret: anyone can mint tokens. \
                      Set HEARTH_JWT_SECRET before exposing this server.";
            "insecure_config"
        );
    }
    let system = actix::System::new();
    let result = system.block_on(async move {
        // Handlers go in before the socket is bound: a signal that arrives
        // once a client can reach the server must already mean "drain".
        let stop = StopSignals::install()?;
        let listener = TcpListener::bind(&config.server.bind)?;
        let running = hearth::start(config, listener).map_err(std::io::Error::other)?;
        log::info!(addr:% = running.addr; "listening");
        if let Some(admin) = running.admin_addr {
            log::info!(addr:% = admin; "admin_listening");
        }
        let shutdown = running.shutdown.clone();
        actix_rt::spawn(async move {
            let signal = stop.recv().await;
            log::info!(signal:%; "signal_received");
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
            log::error!(error:% = err; "fatal");
            eprintln!("hearth: {err}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM and SIGINT, registered with the kernel when installed (not on
/// first poll, as `ctrl_c()` would be).
struct StopSignals {
    terminate: actix_rt::signal::unix::Signal,
    interrupt: actix_rt::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use actix_rt::signal::unix::{signal, SignalKind};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for either signal and names it.
    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
