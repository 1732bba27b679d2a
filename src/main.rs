//! The process edge: parse the command line, load and validate the configuration before
//! anything touches the network, run the subcommand, map the outcome to an exit code
//! (`interface.md`: 0 ok, 78 configuration problem, 2 usage, 1 fatal).

use mrav2_syslog_connector::cli::{Cli, Command};
use mrav2_syslog_connector::config::{self, Config};
use std::process::ExitCode;

/// EX_CONFIG: any configuration problem.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse_or_exit();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match cli.subcommand() {
        Command::CheckConfig(args) => {
            let config = match load(cli) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            print_warnings(&config);
            print!("{}", config.summary());
            if args.probe {
                eprintln!(
                    "probe: fetching a token, opening the stream and connecting to syslog are not available in this build yet"
                );
                return Ok(ExitCode::FAILURE);
            }
            println!("configuration ok: {}", config.path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run | Command::Status => {
            if let Err(code) = load(cli) {
                return Ok(code);
            }
            Ok(not_implemented(&cli.subcommand()))
        }
        command @ (Command::Demo(_) | Command::Simulate(_)) => Ok(not_implemented(&command)),
    }
}

/// Loads `--config`; on problems prints every one to stderr and gives exit code 78.
fn load(cli: &Cli) -> Result<Config, ExitCode> {
    let Some(path) = &cli.config else {
        // `Cli::parse_or_exit` already insisted on --config for these subcommands.
        eprintln!("error: --config PATH is required");
        return Err(ExitCode::from(2));
    };
    config::load_file(path).map_err(|e| {
        eprintln!("{e}");
        let n = e.problems.len();
        eprintln!(
            "{n} configuration problem{}; nothing was started",
            if n == 1 { "" } else { "s" }
        );
        ExitCode::from(EXIT_CONFIG)
    })
}

fn print_warnings(config: &Config) {
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
}

fn not_implemented(command: &Command) -> ExitCode {
    let name = match command {
        Command::Run => "run",
        Command::CheckConfig(_) => "check-config",
        Command::Status => "status",
        Command::Demo(_) => "demo",
        Command::Simulate(_) => "simulate",
    };
    eprintln!("{name}: not implemented in this build yet");
    ExitCode::FAILURE
}
