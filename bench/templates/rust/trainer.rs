//! `template_module`: FILL IN one line on how this implementation trains, for the
//! `template-name` plugin (`__init__.py` is its Python face, written by `bench new`).
//!
//! The parameters arrive in the canonical layout, as float64: dense `W` (in, out) and `b`
//! (out,), convolution kernels (out_c, in_c, kh, kw) and biases (out_c,), in layer order. A
//! whole `train` call runs here: Python hands over every mini-batch of the call at once.

use numpy::ndarray::ArrayD;
use numpy::{IntoPyArray, PyArray1, PyArrayDyn, PyReadonlyArray1, PyReadonlyArrayDyn};
use pyo3::exceptions::PyNotImplementedError;
use pyo3::prelude::*;

#[pyclass]
struct Model {
    parameters: Vec<ArrayD<f64>>,
}

#[pymethods]
impl Model {
    #[new]
    fn new(parameters: Vec<PyReadonlyArrayDyn<'_, f64>>) -> Self {
        let parameters = parameters.iter().map(|p| p.as_array().to_owned()).collect();
        Model { parameters }
    }

    /// One optimizer update per mini-batch: the rows of `x` and `y` named by `indices`, the
    /// batches one after another, `sizes[k]` long. Returns the last mini-batch's loss.
    fn train(
        &mut self,
        x: PyReadonlyArrayDyn<'_, f64>,
        y: PyReadonlyArray1<'_, i64>,
        indices: PyReadonlyArray1<'_, i64>,
        sizes: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<f64> {
        let _ = (&self.parameters, x, y, indices, sizes);
        Err(PyNotImplementedError::new_err(
            "FILL IN src/lib.rs Model::train: the forward pass, the loss, the backward pass \
             and the optimizer's update of each mini-batch (bench/reference.py has the math)",
        ))
    }

    /// The predicted class of every row of `x`.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'_, f64>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let _ = (py, x);
        Err(PyNotImplementedError::new_err(
            "FILL IN src/lib.rs Model::predict: the forward pass and the arg-max of each row",
        ))
    }

    /// The current parameters, in the order they were given.
    fn parameters<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyArrayDyn<f64>>> {
        self.parameters
            .iter()
            .map(|p| p.clone().into_pyarray(py))
            .collect()
    }
}

#[pymodule]
fn template_module(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Model>()
}
