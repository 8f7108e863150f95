//! The unpickler on handcrafted byte streams: what torch writes, what it must refuse, and that
//! no malformed stream makes it panic.

use dlbench_core::DType;

use super::{
    encode_state_dict, op, read, Global, Key, Object, Pickle, Pickler, StorageKind, TensorOut,
    Value,
};

/// The `data.pkl` torch 2.11 wrote for `torch.save(nn.Linear(2, 3).state_dict(), "lin.pt")`,
/// byte for byte: memo, BINGET of the class for the backward hooks, and the `_metadata` BUILD.
const TORCH_LINEAR: &[u8] =
    b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x06\x00\x00\x00weightq\x02ctorch._utils\n_\
rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\
\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x06tq\x08QK\x00K\x03K\x02\x86q\tK\x02K\x01\x86q\n\
\x89h\x00)Rq\x0btq\x0cRq\rX\x04\x00\x00\x00biasq\x0eh\x03((h\x04h\x05X\x01\x00\x00\x001q\x0f\
h\x07K\x03tq\x10QK\x00K\x03\x85q\x11K\x01\x85q\x12\x89h\x00)Rq\x13tq\x14Rq\x15u}q\x16X\t\x00\
\x00\x00_metadataq\x17h\x00)Rq\x18X\x00\x00\x00\x00q\x19}q\x1aX\x07\x00\x00\x00versionq\x1bK\
\x01sssb.";

/// The tensors of a parsed state_dict: (name, storage class, storage key, offset, shape, stride).
type Row = (String, &'static str, String, usize, Vec<usize>, Vec<usize>);

fn tensors(pickle: &Pickle) -> Vec<Row> {
    let Some(Object::Dict(dict)) = pickle.object(&pickle.root) else {
        panic!("root is {}", pickle.kind(&pickle.root));
    };
    dict.entries
        .iter()
        .map(|(key, value)| {
            let Key::Str(name) = key else {
                panic!("key {key:?}")
            };
            let Some(Object::Tensor(t)) = pickle.object(value) else {
                panic!("{name} is {}", pickle.kind(value))
            };
            let Some(Object::Storage(s)) = pickle.objects.get(t.storage) else {
                panic!("{name} has no storage")
            };
            (
                name.to_string(),
                s.kind.class,
                s.key.clone(),
                t.offset,
                t.shape.clone(),
                t.stride.clone(),
            )
        })
        .collect()
}

fn error_of(bytes: &[u8]) -> String {
    match read(bytes) {
        Ok(p) => panic!("accepted: root {}", p.kind(&p.root)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn reads_what_torch_writes_for_a_linear_layer() {
    let pickle = read(TORCH_LINEAR).unwrap();
    assert_eq!(
        tensors(&pickle),
        vec![
            (
                "weight".into(),
                "FloatStorage",
                "0".into(),
                0,
                vec![3, 2],
                vec![2, 1]
            ),
            (
                "bias".into(),
                "FloatStorage",
                "1".into(),
                0,
                vec![3],
                vec![1]
            ),
        ]
    );
}

#[test]
fn reads_back_what_the_writer_writes() {
    let f32 = StorageKind::of(DType::F32);
    let shapes: [(&str, StorageKind, &[usize]); 5] = [
        ("a.weight", f32, &[3, 2]),
        ("b", StorageKind::of(DType::F64), &[]),
        ("c", StorageKind::of(DType::I64), &[0, 4]),
        ("long", f32, &[1, 2, 3, 4, 5]),
        ("big", f32, &[70000, 1]),
    ];
    let outs: Vec<TensorOut> = shapes
        .iter()
        .map(|&(name, kind, shape)| TensorOut { name, kind, shape })
        .collect();
    let pickle = read(&encode_state_dict(&outs)).unwrap();
    let rows = tensors(&pickle);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].4, vec![3, 2]);
    assert_eq!(
        rows[1],
        ("b".into(), "DoubleStorage", "1".into(), 0, vec![], vec![])
    );
    assert_eq!(
        rows[2].5,
        vec![4, 1],
        "torch's strides count an empty dim as 1"
    );
    assert_eq!(rows[3].5, vec![120, 60, 20, 5, 1]);
    assert_eq!(
        (rows[4].1, rows[4].4.clone()),
        ("FloatStorage", vec![70000, 1])
    );
}

#[test]
fn an_empty_state_dict_round_trips() {
    let pickle = read(&encode_state_dict(&[])).unwrap();
    assert!(tensors(&pickle).is_empty());
}

#[test]
fn more_than_a_thousand_tensors_are_batched_and_kept_in_order() {
    let names: Vec<String> = (0..2500).map(|i| format!("t{i}")).collect();
    let outs: Vec<TensorOut> = names
        .iter()
        .map(|name| TensorOut {
            name,
            kind: StorageKind::of(DType::F32),
            shape: &[1],
        })
        .collect();
    let rows = tensors(&read(&encode_state_dict(&outs)).unwrap());
    assert_eq!(rows.len(), 2500);
    assert_eq!(
        (rows[1234].0.as_str(), rows[1234].2.as_str()),
        ("t1234", "1234")
    );
}

#[test]
fn ints_round_trip_in_every_encoding() {
    let values = [
        0,
        1,
        255,
        256,
        65535,
        65536,
        -1,
        -256,
        i64::from(i32::MAX),
        i64::from(i32::MAX) + 1,
        i64::from(i32::MIN),
        i64::from(i32::MIN) - 1,
        1 << 40,
        -(1 << 40),
        i64::MAX,
        i64::MIN,
    ];
    for v in values {
        let mut p = Pickler::default();
        p.byte(op::PROTO);
        p.byte(2);
        p.int(v);
        p.byte(op::STOP);
        assert_eq!(read(&p.bytes).unwrap().root, Value::Int(v), "{v}");
    }
}

#[test]
fn protocol_4_opcodes_are_understood() {
    // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, BINFLOAT, LONG1, EMPTY_LIST + APPENDS,
    // as `pickle.dumps(..., protocol=4)` writes them.
    let mut b = vec![op::PROTO, 4, op::FRAME];
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(b"\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94");
    b.extend_from_slice(
        b"\x8c\x01x\x94]\x94(G\x3f\xf8\x00\x00\x00\x00\x00\x00\x8a\x02\x00\xff\x88Ne",
    );
    b.extend_from_slice(b"s.");
    let pickle = read(&b).unwrap();
    let Some(Object::Dict(d)) = pickle.object(&pickle.root) else {
        panic!()
    };
    let Some(Object::List(items)) = pickle.object(&d.entries[0].1) else {
        panic!()
    };
    assert_eq!(
        items,
        &vec![
            Value::Float(1.5),
            Value::Int(-256),
            Value::Bool(true),
            Value::None
        ]
    );
}

#[test]
fn refuses_os_system() {
    // What `pickle.dumps(Evil())` writes when `__reduce__` returns (os.system, ('echo',)).
    let message =
        error_of(b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00echoq\x01\x85q\x02Rq\x03.");
    assert!(
        message.contains("refusing global `posix.system`"),
        "{message}"
    );
    assert!(message.contains("at byte 2"), "{message}");
    let message = error_of(b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.");
    assert!(message.contains("`os.system`"), "{message}");
}

#[test]
fn refuses_builtins_eval_through_stack_global() {
    let message = error_of(
        b"\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x08print(1)\x94\x85\x94R\x94.",
    );
    assert!(
        message.contains("refusing global `builtins.eval`"),
        "{message}"
    );
}

#[test]
fn refuses_torch_functions_outside_the_whitelist() {
    let message = error_of(b"\x80\x02ctorch\nload\n.");
    assert!(message.contains("`torch.load`"), "{message}");
    let message = error_of(b"\x80\x02ctorch._utils\n_rebuild_from_type_v2\n.");
    assert!(message.contains("_rebuild_from_type_v2"), "{message}");
}

#[test]
fn refuses_what_only_code_could_do() {
    // REDUCE on something that is not a whitelisted global.
    assert!(error_of(b"\x80\x02X\x01\x00\x00\x00f)R.").contains("REDUCE calls a string"));
    // A storage class called directly.
    assert!(error_of(b"\x80\x02ctorch\nFloatStorage\n)R.").contains("persistent ids"));
    // A persistent id that is not a torch storage.
    assert!(error_of(b"\x80\x02X\x03\x00\x00\x00abcQ.").contains("persistent id"));
    // BUILD with attributes other than `_metadata`.
    let message =
        error_of(b"\x80\x02ccollections\nOrderedDict\n)R}X\x08\x00\x00\x00__dict__K\x01sb.");
    assert!(
        message.contains("only `_metadata` is accepted"),
        "{message}"
    );
    // INST and OBJ (protocol 0/1 ways to call a class) are not opcodes torch writes.
    assert!(error_of(b"(ios\nsystem\n.").contains("opcode 0x69"));
    assert!(error_of(b"\x80\x02(cos\nsystem\no.").contains("`os.system`"));
}

#[test]
fn a_truncated_stream_is_an_error_at_every_length() {
    for n in 0..TORCH_LINEAR.len() {
        let message = error_of(&TORCH_LINEAR[..n]);
        assert!(
            message.contains("cut short") || message.contains("MARK") || message.contains("GLOBAL"),
            "{n}: {message}"
        );
    }
}

#[test]
fn malformed_streams_are_errors_not_panics() {
    let cases: &[&[u8]] = &[
        b"",
        b".",
        b"0",
        b"(t0.",
        b"\x80\x09.",
        b"h\x05.",
        b"q\x00.",
        b"K\x01K\x02u.",
        b"(K\x01K\x02u.",
        b")K\x01a.",
        b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00.",
        b"X\xff\xff\xff\xff",
        b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
        b"X\x02\x00\x00\x00\xff\xfe.",
        b"c\xff\xfe\nx\n.",
        b"(\x85.",
        b"(K\x01\x86.",
        b"}(]K\x01s.",
    ];
    for case in cases {
        let _ = error_of(case);
    }
}

#[test]
fn random_mutations_never_panic() {
    // A deterministic LCG: mutate 1 to 4 bytes of a real pickle, thousands of times.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    for _ in 0..5000 {
        let mut bytes = TORCH_LINEAR.to_vec();
        for _ in 0..(1 + next() % 4) {
            let at = next() % bytes.len();
            bytes[at] = next() as u8;
        }
        let cut = bytes.len() - next() % 8;
        let _ = read(&bytes[..cut]);
    }
}

#[test]
fn whitelist_is_exactly_the_torch_names() {
    assert_eq!(
        Global::lookup("collections", "OrderedDict"),
        Some(Global::OrderedDict)
    );
    assert_eq!(
        Global::lookup("torch", "BFloat16Storage").map(|g| match g {
            Global::Storage(k) => k.torch_dtype,
            _ => "",
        }),
        Some("bfloat16")
    );
    for (module, name) in [
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("os", "system"),
        ("subprocess", "Popen"),
        ("torch", "Tensor"),
        ("torch", "storage"),
        ("collections", "defaultdict"),
        ("torch._utils", "_rebuild_qtensor"),
    ] {
        assert_eq!(Global::lookup(module, name), None, "{module}.{name}");
    }
}
