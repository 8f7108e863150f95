//! LSTM (PyTorch semantics, gates i, f, g, o, zero initial state, optional reverse direction).
//!
//! Per direction, the input projection of every time step is ONE `sgemm`
//! (`[T*N, I] x [I, 4H]`); each step then adds `h W_hh^T` with one `sgemm` into its gate
//! block and applies the gate math fused in one pass. The forward pass keeps its activated
//! gates and states ([`Trace`]) so that backward does not run it again; backward collects
//! every step's gate gradients and turns them into the weight gradients with one `sgemm`
//! each.

use dlbench_core::ir::{Lstm, LstmDims as Dims};

use super::layout::transpose_matrix;
use super::linear::column_sums;
use super::{sized, wanted, Args, Buf, Ctx};
use crate::kernels::gemm::{sgemm, MatRef};
use crate::kernels::math::{self, sigmoid_in_place, tanh_in_place};

/// Gate blocks within the `4H` rows of the weights, in PyTorch's order.
const I: usize = 0;
const F: usize = 1;
const G: usize = 2;
const O: usize = 3;

/// One direction's weights, borrowed from the inputs.
struct Weights<'a> {
    w_ih: &'a [f32],
    w_hh: &'a [f32],
    b_ih: &'a [f32],
    b_hh: &'a [f32],
}

impl<'a> Weights<'a> {
    fn of(inputs: Args<'a>, d: usize) -> Self {
        let get = |k: usize| {
            inputs
                .get(1 + 4 * d + k)
                .map_or(&[][..], |b| b.data.as_slice())
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
/// (not time): the time of each step, activated gates `[T, N, 4H]`, cell states and their
/// tanh, and hidden states `[T, N, H]`; and the buffers both passes reuse from call to call.
#[derive(Debug, Default)]
pub struct Trace {
    order: Vec<usize>,
    gates: Vec<f32>,
    c: Vec<f32>,
    tanh_c: Vec<f32>,
    h: Vec<f32>,
    /// x's rows in step order, when the steps run in another order than x's rows (then
    /// `x_steps` is used for x, in both passes: reordering x costs `I` floats a row, where
    /// reordering the gates would cost `4H`).
    x_steps: Vec<f32>,
    /// Forward scratch: both biases summed, `W_hhᵀ`, the zero state before the first step.
    /// With fixed weights (an inference session) the first two are laid out once.
    bias: Vec<f32>,
    w_hh_t: Vec<f32>,
    weights_laid_out: bool,
    zeros: Vec<f32>,
    /// Backward scratch: the state gradients flowing into the step being processed, the
    /// gate gradients of every step, dx by step (when x was reordered).
    dh_next: Vec<f32>,
    dc: Vec<f32>,
    da: Vec<f32>,
    dx_steps: Vec<f32>,
}

/// Whether step `s`, row `n` is row `s * N + n` of x: a forward, time-major direction.
/// Then values by step need no reordering into x's row order, and back.
fn steps_in_x_order(dims: &Dims, reversed: bool) -> bool {
    !reversed && (!dims.batch_first || dims.t <= 1 || dims.n <= 1)
}

/// The gate activations of one row `[i | f | g | o]` (each `H` wide), in place.
fn activate_gates(a: &mut [f32], h: usize) {
    let (ifg, o) = a.split_at_mut(3 * h);
    let (i_f, g) = ifg.split_at_mut(2 * h);
    sigmoid_in_place(i_f);
    tanh_in_place(g);
    sigmoid_in_place(o);
}

/// What a direction's forward pass is told: its threads, and whether its weights never
/// change in this session.
#[derive(Clone, Copy)]
struct DirectionCtx {
    threads: usize,
    weights_fixed: bool,
}

fn run_direction(
    dims: &Dims,
    x: &[f32],
    wt: &Weights,
    reversed: bool,
    trace: &mut Trace,
    ctx: DirectionCtx,
) {
    let threads = ctx.threads;
    let (nb, h, g4) = (dims.n, dims.h, 4 * dims.h);
    trace.order.clear();
    if reversed {
        trace.order.extend((0..dims.t).rev());
    } else {
        trace.order.extend(0..dims.t);
    }
    let rows = dims.t * nb;
    // The recurrent product multiplies by `W_hhᵀ` at every step; laid out row-major once
    // per pass (or once for good, with fixed weights), `sgemm` reads it in place instead of
    // packing it again each step.
    if !(ctx.weights_fixed && trace.weights_laid_out) {
        let bias = sized(&mut trace.bias, g4);
        for ((b, &b_ih), &b_hh) in bias.iter_mut().zip(wt.b_ih).zip(wt.b_hh) {
            *b = b_ih + b_hh;
        }
        let w_hh_t = sized(&mut trace.w_hh_t, g4 * h);
        transpose_matrix(wt.w_hh, g4, h, w_hh_t);
        trace.weights_laid_out = ctx.weights_fixed;
    }
    let (bias, w_hh_t) = (&trace.bias[..], &trace.w_hh_t[..]);
    // Gate pre-activations of every step: both biases, then the input projection of all
    // steps as one product, then each step's recurrent product.
    let gates = sized(&mut trace.gates, rows * g4);
    for row in gates.chunks_exact_mut(g4) {
        row.copy_from_slice(bias);
    }
    let x_steps = if steps_in_x_order(dims, reversed) {
        x
    } else {
        let x_steps = sized(&mut trace.x_steps, rows * dims.i);
        for (s, &t) in trace.order.iter().enumerate() {
            for n in 0..nb {
                let (src, dst) = (dims.at(t, n, dims.i), (s * nb + n) * dims.i);
                x_steps[dst..dst + dims.i].copy_from_slice(&x[src..src + dims.i]);
            }
        }
        x_steps
    };
    let x_m = MatRef::row_major(x_steps, rows, dims.i);
    let w_ih = MatRef::row_major(wt.w_ih, g4, dims.i).t();
    sgemm(1.0, x_m, w_ih, 1.0, gates, g4, threads);
    let cs = sized(&mut trace.c, rows * h);
    let tanh_cs = sized(&mut trace.tanh_c, rows * h);
    let hs = sized(&mut trace.h, rows * h);
    let zeros = sized(&mut trace.zeros, nb * h);
    zeros.fill(0.0);
    for s in 0..dims.t {
        let step = s * nb * h..(s + 1) * nb * h;
        let step_gates = &mut gates[s * nb * g4..(s + 1) * nb * g4];
        if s > 0 {
            let h_prev = MatRef::row_major(&hs[(s - 1) * nb * h..], nb, h);
            let w_hh = MatRef::row_major(w_hh_t, h, g4);
            sgemm(1.0, h_prev, w_hh, 1.0, step_gates, g4, threads);
        }
        // This step's cell states go straight into `cs`, beside the last step's.
        let (done, rest) = cs.split_at_mut(step.start);
        let c_prev = if s > 0 {
            &done[step.start - nb * h..]
        } else {
            &zeros[..]
        };
        let c = &mut rest[..nb * h];
        for (n, a) in step_gates.chunks_exact_mut(g4).enumerate() {
            activate_gates(a, h);
            let row = n * h..(n + 1) * h;
            for (j, (c, &cp)) in c[row.clone()].iter_mut().zip(&c_prev[row]).enumerate() {
                *c = a[F * h + j] * cp + a[I * h + j] * a[G * h + j];
            }
        }
        let tanh_c = &mut tanh_cs[step.clone()];
        math::tanh(c, tanh_c);
        for (n, a) in step_gates.chunks_exact(g4).enumerate() {
            let row = n * h..(n + 1) * h;
            let hs_row = &mut hs[step.start + row.start..step.start + row.end];
            for ((out, &o), &tc) in hs_row.iter_mut().zip(&a[O * h..]).zip(&tanh_c[row]) {
                *out = o * tc;
            }
        }
    }
}

/// Inputs: x, then w_ih, w_hh, b_ih, b_hh per direction. Writes [Y, Y_h, Y_c] and keeps the
/// trace of each direction.
pub fn lstm(attrs: &Lstm, inputs: Args, outputs: &mut [Buf], traces: &mut Vec<Trace>, ctx: Ctx) {
    let dims = Dims::new(attrs, &inputs[0].shape);
    let x = &inputs[0].data;
    let (nb, h, feat) = (dims.n, dims.h, dims.dirs * dims.h);
    let direction_ctx = DirectionCtx {
        threads: ctx.threads,
        weights_fixed: (1..=4 * dims.dirs).all(|k| ctx.is_fixed(k)),
    };
    let [y, y_h, y_c] = outputs else {
        unreachable!("an LSTM has three outputs")
    };
    let (y, y_h, y_c) = (&mut y.data, &mut y_h.data, &mut y_c.data);
    traces.resize_with(dims.dirs, Trace::default);
    for (d, trace) in traces.iter_mut().enumerate() {
        let wt = Weights::of(inputs, d);
        run_direction(&dims, x, &wt, attrs.reversed(d), trace, direction_ctx);
        for (s, &t) in trace.order.iter().enumerate() {
            for n in 0..nb {
                let src = (s * nb + n) * h;
                let dst = dims.at(t, n, feat) + d * h;
                y[dst..dst + h].copy_from_slice(&trace.h[src..src + h]);
            }
        }
        let (dst, len) = (d * nb * h, nb * h);
        match dims.t.checked_sub(1) {
            Some(last) => {
                let src = last * nb * h;
                y_h[dst..dst + len].copy_from_slice(&trace.h[src..src + len]);
                y_c[dst..dst + len].copy_from_slice(&trace.c[src..src + len]);
            }
            None => {
                y_h[dst..dst + len].fill(0.0);
                y_c[dst..dst + len].fill(0.0);
            }
        }
    }
}

/// One row's state at one step, for [`gate_grads`], each slice `H` long.
struct StateGrads<'a> {
    /// d loss / d h of this step (in), d loss / d c flowing back (in: from the next step;
    /// out: into the previous one).
    dh: &'a [f32],
    dc: &'a mut [f32],
    tanh_c: &'a [f32],
    c_prev: &'a [f32],
}

/// The gate pre-activation gradients `da` (`[i | f | g | o]`, `4H`) of one row at one step,
/// from its activated gates and state gradients. Gates and gradients are cut into `H`-long
/// slices first, so that the loop over the units reads each with one index and vectorises
/// (indexing `4H`-wide rows at `k * H + j` did not: 480 against 432 us for the seed rnn's
/// training step).
fn gate_grads(gates: &[f32], state: StateGrads, da: &mut [f32], h: usize) {
    let StateGrads {
        dh,
        dc,
        tanh_c,
        c_prev,
    } = state;
    let (gi, gf, gg, go) = (
        &gates[I * h..][..h],
        &gates[F * h..][..h],
        &gates[G * h..][..h],
        &gates[O * h..][..h],
    );
    let (dai, rest) = da.split_at_mut(h);
    let (daf, rest) = rest.split_at_mut(h);
    let (dag, dao) = rest.split_at_mut(h);
    let (dao, dh, dc, tanh_c, c_prev) = (
        &mut dao[..h],
        &dh[..h],
        &mut dc[..h],
        &tanh_c[..h],
        &c_prev[..h],
    );
    for j in 0..h {
        let (i, f, g, o) = (gi[j], gf[j], gg[j], go[j]);
        let tc = tanh_c[j];
        let dcj = dc[j] + dh[j] * o * (1.0 - tc * tc);
        dc[j] = dcj * f;
        dai[j] = dcj * g * i * (1.0 - i);
        daf[j] = dcj * c_prev[j] * f * (1.0 - f);
        dag[j] = dcj * i * (1.0 - g * g);
        dao[j] = dh[j] * tc * o * (1.0 - o);
    }
}

/// Gradients into `grads` (x, then w_ih, w_hh, b_ih, b_hh per direction; each sized to its
/// input where wanted, empty otherwise), given the forward traces and the gradients of Y,
/// Y_h, Y_c (any may be `None`: that output does not reach the loss).
pub fn lstm_backward(
    attrs: &Lstm,
    inputs: Args,
    traces: &mut [Trace],
    output_grads: [Option<&[f32]>; 3],
    grads: &mut [Vec<f32>],
    threads: usize,
) {
    let dims = Dims::new(attrs, &inputs[0].shape);
    let x = &inputs[0].data;
    let [dy, dy_h, dy_c] = output_grads;
    let (nb, h, g4, i_len, feat) = (dims.n, dims.h, 4 * dims.h, dims.i, dims.dirs * dims.h);
    let rows = dims.t * nb;
    if dims.t == 0 {
        // No steps: nothing flows anywhere (and the products below would be empty).
        grads.iter_mut().for_each(|g| g.fill(0.0));
        return;
    }
    let (dx, weight_grads) = grads.split_first_mut().expect("an LSTM has inputs");
    let mut dx = wanted(dx);
    for (d, (trace, per_dir)) in traces
        .iter_mut()
        .zip(weight_grads.chunks_exact_mut(4))
        .enumerate()
    {
        let wt = Weights::of(inputs, d);
        let Trace {
            order,
            gates,
            c,
            tanh_c,
            h: hs,
            dh_next,
            dc,
            da,
            x_steps,
            zeros,
            dx_steps,
            ..
        } = trace;
        // Slices, not the vectors: the compiler then keeps their addresses in registers
        // through the stores of the gate loop.
        let (gates, c, tanh_c, hs) = (&gates[..], &c[..], &tanh_c[..], &hs[..]);
        let zeros = &zeros[..];
        // Gradients flowing back into the state after the step being processed.
        let final_state = |g: Option<&[f32]>, into: &mut [f32]| match g {
            Some(g) => into.copy_from_slice(&g[d * nb * h..(d + 1) * nb * h]),
            None => into.fill(0.0),
        };
        let dh_next = sized(dh_next, nb * h);
        let dc = sized(dc, nb * h);
        final_state(dy_h, dh_next);
        final_state(dy_c, dc);
        // Gate pre-activation gradients of every step, by step.
        let da = sized(da, rows * g4);
        for (s, &t) in order.iter().enumerate().rev() {
            let step_da = &mut da[s * nb * g4..(s + 1) * nb * g4];
            for (n, a) in step_da.chunks_exact_mut(g4).enumerate() {
                let state = (s * nb + n) * h;
                let gates = &gates[(s * nb + n) * g4..(s * nb + n + 1) * g4];
                let dh_row = &mut dh_next[n * h..(n + 1) * h];
                if let Some(dy) = dy {
                    let from = dims.at(t, n, feat) + d * h;
                    for (g, &v) in dh_row.iter_mut().zip(&dy[from..from + h]) {
                        *g += v;
                    }
                }
                let c_prev = if s > 0 {
                    &c[state - nb * h..state - nb * h + h]
                } else {
                    &zeros[..h]
                };
                let state_grads = StateGrads {
                    dh: dh_row,
                    dc: &mut dc[n * h..(n + 1) * h],
                    tanh_c: &tanh_c[state..state + h],
                    c_prev,
                };
                gate_grads(gates, state_grads, a, h);
            }
            if s > 0 {
                // dh_prev = da_s W_hh: [N, 4H] x [4H, H].
                let w_hh = MatRef::row_major(wt.w_hh, g4, h);
                let da_s = MatRef::row_major(step_da, nb, g4);
                sgemm(1.0, da_s, w_hh, 0.0, dh_next, h, threads);
            }
        }
        let [dw_ih, dw_hh, db_ih, db_hh] = per_dir else {
            unreachable!("four weights per direction")
        };
        // dW_hh = sum over steps s >= 1 of da_s^T h_{s-1}: one product over the stacked steps.
        if let Some(dw_hh) = wanted(dw_hh) {
            let later = (dims.t - 1) * nb;
            let da_m = MatRef::row_major(&da[nb * g4..], later, g4);
            let h_m = MatRef::row_major(&hs[..later * h], later, h);
            sgemm(1.0, da_m.t(), h_m, 0.0, dw_hh, h, threads);
        }
        // Both biases enter the same sum, so they share one gradient.
        match (wanted(db_ih), wanted(db_hh)) {
            (Some(db_ih), db_hh) => {
                column_sums(da, g4, db_ih, threads);
                if let Some(db_hh) = db_hh {
                    db_hh.copy_from_slice(db_ih);
                }
            }
            (None, Some(db_hh)) => column_sums(da, g4, db_hh, threads),
            (None, None) => {}
        }
        // dW_ih and dx from the gate gradients by step, with x by step.
        let in_x_order = steps_in_x_order(&dims, attrs.reversed(d));
        let x_steps = if in_x_order { x } else { &x_steps[..] };
        let da_m = MatRef::row_major(da, rows, g4);
        if let Some(dw_ih) = wanted(dw_ih) {
            let x_m = MatRef::row_major(x_steps, rows, i_len);
            sgemm(1.0, da_m.t(), x_m, 0.0, dw_ih, i_len, threads);
        }
        if let Some(dx) = dx.as_deref_mut() {
            // Each direction adds its share onto the first one's.
            let beta = if d == 0 { 0.0 } else { 1.0 };
            let w_ih = MatRef::row_major(wt.w_ih, g4, i_len);
            if in_x_order {
                sgemm(1.0, da_m, w_ih, beta, dx, i_len, threads);
            } else {
                let dx_steps = sized(dx_steps, rows * i_len);
                sgemm(1.0, da_m, w_ih, 0.0, dx_steps, i_len, threads);
                for (s, &t) in order.iter().enumerate() {
                    for n in 0..nb {
                        let (src, dst) = ((s * nb + n) * i_len, dims.at(t, n, i_len));
                        let (from, to) = (&dx_steps[src..src + i_len], &mut dx[dst..dst + i_len]);
                        if d == 0 {
                            to.copy_from_slice(from);
                        } else {
                            to.iter_mut().zip(from).for_each(|(a, b)| *a += b);
                        }
                    }
                }
            }
        }
    }
}
