//! The layers of Deep Learning from Scratch ch.5, as Qiita 2020 wrote them with ndarray: each
//! one works on a whole mini-batch `(batch, features)`, keeps what its backward pass needs, and
//! returns the gradient for the layer below.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewD, ArrayViewMutD, Axis, Zip};

use crate::Real;

pub trait Layer<F: Real>: Send + Sync {
    /// The layer's output, keeping nothing (for predictions).
    fn apply(&self, x: ArrayView2<F>) -> Array2<F>;
    /// The layer's output, keeping what `backward` needs.
    fn forward(&mut self, x: Array2<F>) -> Array2<F>;
    /// d loss / d input from d loss / d output; a layer with weights keeps their gradients.
    fn backward(&mut self, dout: Array2<F>) -> Array2<F>;
    /// (parameter, gradient) pairs for the optimizer, in canonical order (W then b).
    fn parameters_and_gradients(&mut self) -> Vec<(ArrayViewMutD<'_, F>, ArrayViewD<'_, F>)> {
        Vec::new()
    }
    /// The layer's (W, b), if it has weights.
    fn weights(&self) -> Option<(&Array2<F>, &Array1<F>)> {
        None
    }
}

/// `x · W + b` with `W` (in, out): the canonical layout, so no transposes.
pub struct Affine<F> {
    w: Array2<F>,
    b: Array1<F>,
    x: Array2<F>,
    dw: Array2<F>,
    db: Array1<F>,
}

impl<F: Real> Affine<F> {
    pub fn new(w: Array2<F>, b: Array1<F>) -> Self {
        Self {
            x: Array2::zeros((0, w.nrows())),
            dw: Array2::zeros(w.raw_dim()),
            db: Array1::zeros(b.raw_dim()),
            w,
            b,
        }
    }
}

impl<F: Real> Layer<F> for Affine<F> {
    fn apply(&self, x: ArrayView2<F>) -> Array2<F> {
        x.dot(&self.w) + &self.b
    }

    fn forward(&mut self, x: Array2<F>) -> Array2<F> {
        let out = self.apply(x.view());
        self.x = x;
        out
    }

    fn backward(&mut self, dout: Array2<F>) -> Array2<F> {
        self.dw = self.x.t().dot(&dout);
        self.db = dout.sum_axis(Axis(0));
        dout.dot(&self.w.t())
    }

    fn parameters_and_gradients(&mut self) -> Vec<(ArrayViewMutD<'_, F>, ArrayViewD<'_, F>)> {
        vec![
            (self.w.view_mut().into_dyn(), self.dw.view().into_dyn()),
            (self.b.view_mut().into_dyn(), self.db.view().into_dyn()),
        ]
    }

    fn weights(&self) -> Option<(&Array2<F>, &Array1<F>)> {
        Some((&self.w, &self.b))
    }
}

/// max(x, 0); the gradient passes where the input was positive.
pub struct Relu {
    positive: Array2<bool>,
}

impl Relu {
    pub fn new() -> Self {
        Self {
            positive: Array2::from_elem((0, 0), false),
        }
    }
}

impl<F: Real> Layer<F> for Relu {
    fn apply(&self, x: ArrayView2<F>) -> Array2<F> {
        x.mapv(|v| v.max(F::zero()))
    }

    fn forward(&mut self, x: Array2<F>) -> Array2<F> {
        self.positive = x.mapv(|v| v > F::zero());
        x.mapv_into(|v| v.max(F::zero()))
    }

    fn backward(&mut self, mut dout: Array2<F>) -> Array2<F> {
        Zip::from(&mut dout)
            .and(&self.positive)
            .for_each(|d, &positive| {
                if !positive {
                    *d = F::zero();
                }
            });
        dout
    }
}

/// 1 / (1 + e^-x); its derivative is y (1 - y) in terms of the output y.
pub struct Sigmoid<F> {
    out: Array2<F>,
}

impl<F: Real> Sigmoid<F> {
    pub fn new() -> Self {
        Self {
            out: Array2::zeros((0, 0)),
        }
    }
}

fn sigmoid<F: Real>(v: F) -> F {
    F::one() / (F::one() + (-v).exp())
}

impl<F: Real> Layer<F> for Sigmoid<F> {
    fn apply(&self, x: ArrayView2<F>) -> Array2<F> {
        x.mapv(sigmoid)
    }

    fn forward(&mut self, x: Array2<F>) -> Array2<F> {
        self.out = x.mapv_into(sigmoid);
        self.out.clone()
    }

    fn backward(&mut self, mut dout: Array2<F>) -> Array2<F> {
        Zip::from(&mut dout)
            .and(&self.out)
            .for_each(|d, &y| *d = *d * y * (F::one() - y));
        dout
    }
}
