//! The network: its layers in order, the cost on top, and the optimizer. One step is
//! forward through every layer, the cost and its gradient, backward through every layer in
//! reverse, then one update of every weight.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::Real;
use crate::layers::Layer;
use crate::loss::Loss;
use crate::optimizer::Optimizer;

pub struct Network<F: Real> {
    pub layers: Vec<Box<dyn Layer<F>>>,
    pub loss: Box<dyn Loss<F>>,
    pub optimizer: Box<dyn Optimizer<F>>,
}

impl<F: Real> Network<F> {
    /// One optimizer update on the mini-batch `(x, labels)`; the loss before it.
    pub fn train_step(&mut self, x: Array2<F>, labels: &[usize]) -> F {
        let outputs = self.layers.iter_mut().fold(x, |x, layer| layer.forward(x));
        let loss = self.loss.forward(outputs, labels);
        let mut grad = self.loss.backward();
        for layer in self.layers.iter_mut().rev() {
            grad = layer.backward(grad);
        }
        let parameters = self
            .layers
            .iter_mut()
            .flat_map(|layer| layer.parameters_and_gradients());
        self.optimizer.update(parameters.collect());
        loss
    }

    /// The index of the largest output of every example.
    pub fn predict(&self, x: ArrayView2<F>) -> Array1<usize> {
        let (first, rest) = self.layers.split_first().expect("a network has layers");
        let outputs = rest
            .iter()
            .fold(first.apply(x), |x, layer| layer.apply(x.view()));
        outputs.map_axis(Axis(1), |row| {
            // the first of equal maxima, as NumPy's argmax
            row.iter()
                .enumerate()
                .fold((0, F::neg_infinity()), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
    }
}
