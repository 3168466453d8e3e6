//! The article's `Compute` trait and its two layers. A layer keeps the names of its
//! parameters and their addresses in the `Memory`, never the tensors themselves, so that a
//! new layer kind is this file's pattern again: push its tensors in `new`, read them in
//! `forward`.

use std::collections::HashMap;

use tch::Tensor;

use crate::memory::Memory;

pub trait Compute {
    fn forward(&self, mem: &Memory, input: &Tensor) -> Tensor;
}

/// Addresses of a layer's parameters in the store, by name ("W", "b").
type Params = HashMap<&'static str, usize>;

fn push_weights(mem: &mut Memory, w: Tensor, b: Tensor) -> Params {
    HashMap::from([("W", mem.push(w)), ("b", mem.push(b))])
}

/// x · W + b with W (in, out): the store's layout is the canonical one.
pub struct Linear {
    params: Params,
}

impl Linear {
    pub fn new(mem: &mut Memory, w: Tensor, b: Tensor) -> Self {
        Self {
            params: push_weights(mem, w, b),
        }
    }
}

impl Compute for Linear {
    fn forward(&self, mem: &Memory, input: &Tensor) -> Tensor {
        let w = mem.get(self.params["W"]);
        let b = mem.get(self.params["b"]);
        input.matmul(w) + b
    }
}

/// LibTorch's conv2d with kernel (out_c, in_c, kh, kw) and bias (out_c,), as Rust-ML part 2.
pub struct Conv2d {
    params: Params,
    stride: i64,
    padding: i64,
}

impl Conv2d {
    pub fn new(mem: &mut Memory, w: Tensor, b: Tensor, stride: i64, padding: i64) -> Self {
        Self {
            params: push_weights(mem, w, b),
            stride,
            padding,
        }
    }
}

impl Compute for Conv2d {
    fn forward(&self, mem: &Memory, input: &Tensor) -> Tensor {
        let kernel = mem.get(self.params["W"]);
        let bias = mem.get(self.params["b"]);
        input.conv2d(kernel, Some(bias), [self.stride], [self.padding], [1], 1)
    }
}
