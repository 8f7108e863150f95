//! The fuzz targets: one per parser that reads files from elsewhere, each driven the way the
//! CLI drives it (the same functions, the same limits), and what each mutates.

use std::path::{Path, PathBuf};

use dlbench_core::limits::Limits;
use dlbench_data::csv::CsvOptions;
use dlbench_spec::Spec;

use crate::mutate::{gzip, mutate_bytes, unzip, zip_members, Rng};
use crate::{onnx, seeds};

/// A parser under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Spec YAML: parsed, its graph built and checked, its model initialised, its data loaded.
    Spec,
    /// CSV, plain or gzipped, as a dataset with and without a target column.
    Csv,
    /// A `.npy` array.
    Npy,
    /// A `.npz` archive of arrays.
    Npz,
    /// A native model: safetensors with the graph in its metadata.
    Safetensors,
    /// A PyTorch state dict: a zip archive holding a pickle and its storages.
    Pickle,
    /// An ONNX model: the protobuf, its initializers (inline or external) and its graph.
    Onnx,
    /// Inputs that trip each guard on purpose (`panic`, `memory`, `hang`); tests of the
    /// fuzzer itself, not of dlbench.
    Selftest,
}

/// What became of one input. A parser that refuses an input with an error has done its job:
/// only a panic, an abort, a hang or an allocation over the cap is a failure, and those end the
/// worker (see `guard`).
pub type Outcome = Result<(), String>;

impl Target {
    /// Every target that fuzzes dlbench (not [`Target::Selftest`]).
    pub const ALL: [Target; 7] = [
        Target::Spec,
        Target::Csv,
        Target::Npy,
        Target::Npz,
        Target::Safetensors,
        Target::Pickle,
        Target::Onnx,
    ];

    /// The target's name on the command line and in `regressions/`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Spec => "spec",
            Target::Csv => "csv",
            Target::Npy => "npy",
            Target::Npz => "npz",
            Target::Safetensors => "safetensors",
            Target::Pickle => "pickle",
            Target::Onnx => "onnx",
            Target::Selftest => "selftest",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL
            .into_iter()
            .chain([Target::Selftest])
            .find(|t| t.name() == name)
    }

    /// The file name an input is written to when the parser reads files.
    fn file_name(self) -> &'static str {
        match self {
            Target::Spec => "fuzzed.yaml",
            Target::Csv => "input.csv",
            Target::Npy => "input.npy",
            Target::Npz => "input.npz",
            Target::Safetensors => "model.safetensors",
            Target::Pickle => "model.pt",
            Target::Onnx => "model.onnx",
            Target::Selftest => "selftest",
        }
    }

    /// The seed corpus: the repository's own files, files dlbench writes, and the target's
    /// regression inputs.
    pub fn corpus(self) -> Vec<Vec<u8>> {
        let mut corpus = match self {
            Target::Spec => seeds::specs(),
            Target::Csv => seeds::csvs(),
            Target::Npy => seeds::npys(),
            Target::Npz => seeds::npzs(),
            Target::Safetensors => seeds::models(),
            Target::Pickle => seeds::state_dicts(),
            Target::Onnx => onnx::models(),
            Target::Selftest => vec![b"ok".to_vec()],
        };
        corpus.extend(seeds::regressions(self));
        corpus
    }

    /// Tokens worth inserting, in the target's own syntax (for ONNX: op and attribute names,
    /// and protobuf varints).
    pub fn dictionary(self) -> &'static [&'static [u8]] {
        match self {
            Target::Spec => seeds::SPEC_TOKENS,
            Target::Csv => seeds::CSV_TOKENS,
            Target::Npy | Target::Npz => seeds::NPY_TOKENS,
            Target::Safetensors => seeds::SAFETENSORS_TOKENS,
            Target::Pickle => seeds::PICKLE_TOKENS,
            Target::Onnx => onnx::tokens(),
            Target::Selftest => &[],
        }
    }

    /// Input `index` of a run seeded with `seed`: a corpus entry, mutated. Containers are
    /// opened most of the time so that the mutation reaches the part behind the checksum.
    pub fn generate(self, corpus: &[Vec<u8>], seed: u64, index: u64) -> Vec<u8> {
        let mut rng = Rng::for_input(seed, index);
        let mut input = rng.pick(corpus).clone();
        let dictionary = self.dictionary();
        match self {
            Target::Npz | Target::Pickle if !rng.one_in(4) => {
                if let Some(mut members) = unzip(&input) {
                    if !members.is_empty() {
                        let i = rng.below(members.len());
                        if rng.one_in(16) {
                            members[i].0 = rng.pick(seeds::MEMBER_NAMES).to_string();
                        } else {
                            mutate_bytes(&mut rng, &mut members[i].1, dictionary, corpus);
                        }
                    }
                    return zip_members(&members, rng.one_in(2));
                }
            }
            Target::Safetensors if !rng.one_in(4) => {
                if let Some(mut header) = seeds::safetensors_header(&input) {
                    let body = input[8 + header.len()..].to_vec();
                    mutate_bytes(&mut rng, &mut header, dictionary, corpus);
                    let mut out = (header.len() as u64).to_le_bytes().to_vec();
                    out.extend(header);
                    out.extend(body);
                    return out;
                }
            }
            Target::Onnx if !rng.one_in(4) => {
                if let Some(out) = onnx::mutate_model(&mut rng, &input) {
                    return out;
                }
            }
            Target::Csv if rng.one_in(5) => {
                mutate_bytes(&mut rng, &mut input, dictionary, corpus);
                return gzip(&input);
            }
            _ => {}
        }
        mutate_bytes(&mut rng, &mut input, dictionary, corpus);
        input
    }

    /// Runs one input through the parser, as the CLI would. `scratch` is a folder the input
    /// may be written to.
    pub fn run(self, input: &[u8], scratch: &Path) -> Outcome {
        let limits = Limits::from_env().map_err(|e| e.to_string())?;
        match self {
            Target::Spec => run_spec(input),
            Target::Selftest => run_selftest(input),
            _ => {
                let path = scratch.join(self.file_name());
                std::fs::write(&path, input).map_err(|e| format!("scratch: {e}"))?;
                self.run_file(input, &path, &limits)
            }
        }
    }

    /// The targets whose parsers take a path.
    fn run_file(self, input: &[u8], path: &Path, limits: &Limits) -> Outcome {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        match self {
            Target::Csv => {
                let target_column = [None, Some(-1), Some(0)][input.len() % 3];
                let options = CsvOptions {
                    skip_rows: input.len() % 2,
                    target_column,
                    ..CsvOptions::default()
                };
                let data = dlbench_data::csv::read_csv_with(path, &options, limits)
                    .map_err(|e| text(&e))?;
                if target_column.is_some() {
                    data.with_class_targets().map_err(|e| text(&e))?;
                }
                Ok(())
            }
            Target::Npy => dlbench_data::npy::read_npy_with(path, limits)
                .map(drop)
                .map_err(|e| text(&e)),
            Target::Npz => {
                for name in ["x", "y"] {
                    dlbench_data::npy::read_npz_with(path, name, limits).map_err(|e| text(&e))?;
                }
                Ok(())
            }
            Target::Safetensors => {
                let model = dlbench_core::format::read_with(path, limits).map_err(|e| text(&e))?;
                dlbench_core::flops::graph_flops(&model.graph).map_err(|e| text(&e))?;
                Ok(())
            }
            Target::Pickle => {
                if !input.starts_with(b"PK") {
                    dlbench_formats::pytorch::pickle::read(input).map_err(|e| text(&e))?;
                }
                dlbench_formats::pytorch::read_state_dict_with(path, limits)
                    .map(drop)
                    .map_err(|e| text(&e))
            }
            Target::Onnx => {
                let model =
                    dlbench_formats::onnx::import_onnx_with(path, limits).map_err(|e| text(&e))?;
                dlbench_core::flops::graph_flops(&model.graph).map_err(|e| text(&e))?;
                Ok(())
            }
            _ => unreachable!("{self:?} does not read files"),
        }
    }
}

/// Where a fuzzed spec pretends to live: the repository's `specs/`, so that its relative data
/// paths reach the repository's own data files.
pub fn spec_path() -> PathBuf {
    seeds::repository()
        .join("specs")
        .join(Target::Spec.file_name())
}

/// A spec, as `dlbench run` reads it: parsed, its graph checked against the limits, its
/// weights initialised and its data loaded.
fn run_spec(input: &[u8]) -> Outcome {
    let text = std::str::from_utf8(input).map_err(|e| e.to_string())?;
    let error = |e: dlbench_spec::SpecError| e.to_string();
    let spec = Spec::parse(text, &spec_path()).map_err(error)?;
    let graph = spec.build_graph().map_err(error)?;
    dlbench_core::flops::graph_flops(&graph).map_err(|e| e.to_string())?;
    spec.build_model().map_err(error)?;
    spec.load_data().map_err(error)?;
    Ok(())
}

/// Trips the guard the input names.
fn run_selftest(input: &[u8]) -> Outcome {
    match input {
        b"panic" => panic!("selftest panic"),
        b"memory" => {
            let big = std::hint::black_box(vec![1u8; 2 << 30]);
            Err(format!("allocated {} bytes", big.len()))
        }
        b"hang" => loop {
            std::thread::sleep(std::time::Duration::from_millis(10));
        },
        b"abort" => std::process::abort(),
        _ => Ok(()),
    }
}
