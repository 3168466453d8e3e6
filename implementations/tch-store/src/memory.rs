//! Rust-ML part 1's central store ("Memory"): every trainable tensor of a model, addressed by
//! position. Layers keep only their addresses in it; the optimizers live here because they walk
//! the whole store after `backward()` has left a gradient in every tensor (the article's
//! `apply_grads_*`, in place of PyTorch's `optimizer.step()`).

use tch::{Tensor, no_grad};

pub struct Memory {
    values: Vec<Tensor>,
    // Optimizer state, one entry per value, made at the first step.
    velocity: Vec<Tensor>,
    moments: Vec<(Tensor, Tensor)>,
    t: i32,
}

impl Memory {
    pub fn new() -> Self {
        Self {
            values: Vec::new(),
            velocity: Vec::new(),
            moments: Vec::new(),
            t: 0,
        }
    }

    /// Store `value` as a trainable tensor; returns its address.
    pub fn push(&mut self, value: Tensor) -> usize {
        self.values.push(value.set_requires_grad(true));
        self.values.len() - 1
    }

    pub fn get(&self, address: usize) -> &Tensor {
        &self.values[address]
    }

    pub fn values(&self) -> &[Tensor] {
        &self.values
    }

    /// w <- w - lr g
    pub fn apply_grads_sgd(&mut self, lr: f64) {
        no_grad(|| {
            for t in &mut self.values {
                let g = t.grad();
                *t -= g * lr;
                t.zero_grad();
            }
        });
    }

    /// v <- beta v + (1 - beta) g ; w <- w - lr v. The article rebuilt the velocities on
    /// every call, which drops the momentum; they are kept here across steps.
    pub fn apply_grads_sgd_momentum(&mut self, lr: f64, beta: f64) {
        if self.velocity.is_empty() {
            self.velocity = self.values.iter().map(Tensor::zeros_like).collect();
        }
        no_grad(|| {
            for (t, v) in self.values.iter_mut().zip(&mut self.velocity) {
                let g = t.grad();
                *v *= beta;
                *v += g * (1.0 - beta);
                *t -= &*v * lr;
                t.zero_grad();
            }
        });
    }

    /// Kingma & Ba with the standard bias correction (the article's was broken):
    /// m <- b1 m + (1 - b1) g ; v <- b2 v + (1 - b2) g^2 ;
    /// w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    pub fn apply_grads_adam(&mut self, lr: f64, beta1: f64, beta2: f64, eps: f64) {
        if self.moments.is_empty() {
            let zeros = |t: &Tensor| (t.zeros_like(), t.zeros_like());
            self.moments = self.values.iter().map(zeros).collect();
        }
        self.t += 1;
        let (correction1, correction2) = (1.0 - beta1.powi(self.t), 1.0 - beta2.powi(self.t));
        no_grad(|| {
            for (t, (m, v)) in self.values.iter_mut().zip(&mut self.moments) {
                let g = t.grad();
                *m *= beta1;
                *m += &g * (1.0 - beta1);
                *v *= beta2;
                *v += g.square() * (1.0 - beta2);
                let m_hat = &*m / correction1;
                let v_hat = &*v / correction2;
                *t -= m_hat * lr / (v_hat.sqrt() + eps);
                t.zero_grad();
            }
        });
    }
}
