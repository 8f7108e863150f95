//! Backends that compute wrong numbers the way real adapter bugs do. Each wraps the f64
//! reference ([`ReferenceBackend`]) and breaks one thing when it prepares a model; everything
//! else is the reference's, so the agreement checks must find that one thing, and localization
//! must name the node it happens in.
//!
//! | name | what it breaks |
//! |---|---|
//! | `test-transposed-dense` | reads each Dense weight's `[out, in]` buffer as if it were `[in, out]` row-major and transposes it back: `W'[o][i] = data[i * out + o]`. The shape is unchanged, the values scrambled (a layout bug at an adapter boundary, e.g. Keras' or burn's `[in, out]` kernels). With one output unit the two readings coincide, so such a Dense is unchanged. |
//! | `test-swapped-lstm-gates` | swaps the i and f gate blocks (rows `0..H` and `H..2H`) of every LSTM's `w_ih`, `w_hh`, `b_ih`, `b_hh`, both directions (a gate-order bug: i,f,g,o versus another framework's order). |
//! | `test-floor-pooling` | sets `ceil_mode = false` on every max and average pooling node (a framework that ignores `ceil_mode`); a model whose later shapes depended on it fails to prepare. |
//!
//! Gradients and weights are mapped back to the canonical layout (the inverse permutation of
//! the weights it scrambled), as an adapter does at its boundary: the scrambled values
//! themselves are what disagree, not the way they are reported.

use dlbench_core::{
    Backend, Capabilities, Data, Error, Mode, Model, Op, PrepareOptions, Result, Session, Tensor,
    Values,
};
use dlbench_reference::ReferenceBackend;

/// The one thing a [`Mutant`] breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// `test-transposed-dense`: Dense weights read as `[in, out]`.
    TransposedDense,
    /// `test-swapped-lstm-gates`: the i and f gate blocks of every LSTM swapped.
    SwappedLstmGates,
    /// `test-floor-pooling`: `ceil_mode` ignored on every pooling node.
    FloorPooling,
}

impl Mutation {
    /// Every mutation, in the order of the module's table.
    pub const ALL: [Mutation; 3] = [
        Mutation::TransposedDense,
        Mutation::SwappedLstmGates,
        Mutation::FloorPooling,
    ];

    /// The backend name: `test-transposed-dense`...
    pub fn name(self) -> &'static str {
        match self {
            Mutation::TransposedDense => "test-transposed-dense",
            Mutation::SwappedLstmGates => "test-swapped-lstm-gates",
            Mutation::FloorPooling => "test-floor-pooling",
        }
    }

    /// The broken model and, for each weight it scrambled, the permutation it applied:
    /// element `j` of the scrambled weight is element `perm[j]` of the canonical one.
    fn apply(self, model: &Model) -> Result<(Model, Layout)> {
        let mut broken = model.clone();
        let mut layout: Layout = Vec::new();
        for node in &mut broken.graph.nodes {
            // Every op is listed: a new one is left alone by every mutation until one targets it.
            match &mut node.op {
                Op::Dense if self == Mutation::TransposedDense => {
                    let name = &node.inputs[1];
                    let shape = weight(model, name)?.shape().to_vec();
                    let (out, inp) = (shape[0], shape[1]);
                    // W'[o][i] = data[i * out + o], with W' stored row-major as [out, in].
                    let perm = (0..out * inp).map(|j| (j % inp) * out + j / inp).collect();
                    layout.push((name.clone(), perm));
                }
                Op::Lstm(attrs) if self == Mutation::SwappedLstmGates => {
                    let h = attrs.hidden;
                    for name in &node.inputs[1..] {
                        let w = weight(model, name)?;
                        let row = w.len() / (4 * h);
                        let swap = |r: usize| match r {
                            r if r < h => r + h,
                            r if r < 2 * h => r - h,
                            r => r,
                        };
                        let perm = (0..w.len())
                            .map(|j| swap(j / row) * row + j % row)
                            .collect();
                        layout.push((name.clone(), perm));
                    }
                }
                Op::MaxPool2d(pool) | Op::AvgPool2d(pool) if self == Mutation::FloorPooling => {
                    pool.ceil_mode = false;
                }
                Op::Dense
                | Op::Lstm(_)
                | Op::MaxPool2d(_)
                | Op::AvgPool2d(_)
                | Op::MatMul
                | Op::Conv2d(_)
                | Op::Flatten { .. }
                | Op::Reshape { .. }
                | Op::Transpose { .. }
                | Op::Concat { .. }
                | Op::Unary(_)
                | Op::Softmax { .. }
                | Op::LogSoftmax { .. }
                | Op::Dropout { .. }
                | Op::Binary(_)
                | Op::Loss(_) => {}
            }
        }
        for (name, perm) in &layout {
            let scrambled = permute(weight(model, name)?, perm, false)?;
            broken.weights.insert(name.clone(), scrambled);
        }
        broken.validate()?;
        Ok((broken, layout))
    }
}

/// Each scrambled weight with its permutation: element `j` of the scrambled weight is
/// element `perm[j]` of the canonical one.
type Layout = Vec<(String, Vec<usize>)>;

fn weight<'a>(model: &'a Model, name: &str) -> Result<&'a Tensor> {
    model
        .weights
        .get(name)
        .ok_or_else(|| Error::invalid(format!("model `{}`: no weight `{name}`", model.graph.name)))
}

/// `out[j] = t[perm[j]]`, or with `inverse`, `out[perm[j]] = t[j]`; the shape is kept.
fn permute(t: &Tensor, perm: &[usize], inverse: bool) -> Result<Tensor> {
    fn apply<T: Copy + Default>(v: &[T], perm: &[usize], inverse: bool) -> Vec<T> {
        let mut out = vec![T::default(); v.len()];
        for (j, &p) in perm.iter().enumerate() {
            match inverse {
                false => out[j] = v[p],
                true => out[p] = v[j],
            }
        }
        out
    }
    if perm.len() != t.len() {
        return Err(Error::invalid(format!(
            "a permutation of {} elements for a tensor of shape {:?}",
            perm.len(),
            t.shape()
        )));
    }
    let data = match t.data() {
        Data::F32(v) => Data::F32(apply(v, perm, inverse)),
        Data::F64(v) => Data::F64(apply(v, perm, inverse)),
        Data::I64(v) => Data::I64(apply(v, perm, inverse)),
    };
    Tensor::new(t.shape().to_vec(), data)
}

/// The f64 reference with one [`Mutation`].
#[derive(Debug, Clone, Copy)]
pub struct Mutant {
    /// What it breaks; also its backend name.
    pub mutation: Mutation,
}

impl Backend for Mutant {
    fn name(&self) -> &'static str {
        self.mutation.name()
    }

    fn version(&self) -> String {
        format!("{} (mutant)", ReferenceBackend.version())
    }

    fn capabilities(&self) -> Capabilities {
        ReferenceBackend.capabilities()
    }

    fn prepare(&self, model: &Model, options: &PrepareOptions) -> Result<Box<dyn Session>> {
        let (broken, layout) = self.mutation.apply(model)?;
        Ok(Box::new(MutantSession {
            inner: ReferenceBackend.prepare(&broken, options)?,
            layout,
        }))
    }
}

/// A reference session on the broken model that reports parameters in canonical layout.
struct MutantSession {
    inner: Box<dyn Session>,
    layout: Layout,
}

impl MutantSession {
    /// Undoes the scrambling of each permuted parameter.
    fn canonical(&self, mut values: Values) -> Result<Values> {
        for (name, perm) in &self.layout {
            if let Some(t) = values.get(name) {
                let restored = permute(t, perm, true)?;
                values.insert(name.clone(), restored);
            }
        }
        Ok(values)
    }
}

impl Session for MutantSession {
    fn load(&mut self, inputs: &Values) -> Result<()> {
        self.inner.load(inputs)
    }
    fn forward(&mut self, mode: Mode) -> Result<()> {
        self.inner.forward(mode)
    }
    fn backward(&mut self) -> Result<()> {
        self.inner.backward()
    }
    fn train_step(&mut self) -> Result<()> {
        self.inner.train_step()
    }
    fn outputs(&mut self) -> Result<Values> {
        self.inner.outputs()
    }
    fn intermediates(&mut self) -> Result<Values> {
        self.inner.intermediates()
    }
    fn gradients(&mut self) -> Result<Values> {
        let grads = self.inner.gradients()?;
        self.canonical(grads)
    }
    fn weights(&mut self) -> Result<Values> {
        let weights = self.inner.weights()?;
        self.canonical(weights)
    }
}

/// Every mutant, by its `test-...` name.
pub fn backends() -> Vec<Box<dyn Backend>> {
    Mutation::ALL
        .into_iter()
        .map(|mutation| Box::new(Mutant { mutation }) as Box<dyn Backend>)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_round_trip() {
        let t = Tensor::f32(vec![2, 3], vec![0., 1., 2., 3., 4., 5.]).unwrap();
        // [out 2, in 3] read as [in 3, out 2]: W'[o][i] = data[i * 2 + o].
        let perm: Vec<usize> = (0..6).map(|j| (j % 3) * 2 + j / 3).collect();
        let scrambled = permute(&t, &perm, false).unwrap();
        assert_eq!(scrambled.as_f32().unwrap(), &[0., 2., 4., 1., 3., 5.]);
        assert_eq!(permute(&scrambled, &perm, true).unwrap(), t);
    }
}
