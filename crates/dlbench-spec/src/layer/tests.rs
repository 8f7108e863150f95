//! The layer table against the parser, the error messages and docs/specs.md.

use strum::IntoEnumIterator;

use super::{bare_layers, layers_with_options, Form, Layer, LayerKind};

#[test]
fn the_vocabulary_and_its_order_are_unchanged() {
    assert_eq!(
        layers_with_options(),
        [
            "dense",
            "conv2d",
            "max_pool2d",
            "avg_pool2d",
            "dropout",
            "lstm",
            "reshape",
            "scale",
            "concat",
            "transpose",
        ]
    );
    assert_eq!(
        bare_layers(),
        [
            "relu",
            "sigmoid",
            "tanh",
            "softmax",
            "log_softmax",
            "flatten",
            "add",
            "sub",
            "mul",
            "exp",
            "mat_mul",
        ]
    );
}

/// The parser agrees with the table on every row: a bare layer parses from its name and
/// rejects options; a layer with options asks for them and parses its mapping.
#[test]
fn the_parser_follows_the_table() {
    for kind in LayerKind::iter() {
        let entry = kind.entry();
        let name = entry.name;
        assert_eq!(LayerKind::from_name(name), Some(kind));
        let mapping = serde_yaml::from_str::<Layer>(&format!("{name}: {{}}"));
        match entry.form {
            Form::Bare(layer) => {
                assert_eq!(Layer::bare(name), Ok(layer.clone()));
                assert_eq!(
                    serde_yaml::from_str::<Layer>(name).ok(),
                    Some(layer.clone())
                );
                assert_eq!(layer.kind(), kind);
                assert_eq!(layer.name(), name);
                assert_eq!(layer.arity(), entry.inputs);
                let err = mapping.expect_err(name).to_string();
                assert!(err.contains("takes no options"), "{name}: {err}");
            }
            Form::WithOptions => {
                let err = Layer::bare(name).expect_err(name);
                assert!(err.contains("needs options"), "{name}: {err}");
                // `{}` lacks a required option, or is a complete set of defaults.
                match mapping {
                    Ok(layer) => assert_eq!(layer.kind(), kind),
                    Err(e) => assert!(!e.to_string().contains("takes no options"), "{e}"),
                }
            }
        }
    }
    let err = Layer::bare("dens").unwrap_err();
    assert!(
        err.starts_with("unknown layer `dens`, expected one of `dense`, `conv2d`, "),
        "{err}"
    );
    assert!(err.ends_with("`exp`, `mat_mul`"), "{err}");
}

#[test]
fn docs_specs_md_lists_every_layer() {
    let docs = include_str!("../../../../docs/specs.md");
    let layers = &docs[docs.find("## Layers").expect("a Layers section")..];
    for kind in LayerKind::iter() {
        let name = format!("`{}`", kind.name());
        assert!(
            layers.contains(&name),
            "docs/specs.md: no {name} under ## Layers"
        );
    }
}
