//! PyTorch's optimizers in f64: GD, SGD (momentum, dampening, Nesterov, weight decay), Adam.
