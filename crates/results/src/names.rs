//! What a reproduction asks for: scale, figures, networks, datasets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{BnPolicy, DatasetName, Error};

/// How much of the paper to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// The whole pipeline in minutes (CI): tiny lengths and widths.
    Smoke,
    /// A few hours on a 2-core CPU: Lenet at full length, the conv nets shortened and
    /// narrowed, one init, two data orders, fewer k values and coarser pruning rounds.
    Quick,
    /// About 3 hours on a 2-core CPU: Lenet as in `quick`, Resnet-20 narrowed but trained long
    /// enough that its dense network is within about a point of 3x its length, so that
    /// "matching" means something.
    Medium,
    /// Table 1 exactly: 3 inits x 3 data orders, every k, 20% pruning rounds.
    Paper,
}

impl Scale {
    pub const ALL: [Scale; 4] = [Scale::Smoke, Scale::Quick, Scale::Medium, Scale::Paper];

    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Quick => "quick",
            Scale::Medium => "medium",
            Scale::Paper => "paper",
        }
    }

    /// The figures a reproduction at this scale draws when none are named: every one, but the
    /// medium scale leaves "Beyond the paper" (a second init and ~30 aligned interpolations per
    /// network) to `--only beyond`, to stay within its budget; the IMP-level connectivity
    /// (`levels`) is asked for by name at every scale.
    pub fn default_figures(self) -> Vec<Figure> {
        Figure::ALL
            .into_iter()
            .filter(|&f| !f.is_opt_in() && (self != Scale::Medium || f != Figure::Beyond))
            .collect()
    }

    /// What the scale is, in words (for the report).
    pub fn description(self) -> &'static str {
        match self {
            Scale::Smoke => {
                "smoke: a pipeline check in minutes; the numbers say nothing about the paper's claims"
            }
            Scale::Quick => {
                "quick: about 2.5 hours of training on a 2-core CPU (1h18m wall with 2 workers); Lenet at full length, the conv nets shortened and narrowed (cuts below)"
            }
            Scale::Medium => {
                "medium: 2 inits x 3 data orders (3 pairs per k and init); Lenet as in quick, Resnet-20 narrowed and trained long enough to be within about a point of 3x its length, curves on the whole test set (cuts below); about 9 hours of training on a 2-core CPU"
            }
            Scale::Paper => "paper: Table 1 exactly (3 inits x 3 data orders, every k)",
        }
    }
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scale {
    type Err = Error;
    fn from_str(s: &str) -> Result<Scale, Error> {
        Scale::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| Error::Unknown {
                what: "scale",
                value: s.to_string(),
                expected: "smoke, quick, medium or paper".into(),
            })
    }
}

/// The figures of the paper (main text and appendices), and one beyond it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Figure {
    Fig2,
    Fig3,
    Fig4,
    Fig5,
    Fig6,
    Fig7,
    Fig8,
    AppB,
    AppC,
    AppD,
    AppE,
    /// Not in the paper: instability against k with and without alignment (weight or
    /// activation matching) and BN re-estimation.
    Beyond,
    /// Not in the paper: instability between the trained networks of consecutive IMP levels
    /// against density (Paul et al. 2023).
    Levels,
    /// Not in the paper: test accuracy against density for IMP pruning every layer by the
    /// round's fraction within itself, beside the paper's global pruning.
    Layerwise,
}

impl Figure {
    pub const ALL: [Figure; 14] = [
        Figure::Fig2,
        Figure::Fig3,
        Figure::Fig4,
        Figure::Fig5,
        Figure::Fig6,
        Figure::Fig7,
        Figure::Fig8,
        Figure::AppB,
        Figure::AppC,
        Figure::AppD,
        Figure::AppE,
        Figure::Beyond,
        Figure::Levels,
        Figure::Layerwise,
    ];

    /// The file stem and command-line name: `fig2` .. `fig8`, `appb` .. `appe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Figure::Fig2 => "fig2",
            Figure::Fig3 => "fig3",
            Figure::Fig4 => "fig4",
            Figure::Fig5 => "fig5",
            Figure::Fig6 => "fig6",
            Figure::Fig7 => "fig7",
            Figure::Fig8 => "fig8",
            Figure::AppB => "appb",
            Figure::AppC => "appc",
            Figure::AppD => "appd",
            Figure::AppE => "appe",
            Figure::Beyond => "beyond",
            Figure::Levels => "levels",
            Figure::Layerwise => "layerwise",
        }
    }

    /// How the paper numbers it: "Figure 3", "Appendix B".
    pub fn number(self) -> &'static str {
        match self {
            Figure::Fig2 => "Figure 2",
            Figure::Fig3 => "Figure 3",
            Figure::Fig4 => "Figure 4",
            Figure::Fig5 => "Figure 5",
            Figure::Fig6 => "Figure 6",
            Figure::Fig7 => "Figure 7",
            Figure::Fig8 => "Figure 8",
            Figure::AppB => "Appendix B",
            Figure::AppC => "Appendix C",
            Figure::AppD => "Appendix D",
            Figure::AppE => "Appendix E",
            Figure::Beyond => "Beyond the paper",
            Figure::Levels => "Beyond the paper (IMP levels)",
            Figure::Layerwise => "Beyond the paper (layer-wise IMP)",
        }
    }

    /// What the figure shows (for captions).
    pub fn title(self) -> &'static str {
        match self {
            Figure::Fig2 => "Error along the linear path between two children trained from k = 0",
            Figure::Fig3 => "Instability (test and train) against the branch iteration k",
            Figure::Fig4 => "Test instability throughout training, one line per k",
            Figure::Fig5 => {
                "Test accuracy against density, k = 0: IMP and, where trained, random pruning and reinit"
            }
            Figure::Fig6 => "Error along the linear path for sparse IMP subnetworks (k = 0)",
            Figure::Fig7 => {
                "Sparse subnetworks: instability and accuracy against the rewind iteration k"
            }
            Figure::Fig8 => "Highest mean test accuracy over the rewind k, against density",
            Figure::AppB => "Error along the linear path for unpruned networks at selected k",
            Figure::AppC => "Error along the linear path for sparse IMP subnetworks at selected k",
            Figure::AppD => "L2 distance between the children of unpruned networks against k",
            Figure::AppE => "L2 distance between the children of sparse subnetworks against k",
            Figure::Beyond => {
                "Instability against k with and without alignment and BN re-estimation"
            }
            Figure::Levels => {
                "Instability between consecutive IMP levels against density, one line per rewind k"
            }
            Figure::Layerwise => {
                "Test accuracy against density: IMP pruning globally (the paper) and layer-wise"
            }
        }
    }

    /// Whether the figure shows the instability analysis of the dense networks.
    pub fn needs_dense(self) -> bool {
        matches!(
            self,
            Figure::Fig2
                | Figure::Fig3
                | Figure::Fig4
                | Figure::AppB
                | Figure::AppD
                | Figure::Beyond
        )
    }

    /// Whether the figure shows IMP runs (accuracy against density or rewinding).
    pub fn needs_imp(self) -> bool {
        matches!(
            self,
            Figure::Fig5 | Figure::Fig8 | Figure::Levels | Figure::Layerwise
        ) || self.needs_sparse()
    }

    /// Whether the figure shows the instability analysis of sparse subnetworks.
    pub fn needs_sparse(self) -> bool {
        matches!(
            self,
            Figure::Fig6 | Figure::Fig7 | Figure::AppC | Figure::AppE | Figure::Beyond
        )
    }

    /// Whether the figure is drawn only when asked for by name (its runs are not the paper's:
    /// `levels`, `layerwise`).
    pub fn is_opt_in(self) -> bool {
        matches!(self, Figure::Levels | Figure::Layerwise)
    }

    /// Whether the figure compares aligned with unaligned interpolations.
    pub fn needs_alignment(self) -> bool {
        self == Figure::Beyond
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Figure {
    type Err = Error;
    fn from_str(s: &str) -> Result<Figure, Error> {
        let s = s.to_ascii_lowercase().replace(['-', '_'], "");
        Figure::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| Error::Unknown {
                what: "figure",
                value: s,
                expected: "fig2..fig8, appb, appc, appd, appe, beyond, levels or layerwise".into(),
            })
    }
}

/// Parses a substitution `PAPER=USED` (e.g. `cifar10=fashion-mnist`): the experiments of the
/// paper's dataset PAPER run on USED.
pub fn parse_substitute(s: &str) -> Result<(DatasetName, DatasetName), Error> {
    let (from, to) = s.split_once('=').ok_or_else(|| Error::Unknown {
        what: "substitution",
        value: s.to_string(),
        expected: "PAPER=USED, e.g. cifar10=fashion-mnist".into(),
    })?;
    Ok((from.parse()?, to.parse()?))
}

/// The unit of a network's k axis: the paper gives k in iterations for the CIFAR-size
/// networks and in epochs for the ImageNet ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KUnit {
    #[default]
    Iterations,
    Epochs,
}

/// What to reproduce: the one serialisable description of a reproduction that the CLI, the
/// xtask and the report job of a Slurm submission pass around (`rewind reproduce --config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReproduceConfig {
    pub scale: Scale,
    /// Networks by their registry name (`lenet`, `resnet20`, ...); empty: the networks the
    /// scale runs by default.
    #[serde(default)]
    pub models: Vec<String>,
    /// Figures to draw (default: all but the opt-in `levels` and `layerwise`).
    #[serde(default = "all_figures")]
    pub figures: Vec<Figure>,
    /// (dataset of the paper, dataset used instead).
    #[serde(default)]
    pub substitutes: Vec<(DatasetName, DatasetName)>,
    #[serde(default)]
    pub bn_policy: BnPolicy,
}

/// Every figure but the opt-in ones (which were not there when configs without a figure list
/// were written, and are asked for by name).
fn all_figures() -> Vec<Figure> {
    Figure::ALL.into_iter().filter(|f| !f.is_opt_in()).collect()
}

impl ReproduceConfig {
    /// Every figure of `models` at `scale`, on the paper's datasets.
    pub fn new(scale: Scale, models: Vec<String>) -> ReproduceConfig {
        ReproduceConfig {
            scale,
            models,
            figures: scale.default_figures(),
            substitutes: vec![],
            bn_policy: BnPolicy::Interpolate,
        }
    }

    /// Whether any requested figure satisfies `f`.
    pub fn wants(&self, f: impl Fn(Figure) -> bool) -> bool {
        self.figures.iter().any(|&x| f(x))
    }

    /// The dataset that runs in place of `paper`'s (itself when nothing is substituted).
    pub fn dataset_for(&self, paper: DatasetName) -> DatasetName {
        self.substitutes
            .iter()
            .find(|(from, _)| *from == paper)
            .map_or(paper, |(_, to)| *to)
    }
}
