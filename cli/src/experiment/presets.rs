//! `bald experiment --preset NAME`: every argument of a published protocol, by name. Arguments
//! given on the command line win over the preset's.

use std::ffi::OsString;

/// A published protocol.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// Its name.
    pub name: &'static str,
    /// The paper.
    pub paper: &'static str,
    /// What it shows.
    pub about: &'static str,
    /// The run time measured on this project's 2-core machine (the build not included).
    pub run_time: &'static str,
    /// Its arguments, in groups (a protocol's shared settings, then its own): each flag, with
    /// its value when it takes one.
    pub args: &'static [&'static [Arg]],
}

/// A flag, with its value when it takes one.
pub type Arg = (&'static str, Option<&'static str>);

/// Gal et al.'s protocol, shared by their experiments: the CNN, 10 labels a round to 300,
/// K = 100, 2000 pool images scored a round, 3 seeds.
const GAL2017: &[Arg] = &[
    ("--model", Some("cnn")),
    ("--repeated", Some("1")),
    ("--acquire", Some("10")),
    ("--seeds", Some("3")),
    ("--budget", Some("300")),
    ("--k", Some("100")),
    ("--pool-subset", Some("2000")),
    ("--thresholds", Some("0.9,0.95")),
];

/// Every preset.
pub const PRESETS: [Preset; 4] = [
    Preset {
        name: "batchbald-repeated",
        paper: "Kirsch, van Amersfoort and Gal, BatchBALD (NeurIPS 2019), Repeated-MNIST",
        about: "the default run: BALD picks near-duplicates on Repeated-MNIST (each image 3 \
                times), BatchBALD does not; random, BALD and BatchBALD, the labels each needs \
                to reach 85% and 87%",
        run_time: "about 2 minutes a seed",
        args: &[&[
            ("--repeated", Some("3")),
            ("--model", Some("mlp")),
            ("--strategies", Some("random,bald,batchbald")),
            ("--budget", Some("400")),
            ("--acquire", Some("20")),
            ("--k", Some("20")),
            ("--max-epochs", Some("100")),
            ("--patience", Some("10")),
            ("--thresholds", Some("0.85,0.87")),
        ]],
    },
    Preset {
        name: "gal2017",
        paper: "Gal, Islam and Ghahramani, Deep Bayesian Active Learning with Image Data \
                (ICML 2017), MNIST",
        about: "their Bayesian CNN and acquisition functions, labels to 90% and 95% test \
                accuracy over 3 seeds",
        run_time: "about 45 minutes a seed",
        args: &[
            GAL2017,
            &[(
                "--strategies",
                Some("bald,var-ratios-mode,entropy,mean-std,random,batchbald"),
            )],
        ],
    },
    Preset {
        name: "gal2017-deterministic",
        paper: "Gal, Islam and Ghahramani (ICML 2017), experiment 2",
        about: "the importance of model uncertainty: Var Ratios and Max Entropy acquiring from \
                one forward pass without dropout",
        run_time: "about 17 minutes a seed",
        args: &[
            GAL2017,
            &[
                ("--strategies", Some("var-ratios,entropy")),
                ("--deterministic", None),
            ],
        ],
    },
    Preset {
        name: "epig",
        paper: "Bickford Smith, Kirsch, Farquhar, Gal, Foster and Rainforth, Prediction-oriented \
                Bayesian active learning (AISTATS 2023), redundant MNIST",
        about: "the test and target distribution holds classes 1 and 7, the pool all ten: EPIG \
                and batch EPIG against BALD and random, labels to 90% and 95% test accuracy \
                over 3 seeds",
        run_time: "about 15 minutes a seed",
        args: &[&[
            ("--model", Some("cnn")),
            ("--repeated", Some("1")),
            ("--setup", Some("redundant")),
            ("--strategies", Some("epig,batch-epig,bald,random")),
            ("--acquire", Some("10")),
            ("--budget", Some("200")),
            ("--k", Some("100")),
            ("--pool-subset", Some("2000")),
            ("--targets", Some("100")),
            ("--seeds", Some("3")),
            ("--thresholds", Some("0.9,0.95")),
        ]],
    },
];

/// The preset named `name`.
pub fn find(name: &str) -> Result<&'static Preset, String> {
    PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        format!(
            "unknown preset '{name}': one of {} (--list-presets)",
            names.join(", ")
        )
    })
}

/// `argv` (a `bald experiment` command line, the program and the subcommand first) with the
/// arguments of its `--preset` put before the user's, except those the user gives.
pub fn expand(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let text: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let named = text.iter().enumerate().find_map(|(i, a)| match a.as_str() {
        "--preset" => Some(text.get(i + 1).cloned()),
        a => a.strip_prefix("--preset=").map(|v| Some(v.to_string())),
    });
    let Some(name) = named else {
        return Ok(argv);
    };
    // A missing value is clap's error to give.
    let Some(name) = name else {
        return Ok(argv);
    };
    let preset = find(&name)?;
    let given = |flag: &str| {
        text.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let mut out: Vec<OsString> = argv[..2.min(argv.len())].to_vec();
    for &(flag, value) in preset.args.iter().copied().flatten() {
        if !given(flag) {
            out.push(flag.into());
            out.extend(value.map(OsString::from));
        }
    }
    out.extend(argv.into_iter().skip(2));
    Ok(out)
}

/// `--list-presets`: each preset, its paper, what it shows, its run time here and where this
/// repository records its results.
pub fn list() -> String {
    let mut s = String::new();
    for p in &PRESETS {
        let args: Vec<String> = p
            .args
            .iter()
            .copied()
            .flatten()
            .map(|(f, v)| v.map_or(f.to_string(), |v| format!("{f} {v}")))
            .collect();
        s.push_str(&format!(
            "{}: {}\n  {}\n  {}; this repository's results: experiment/results/{}/\n  {}\n",
            p.name,
            p.paper,
            p.about,
            p.run_time,
            p.name,
            args.join(" ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn a_preset_fills_what_the_user_does_not_give() {
        let got = expand(argv(&[
            "bald",
            "experiment",
            "--preset",
            "gal2017",
            "--seeds",
            "1",
            "--budget=40",
        ]))
        .unwrap();
        let got: Vec<String> = got.iter().map(|a| a.to_string_lossy().into()).collect();
        assert_eq!(&got[..4], ["bald", "experiment", "--model", "cnn"]);
        // The user's --seeds and --budget, once each, after the preset's.
        assert_eq!(got.iter().filter(|a| *a == "--seeds").count(), 1);
        assert!(!got.contains(&"300".to_string()));
        assert!(got.ends_with(&[
            "--preset".into(),
            "gal2017".into(),
            "--seeds".into(),
            "1".into(),
            "--budget=40".into()
        ]));
        assert!(got.contains(&"--pool-subset".to_string()));
    }

    #[test]
    fn without_a_preset_nothing_changes_and_unknown_names_are_errors() {
        let plain = argv(&["bald", "experiment", "--seeds", "2"]);
        assert_eq!(expand(plain.clone()).unwrap(), plain);
        let e = expand(argv(&["bald", "experiment", "--preset", "gal"])).unwrap_err();
        assert!(e.contains("one of batchbald-repeated, gal2017"), "{e}");
        assert!(list().contains("gal2017-deterministic"));
    }

    /// Each preset's results are where `--list-presets` says.
    #[test]
    fn every_preset_has_its_results_folder() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiment/results");
        for p in &PRESETS {
            let readme = root.join(p.name).join("README.md");
            assert!(readme.is_file(), "{} has no {}", p.name, readme.display());
        }
    }
}
