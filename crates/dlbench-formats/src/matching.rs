//! Which tensor of a file goes to which parameter of a graph: the same rule for every format
//! that names its tensors (a PyTorch state_dict today).
//!
//! 1. Explicit pairs `OLD=NEW` (a [`Mapping`]: the file's tensor OLD goes to the graph's
//!    parameter NEW) come first. An OLD the file lacks, a NEW the graph lacks, or a name given
//!    twice is an error naming it.
//! 2. Then names: a tensor whose key is a parameter's name goes to that parameter.
//! 3. The rest by position: the remaining tensors, in file order, to the remaining parameters,
//!    in graph order. The two sides must be as many, and each pair's shapes must agree.
//!    Position alone must never choose between tensors of equal shape (a VAE's `mu.weight` and
//!    `logvar.weight`, both `[50, 256]`, would be swapped without a word if the file lists them
//!    the other way round): when a shape occurs more than once among the remaining ones the
//!    match is refused, naming those tensors and parameters, until a mapping confirms them.
//!
//! Floats are converted to the parameter's float dtype (as PyTorch's `load_state_dict`
//! copies); any other dtype difference is an error. [`match_weights`] returns the weights and
//! the pairs it used ([`Matched`]), so that a caller can show how each tensor was placed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use dlbench_core::{Graph, Param, Tensor, Values};

use crate::error::{Error, Result};

/// How to confirm an ambiguous match; quoted in the refusal.
const HOW_TO_MAP: &str = "--map OLD=NEW (repeatable) or --map-file FILE (one OLD=NEW per \
                          line, `#` comments, blank lines ignored)";

/// Where an explicit pair was given, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A `--map OLD=NEW` argument.
    Arg,
    /// A line (1-based) of a mapping file.
    File {
        /// The mapping file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Arg => f.write_str("--map"),
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
        }
    }
}

/// One explicit pair: the file's tensor `old` goes to the graph's parameter `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The tensor's key in the file.
    pub old: String,
    /// The graph's parameter it goes to.
    pub new: String,
    /// Where the pair was given.
    pub origin: Origin,
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.origin {
            Origin::Arg => write!(f, "--map `{}={}`", self.old, self.new),
            Origin::File { .. } => write!(f, "`{}={}` ({})", self.old, self.new, self.origin),
        }
    }
}

/// Explicit pairs `OLD=NEW`, from `--map` arguments and mapping files; no OLD and no NEW
/// occurs twice. The empty mapping (the default) leaves matching to names and positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pairs: Vec<Pair>,
}

impl Mapping {
    /// The empty mapping.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `--map` arguments, each `OLD=NEW` (spaces around either name are trimmed).
    pub fn from_args<S: AsRef<str>>(args: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut mapping = Mapping::new();
        for arg in args {
            let arg = arg.as_ref();
            let (old, new) = split_pair(arg).map_err(|why| Error::Mapping {
                origin: format!("--map `{arg}`"),
                message: why,
            })?;
            mapping.insert(old, new, Origin::Arg)?;
        }
        Ok(mapping)
    }

    /// Parses the text of a mapping file: one `OLD=NEW` per line; `#` starts a comment, blank
    /// lines are ignored. `path` names the file (and the line) in errors.
    pub fn parse_file(path: &Path, text: &str) -> Result<Self> {
        let mut mapping = Mapping::new();
        for (i, line) in text.lines().enumerate() {
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: i + 1,
            };
            let content = line.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (old, new) = split_pair(content).map_err(|why| Error::Mapping {
                origin: origin.to_string(),
                message: why,
            })?;
            mapping.insert(old, new, origin)?;
        }
        Ok(mapping)
    }

    /// Reads and parses a mapping file (see [`Mapping::parse_file`]).
    pub fn read_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse_file(path, &text)
    }

    /// Adds a pair; an `old` or a `new` already mapped is an error naming both places.
    pub fn insert(&mut self, old: &str, new: &str, origin: Origin) -> Result<()> {
        let pair = Pair {
            old: old.to_string(),
            new: new.to_string(),
            origin,
        };
        let clash = self.pairs.iter().find_map(|p| {
            if p.old == pair.old {
                Some(format!("tensor `{old}` is already mapped by {p}"))
            } else if p.new == pair.new {
                Some(format!("parameter `{new}` is already the target of {p}"))
            } else {
                None
            }
        });
        if let Some(message) = clash {
            return Err(Error::Mapping {
                origin: pair.to_string(),
                message,
            });
        }
        self.pairs.push(pair);
        Ok(())
    }

    /// Adds every pair of `other`, with the same checks as [`Mapping::insert`].
    pub fn extend(&mut self, other: Mapping) -> Result<()> {
        for pair in other.pairs {
            self.insert(&pair.old, &pair.new, pair.origin)?;
        }
        Ok(())
    }

    /// The pairs, in the order given.
    pub fn pairs(&self) -> &[Pair] {
        &self.pairs
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }
}

/// `OLD=NEW` into its two trimmed, non-empty names.
fn split_pair(text: &str) -> std::result::Result<(&str, &str), String> {
    let Some((old, new)) = text.split_once('=') else {
        return Err("expected OLD=NEW (the file's tensor = the graph's parameter)".into());
    };
    let (old, new) = (old.trim(), new.trim());
    if new.contains('=') {
        return Err("expected one `=` between OLD and NEW".into());
    }
    if old.is_empty() || new.is_empty() {
        return Err("expected OLD=NEW with both names non-empty".into());
    }
    Ok((old, new))
}

/// How a tensor found its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedBy {
    /// The tensor's key is the parameter's name.
    Name,
    /// An explicit `OLD=NEW` pair of the [`Mapping`].
    Map,
    /// Its place among the tensors left after names and the mapping, with a shape no other
    /// remaining tensor has.
    Position,
}

impl fmt::Display for MatchedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchedBy::Name => "by name",
            MatchedBy::Map => "by --map",
            MatchedBy::Position => "by position",
        })
    }
}

/// One tensor placed: the file's `key` went to the graph's `param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The tensor's key in the file.
    pub key: String,
    /// The graph's parameter it was loaded into.
    pub param: String,
    /// What decided it.
    pub how: MatchedBy,
}

/// The result of [`match_weights`]: the weights, and how each was found.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightMatch {
    /// One tensor per parameter of the graph, under the parameter's name, in its dtype.
    pub weights: Values,
    /// Every pair used, in the graph's parameter order.
    pub mapping: Vec<Matched>,
}

/// Matches a file's named tensors to `graph`'s parameters by the module's rule: `mapping`
/// first, then identical names, then position among the rest, refusing when position alone
/// would choose between tensors of equal shape. Checks shapes, converts float dtypes. `path`
/// names the file in errors.
pub fn match_weights(
    graph: &Graph,
    tensors: Vec<(String, Tensor)>,
    mapping: &Mapping,
    path: &Path,
) -> Result<WeightMatch> {
    let params = &graph.params;
    // For each parameter: the index of its tensor and how it was chosen.
    let mut chosen: Vec<Option<(usize, MatchedBy)>> = vec![None; params.len()];
    let mut used = vec![false; tensors.len()];
    for pair in mapping.pairs() {
        let t = (0..tensors.len())
            .find(|&i| !used[i] && tensors[i].0 == pair.old)
            .ok_or_else(|| {
                Error::tensor(
                    path,
                    &pair.old,
                    format!(
                        "is not in the file, but {pair} names it (the file holds {})",
                        listing(tensors.iter().map(|(k, _)| k.as_str()))
                    ),
                )
            })?;
        let p = params
            .iter()
            .position(|p| p.value.name == pair.new)
            .ok_or_else(|| {
                Error::file(
                    path,
                    format!(
                        "{pair}: graph `{}` has no parameter `{}` (it has {})",
                        graph.name,
                        pair.new,
                        listing(params.iter().map(|p| p.value.name.as_str()))
                    ),
                )
            })?;
        // Mapping::insert keeps OLDs and NEWs unique, so neither side is taken yet.
        used[t] = true;
        chosen[p] = Some((t, MatchedBy::Map));
    }
    for (p, param) in params.iter().enumerate() {
        if chosen[p].is_some() {
            continue;
        }
        if let Some(t) = (0..tensors.len()).find(|&i| !used[i] && tensors[i].0 == param.value.name)
        {
            used[t] = true;
            chosen[p] = Some((t, MatchedBy::Name));
        }
    }
    // A tensor placed by its name or by the mapping must have its parameter's shape.
    for (param, choice) in params.iter().zip(&chosen) {
        if let Some((t, how)) = *choice {
            let (key, tensor) = &tensors[t];
            check_shape(graph, param, key, tensor, how, path)?;
        }
    }
    let rest_t: Vec<usize> = (0..tensors.len()).filter(|&i| !used[i]).collect();
    let rest_p: Vec<usize> = (0..params.len()).filter(|&p| chosen[p].is_none()).collect();
    if rest_t.len() != rest_p.len() {
        return Err(count_error(graph, &tensors, &rest_t, &rest_p, path));
    }
    for (&p, &t) in rest_p.iter().zip(&rest_t) {
        let (key, tensor) = &tensors[t];
        check_shape(graph, &params[p], key, tensor, MatchedBy::Position, path)?;
        chosen[p] = Some((t, MatchedBy::Position));
    }
    refuse_ambiguous(graph, &tensors, &rest_t, &rest_p, path)?;

    let mut slots: Vec<Option<(String, Tensor)>> = tensors.into_iter().map(Some).collect();
    let mut weights = Values::new();
    let mut used_pairs = Vec::with_capacity(params.len());
    for (param, choice) in params.iter().zip(chosen) {
        // Every parameter has a tensor by now, each tensor taken once: these `else`s are
        // unreachable, and an error rather than a panic all the same.
        let Some((t, how)) = choice else {
            return Err(Error::tensor(path, &param.value.name, "is missing"));
        };
        let Some((key, tensor)) = slots.get_mut(t).and_then(Option::take) else {
            return Err(Error::tensor(path, &param.value.name, "is missing"));
        };
        let tensor = convert_dtype(graph, param, &key, tensor, path)?;
        weights.insert(param.value.name.clone(), tensor);
        used_pairs.push(Matched {
            key,
            param: param.value.name.clone(),
            how,
        });
    }
    Ok(WeightMatch {
        weights,
        mapping: used_pairs,
    })
}

fn check_shape(
    graph: &Graph,
    param: &Param,
    key: &str,
    tensor: &Tensor,
    how: MatchedBy,
    path: &Path,
) -> Result<()> {
    let expected = param.value.resolve(1);
    if tensor.shape() == expected {
        return Ok(());
    }
    let note = match how {
        MatchedBy::Name => String::new(),
        MatchedBy::Map => " (as --map says)".to_string(),
        MatchedBy::Position => format!(
            " (matched by position, as the names differ; say which tensor goes where with \
             {HOW_TO_MAP})"
        ),
    };
    Err(Error::tensor(
        path,
        key,
        format!(
            "is {:?} but parameter `{}` of graph `{}` is {expected:?}{note}",
            tensor.shape(),
            param.value.name,
            graph.name
        ),
    ))
}

fn convert_dtype(
    graph: &Graph,
    param: &Param,
    key: &str,
    tensor: Tensor,
    path: &Path,
) -> Result<Tensor> {
    let dtype = param.value.dtype;
    if tensor.dtype() == dtype {
        Ok(tensor)
    } else if tensor.dtype().is_float() && dtype.is_float() {
        Ok(tensor.to_dtype(dtype))
    } else {
        Err(Error::tensor(
            path,
            key,
            format!(
                "is {} but parameter `{}` of graph `{}` is {dtype}",
                tensor.dtype(),
                param.value.name,
                graph.name
            ),
        ))
    }
}

/// The tensors left for position and the parameters left for them are not as many.
fn count_error(
    graph: &Graph,
    tensors: &[(String, Tensor)],
    rest_t: &[usize],
    rest_p: &[usize],
    path: &Path,
) -> Error {
    let params = &graph.params;
    let left_t = listing(rest_t.iter().map(|&t| tensors[t].0.as_str()));
    let left_p = listing(rest_p.iter().map(|&p| params[p].value.name.as_str()));
    let placed = params.len() - rest_p.len();
    let message = if placed == 0 {
        format!(
            "holds {} tensors ({left_t}), graph `{}` has {} parameters ({left_p}): the names \
             differ, so tensors are matched by position, which needs as many of each",
            tensors.len(),
            graph.name,
            params.len(),
        )
    } else {
        format!(
            "holds {} tensors, graph `{}` has {} parameters; {placed} match by name or --map, \
             which leaves {} tensors ({left_t}) for {} parameters ({left_p}): the rest are \
             matched by position, which needs as many of each",
            tensors.len(),
            graph.name,
            params.len(),
            rest_t.len(),
            rest_p.len(),
        )
    };
    Error::file(path, message)
}

/// Refuses a positional match in which some shape occurs more than once: position alone would
/// decide which of those tensors goes where. The pairs (already shape-checked) are
/// `rest_t[i] -> rest_p[i]`.
fn refuse_ambiguous(
    graph: &Graph,
    tensors: &[(String, Tensor)],
    rest_t: &[usize],
    rest_p: &[usize],
    path: &Path,
) -> Result<()> {
    let mut by_shape: BTreeMap<&[usize], Vec<usize>> = BTreeMap::new();
    for (i, &t) in rest_t.iter().enumerate() {
        by_shape.entry(tensors[t].1.shape()).or_default().push(i);
    }
    let groups: Vec<(&[usize], Vec<usize>)> =
        by_shape.into_iter().filter(|(_, g)| g.len() > 1).collect();
    if groups.is_empty() {
        return Ok(());
    }
    let key = |i: usize| tensors[rest_t[i]].0.as_str();
    let param = |i: usize| graph.params[rest_p[i]].value.name.as_str();
    let described: Vec<String> = groups
        .iter()
        .map(|(shape, group)| {
            format!(
                "tensors {} and parameters {} are all {shape:?}",
                quoted(group.iter().map(|&i| key(i))),
                quoted(group.iter().map(|&i| param(i))),
            )
        })
        .collect();
    // The positional guess, spelled as the arguments that would confirm it.
    let ambiguous: BTreeSet<usize> = groups.iter().flat_map(|(_, g)| g.iter().copied()).collect();
    let confirm: Vec<String> = ambiguous
        .iter()
        .map(|&i| format!("--map {}={}", key(i), param(i)))
        .collect();
    Err(Error::file(
        path,
        format!(
            "the names differ from graph `{}`'s, and position alone would decide between \
             tensors of equal shape: {}. Say which goes where with {HOW_TO_MAP}; by position \
             alone they would be paired as `{}`",
            graph.name,
            described.join("; "),
            confirm.join(" "),
        ),
    ))
}

/// Every name, quoted and comma-separated.
fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first names of a list, for an error message.
fn listing<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let shown: Vec<String> = names.iter().take(6).map(|n| format!("`{n}`")).collect();
    match names.len() {
        0 => "none".to_string(),
        n if n > shown.len() => format!("{}, ...", shown.join(", ")),
        _ => shown.join(", "),
    }
}
