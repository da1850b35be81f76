//! `bald`: Bayesian active learning from the command line.

use std::io::Write as _;
use std::process::ExitCode;

use bald_cli::acquire::{self, AcquireArgs};
use bald_cli::experiment::{self, ExperimentArgs};
use clap::{Parser, Subcommand};

/// Bayesian deep active learning: pick which unlabelled points to label next (BALD, BatchBALD,
/// max entropy, variation ratios, mean STD, margin, random, PowerBALD).
#[derive(Debug, Parser)]
#[command(name = "bald", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Acquire a batch from a pool of MC-dropout predictions (.npy, N x K x C), printed as JSON
    /// (or CSV): indices in pick order, their scores, strategy, backend, seconds.
    Acquire(AcquireArgs),
    /// The active-learning experiment of Gal et al. (2017) and the BatchBALD paper on embedded
    /// MNIST-5k: learning curves (CSV, SVG) and the labels each strategy needs for 90% / 95%.
    Experiment(ExperimentArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line naming the problem (clap's first line), not its multi-line help.
            let text = e.render().to_string();
            let line = text.lines().next().unwrap_or("bad arguments");
            eprintln!("bald: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Command::Acquire(args) => acquire::run(args).map(|text| (text, args.output.is_none())),
        Command::Experiment(args) => experiment::run(args).map(|text| (text, true)),
    };
    match result {
        Ok((text, print)) => {
            if print {
                let _ = std::io::stdout().write_all(text.as_bytes());
            }
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("bald: {}", msg.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
