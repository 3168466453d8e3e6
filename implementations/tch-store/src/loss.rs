//! The costs, on the network's outputs and the integer labels (Rust-ML part 1, Listing 4).

use tch::{Kind, Tensor};

/// log-softmax + NLL: the mean cross-entropy of softmax(logits).
pub fn cross_entropy(target: &Tensor, pred: &Tensor) -> Tensor {
    pred.log_softmax(-1, None).nll_loss(target)
}

/// Nielsen's cost on the sigmoid outputs: the batch mean of 0.5 * ||a - onehot(y)||^2.
pub fn quadratic(target: &Tensor, pred: &Tensor) -> Tensor {
    let one_hot = target.one_hot(pred.size()[1]).to_kind(pred.kind());
    (pred - one_hot)
        .square()
        .sum_dim_intlist(1, false, None::<Kind>)
        .mean(None)
        * 0.5
}
