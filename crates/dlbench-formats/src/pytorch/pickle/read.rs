//! The unpickler: a stack machine over the opcodes torch writes, building only whitelisted
//! objects. Every read is bounds-checked; a malformed stream is an error, never a panic.

use std::collections::HashMap;
use std::rc::Rc;

use super::{op, Dict, Global, Key, Object, Pickle, PickleError, StorageRef, TensorRef, Value};

/// The longest `module` or `name` line a `GLOBAL` may have; real ones are a few dozen bytes.
const MAX_GLOBAL_LINE: usize = 256;

/// The most dimensions a tensor may have (torch itself allows 64 in most kernels).
const MAX_RANK: usize = 64;

/// Interprets a pickle (protocols 2 to 5, the opcodes torch uses) into data, without executing
/// anything; see the module documentation for what is accepted.
pub fn read(bytes: &[u8]) -> Result<Pickle, PickleError> {
    let mut machine = Machine {
        bytes,
        pos: 0,
        op_start: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objects: Vec::new(),
    };
    let root = machine.run()?;
    Ok(Pickle {
        root,
        objects: machine.objects,
    })
}

struct Machine<'a> {
    bytes: &'a [u8],
    /// The next byte to read.
    pos: usize,
    /// Where the current opcode starts, for error messages.
    op_start: usize,
    stack: Vec<Value>,
    /// Stack heights at each `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    objects: Vec<Object>,
}

impl<'a> Machine<'a> {
    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            self.op_start = self.pos;
            let Some(&code) = self.bytes.get(self.pos) else {
                return Err(self.err("the pickle ends without STOP: the file is cut short"));
            };
            self.pos += 1;
            match code {
                op::PROTO => {
                    let version = self.take(1)?[0];
                    if version > 5 {
                        return Err(self.err(format!("pickle protocol {version} is unknown")));
                    }
                }
                // A frame only announces the length of what follows: the opcodes are the same.
                op::FRAME => {
                    self.take(8)?;
                }
                op::STOP => return self.pop(),
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    self.pop()?;
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::NONE => self.stack.push(Value::None),
                op::NEWTRUE => self.stack.push(Value::Bool(true)),
                op::NEWFALSE => self.stack.push(Value::Bool(false)),
                op::BININT => {
                    let b = self.take(4)?;
                    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.stack.push(Value::Int(v.into()));
                }
                op::BININT1 => {
                    let v = self.take(1)?[0];
                    self.stack.push(Value::Int(v.into()));
                }
                op::BININT2 => {
                    let b = self.take(2)?;
                    self.stack
                        .push(Value::Int(u16::from_le_bytes([b[0], b[1]]).into()));
                }
                op::LONG1 => {
                    let n = self.take(1)?[0] as usize;
                    let v = self.long(n)?;
                    self.stack.push(Value::Int(v));
                }
                op::BINFLOAT => {
                    let b = self.take(8)?;
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(raw)));
                }
                op::SHORT_BINUNICODE => {
                    let n = self.take(1)?[0] as usize;
                    self.string(n)?;
                }
                op::BINUNICODE => {
                    let b = self.take(4)?;
                    let n = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    self.string(n as usize)?;
                }
                op::BINUNICODE8 => {
                    let b = self.take(8)?;
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(b);
                    let n = usize::try_from(u64::from_le_bytes(raw)).unwrap_or(usize::MAX);
                    self.string(n)?;
                }
                op::EMPTY_TUPLE => self.push_object(Object::Tuple(Vec::new())),
                op::EMPTY_LIST => self.push_object(Object::List(Vec::new())),
                op::EMPTY_DICT => self.push_object(Object::Dict(Dict::default())),
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1) + 1;
                    let at = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .filter(|&at| at >= self.floor())
                        .ok_or_else(|| self.err(format!("TUPLE{n} needs {n} values")))?;
                    let items = self.stack.split_off(at);
                    self.push_object(Object::Tuple(items));
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push_object(Object::Tuple(items));
                }
                op::GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let global = self.global(&module, &name)?;
                    self.stack.push(global);
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(self.err("STACK_GLOBAL needs a module and a name string"));
                    };
                    let global = self.global(&module, &name)?;
                    self.stack.push(global);
                }
                op::REDUCE => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let result = self.call(callable, args)?;
                    self.stack.push(result);
                }
                op::BUILD => {
                    let state = self.pop()?;
                    self.build(state)?;
                }
                op::BINPERSID => {
                    let pid = self.pop()?;
                    let storage = self.persistent_load(pid)?;
                    self.push_object(Object::Storage(storage));
                }
                op::SETITEM => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.set_items(vec![key, value])?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                op::APPEND => {
                    let value = self.pop()?;
                    self.append(vec![value])?;
                }
                op::APPENDS => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                op::BINPUT => {
                    let i = self.take(1)?[0];
                    self.memo_put(i.into())?;
                }
                op::LONG_BINPUT => {
                    let b = self.take(4)?;
                    self.memo_put(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
                }
                op::MEMOIZE => {
                    let i = u32::try_from(self.memo.len())
                        .map_err(|_| self.err("too many memo entries"))?;
                    self.memo_put(i)?;
                }
                op::BINGET => {
                    let i = self.take(1)?[0];
                    self.memo_get(i.into())?;
                }
                op::LONG_BINGET => {
                    let b = self.take(4)?;
                    self.memo_get(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
                }
                other => {
                    return Err(self.err(format!(
                    "pickle opcode 0x{other:02x} ({:?}) is not one torch writes for a state_dict",
                    char::from(other)
                )))
                }
            }
        }
    }

    fn err(&self, message: impl Into<String>) -> PickleError {
        PickleError {
            offset: self.op_start,
            message: message.into(),
        }
    }

    /// The next `n` bytes, or an error when the stream is shorter.
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.err(format!(
                "the pickle is cut short: {n} more bytes expected, {} left",
                self.bytes.len() - self.pos
            )));
        };
        let bytes: &'a [u8] = self.bytes;
        let slice = &bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    /// A `GLOBAL` argument: bytes up to a newline.
    fn line(&mut self) -> Result<String, PickleError> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .take(MAX_GLOBAL_LINE + 1)
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("GLOBAL without a newline-terminated module and name"))?;
        let text = std::str::from_utf8(&rest[..len])
            .map_err(|_| self.err("GLOBAL names a module that is not text"))?
            .to_string();
        self.pos += len + 1;
        Ok(text)
    }

    /// A little-endian two's-complement integer of `n` bytes (LONG1).
    fn long(&mut self, n: usize) -> Result<i64, PickleError> {
        if n > 8 {
            return Err(self.err(format!("an integer of {n} bytes does not fit 64 bits")));
        }
        let b = self.take(n)?;
        let mut raw = if b.last().is_some_and(|&last| last & 0x80 != 0) {
            [0xffu8; 8]
        } else {
            [0u8; 8]
        };
        raw[..n].copy_from_slice(b);
        Ok(i64::from_le_bytes(raw))
    }

    fn string(&mut self, n: usize) -> Result<(), PickleError> {
        let b = self.take(n)?;
        let text = std::str::from_utf8(b).map_err(|_| self.err("a string is not valid UTF-8"))?;
        let value = Value::Str(Rc::from(text));
        self.stack.push(value);
        Ok(())
    }

    /// The stack height of the last MARK: values below it are out of reach until the MARK is
    /// consumed, as in Python's unpickler.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("an opcode needs a value but there is none above the MARK"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.err("an opcode needs a value but the stack is empty"))
    }

    /// The values pushed since the last `MARK`, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.err("an opcode needs a MARK and there is none"))?;
        if mark > self.stack.len() {
            return Err(self.err("a MARK points above the stack"));
        }
        Ok(self.stack.split_off(mark))
    }

    fn push_object(&mut self, object: Object) {
        self.objects.push(object);
        self.stack.push(Value::Object(self.objects.len() - 1));
    }

    /// The arena index of the value on top of the stack, which must be an object.
    fn top_object(&self) -> Result<usize, PickleError> {
        if self.stack.len() <= self.floor() {
            return Err(self.err("an opcode needs a value but there is none above the MARK"));
        }
        match self.stack.last() {
            Some(Value::Object(i)) if *i < self.objects.len() => Ok(*i),
            Some(other) => Err(self.err(format!("expected an object, found {}", other.kind()))),
            None => Err(self.err("an opcode needs a value but the stack is empty")),
        }
    }

    fn memo_put(&mut self, index: u32) -> Result<(), PickleError> {
        let top = self
            .stack
            .last()
            .filter(|_| self.stack.len() > self.floor())
            .cloned()
            .ok_or_else(|| self.err("memoizing with nothing above the MARK"))?;
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| self.err(format!("memo entry {index} was never stored")))?;
        self.stack.push(value);
        Ok(())
    }

    /// The whitelist: the security property of this reader lies here.
    fn global(&self, module: &str, name: &str) -> Result<Value, PickleError> {
        Global::lookup(module, name)
            .map(Value::Global)
            .ok_or_else(|| {
                self.err(format!(
                    "refusing global `{module}.{name}`: a state_dict pickle may only name \
                 collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter \
                 and torch.*Storage classes (loading it would run other code)"
                ))
            })
    }

    /// The items of a tuple of at most `max` items. The length is checked before copying: a
    /// large tuple fetched from the memo again and again must not cost its size each time.
    fn tuple_items(
        &self,
        value: &Value,
        what: &str,
        max: usize,
    ) -> Result<Vec<Value>, PickleError> {
        match value {
            Value::Object(i) => match self.objects.get(*i) {
                Some(Object::Tuple(items)) if items.len() > max => Err(self.err(format!(
                    "{what} has {} items, at most {max} expected",
                    items.len()
                ))),
                Some(Object::Tuple(items)) => Ok(items.clone()),
                Some(other) => Err(self.err(format!("{what} is {}, not a tuple", other.kind()))),
                None => Err(self.err(format!("{what} refers to no object"))),
            },
            other => Err(self.err(format!("{what} is {}, not a tuple", other.kind()))),
        }
    }

    fn usize_of(&self, value: &Value, what: &str) -> Result<usize, PickleError> {
        match value {
            Value::Int(v) => usize::try_from(*v)
                .map_err(|_| self.err(format!("{what} is {v}, expected a count or index >= 0"))),
            other => Err(self.err(format!("{what} is {}, expected an int", other.kind()))),
        }
    }

    fn usizes(&self, value: &Value, what: &str) -> Result<Vec<usize>, PickleError> {
        self.tuple_items(value, what, MAX_RANK)?
            .iter()
            .map(|v| self.usize_of(v, what))
            .collect()
    }

    /// REDUCE: `callable(*args)` for the whitelisted callables only.
    fn call(&mut self, callable: Value, args: Value) -> Result<Value, PickleError> {
        // The whitelisted callables take at most 7 arguments (_rebuild_tensor_v2).
        let args = self.tuple_items(&args, "REDUCE's arguments", 7)?;
        let Value::Global(global) = callable else {
            return Err(self.err(format!(
                "REDUCE calls {}, not a whitelisted class or function",
                callable.kind()
            )));
        };
        match global {
            Global::OrderedDict if args.is_empty() => {
                self.objects.push(Object::Dict(Dict::default()));
                Ok(Value::Object(self.objects.len() - 1))
            }
            Global::OrderedDict => Err(self.err("OrderedDict(...) with arguments")),
            Global::RebuildTensorV2 => {
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if !(6..=7).contains(&args.len()) {
                    return Err(self.err(format!(
                        "_rebuild_tensor_v2 takes 6 or 7 arguments, got {}",
                        args.len()
                    )));
                }
                let storage = match &args[0] {
                    Value::Object(i)
                        if matches!(self.objects.get(*i), Some(Object::Storage(_))) =>
                    {
                        *i
                    }
                    other => {
                        return Err(self.err(format!(
                            "_rebuild_tensor_v2's storage is {}, expected a persistent-id storage",
                            self.kind(other)
                        )))
                    }
                };
                let offset = self.usize_of(&args[1], "the storage offset")?;
                let shape = self.usizes(&args[2], "the size")?;
                let stride = self.usizes(&args[3], "the stride")?;
                if shape.len() != stride.len() {
                    return Err(self.err(format!(
                        "size {shape:?} and stride {stride:?} differ in rank"
                    )));
                }
                self.objects.push(Object::Tensor(TensorRef {
                    storage,
                    offset,
                    shape,
                    stride,
                }));
                Ok(Value::Object(self.objects.len() - 1))
            }
            Global::RebuildParameter => {
                // (data, requires_grad, backward_hooks): the parameter is its tensor.
                match args.first() {
                    Some(v @ Value::Object(i))
                        if args.len() == 3
                            && matches!(self.objects.get(*i), Some(Object::Tensor(_))) =>
                    {
                        Ok(v.clone())
                    }
                    _ => Err(self.err("_rebuild_parameter takes (tensor, requires_grad, hooks)")),
                }
            }
            Global::Storage(kind) => Err(self.err(format!(
                "torch.{} is called: storages come only from persistent ids",
                kind.class
            ))),
        }
    }

    /// BUILD (`__setstate__`): accepted only for the `_metadata` attribute torch attaches to a
    /// state_dict; its contents (module versions) do not matter here.
    fn build(&mut self, state: Value) -> Result<(), PickleError> {
        let target = self.top_object()?;
        let attributes = match (&self.objects[target], self.object(&state)) {
            (Object::Dict(_), Some(Object::Dict(d))) => d,
            (t, _) => {
                return Err(self.err(format!(
                    "BUILD sets the state of {} from {}: only a state_dict's `_metadata` is \
                     accepted",
                    t.kind(),
                    self.kind(&state)
                )))
            }
        };
        let other = attributes
            .entries
            .iter()
            .find(|(k, _)| !matches!(k, Key::Str(s) if &**s == "_metadata"));
        match other {
            Some((Key::Str(name), _)) => Err(self.err(format!(
                "BUILD sets attribute `{name}` on a dict: only `_metadata` is accepted"
            ))),
            Some((Key::Int(i), _)) => Err(self.err(format!(
                "BUILD sets attribute {i} on a dict: only `_metadata` is accepted"
            ))),
            None => Ok(()),
        }
    }

    fn object(&self, value: &Value) -> Option<&Object> {
        match value {
            Value::Object(i) => self.objects.get(*i),
            _ => None,
        }
    }

    fn kind(&self, value: &Value) -> &'static str {
        self.object(value).map_or(value.kind(), Object::kind)
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err("SETITEMS with an odd number of values"));
        }
        let target = self.top_object()?;
        let mut pairs = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(key), Some(value)) = (items.next(), items.next()) {
            let key = match key {
                Value::Str(s) => Key::Str(s),
                Value::Int(i) => Key::Int(i),
                other => {
                    return Err(self.err(format!(
                        "a dict key is {}: only strings and ints are accepted",
                        self.kind(&other)
                    )))
                }
            };
            pairs.push((key, value));
        }
        match &mut self.objects[target] {
            Object::Dict(dict) => {
                for (key, value) in pairs {
                    dict.insert(key, value);
                }
                Ok(())
            }
            other => {
                let kind = other.kind();
                Err(self.err(format!("SETITEM on {kind}, not a dict")))
            }
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        let target = self.top_object()?;
        match &mut self.objects[target] {
            Object::List(list) => {
                list.extend(items);
                Ok(())
            }
            other => {
                let kind = other.kind();
                Err(self.err(format!("APPEND on {kind}, not a list")))
            }
        }
    }

    /// BINPERSID: torch's `('storage', <class>, key, location, numel)`.
    fn persistent_load(&self, pid: Value) -> Result<StorageRef, PickleError> {
        let expected =
            "a persistent id must be ('storage', torch.<Type>Storage, key, location, numel)";
        let items = self
            .tuple_items(&pid, "the persistent id", 5)
            .map_err(|_| self.err(expected))?;
        match items.as_slice() {
            [Value::Str(tag), Value::Global(Global::Storage(kind)), key, Value::Str(location), numel]
                if &**tag == "storage" =>
            {
                let key = match key {
                    Value::Str(s) => s.to_string(),
                    Value::Int(i) => i.to_string(),
                    _ => return Err(self.err(expected)),
                };
                Ok(StorageRef {
                    kind: *kind,
                    key,
                    location: location.to_string(),
                    numel: self.usize_of(numel, "the storage's element count")?,
                })
            }
            _ => Err(self.err(expected)),
        }
    }
}
