//! The LSTM through burn-nn's own `Lstm` module. burn's LSTM is four gate controllers (input,
//! forget, cell, output), each an input and a hidden `Linear` (weights `[in, out]`) with a bias
//! each. The IR's stacked weights (`w_ih [4H, I]`, `w_hh [4H, H]`, `b_ih`, `b_hh`, gates i, f,
//! g, o) are cut into those eight `Linear`s at every pass with `narrow` and `transpose` (views
//! recorded by autodiff), so the module computes with our parameters and the gradients land on
//! them in the IR layout. burn's `reverse` flag reads the sequence backwards; a bidirectional
//! layer is two modules whose outputs are concatenated (Y) and stacked (Y_h, Y_c), as
//! PyTorch's `nn.LSTM` lays them out.

use burn::module::{Param, ParamId};
use burn::nn::activation::ActivationConfig;
use burn::nn::{GateController, Linear, Lstm as BurnLstm};
use burn::tensor::Tensor;
use dlbench_core::ir::{Direction, Lstm};
use dlbench_core::{Error, Result};

use crate::convert::Value;
use crate::ops::arg;

/// `Y`, `Y_h`, `Y_c` of a one-layer LSTM with zero initial state.
pub(crate) fn lstm(attrs: &Lstm, inputs: &[&Value]) -> Result<Vec<Value>> {
    let x = arg(inputs, 0)?.view::<3>()?;
    let run = |first: usize, reverse: bool| -> Result<(Tensor<3>, Tensor<2>, Tensor<2>)> {
        let params = inputs
            .get(first..first + 4)
            .ok_or_else(|| Error::invalid("lstm: missing weights"))?;
        let module = module(attrs, params, reverse)?;
        let (y, state) = module.forward(x.clone(), None);
        Ok((y, state.hidden, state.cell))
    };
    let (y, h, c) = match attrs.direction {
        Direction::Forward | Direction::Reverse => {
            let (y, h, c) = run(1, attrs.direction == Direction::Reverse)?;
            (y, h.unsqueeze_dim::<3>(0), c.unsqueeze_dim::<3>(0))
        }
        Direction::Bidirectional => {
            let (yf, hf, cf) = run(1, false)?;
            let (yr, hr, cr) = run(5, true)?;
            (
                Tensor::cat(vec![yf, yr], 2),
                Tensor::stack(vec![hf, hr], 0),
                Tensor::stack(vec![cf, cr], 0),
            )
        }
    };
    Ok(vec![
        Value::from_float(y),
        Value::from_float(h),
        Value::from_float(c),
    ])
}

/// burn's `Lstm` holding views of one direction's IR weights `[w_ih, w_hh, b_ih, b_hh]`.
fn module(attrs: &Lstm, params: &[&Value], reverse: bool) -> Result<BurnLstm> {
    let h = attrs.hidden;
    let [w_ih, w_hh, b_ih, b_hh] = params else {
        return Err(Error::invalid("lstm: expected w_ih, w_hh, b_ih, b_hh"));
    };
    let (w_ih, w_hh) = (w_ih.view::<2>()?, w_hh.view::<2>()?);
    let (b_ih, b_hh) = (b_ih.view::<1>()?, b_hh.view::<1>()?);
    let device = w_ih.device();
    // The IR's gate k (i, f, g, o) is rows k*H..(k+1)*H of every stacked weight.
    let gate = |k: usize| GateController {
        input_transform: linear(&w_ih, &b_ih, k * h, h),
        hidden_transform: linear(&w_hh, &b_hh, k * h, h),
    };
    Ok(BurnLstm {
        input_gate: gate(0),
        forget_gate: Some(gate(1)),
        cell_gate: gate(2),
        output_gate: gate(3),
        d_hidden: h,
        batch_first: attrs.batch_first,
        reverse,
        clip: None,
        input_forget: false,
        gate_activation: ActivationConfig::Sigmoid.init(&device),
        cell_activation: ActivationConfig::Tanh.init(&device),
        hidden_activation: ActivationConfig::Tanh.init(&device),
    })
}

/// A burn `Linear` (weight `[in, out]`) over rows `start..start + len` of an IR weight
/// `[out, in]` and its bias. The parameters wrap the views as they are (no `require_grad`):
/// gradients flow through them to the session's own parameters.
fn linear(weight: &Tensor<2>, bias: &Tensor<1>, start: usize, len: usize) -> Linear {
    Linear {
        weight: Param::initialized(
            ParamId::new(),
            weight.clone().narrow(0, start, len).transpose(),
        ),
        bias: Some(Param::initialized(
            ParamId::new(),
            bias.clone().narrow(0, start, len),
        )),
    }
}
