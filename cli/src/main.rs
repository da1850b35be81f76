//! `bald`: Bayesian active learning from the command line.

use std::io::Write as _;
use std::process::ExitCode;

use bald_cli::acquire::{self, AcquireArgs};
#[cfg(feature = "experiment")]
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
    /// MNIST-5k (or IDX data): learning curves (CSV, SVG) and the labels each strategy needs
    /// to reach each accuracy threshold.
    #[cfg(feature = "experiment")]
    Experiment(Box<ExperimentArgs>),
}

fn main() -> ExitCode {
    // `bald experiment --preset NAME`: the preset's arguments before the user's.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    #[cfg(feature = "experiment")]
    let argv = match argv.get(1).is_some_and(|a| a == "experiment") {
        true => match experiment::presets::expand(argv) {
            Ok(argv) => argv,
            Err(msg) => {
                eprintln!("bald: {msg}");
                return ExitCode::from(2);
            }
        },
        false => argv,
    };
    // clap's own message for bad arguments: what is wrong, the allowed values, a similar
    // value when there is one; exit status 2.
    let cli = Cli::parse_from(argv);
    let result = match &cli.command {
        Command::Acquire(args) => acquire::command(args).map(|text| (text, args.output.is_none())),
        #[cfg(feature = "experiment")]
        Command::Experiment(args) => experiment::command(args).map(|text| (text, true)),
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
