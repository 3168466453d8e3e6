//! `template_module`: FILL IN one line on how this implementation clusters, for the
//! `template-name` plugin (`__init__.py` is its Python face, written by `bench new`).

use numpy::{PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyNotImplementedError;
use pyo3::prelude::*;

type Fitted<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<i64>>,
    usize,
    f64,
);

/// Lloyd iterations from `init` (k, features): stop when the labels do not change, or when
/// the summed squared shift of the centroids is at most `shift_tolerance`, or after
/// `max_iter` iterations. Returns the centroids, the labels, the iterations and the inertia.
#[pyfunction]
fn fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'_, f64>,
    init: PyReadonlyArray2<'_, f64>,
    max_iter: usize,
    shift_tolerance: f64,
) -> PyResult<Fitted<'py>> {
    let _ = (py, x, init, max_iter, shift_tolerance);
    Err(PyNotImplementedError::new_err(
        "FILL IN src/lib.rs fit: assign each point to its nearest centroid, move the \
         centroids to their points' means, and stop by the rule above",
    ))
}

/// The label of the nearest of `centroids` for every point of `x`.
#[pyfunction]
fn predict<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'_, f64>,
    centroids: PyReadonlyArray2<'_, f64>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let _ = (py, x, centroids);
    Err(PyNotImplementedError::new_err(
        "FILL IN src/lib.rs predict: the nearest centroid of every point",
    ))
}

#[pymodule]
fn template_module(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(fit, module)?)?;
    module.add_function(wrap_pyfunction!(predict, module)?)
}
