//! Which tensor of a file goes to which parameter: explicit `OLD=NEW` pairs, then identical
//! names, then position among the rest — never position alone between tensors of equal shape.

mod support;

use std::path::Path;

use dlbench_core::{Graph, GraphBuilder, Model, Tensor};
use dlbench_formats::matching::{match_weights, Mapping, MatchedBy, Origin};
use support::temp_dir;

/// The mlp seed model: 30 -> 10 -> 10 -> 1, parameters `dense_1.weight` ... `dense_3.bias`.
fn mlp() -> Graph {
    let mut b = GraphBuilder::new("mlp");
    let x = b.data_input("x", &[30]).unwrap();
    let h = b.dense(None, &x, 10, true).unwrap();
    let h = b.dense(None, &h, 10, true).unwrap();
    let y = b.dense(None, &h, 1, true).unwrap();
    b.finish(&[&y]).unwrap()
}

/// A small VAE encoder: `enc` 8 -> 6, then `mu` and `logvar` 6 -> 3 each (equal shapes).
fn vae() -> Graph {
    let mut b = GraphBuilder::new("vae");
    let x = b.data_input("x", &[8]).unwrap();
    let h = b.dense(Some("enc"), &x, 6, true).unwrap();
    let mu = b.dense(Some("mu"), &h, 3, true).unwrap();
    let logvar = b.dense(Some("logvar"), &h, 3, true).unwrap();
    b.finish(&[&mu, &logvar]).unwrap()
}

fn file() -> &'static Path {
    Path::new("model.pt")
}

/// The model's weights under other names: `(file key, parameter)` in the file's order.
fn renamed(model: &Model, names: &[(&str, &str)]) -> Vec<(String, Tensor)> {
    names
        .iter()
        .map(|(key, param)| (key.to_string(), model.weights[*param].clone()))
        .collect()
}

/// The VAE's weights as another framework names them, `z_log_var` listed before `z_mean`: by
/// position they would land swapped.
fn vae_file(model: &Model) -> Vec<(String, Tensor)> {
    renamed(
        model,
        &[
            ("encoder.weight", "enc.weight"),
            ("encoder.bias", "enc.bias"),
            ("z_log_var.weight", "logvar.weight"),
            ("z_log_var.bias", "logvar.bias"),
            ("z_mean.weight", "mu.weight"),
            ("z_mean.bias", "mu.bias"),
        ],
    )
}

fn how(matched: &[dlbench_formats::matching::Matched], key: &str) -> (String, MatchedBy) {
    let m = matched.iter().find(|m| m.key == key).unwrap();
    (m.param.clone(), m.how)
}

#[test]
fn names_that_agree_match_by_name_and_the_rest_by_position() {
    let model = Model::initialized(mlp(), 3).unwrap();
    // dense_2 keeps its names but comes first; the others are renamed, in graph order.
    let tensors = renamed(
        &model,
        &[
            ("dense_2.bias", "dense_2.bias"),
            ("a.weight", "dense_1.weight"),
            ("dense_2.weight", "dense_2.weight"),
            ("a.bias", "dense_1.bias"),
            ("c.weight", "dense_3.weight"),
            ("c.bias", "dense_3.bias"),
        ],
    );
    let got = match_weights(&model.graph, tensors, &Mapping::new(), file()).unwrap();
    assert_eq!(got.weights, model.weights);
    let order: Vec<&str> = got.mapping.iter().map(|m| m.param.as_str()).collect();
    assert_eq!(
        order,
        [
            "dense_1.weight",
            "dense_1.bias",
            "dense_2.weight",
            "dense_2.bias",
            "dense_3.weight",
            "dense_3.bias"
        ]
    );
    assert_eq!(
        how(&got.mapping, "dense_2.bias"),
        ("dense_2.bias".into(), MatchedBy::Name)
    );
    assert_eq!(
        how(&got.mapping, "dense_2.weight"),
        ("dense_2.weight".into(), MatchedBy::Name)
    );
    assert_eq!(
        how(&got.mapping, "a.bias"),
        ("dense_1.bias".into(), MatchedBy::Position)
    );
    assert_eq!(
        how(&got.mapping, "c.weight"),
        ("dense_3.weight".into(), MatchedBy::Position)
    );
}

#[test]
fn all_names_agreeing_ignores_the_file_order() {
    let model = Model::initialized(vae(), 4).unwrap();
    let mut tensors: Vec<(String, Tensor)> = model
        .weights
        .iter()
        .map(|(k, t)| (k.clone(), t.clone()))
        .collect();
    tensors.reverse();
    let got = match_weights(&model.graph, tensors, &Mapping::new(), file()).unwrap();
    assert_eq!(got.weights, model.weights);
    assert!(got.mapping.iter().all(|m| m.how == MatchedBy::Name));
}

#[test]
fn position_alone_between_equal_shapes_is_refused_naming_both_sides() {
    let model = Model::initialized(vae(), 5).unwrap();
    let err = match_weights(&model.graph, vae_file(&model), &Mapping::new(), file()).unwrap_err();
    let message = err.to_string();
    for part in [
        "model.pt: ",
        "position alone",
        "`z_log_var.weight`, `z_mean.weight`",
        "`mu.weight`, `logvar.weight`",
        "[3, 6]",
        "`z_log_var.bias`, `z_mean.bias`",
        "--map OLD=NEW",
        "--map-file FILE",
        "--map z_log_var.weight=mu.weight",
    ] {
        assert!(message.contains(part), "missing {part:?} in {message}");
    }
    // The encoder's shapes are unique: it is not listed.
    assert!(!message.contains("encoder"), "{message}");

    // Even in the right order, position alone is not trusted between equal shapes.
    let in_order = renamed(
        &model,
        &[
            ("encoder.weight", "enc.weight"),
            ("encoder.bias", "enc.bias"),
            ("z_mean.weight", "mu.weight"),
            ("z_mean.bias", "mu.bias"),
            ("z_log_var.weight", "logvar.weight"),
            ("z_log_var.bias", "logvar.bias"),
        ],
    );
    let err = match_weights(&model.graph, in_order, &Mapping::new(), file()).unwrap_err();
    assert!(err.to_string().contains("position alone"), "{err}");
}

#[test]
fn a_mapping_confirms_and_the_tensors_land_where_it_says() {
    let model = Model::initialized(vae(), 6).unwrap();
    let mapping = Mapping::from_args([
        "z_mean.weight=mu.weight",
        "z_mean.bias = mu.bias",
        "z_log_var.weight=logvar.weight",
        "z_log_var.bias=logvar.bias",
    ])
    .unwrap();
    let got = match_weights(&model.graph, vae_file(&model), &mapping, file()).unwrap();
    // Values, not just shapes: mu and logvar are not swapped.
    assert_eq!(got.weights["mu.weight"], model.weights["mu.weight"]);
    assert_eq!(got.weights["logvar.weight"], model.weights["logvar.weight"]);
    assert_ne!(got.weights["mu.weight"], model.weights["logvar.weight"]);
    assert_eq!(got.weights, model.weights);
    assert_eq!(
        how(&got.mapping, "z_mean.weight"),
        ("mu.weight".into(), MatchedBy::Map)
    );
    assert_eq!(
        how(&got.mapping, "encoder.weight"),
        ("enc.weight".into(), MatchedBy::Position)
    );

    // One pair of each equal-shaped couple is enough: the other is then alone in its shape.
    let mapping = Mapping::from_args(["z_mean.weight=mu.weight", "z_mean.bias=mu.bias"]).unwrap();
    let got = match_weights(&model.graph, vae_file(&model), &mapping, file()).unwrap();
    assert_eq!(got.weights, model.weights);
    assert_eq!(
        how(&got.mapping, "z_log_var.weight"),
        ("logvar.weight".into(), MatchedBy::Position)
    );

    // A mapping file says the same.
    let dir = temp_dir("map-file");
    let path = dir.join("vae.map");
    std::fs::write(
        &path,
        "# keras names -> dlbench names\n\nz_mean.weight=mu.weight\nz_mean.bias=mu.bias  # b\n",
    )
    .unwrap();
    let mapping = Mapping::read_file(&path).unwrap();
    assert_eq!(mapping.len(), 2);
    assert_eq!(
        mapping.pairs()[1].origin,
        Origin::File {
            path: path.clone(),
            line: 4
        }
    );
    let got = match_weights(&model.graph, vae_file(&model), &mapping, file()).unwrap();
    assert_eq!(got.weights, model.weights);
}

#[test]
fn a_mapping_overrides_identical_names() {
    // The file says `mu.*` for what is logvar and `logvar.*` for what is mu.
    let model = Model::initialized(vae(), 7).unwrap();
    let swapped = renamed(
        &model,
        &[
            ("enc.weight", "enc.weight"),
            ("enc.bias", "enc.bias"),
            ("mu.weight", "logvar.weight"),
            ("mu.bias", "logvar.bias"),
            ("logvar.weight", "mu.weight"),
            ("logvar.bias", "mu.bias"),
        ],
    );
    let mapping = Mapping::from_args([
        "mu.weight=logvar.weight",
        "mu.bias=logvar.bias",
        "logvar.weight=mu.weight",
        "logvar.bias=mu.bias",
    ])
    .unwrap();
    let got = match_weights(&model.graph, swapped, &mapping, file()).unwrap();
    assert_eq!(got.weights, model.weights);
    assert_eq!(
        how(&got.mapping, "enc.bias"),
        ("enc.bias".into(), MatchedBy::Name)
    );
    assert_eq!(
        how(&got.mapping, "mu.bias"),
        ("logvar.bias".into(), MatchedBy::Map)
    );
}

#[test]
fn an_unknown_old_or_new_is_an_error_naming_it() {
    let model = Model::initialized(vae(), 8).unwrap();
    let mapping = Mapping::from_args(["nope=mu.weight"]).unwrap();
    let message = match_weights(&model.graph, vae_file(&model), &mapping, file())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("model.pt: `nope`: is not in the file, but --map `nope=mu.weight`"),
        "{message}"
    );
    assert!(message.contains("`encoder.weight`"), "{message}");

    let mapping = Mapping::from_args(["z_mean.weight=mu.w"]).unwrap();
    let message = match_weights(&model.graph, vae_file(&model), &mapping, file())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("--map `z_mean.weight=mu.w`: graph `vae` has no parameter `mu.w`"),
        "{message}"
    );

    // A mapped tensor must have its parameter's shape.
    let mapping = Mapping::from_args(["z_mean.weight=enc.weight"]).unwrap();
    let message = match_weights(&model.graph, vae_file(&model), &mapping, file())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`z_mean.weight`: is [3, 6] but parameter `enc.weight`"),
        "{message}"
    );
}

#[test]
fn bad_mappings_name_the_argument_or_the_file_and_line() {
    let message = Mapping::from_args(["mu.weight"]).unwrap_err().to_string();
    assert!(
        message.contains("--map `mu.weight`: expected OLD=NEW"),
        "{message}"
    );
    for bad in ["=mu.weight", "a=", "a=b=c"] {
        let message = Mapping::from_args([bad]).unwrap_err().to_string();
        assert!(message.contains(&format!("--map `{bad}`")), "{message}");
    }
    let message = Mapping::from_args(["a=x", "a=y"]).unwrap_err().to_string();
    assert!(
        message.contains("--map `a=y`: tensor `a` is already mapped by --map `a=x`"),
        "{message}"
    );
    let message = Mapping::from_args(["a=x", "b=x"]).unwrap_err().to_string();
    assert!(
        message.contains("parameter `x` is already the target of --map `a=x`"),
        "{message}"
    );

    let path = Path::new("names.map");
    let text = "# a comment\n\na=x\n  b = y  # trailing comment\nc y\n";
    let message = Mapping::parse_file(path, text).unwrap_err().to_string();
    assert!(
        message.contains("names.map:5: expected OLD=NEW"),
        "{message}"
    );
    let message = Mapping::parse_file(path, "a=x\n# -\nb=x\n")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains(
            "`b=x` (names.map:3): parameter `x` is already the target of `a=x` (names.map:1)"
        ),
        "{message}"
    );
    // `--map` and `--map-file` together: still no name twice.
    let mut both = Mapping::from_args(["a=x"]).unwrap();
    let message = both
        .extend(Mapping::parse_file(path, "\na=z\n").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`a=z` (names.map:2): tensor `a` is already mapped by --map `a=x`"),
        "{message}"
    );
    let missing = Path::new("/nonexistent/dlbench.map");
    let message = Mapping::read_file(missing).unwrap_err().to_string();
    assert!(message.contains("/nonexistent/dlbench.map"), "{message}");
}

#[test]
fn counts_that_differ_after_names_and_mappings_list_both_sides() {
    let model = Model::initialized(vae(), 9).unwrap();
    let mut tensors = vae_file(&model);
    tensors.push((
        "num_batches_tracked".into(),
        Tensor::f32(vec![1], vec![0.0]).unwrap(),
    ));
    let mapping = Mapping::from_args(["z_mean.weight=mu.weight"]).unwrap();
    let message = match_weights(&model.graph, tensors, &mapping, file())
        .unwrap_err()
        .to_string();
    for part in [
        "model.pt: holds 7 tensors, graph `vae` has 6 parameters; 1 match by name or --map",
        "leaves 6 tensors (`encoder.weight`",
        "for 5 parameters (`enc.weight`",
        "needs as many of each",
    ] {
        assert!(message.contains(part), "missing {part:?} in {message}");
    }
}

#[test]
fn a_positional_shape_mismatch_says_how_to_map() {
    let model = Model::initialized(vae(), 10).unwrap();
    // The encoder's bias listed before its weight: position pairs them wrongly.
    let mut tensors = vae_file(&model);
    tensors.swap(0, 1);
    let message = match_weights(&model.graph, tensors, &Mapping::new(), file())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("model.pt: `encoder.bias`: is [6] but parameter `enc.weight` of graph `vae` is [6, 8] (matched by position"),
        "{message}"
    );
    assert!(message.contains("--map OLD=NEW"), "{message}");
}
