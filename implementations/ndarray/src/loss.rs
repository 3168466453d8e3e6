//! The two costs of the articles, each a layer on top of the network: `forward` gives the mean
//! loss over the mini-batch, `backward` its gradient with respect to the network's outputs.

use ndarray::{Array2, Axis, Zip};

use crate::Real;

pub trait Loss<F: Real>: Send + Sync {
    fn forward(&mut self, outputs: Array2<F>, labels: &[usize]) -> F;
    fn backward(&mut self) -> Array2<F>;
}

fn as_float<F: Real>(n: usize) -> F {
    F::from_usize(n).expect("a batch size is a float")
}

/// Softmax of the logits and the mean cross-entropy, as one layer (Deep Learning from
/// Scratch's SoftmaxWithLoss): its gradient is (softmax - onehot(y)) / n.
pub struct SoftmaxCrossEntropy<F> {
    probs: Array2<F>,
    labels: Vec<usize>,
}

impl<F: Real> SoftmaxCrossEntropy<F> {
    pub fn new() -> Self {
        Self {
            probs: Array2::zeros((0, 0)),
            labels: Vec::new(),
        }
    }
}

impl<F: Real> Loss<F> for SoftmaxCrossEntropy<F> {
    fn forward(&mut self, mut logits: Array2<F>, labels: &[usize]) -> F {
        // log-softmax, shifted by each row's maximum so that exp cannot overflow
        let mut total = F::zero();
        Zip::from(logits.rows_mut())
            .and(labels)
            .for_each(|mut row, &label| {
                let max = row.fold(F::neg_infinity(), |m, &v| m.max(v));
                row.mapv_inplace(|v| v - max);
                let log_sum = row.fold(F::zero(), |s, &v| s + v.exp()).ln();
                row.mapv_inplace(|v| v - log_sum);
                total = total - row[label];
            });
        logits.mapv_inplace(F::exp);
        self.probs = logits;
        self.labels = labels.to_vec();
        total / as_float(labels.len())
    }

    fn backward(&mut self) -> Array2<F> {
        let mut grad = self.probs.clone();
        for (mut row, &label) in grad.axis_iter_mut(Axis(0)).zip(&self.labels) {
            row[label] = row[label] - F::one();
        }
        grad / as_float::<F>(self.labels.len())
    }
}

/// Nielsen's cost on the sigmoid outputs a: the batch mean of 0.5 * ||a - onehot(y)||^2.
pub struct Quadratic<F> {
    diff: Array2<F>,
}

impl<F: Real> Quadratic<F> {
    pub fn new() -> Self {
        Self {
            diff: Array2::zeros((0, 0)),
        }
    }
}

impl<F: Real> Loss<F> for Quadratic<F> {
    fn forward(&mut self, mut outputs: Array2<F>, labels: &[usize]) -> F {
        for (mut row, &label) in outputs.axis_iter_mut(Axis(0)).zip(labels) {
            row[label] = row[label] - F::one();
        }
        let half = F::from_f64(0.5).expect("0.5 is a float");
        let loss = half * outputs.fold(F::zero(), |s, &d| s + d * d) / as_float(labels.len());
        self.diff = outputs;
        loss
    }

    fn backward(&mut self) -> Array2<F> {
        &self.diff / as_float::<F>(self.diff.nrows())
    }
}
