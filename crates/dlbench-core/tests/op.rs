//! The op families, their kinds and the serialized form of `Op`, which saved models and golden
//! files store: it must stay the flat, internally tagged form it was before the families.

use std::collections::BTreeSet;

use dlbench_core::ir::{Conv2d, Direction, Lstm, OpTag, Pool2d, UnaryKind};
use dlbench_core::{BinaryOp, LossOp, Op, OpKind, UnaryOp};
use strum::IntoEnumIterator;

/// An op of each leaf kind, with attributes that differ from the defaults where it has any.
fn example(kind: OpKind) -> Op {
    match kind {
        OpKind::Dense => Op::Dense,
        OpKind::MatMul => Op::MatMul,
        OpKind::Conv2d => Op::Conv2d(Conv2d {
            stride: [2, 1],
            padding: [1, 0],
            dilation: [1, 2],
            groups: 3,
        }),
        OpKind::MaxPool2d => Op::MaxPool2d(Pool2d {
            kernel: [3, 2],
            stride: [2, 1],
            padding: [1, 0],
            ceil_mode: true,
            count_include_pad: false,
        }),
        OpKind::AvgPool2d => Op::AvgPool2d(Pool2d::square(2)),
        OpKind::Flatten => Op::Flatten { axis: 1 },
        OpKind::Reshape => Op::Reshape {
            shape: vec![0, -1, 2],
        },
        OpKind::Transpose => Op::Transpose {
            perm: vec![0, 2, 1],
        },
        OpKind::Concat => Op::Concat { axis: 1 },
        OpKind::Unary(u) => Op::Unary(match u {
            UnaryKind::Relu => UnaryOp::Relu,
            UnaryKind::Sigmoid => UnaryOp::Sigmoid,
            UnaryKind::Tanh => UnaryOp::Tanh,
            UnaryKind::Exp => UnaryOp::Exp,
            UnaryKind::Scale => UnaryOp::Scale { factor: 2.0 },
        }),
        OpKind::Softmax => Op::Softmax { axis: -1 },
        OpKind::LogSoftmax => Op::LogSoftmax { axis: 1 },
        OpKind::Dropout => Op::Dropout { p: 0.25 },
        OpKind::Lstm => Op::Lstm(Lstm {
            hidden: 5,
            direction: Direction::Bidirectional,
            batch_first: true,
        }),
        OpKind::Binary(b) => Op::Binary(b),
        OpKind::Loss(l) => Op::Loss(l),
    }
}

/// Every op as `Op` serialized before the families existed (one flat, internally tagged enum),
/// by leaf name.
const FLAT_JSON: [(&str, &str); 26] = [
    ("dense", r#"{"type":"dense"}"#),
    ("mat_mul", r#"{"type":"mat_mul"}"#),
    (
        "conv2d",
        r#"{"type":"conv2d","stride":[2,1],"padding":[1,0],"dilation":[1,2],"groups":3}"#,
    ),
    (
        "max_pool2d",
        r#"{"type":"max_pool2d","kernel":[3,2],"stride":[2,1],"padding":[1,0],"ceil_mode":true,"count_include_pad":false}"#,
    ),
    (
        "avg_pool2d",
        r#"{"type":"avg_pool2d","kernel":[2,2],"stride":[2,2],"padding":[0,0],"ceil_mode":false,"count_include_pad":true}"#,
    ),
    ("flatten", r#"{"type":"flatten","axis":1}"#),
    ("reshape", r#"{"type":"reshape","shape":[0,-1,2]}"#),
    ("transpose", r#"{"type":"transpose","perm":[0,2,1]}"#),
    ("concat", r#"{"type":"concat","axis":1}"#),
    ("relu", r#"{"type":"relu"}"#),
    ("sigmoid", r#"{"type":"sigmoid"}"#),
    ("tanh", r#"{"type":"tanh"}"#),
    ("softmax", r#"{"type":"softmax","axis":-1}"#),
    ("log_softmax", r#"{"type":"log_softmax","axis":1}"#),
    ("dropout", r#"{"type":"dropout","p":0.25}"#),
    (
        "lstm",
        r#"{"type":"lstm","hidden":5,"direction":"bidirectional","batch_first":true}"#,
    ),
    ("add", r#"{"type":"add"}"#),
    ("sub", r#"{"type":"sub"}"#),
    ("mul", r#"{"type":"mul"}"#),
    ("exp", r#"{"type":"exp"}"#),
    ("scale", r#"{"type":"scale","factor":2.0}"#),
    ("mse_loss", r#"{"type":"mse_loss"}"#),
    ("cross_entropy_loss", r#"{"type":"cross_entropy_loss"}"#),
    ("bce_loss", r#"{"type":"bce_loss"}"#),
    ("bce_with_logits_loss", r#"{"type":"bce_with_logits_loss"}"#),
    ("vae_elbo_loss", r#"{"type":"vae_elbo_loss"}"#),
];

#[test]
fn every_op_serializes_as_before_and_round_trips() {
    let kinds = OpKind::all();
    assert_eq!(kinds.len(), FLAT_JSON.len());
    for kind in kinds {
        let op = example(kind);
        assert_eq!(op.kind(), kind);
        let json = serde_json::to_string(&op).unwrap();
        let pinned = FLAT_JSON.iter().find(|(name, _)| *name == kind.name());
        let (_, want) = pinned.unwrap_or_else(|| panic!("no pinned JSON for `{kind}`"));
        assert_eq!(json, *want, "{kind}");
        let back: Op = serde_json::from_str(&json).unwrap();
        assert_eq!(back, op, "{kind}");
        // The name is the serialized tag.
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], op.name(), "{kind}");
    }
}

#[test]
fn the_serialized_form_reads_as_before() {
    let read = |json: &str| serde_json::from_str::<Op>(json).unwrap();
    assert_eq!(read(r#"{"type":"relu"}"#), Op::Unary(UnaryOp::Relu));
    assert_eq!(
        read(r#"{"type": "scale", "factor": 2.0}"#),
        Op::Unary(UnaryOp::Scale { factor: 2.0 })
    );
    assert_eq!(read(r#"{"type":"sub"}"#), Op::Binary(BinaryOp::Sub));
    assert_eq!(read(r#"{"type":"mse_loss"}"#), Op::Loss(LossOp::Mse));
    assert_eq!(
        read(r#"{"type":"bce_with_logits_loss"}"#),
        Op::Loss(LossOp::BinaryCrossEntropyWithLogits)
    );
    assert_eq!(
        read(r#"{"type":"conv2d","stride":[1,1],"padding":[0,0],"dilation":[1,1],"groups":1}"#),
        Op::Conv2d(Conv2d::default())
    );
    // A family name is not an op.
    assert!(serde_json::from_str::<Op>(r#"{"type":"unary"}"#).is_err());
    assert!(serde_json::from_str::<Op>(r#"{"type":"loss"}"#).is_err());
}

#[test]
fn every_leaf_kind_is_listed_once_with_its_own_name() {
    let kinds = OpKind::all();
    let names: BTreeSet<&str> = kinds.iter().map(|k| k.name()).collect();
    assert_eq!(names.len(), kinds.len(), "two kinds share a name");
    // Each top-level variant has its leaves; each family all of its members.
    for tag in OpTag::iter() {
        let leaves = kinds
            .iter()
            .filter(|k| OpTag::from(example(**k)) == tag)
            .count();
        assert!(leaves > 0, "{tag:?} has no leaf kind");
    }
    let count = |f: fn(&OpKind) -> bool| kinds.iter().filter(|k| f(k)).count();
    assert_eq!(
        count(|k| matches!(k, OpKind::Unary(_))),
        UnaryKind::iter().count()
    );
    assert_eq!(
        count(|k| matches!(k, OpKind::Binary(_))),
        BinaryOp::iter().count()
    );
    assert_eq!(
        count(|k| matches!(k, OpKind::Loss(_))),
        LossOp::iter().count()
    );
    let first_and_last = [kinds[0].name(), kinds[kinds.len() - 1].name()];
    assert_eq!(first_and_last, ["dense", "vae_elbo_loss"]);
}

#[test]
fn losses_keep_their_spec_names_and_only_losses_are_losses() {
    let spec_names: Vec<String> = LossOp::iter()
        .map(|l| {
            serde_json::to_value(l)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        spec_names,
        [
            "mse",
            "cross_entropy",
            "binary_cross_entropy",
            "binary_cross_entropy_with_logits",
            "vae_elbo"
        ]
    );
    for kind in OpKind::all() {
        assert_eq!(
            example(kind).is_loss(),
            matches!(kind, OpKind::Loss(_)),
            "{kind}"
        );
    }
}
