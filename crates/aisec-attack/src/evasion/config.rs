//! What an evasion evaluation runs: the attack kinds and the configuration.

use aisec_model::ModelError;
use serde::{Deserialize, Serialize};

use super::apgd::ApgdConfig;
use super::cw::CwConfig;
use super::deepfool::DeepFoolConfig;
use super::fab::FabConfig;
use super::fgsm_pgd::PgdConfig;
use super::hsj::HsjConfig;
use super::square::SquareConfig;
use crate::util::{Budget, Norm};

/// An attack the driver can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttackKind {
    /// Fast Gradient Sign Method.
    Fgsm,
    /// Basic Iterative Method (PGD from the clean point).
    Bim,
    /// Projected gradient descent with random start and restarts.
    Pgd,
    /// Carlini-Wagner L2 (minimal perturbation).
    CwL2,
    /// DeepFool (minimal perturbation).
    Deepfool,
    /// APGD on cross-entropy.
    ApgdCe,
    /// APGD on the DLR loss.
    ApgdDlr,
    /// Targeted APGD on the targeted DLR loss.
    ApgdT,
    /// Targeted FAB (minimal perturbation).
    FabT,
    /// Square attack, scores only (L-inf or L2).
    Square,
    /// HopSkipJump, labels only (minimal perturbation).
    HopSkipJump,
    /// AutoAttack "standard": APGD-CE, APGD-T, FAB-T, Square in order on
    /// still-robust points, worst case per example.
    AutoAttack,
}

impl AttackKind {
    /// Every kind, in a stable order.
    pub const ALL: [AttackKind; 12] = [
        AttackKind::Fgsm,
        AttackKind::Bim,
        AttackKind::Pgd,
        AttackKind::CwL2,
        AttackKind::Deepfool,
        AttackKind::ApgdCe,
        AttackKind::ApgdDlr,
        AttackKind::ApgdT,
        AttackKind::FabT,
        AttackKind::Square,
        AttackKind::HopSkipJump,
        AttackKind::AutoAttack,
    ];

    /// Kebab-case name (`pgd`, `apgd-ce`, `autoattack`...).
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Fgsm => "fgsm",
            AttackKind::Bim => "bim",
            AttackKind::Pgd => "pgd",
            AttackKind::CwL2 => "cw-l2",
            AttackKind::Deepfool => "deepfool",
            AttackKind::ApgdCe => "apgd-ce",
            AttackKind::ApgdDlr => "apgd-dlr",
            AttackKind::ApgdT => "apgd-t",
            AttackKind::FabT => "fab-t",
            AttackKind::Square => "square",
            AttackKind::HopSkipJump => "hop-skip-jump",
            AttackKind::AutoAttack => "autoattack",
        }
    }

    /// Parses a name as printed by [`AttackKind::name`] (also `cw`, `hsj`, `aa`).
    pub fn parse(s: &str) -> Option<AttackKind> {
        let s = s.to_ascii_lowercase().replace('_', "-");
        match s.as_str() {
            "cw" | "c&w" | "cwl2" => return Some(AttackKind::CwL2),
            "hsj" | "hopskipjump" => return Some(AttackKind::HopSkipJump),
            "aa" | "auto-attack" => return Some(AttackKind::AutoAttack),
            _ => {}
        }
        AttackKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Whether the attack needs only queries (no gradients).
    pub fn black_box(self) -> bool {
        matches!(self, AttackKind::Square | AttackKind::HopSkipJump)
    }

    /// Whether the attack minimises the perturbation instead of working
    /// inside the budget (success then also needs norm <= eps).
    pub fn minimal_norm(self) -> bool {
        matches!(
            self,
            AttackKind::CwL2 | AttackKind::Deepfool | AttackKind::FabT | AttackKind::HopSkipJump
        )
    }

    /// Whether the attack works inside a budget (and so can be rerun at
    /// each budget of a curve): FGSM, BIM, PGD, APGD, Square, AutoAttack.
    pub fn takes_budget(self) -> bool {
        !self.minimal_norm()
    }

    /// Budgeted attacks from strongest to weakest: the default attack of
    /// the accuracy-versus-budget curve is the first of these the run
    /// asked for. AutoAttack is at least as strong as each of its
    /// components; APGD-T, APGD-DLR and APGD-CE beat PGD, which beats BIM
    /// and FGSM (Croce & Hein 2020, "Reliable evaluation of adversarial
    /// robustness with an ensemble of diverse parameter-free attacks",
    /// Table 2); Square, query-only, is placed after PGD.
    pub const BY_STRENGTH: [AttackKind; 8] = [
        AttackKind::AutoAttack,
        AttackKind::ApgdT,
        AttackKind::ApgdDlr,
        AttackKind::ApgdCe,
        AttackKind::Pgd,
        AttackKind::Square,
        AttackKind::Bim,
        AttackKind::Fgsm,
    ];

    /// Minimal-norm attacks in the order a curve prefers them when no
    /// budgeted attack was asked for (one run, read at every budget).
    pub const MINIMAL_BY_STRENGTH: [AttackKind; 4] = [
        AttackKind::FabT,
        AttackKind::CwL2,
        AttackKind::Deepfool,
        AttackKind::HopSkipJump,
    ];

    /// Whether a fixed target class in the configuration is honoured.
    pub fn supports_target(self) -> bool {
        matches!(
            self,
            AttackKind::Fgsm
                | AttackKind::Bim
                | AttackKind::Pgd
                | AttackKind::CwL2
                | AttackKind::Square
                | AttackKind::HopSkipJump
        )
    }
}

/// Everything an evaluation needs besides the model and data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvasionConfig {
    /// Attacks to run, in order.
    pub attacks: Vec<AttackKind>,
    /// Threat-model norm.
    pub norm: Norm,
    /// Budget in the user's input space (e.g. `8/255`, `0.3`).
    pub eps: f32,
    /// Smallest valid input value.
    pub lo: f32,
    /// Largest valid input value.
    pub hi: f32,
    /// Fixed target class for attacks that support it (`None`: untargeted).
    pub target: Option<usize>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Examples per attacked batch.
    pub batch_size: usize,
    /// Budgets of the accuracy-versus-budget curve (empty: no curve).
    pub eps_curve: Vec<f32>,
    /// The curve's attack. `None`: the strongest requested attack that
    /// takes a budget ([`AttackKind::BY_STRENGTH`]), else the strongest
    /// requested minimal-norm one. A budgeted attack is rerun at each
    /// budget; a minimal-norm attack runs once and each point counts the
    /// examples it broke within that budget.
    pub curve_attack: Option<AttackKind>,
    /// FGSM/BIM/PGD settings (BIM forces `random_start = false`, one restart).
    pub pgd: PgdConfig,
    /// Carlini-Wagner settings.
    pub cw: CwConfig,
    /// DeepFool settings.
    pub deepfool: DeepFoolConfig,
    /// APGD-CE/DLR/T settings.
    pub apgd: ApgdConfig,
    /// FAB-T settings.
    pub fab: FabConfig,
    /// Square settings (its `max_queries` is the per-example query budget).
    pub square: SquareConfig,
    /// HopSkipJump settings (its `max_queries` is the per-example query budget).
    pub hsj: HsjConfig,
}

impl Default for EvasionConfig {
    fn default() -> Self {
        EvasionConfig {
            attacks: vec![AttackKind::Pgd],
            norm: Norm::Linf,
            eps: 8.0 / 255.0,
            lo: 0.0,
            hi: 1.0,
            target: None,
            seed: 0,
            batch_size: 64,
            eps_curve: Vec::new(),
            curve_attack: None,
            pgd: PgdConfig::default(),
            cw: CwConfig::default(),
            deepfool: DeepFoolConfig::default(),
            apgd: ApgdConfig::default(),
            fab: FabConfig::default(),
            square: SquareConfig::default(),
            hsj: HsjConfig::default(),
        }
    }
}

impl EvasionConfig {
    /// The budget this configuration describes.
    pub fn budget(&self) -> Budget {
        Budget {
            norm: self.norm,
            eps: self.eps,
            lo: self.lo,
            hi: self.hi,
        }
    }
}

/// Errors of an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvasionError {
    /// The model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The inputs or configuration are unusable.
    #[error("invalid evaluation input: {0}")]
    Invalid(String),
}
