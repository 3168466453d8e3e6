//! `bench_linfa`: linfa-clustering's K-Means (Palmieri 2019) for the `linfa` plugin.
//!
//! linfa's `KMeans::fit` cannot be asked for the scenario's Lloyd: since linfa-clustering 0.4
//! its update is m_k-means (each old centroid counts as one more member of its cluster, so
//! the centroids are not the means of their points until the labels settle), its stopping
//! rule is an absolute tolerance on the centroids' shift, and it reports neither the labels of
//! the final centroids nor the iteration count. One call of linfa's incremental K-Means
//! (`fit_with`, no previous model, the whole data as the batch) from precomputed centroids is
//! exactly one Lloyd iteration: linfa assigns every point to its nearest centroid (in
//! parallel, on rayon's global pool) and moves each centroid to the mean of its points (one
//! thread); an empty cluster keeps its centroid. So the loop below is the scenario's Lloyd
//! with scikit-learn's stopping rule, and every pass over the points is linfa's.

use std::collections::HashMap;

use linfa::DatasetBase;
use linfa::prelude::*;
use linfa_clustering::{IncrKMeansError, KMeans, KMeansInit};
use linfa_nn::distance::L2Dist;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

type Model = KMeans<f64, L2Dist>;
/// The points as a linfa dataset (a view of the caller's array, without targets).
type Points<'a> = DatasetBase<ArrayView2<'a, f64>, Array1<()>>;

/// One Lloyd iteration from `centroids`, by linfa: the model holds the new centroids.
fn lloyd_step(records: &Points<'_>, centroids: &Array2<f64>) -> Model {
    let params = KMeans::params(centroids.nrows())
        .init_method(KMeansInit::Precomputed(centroids.clone()))
        .check()
        .expect("valid K-Means parameters");
    match params.fit_with(None, records) {
        // The tolerance test of the incremental fit is not the scenario's; the loop decides.
        Ok(model) | Err(IncrKMeansError::NotConverged(model)) => model,
        Err(error) => panic!("linfa's K-Means step failed: {error}"),
    }
}

/// A model whose centroids are `centroids`. linfa makes models only by fitting: one Lloyd
/// step on the centroids themselves leaves each where it is (its only member is itself).
fn model_of(centroids: &Array2<f64>) -> Model {
    lloyd_step(&DatasetBase::from(centroids.view()), centroids)
}

struct Fit {
    centroids: Array2<f64>,
    labels: Array1<usize>,
    n_iter: u64,
    inertia: f64,
}

/// Lloyd from `init` until the summed squared centroid shift is at most
/// `tol * mean(per-feature variance)`, or `max_iter` iterations (scikit-learn's rule: the
/// shift is 0, hence at most the threshold, exactly when no label changed).
fn fit_lloyd(x: ArrayView2<'_, f64>, init: Array2<f64>, max_iter: u64, tol: f64) -> Fit {
    let threshold = tol * x.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0);
    let records = DatasetBase::from(x);
    let mut model = lloyd_step(&records, &init);
    let mut previous = init;
    let mut n_iter = 1;
    while n_iter < max_iter {
        let shift = (model.centroids() - &previous).mapv(|d| d * d).sum();
        if shift <= threshold {
            break;
        }
        previous = model.centroids().clone();
        model = lloyd_step(&records, &previous);
        n_iter += 1;
    }
    // The labels and squared distances of the final centroids, by linfa's own passes.
    let labels = model.predict(&records);
    let inertia = model.transform(&x).sum();
    Fit {
        centroids: model.centroids().clone(),
        labels,
        n_iter,
        inertia,
    }
}

/// (centroids, labels, n_iter, inertia), as `bench.api.KMeansResult` takes them.
type FitResult<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<i64>>,
    u64,
    f64,
);

/// Lloyd's K-Means from `init_centroids`, by linfa.
#[pyfunction]
fn fit<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    init_centroids: PyReadonlyArray2<'py, f64>,
    max_iter: u64,
    tol: f64,
) -> PyResult<FitResult<'py>> {
    if max_iter == 0 {
        return Err(PyValueError::new_err("max_iter must be at least 1"));
    }
    let (x, init) = (x.as_array(), init_centroids.as_array().to_owned());
    let fit = py.detach(|| fit_lloyd(x, init, max_iter, tol));
    let labels = fit.labels.mapv(|label| label as i64);
    Ok((
        fit.centroids.into_pyarray(py),
        labels.into_pyarray(py),
        fit.n_iter,
        fit.inertia,
    ))
}

/// The nearest of `centroids` for every point, by linfa's `predict`.
#[pyfunction]
fn predict<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    centroids: PyReadonlyArray2<'py, f64>,
) -> Bound<'py, PyArray1<i64>> {
    let (x, centroids) = (x.as_array(), centroids.as_array().to_owned());
    let labels = py.detach(|| model_of(&centroids).predict(&DatasetBase::from(x)));
    labels.mapv(|label| label as i64).into_pyarray(py)
}

/// Thread pools of this extension and their sizes, for `Implementation.thread_counts()`.
#[pyfunction]
fn thread_counts() -> HashMap<&'static str, usize> {
    HashMap::from([("rayon", rayon::current_num_threads())])
}

#[pymodule]
fn bench_linfa(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(fit, module)?)?;
    module.add_function(wrap_pyfunction!(predict, module)?)?;
    module.add_function(wrap_pyfunction!(thread_counts, module)?)?;
    Ok(())
}
