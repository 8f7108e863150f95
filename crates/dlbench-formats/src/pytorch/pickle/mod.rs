//! The subset of Python's pickle format that `torch.save` uses for a `state_dict`.
//!
//! [`read`] interprets the opcodes itself and never executes code: a `GLOBAL` is looked up in a
//! fixed whitelist ([`Global`]) and anything else is an error naming it, so a malicious file
//! (`os.system`, `builtins.eval`, ...) is rejected before anything happens. The only objects it
//! builds are plain data (ints, floats, strings, tuples, lists, dicts), `OrderedDict`s, storages
//! named by persistent ids and tensor views on them. [`write`] emits the same shapes as torch.
//!
//! Objects live in an arena ([`Pickle::objects`]) and values refer to them by index: a value
//! fetched from the memo many times is never copied, cycles cannot leak, and dropping the
//! result is flat (no recursion a deep pickle could overflow).

mod read;
mod write;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::rc::Rc;

use dlbench_core::DType;

pub use read::read;
#[cfg(test)]
use write::Pickler;
pub use write::{contiguous_strides, encode_state_dict, TensorOut};

/// A pickle value. Containers, storages and tensors are [`Object`]s in the arena.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Python's `None`.
    None,
    /// A Python `bool`.
    Bool(bool),
    /// A Python `int` that fits in 64 bits (larger ones are refused).
    Int(i64),
    /// A Python `float`.
    Float(f64),
    /// A Python `str`; shared, since the memo may hand it out many times.
    Str(Rc<str>),
    /// A whitelisted callable or class, from `GLOBAL` / `STACK_GLOBAL`.
    Global(Global),
    /// Index into [`Pickle::objects`].
    Object(usize),
}

impl Value {
    /// What the value is, for error messages (never its contents: they may be huge).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Global(_) => "a class or function",
            Value::Object(_) => "an object",
        }
    }
}

/// A dict key: state_dicts and their `_metadata` use only strings and ints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A string key, e.g. `fc1.weight`.
    Str(Rc<str>),
    /// An int key.
    Int(i64),
}

/// An insertion-ordered dict (Python dicts keep order; `OrderedDict` too).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dict {
    /// The items in insertion order; keys are unique (see [`Dict::insert`]).
    pub entries: Vec<(Key, Value)>,
    index: HashMap<Key, usize>,
}

impl Dict {
    /// Python's `d[key] = value`: a new key goes last, an existing one keeps its place.
    pub fn insert(&mut self, key: Key, value: Value) {
        match self.index.get(&key) {
            Some(&i) => {
                if let Some(entry) = self.entries.get_mut(i) {
                    entry.1 = value;
                }
            }
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }
}

/// A non-scalar object built by the pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A Python `tuple`.
    Tuple(Vec<Value>),
    /// A Python `list`.
    List(Vec<Value>),
    /// A Python `dict` or `collections.OrderedDict`.
    Dict(Dict),
    /// A storage named by a persistent id: its bytes are the archive entry `data/<key>`.
    Storage(StorageRef),
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
    Tensor(TensorRef),
}

impl Object {
    /// What the object is, for error messages (never its contents).
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Tuple(_) => "a tuple",
            Object::List(_) => "a list",
            Object::Dict(_) => "a dict",
            Object::Storage(_) => "a storage",
            Object::Tensor(_) => "a tensor",
        }
    }
}

/// `('storage', torch.FloatStorage, '0', 'cpu', 6)`: what a persistent id says of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// The storage class, hence the element type.
    pub kind: StorageKind,
    /// The archive entry is `<archive>/data/<key>`.
    pub key: String,
    /// Where the tensor lived when saved (`cpu`, `cuda:0`): the bytes are the same.
    pub location: String,
    /// Elements, not bytes.
    pub numel: usize,
}

/// A strided view on a storage, in elements.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Index of an [`Object::Storage`].
    pub storage: usize,
    /// First element's index in the storage (`tensor.storage_offset()`).
    pub offset: usize,
    /// `tensor.size()`.
    pub shape: Vec<usize>,
    /// `tensor.stride()`, in elements, one per dimension.
    pub stride: Vec<usize>,
}

/// The classes and functions a state_dict pickle may name. Everything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`: the container `state_dict()` returns.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`: how every tensor is pickled.
    RebuildTensorV2,
    /// `torch._utils._rebuild_parameter`: an `nn.Parameter` saved as such (a dict of
    /// `named_parameters()`); it wraps a tensor.
    RebuildParameter,
    /// `torch.FloatStorage` and friends: the element type of a persistent id.
    Storage(StorageKind),
}

/// A torch storage class: its name and, where dlbench has one, the matching dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageKind {
    /// `FloatStorage`, ...
    pub class: &'static str,
    /// torch's dtype name, for messages (`float32`, `bfloat16`).
    pub torch_dtype: &'static str,
    /// The dlbench dtype, `None` when dlbench has none (the tensor is refused, by name).
    pub dtype: Option<DType>,
}

/// The storage classes torch 2.x writes in persistent ids. Only f32, f64 and i64 have a dlbench
/// dtype; the others are recognised so that the error can name the dtype.
pub const STORAGE_KINDS: &[StorageKind] = &[
    StorageKind::new("FloatStorage", "float32", Some(DType::F32)),
    StorageKind::new("DoubleStorage", "float64", Some(DType::F64)),
    StorageKind::new("LongStorage", "int64", Some(DType::I64)),
    StorageKind::new("HalfStorage", "float16", None),
    StorageKind::new("BFloat16Storage", "bfloat16", None),
    StorageKind::new("IntStorage", "int32", None),
    StorageKind::new("ShortStorage", "int16", None),
    StorageKind::new("CharStorage", "int8", None),
    StorageKind::new("ByteStorage", "uint8", None),
    StorageKind::new("BoolStorage", "bool", None),
    StorageKind::new("ComplexFloatStorage", "complex64", None),
    StorageKind::new("ComplexDoubleStorage", "complex128", None),
];

impl StorageKind {
    const fn new(class: &'static str, torch_dtype: &'static str, dtype: Option<DType>) -> Self {
        StorageKind {
            class,
            torch_dtype,
            dtype,
        }
    }

    /// The class torch uses for a dlbench dtype.
    pub fn of(dtype: DType) -> StorageKind {
        let class = match dtype {
            DType::F32 => "FloatStorage",
            DType::F64 => "DoubleStorage",
            DType::I64 => "LongStorage",
        };
        STORAGE_KINDS
            .iter()
            .copied()
            .find(|k| k.class == class)
            .unwrap_or(StorageKind::new(
                "FloatStorage",
                "float32",
                Some(DType::F32),
            ))
    }
}

impl Global {
    /// Looks `module.name` up in the whitelist.
    pub fn lookup(module: &str, name: &str) -> Option<Global> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch", class) => STORAGE_KINDS
                .iter()
                .find(|k| k.class == class)
                .map(|&k| Global::Storage(k)),
            _ => None,
        }
    }
}

/// A parsed pickle: the value `STOP` returned and the arena its objects live in.
#[derive(Debug, Clone, PartialEq)]
pub struct Pickle {
    /// The value on the stack at `STOP`: the `state_dict` itself for a torch file.
    pub root: Value,
    /// Every non-scalar object, indexed by [`Value::Object`].
    pub objects: Vec<Object>,
}

impl Pickle {
    /// The object a value refers to, if it is one.
    pub fn object(&self, value: &Value) -> Option<&Object> {
        match value {
            Value::Object(i) => self.objects.get(*i),
            _ => None,
        }
    }

    /// What a value is, looking into the arena for objects.
    pub fn kind(&self, value: &Value) -> &'static str {
        self.object(value).map_or(value.kind(), Object::kind)
    }
}

/// Why a pickle was refused, with the byte offset of the opcode at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("data.pkl at byte {offset}: {message}")]
pub struct PickleError {
    /// Byte offset of the opcode in `data.pkl`.
    pub offset: usize,
    /// What the opcode did wrong, or the non-whitelisted global it named.
    pub message: String,
}

/// Opcodes, by their pickle names (Python's `pickletools` documents each).
pub(crate) mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const BINFLOAT: u8 = b'G';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const BINPERSID: u8 = b'Q';
    pub const REDUCE: u8 = b'R';
    pub const BINUNICODE: u8 = b'X';
    pub const EMPTY_LIST: u8 = b']';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const APPENDS: u8 = b'e';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const SETITEMS: u8 = b'u';
    pub const EMPTY_DICT: u8 = b'}';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const PROTO: u8 = 0x80;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
}
