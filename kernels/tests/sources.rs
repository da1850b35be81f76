//! The embedded sources agree with the Rust side (no GPU or NVRTC needed; compiling them is
//! bald-cuda's `compile` test).

use bald_kernels::{Kernel, Module, ScoreKind};

#[test]
fn every_kernel_is_defined_once_in_its_module() {
    for kernel in Kernel::ALL {
        // The definition: the name and its parameter list, after a space or a line break.
        let decl = format!("{}(", kernel.name());
        let defined = |src: &str| {
            src.match_indices(&decl)
                .filter(|(at, _)| src[..*at].ends_with([' ', '\n']))
                .count()
        };
        for module in Module::ALL {
            let count = defined(module.source());
            let expected = usize::from(module == kernel.module());
            assert_eq!(count, expected, "{} in {}", kernel.name(), module.name());
        }
        let src = kernel.module().source();
        let at = src.find(&decl).unwrap();
        let head = &src[src[..at].rfind("extern \"C\"").unwrap_or(0)..at];
        assert!(
            head.starts_with("extern \"C\"") && head.contains("__global__") && !head.contains(';'),
            "{} is not declared `extern \"C\" __global__`",
            kernel.name()
        );
    }
}

#[test]
fn every_module_kernel_is_listed() {
    for module in Module::ALL {
        let listed = Kernel::ALL.iter().filter(|k| k.module() == module).count();
        let defined = module.source().matches("extern \"C\" __global__").count();
        assert_eq!(listed, defined, "{}", module.name());
    }
}

#[test]
fn score_selectors_match_the_source() {
    let src = Module::Scores.source();
    for (kind, name) in [
        (ScoreKind::Entropies, "SCORE_ENTROPIES"),
        (ScoreKind::Entropy, "SCORE_ENTROPY"),
        (ScoreKind::Conditional, "SCORE_CONDITIONAL"),
        (ScoreKind::Bald, "SCORE_BALD"),
        (ScoreKind::VarRatios, "SCORE_VAR_RATIOS"),
        (ScoreKind::VarRatiosMode, "SCORE_VAR_RATIOS_MODE"),
        (ScoreKind::MeanStd, "SCORE_MEAN_STD"),
        (ScoreKind::MeanStdUnbiased, "SCORE_MEAN_STD_UNBIASED"),
        (ScoreKind::Margin, "SCORE_MARGIN"),
    ] {
        let define = format!("#define {name} {}u", kind as u32);
        assert!(src.contains(&define), "missing `{define}`");
    }
}

#[test]
fn launch_constants_match_the_source() {
    let joint = Module::Joint.source();
    assert!(joint.contains(&format!(
        "#define JOINT_THREADS {}",
        bald_kernels::JOINT_THREADS
    )));
    assert!(joint.contains(&format!(
        "#define JOINT_NB {}",
        bald_kernels::JOINT_CANDIDATES_PER_BLOCK
    )));
    let scores = Module::Scores.source();
    assert!(scores.contains(&format!(
        "#define SCORES_WIDE_C {}u",
        bald_kernels::SCORES_WIDE_C
    )));
    assert!(scores.contains(&format!(
        "#define SCORES_WIDE_THREADS {}",
        bald_kernels::SCORES_WIDE_THREADS
    )));
    let head = Module::Head.source();
    let (tm, tn) = bald_kernels::DENSE_TILE;
    assert!(head.contains(&format!("#define DENSE_TM {tm}")));
    assert!(head.contains(&format!("#define DENSE_TN {tn}")));
}
