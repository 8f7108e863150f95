//! LSTM (PyTorch semantics, gates i, f, g, o, zero initial state, optional reverse direction).

use dlbench_core::ir::{Lstm, LstmDims as Dims};
use dlbench_core::Tensor;

/// Gate blocks within the `4H` rows of the weights, in PyTorch's order.
const I: usize = 0;
const F: usize = 1;
const G: usize = 2;
const O: usize = 3;

/// The time index processed at each step: backwards for a reverse direction.
fn order(dims: &Dims, reversed: bool) -> Vec<usize> {
    if reversed {
        (0..dims.t).rev().collect()
    } else {
        (0..dims.t).collect()
    }
}

/// One direction's weights, borrowed from the inputs.
struct Weights<'a> {
    w_ih: &'a [f64],
    w_hh: &'a [f64],
    b_ih: &'a [f64],
    b_hh: &'a [f64],
}

impl<'a> Weights<'a> {
    fn of(inputs: &[&'a Tensor], d: usize) -> Self {
        let get = |k: usize| {
            inputs[1 + 4 * d + k]
                .as_f64()
                .expect("reference tensors are f64")
        };
        Weights {
            w_ih: get(0),
            w_hh: get(1),
            b_ih: get(2),
            b_hh: get(3),
        }
    }
}

/// Everything the backward pass needs from one direction's forward pass, indexed by step `s`
/// (not time): activated gates `[T, N, 4H]`, cell and hidden states `[T, N, H]`.
struct Trace {
    order: Vec<usize>,
    gates: Vec<f64>,
    c: Vec<f64>,
    h: Vec<f64>,
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

fn run_direction(dims: &Dims, x: &[f64], wt: &Weights, reversed: bool) -> Trace {
    let (n_batch, h, i_len) = (dims.n, dims.h, dims.i);
    let order = order(dims, reversed);
    let mut gates = vec![0.0; dims.t * n_batch * 4 * h];
    let mut cs = vec![0.0; dims.t * n_batch * h];
    let mut hs = vec![0.0; dims.t * n_batch * h];
    for (s, &t) in order.iter().enumerate() {
        for n in 0..n_batch {
            let xt_at = dims.at(t, n, i_len);
            let state = (s * n_batch + n) * h;
            let prev = s.checked_sub(1).map(|p| (p * n_batch + n) * h);
            let g_at = (s * n_batch + n) * 4 * h;
            for r in 0..4 * h {
                let mut a = wt.b_ih[r] + wt.b_hh[r];
                for k in 0..i_len {
                    a += wt.w_ih[r * i_len + k] * x[xt_at + k];
                }
                if let Some(p) = prev {
                    for k in 0..h {
                        a += wt.w_hh[r * h + k] * hs[p + k];
                    }
                }
                gates[g_at + r] = if r / h == G { a.tanh() } else { sigmoid(a) };
            }
            for j in 0..h {
                let gate = |b: usize| gates[g_at + b * h + j];
                let c_prev = prev.map_or(0.0, |p| cs[p + j]);
                let c = gate(F) * c_prev + gate(I) * gate(G);
                cs[state + j] = c;
                hs[state + j] = gate(O) * c.tanh();
            }
        }
    }
    Trace {
        order,
        gates,
        c: cs,
        h: hs,
    }
}

fn tensor(shape: Vec<usize>, data: Vec<f64>) -> Tensor {
    Tensor::f64(shape, data).expect("shape matches its data")
}

/// Inputs: x, then w_ih, w_hh, b_ih, b_hh per direction. Returns [Y, Y_h, Y_c].
pub fn lstm(attrs: &Lstm, inputs: &[&Tensor]) -> [Tensor; 3] {
    let dims = Dims::new(attrs, inputs[0].shape());
    let x = inputs[0].as_f64().expect("reference tensors are f64");
    let (n_batch, h, feat) = (dims.n, dims.h, dims.dirs * dims.h);
    let mut y = vec![0.0; dims.t * n_batch * feat];
    let mut y_h = vec![0.0; dims.dirs * n_batch * h];
    let mut y_c = vec![0.0; dims.dirs * n_batch * h];
    for d in 0..dims.dirs {
        let trace = run_direction(&dims, x, &Weights::of(inputs, d), attrs.reversed(d));
        for (s, &t) in trace.order.iter().enumerate() {
            for n in 0..n_batch {
                let src = (s * n_batch + n) * h;
                let dst = dims.at(t, n, feat) + d * h;
                y[dst..dst + h].copy_from_slice(&trace.h[src..src + h]);
            }
        }
        if let Some(last) = dims.t.checked_sub(1) {
            let src = last * n_batch * h;
            let dst = d * n_batch * h;
            let len = n_batch * h;
            y_h[dst..dst + len].copy_from_slice(&trace.h[src..src + len]);
            y_c[dst..dst + len].copy_from_slice(&trace.c[src..src + len]);
        }
    }
    let state = vec![dims.dirs, n_batch, h];
    [
        tensor(dims.y_shape(), y),
        tensor(state.clone(), y_h),
        tensor(state, y_c),
    ]
}

/// Gradients for every input (x and each weight), given the gradients of Y, Y_h, Y_c (any may
/// be `None`: that output does not reach the loss).
pub fn lstm_backward(attrs: &Lstm, inputs: &[&Tensor], grads: [Option<&Tensor>; 3]) -> Vec<Tensor> {
    let dims = Dims::new(attrs, inputs[0].shape());
    let x = inputs[0].as_f64().expect("reference tensors are f64");
    let [dy, dy_h, dy_c] = grads.map(|g| g.map(|t| t.as_f64().expect("f64 gradient")));
    let (n_batch, h, i_len, feat) = (dims.n, dims.h, dims.i, dims.dirs * dims.h);
    let mut dx = vec![0.0; x.len()];
    let mut weight_grads = Vec::with_capacity(4 * dims.dirs);
    for d in 0..dims.dirs {
        let wt = Weights::of(inputs, d);
        let trace = run_direction(&dims, x, &wt, attrs.reversed(d));
        let mut dw_ih = vec![0.0; wt.w_ih.len()];
        let mut dw_hh = vec![0.0; wt.w_hh.len()];
        let mut db = vec![0.0; 4 * h];
        // Gradients flowing back into the state after the step being processed.
        let final_state = |g: Option<&[f64]>| match g {
            Some(g) => g[d * n_batch * h..(d + 1) * n_batch * h].to_vec(),
            None => vec![0.0; n_batch * h],
        };
        let mut dh_next = final_state(dy_h);
        let mut dc_next = final_state(dy_c);
        let mut da = vec![0.0; 4 * h];
        for (s, &t) in trace.order.iter().enumerate().rev() {
            let mut dh_prev = vec![0.0; n_batch * h];
            let mut dc_prev = vec![0.0; n_batch * h];
            for n in 0..n_batch {
                let state = (s * n_batch + n) * h;
                let prev = s.checked_sub(1).map(|p| (p * n_batch + n) * h);
                let g_at = (s * n_batch + n) * 4 * h;
                let gate = |b: usize, j: usize| trace.gates[g_at + b * h + j];
                for j in 0..h {
                    let mut dh = dh_next[n * h + j];
                    if let Some(dy) = dy {
                        dh += dy[dims.at(t, n, feat) + d * h + j];
                    }
                    let tanh_c = trace.c[state + j].tanh();
                    let c_prev = prev.map_or(0.0, |p| trace.c[p + j]);
                    let (gi, gf, gg, go) = (gate(I, j), gate(F, j), gate(G, j), gate(O, j));
                    let dc = dc_next[n * h + j] + dh * go * (1.0 - tanh_c * tanh_c);
                    dc_prev[n * h + j] = dc * gf;
                    // Through the activations back to the pre-activation sums.
                    da[I * h + j] = dc * gg * gi * (1.0 - gi);
                    da[F * h + j] = dc * c_prev * gf * (1.0 - gf);
                    da[G * h + j] = dc * gi * (1.0 - gg * gg);
                    da[O * h + j] = dh * tanh_c * go * (1.0 - go);
                }
                let xt_at = dims.at(t, n, i_len);
                for r in 0..4 * h {
                    db[r] += da[r];
                    for k in 0..i_len {
                        dw_ih[r * i_len + k] += da[r] * x[xt_at + k];
                        dx[xt_at + k] += da[r] * wt.w_ih[r * i_len + k];
                    }
                    if let Some(p) = prev {
                        for k in 0..h {
                            dw_hh[r * h + k] += da[r] * trace.h[p + k];
                            dh_prev[n * h + k] += da[r] * wt.w_hh[r * h + k];
                        }
                    }
                }
            }
            dh_next = dh_prev;
            dc_next = dc_prev;
        }
        weight_grads.push(tensor(vec![4 * h, i_len], dw_ih));
        weight_grads.push(tensor(vec![4 * h, h], dw_hh));
        // Both biases enter the same sum, so they share one gradient.
        weight_grads.push(tensor(vec![4 * h], db.clone()));
        weight_grads.push(tensor(vec![4 * h], db));
    }
    let mut all = vec![tensor(inputs[0].shape().to_vec(), dx)];
    all.extend(weight_grads);
    all
}
