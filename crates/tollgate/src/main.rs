//! `tollgate`: one binary that runs any set of Tollgate components (docs/architecture.md,
//! "Components and profiles").
//! This file is the edge: parse the command line, install process-wide providers, run a
//! command, and turn failures into one line on stderr and a meaningful exit code.

mod account_cli;
mod api_cli;
mod app_cli;
mod cli;
mod credentials;
mod heap;
mod node;
mod project_cli;
mod rest_client;
mod tenant_cli;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand, KeysCommand};
use std::process::ExitCode;

/// Exit codes, so that scripts and supervisors can tell failures apart.
pub mod exit {
    /// Bad configuration or usage (as linkerd and sysexits' EX_USAGE).
    pub const CONFIG: u8 = 64;
    /// A database or peer could not be reached (EX_UNAVAILABLE).
    pub const UNAVAILABLE: u8 = 69;
    /// A listener could not bind, or another OS-level failure (EX_OSERR).
    pub const OS: u8 = 71;
    /// Anything else, including failed migrations.
    pub const OTHER: u8 = 1;
}

/// A failure to report: the one line to print and the exit code to use.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What went wrong and what to do, on one line.
    pub message: String,
}

impl Failure {
    /// A failure with `code`, flattened to one line.
    pub fn new(code: u8, message: impl std::fmt::Display) -> Self {
        let message = message.to_string().lines().map(str::trim).collect::<Vec<_>>().join(" ");
        Self { code, message }
    }
}

fn main() -> ExitCode {
    // Files and directories the process creates (SQLite databases and their journals,
    // keys, persisted gateway state under node.data_dir) are its user's alone: 0600 and
    // 0700. Set before any thread starts.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    let output = cli.output;
    // One crypto provider for the whole process (TLS listeners, database TLS), installed
    // before anything can ask rustls for the default.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let result = match cli.command {
        Command::Serve(args) => run_async(node::serve(args)),
        Command::Migrate(args) => run_async(node::migrate(args)),
        Command::Config(ConfigCommand::Default) => {
            #[allow(clippy::print_stdout)]
            {
                print!("{}", tollgate_config::DEFAULT_CONFIG_TOML);
            }
            Ok(())
        }
        Command::Config(ConfigCommand::Check(args)) => node::check_config(&args),
        Command::Api(command) => run_async(api_cli::run(command, output)),
        Command::App(command) => run_async(app_cli::run(command, output)),
        Command::Token(args) => run_async(app_cli::token(args, output)),
        Command::Login(args) => run_async(account_cli::login(args, output)),
        Command::Logout(args) => run_async(account_cli::logout(args, output)),
        Command::Signup(args) => run_async(account_cli::signup(args, output)),
        Command::Subscribe(args) => run_async(app_cli::subscribe(args, output)),
        Command::Tenant(command) => run_async(tenant_cli::run(command, output)),
        Command::Export(command) => run_async(project_cli::export(command, output)),
        Command::Import(command) => run_async(project_cli::import(command, output)),
        Command::Apply(args) => run_async(project_cli::apply(args, output)),
        Command::Keys(KeysCommand::Rotate { node, overlap }) => run_async(node::rotate_signing_keys(node, overlap)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("tollgate: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run_async(fut: impl std::future::Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tollgate")
        .build()
        .map_err(|e| Failure::new(exit::OS, format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(fut)
}
