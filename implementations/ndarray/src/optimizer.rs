//! The scenarios' update rules, written out. Each gets every (parameter, gradient) pair of the
//! network in the same order at every step, so its state is one array per parameter.

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Zip};

use crate::Real;

pub trait Optimizer<F: Real>: Send + Sync {
    fn update(&mut self, parameters: Vec<(ArrayViewMutD<'_, F>, ArrayViewD<'_, F>)>);
}

/// w <- w - lr g
pub struct Sgd<F> {
    pub lr: F,
}

impl<F: Real> Optimizer<F> for Sgd<F> {
    fn update(&mut self, parameters: Vec<(ArrayViewMutD<'_, F>, ArrayViewD<'_, F>)>) {
        for (mut w, g) in parameters {
            w.scaled_add(-self.lr, &g);
        }
    }
}

/// The tch articles' momentum: v <- beta v + (1 - beta) g ; w <- w - lr v.
pub struct EmaMomentum<F> {
    pub lr: F,
    pub beta: F,
    velocity: Vec<ArrayD<F>>,
}

impl<F: Real> EmaMomentum<F> {
    pub fn new(lr: F, beta: F) -> Self {
        Self {
            lr,
            beta,
            velocity: Vec::new(),
        }
    }
}

impl<F: Real> Optimizer<F> for EmaMomentum<F> {
    fn update(&mut self, parameters: Vec<(ArrayViewMutD<'_, F>, ArrayViewD<'_, F>)>) {
        if self.velocity.is_empty() {
            self.velocity = parameters
                .iter()
                .map(|(w, _)| ArrayD::zeros(w.raw_dim()))
                .collect();
        }
        let (beta, lr) = (self.beta, self.lr);
        for ((mut w, g), v) in parameters.into_iter().zip(&mut self.velocity) {
            Zip::from(&mut w).and(v).and(&g).for_each(|w, v, &g| {
                *v = beta * *v + (F::one() - beta) * g;
                *w = *w - lr * *v;
            });
        }
    }
}

/// Kingma & Ba, with the standard bias correction:
/// m <- b1 m + (1 - b1) g ; v <- b2 v + (1 - b2) g^2 ;
/// w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
pub struct Adam<F> {
    pub lr: F,
    pub beta1: F,
    pub beta2: F,
    pub eps: F,
    t: i32,
    moments: Vec<(ArrayD<F>, ArrayD<F>)>,
}

impl<F: Real> Adam<F> {
    pub fn new(lr: F, beta1: F, beta2: F, eps: F) -> Self {
        Self {
            lr,
            beta1,
            beta2,
            eps,
            t: 0,
            moments: Vec::new(),
        }
    }
}

impl<F: Real> Optimizer<F> for Adam<F> {
    fn update(&mut self, parameters: Vec<(ArrayViewMutD<'_, F>, ArrayViewD<'_, F>)>) {
        if self.moments.is_empty() {
            self.moments = parameters
                .iter()
                .map(|(w, _)| (ArrayD::zeros(w.raw_dim()), ArrayD::zeros(w.raw_dim())))
                .collect();
        }
        self.t += 1;
        let Self {
            lr,
            beta1,
            beta2,
            eps,
            t,
            ..
        } = *self;
        let (correction1, correction2) = (F::one() - beta1.powi(t), F::one() - beta2.powi(t));
        for ((mut w, g), (m, v)) in parameters.into_iter().zip(&mut self.moments) {
            Zip::from(&mut w)
                .and(m)
                .and(v)
                .and(&g)
                .for_each(|w, m, v, &g| {
                    *m = beta1 * *m + (F::one() - beta1) * g;
                    *v = beta2 * *v + (F::one() - beta2) * g * g;
                    *w = *w - lr * (*m / correction1) / ((*v / correction2).sqrt() + eps);
                });
        }
    }
}
