//! The scenario's network as one `Compute`: the articles wrote `MyModel` by hand (two
//! `Linear`s, or two `Conv2d`s and two `Linear`s); here it is made from the scenario's layer
//! list, with the same steps in `forward`.

use tch::Tensor;

use crate::layers::{Compute, Conv2d, Linear};
use crate::memory::Memory;

#[derive(Clone, Copy)]
pub enum Activation {
    Identity,
    Relu,
    Sigmoid,
}

impl Activation {
    fn apply(self, x: Tensor) -> Tensor {
        match self {
            Self::Identity => x,
            Self::Relu => x.relu(),
            Self::Sigmoid => x.sigmoid(),
        }
    }
}

/// One of the scenario's layers (`bench.api.Dense`, `Conv2d`, `MaxPool2d`, `Flatten`).
pub enum LayerSpec {
    Dense {
        activation: Activation,
    },
    Conv2d {
        stride: i64,
        padding: i64,
        activation: Activation,
    },
    MaxPool2d {
        size: i64,
        stride: i64,
    },
    Flatten,
}

enum Step {
    Linear(Linear, Activation),
    Conv2d(Conv2d, Activation),
    MaxPool2d { size: i64, stride: i64 },
    Flatten,
}

pub struct Model {
    steps: Vec<Step>,
}

impl Model {
    /// The layers in order, their initial (W, b) pushed into `mem` in the same order.
    pub fn new(mem: &mut Memory, layers: Vec<LayerSpec>, weights: Vec<(Tensor, Tensor)>) -> Self {
        let mut weights = weights.into_iter();
        let mut next_weights = || weights.next().expect("one (W, b) per dense or conv layer");
        let steps = layers
            .into_iter()
            .map(|layer| match layer {
                LayerSpec::Dense { activation } => {
                    let (w, b) = next_weights();
                    Step::Linear(Linear::new(mem, w, b), activation)
                }
                LayerSpec::Conv2d {
                    stride,
                    padding,
                    activation,
                } => {
                    let (w, b) = next_weights();
                    Step::Conv2d(Conv2d::new(mem, w, b, stride, padding), activation)
                }
                LayerSpec::MaxPool2d { size, stride } => Step::MaxPool2d { size, stride },
                LayerSpec::Flatten => Step::Flatten,
            })
            .collect();
        Self { steps }
    }
}

impl Compute for Model {
    fn forward(&self, mem: &Memory, input: &Tensor) -> Tensor {
        self.steps
            .iter()
            .fold(input.shallow_clone(), |x, step| match step {
                Step::Linear(layer, activation) => activation.apply(layer.forward(mem, &x)),
                Step::Conv2d(layer, activation) => activation.apply(layer.forward(mem, &x)),
                Step::MaxPool2d { size, stride } => {
                    x.max_pool2d([*size], [*stride], [0], [1], false)
                }
                // (c, h, w) order, the canonical feature order
                Step::Flatten => x.flatten(1, -1),
            })
    }
}
