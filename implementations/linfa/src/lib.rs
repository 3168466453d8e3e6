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
//! with scikit-learn's stopping rule, and every pass over the points is linfa's. What linfa
//! leaves to its caller, the loop adds as scikit-learn does: an empty cluster takes the point
//! farthest from its centroid (`relocate_empty_clusters`); and the points are centred by
//! their mean first (`Centred`), as scikit-learn centres them: far from the origin, a float32
//! centroid cannot otherwise tell points a few units of its last digit apart.
//!
//! Everything is generic over the float type, so that a float32 scenario computes in f32.

use std::collections::HashMap;

use linfa::DatasetBase;
use linfa::Float;
use linfa::prelude::*;
use linfa_clustering::{IncrKMeansError, KMeans, KMeansInit};
use linfa_nn::distance::L2Dist;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use numpy::{Element, IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

type Model<F> = KMeans<F, L2Dist>;
/// The points as a linfa dataset (a view of the caller's array, without targets).
type Points<'a, F> = DatasetBase<ArrayView2<'a, F>, Array1<()>>;

/// One Lloyd iteration from `centroids`, by linfa: the model holds the new centroids and how
/// many points each cluster got.
fn lloyd_step<F: Float>(records: &Points<'_, F>, centroids: &Array2<F>) -> Model<F> {
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
/// step on the centroids themselves leaves each where it is (its only member is itself, or
/// it is empty and keeps its place).
fn model_of<F: Float>(centroids: &Array2<F>) -> Model<F> {
    lloyd_step(&DatasetBase::from(centroids.view()), centroids)
}

/// scikit-learn's rule for the clusters a step left empty, applied to the step's `updated`
/// centroids: the i-th empty cluster (in index order) takes the i-th farthest point from the
/// centroid it was assigned to (equal distances: the lower index first), and that point
/// leaves its old cluster. Nothing moves when every point sits on its centroid; a cluster
/// still empty then takes the centroid of the largest cluster. Rare, so the labels and
/// distances are computed again here, by linfa, rather than kept by every step.
fn relocate_empty_clusters<F: Float>(
    records: &Points<'_, F>,
    assigned_to: &Array2<F>,
    updated: &mut Array2<F>,
    counts: &Array1<F>,
) {
    let mut counts = counts.clone();
    let old = model_of(assigned_to);
    let labels = old.predict(records);
    let distances = old.transform(records.records());
    let empty: Vec<usize> = (0..counts.len()).filter(|&j| counts[j].is_zero()).collect();
    let farthest_first = {
        let mut order: Vec<usize> = (0..distances.len()).collect();
        order.sort_by(|&a, &b| distances[b].partial_cmp(&distances[a]).expect("finite"));
        order
    };
    if distances[farthest_first[0]] > F::zero() {
        for (&cluster, &point) in empty.iter().zip(&farthest_first) {
            let x = records.records().row(point);
            let from = labels[point];
            let remaining = counts[from] - F::one();
            if remaining > F::zero() {
                let mut centroid = updated.row_mut(from);
                centroid.zip_mut_with(&x, |c, &v| *c = (*c * counts[from] - v) / remaining);
            }
            counts[from] = remaining;
            updated.row_mut(cluster).assign(&x);
            counts[cluster] = F::one();
        }
    }
    let largest =
        (0..counts.len()).fold(0, |best, j| if counts[j] > counts[best] { j } else { best });
    let largest_centroid = updated.row(largest).to_owned();
    for j in (0..counts.len()).filter(|&j| counts[j].is_zero()) {
        updated.row_mut(j).assign(&largest_centroid);
    }
}

struct Fit<F> {
    centroids: Array2<F>,
    labels: Array1<usize>,
    n_iter: u64,
    inertia: F,
}

/// Lloyd from `init` until the summed squared centroid shift is at most
/// `tol * mean(per-feature variance)`, or `max_iter` iterations (scikit-learn's rule: the
/// shift is 0, hence at most the threshold, exactly when no label changed).
fn fit_lloyd<F: Float>(x: ArrayView2<'_, F>, init: Array2<F>, max_iter: u64, tol: F) -> Fit<F> {
    let threshold = tol * x.var_axis(Axis(0), F::zero()).mean().unwrap_or(F::zero());
    let records = DatasetBase::from(x);
    let mut centroids = init;
    let mut n_iter = 0;
    loop {
        let step = lloyd_step(&records, &centroids);
        let mut updated = step.centroids().clone();
        if step.cluster_count().iter().any(|count| count.is_zero()) {
            relocate_empty_clusters(&records, &centroids, &mut updated, step.cluster_count());
        }
        let shift = (&updated - &centroids).mapv(|d| d * d).sum();
        centroids = updated;
        n_iter += 1;
        if n_iter >= max_iter || shift <= threshold {
            break;
        }
    }
    // The labels and squared distances of the final centroids, by linfa's own passes.
    let model = model_of(&centroids);
    let labels = model.predict(&records);
    let inertia = model.transform(&x).sum();
    Fit {
        centroids,
        labels,
        n_iter,
        inertia,
    }
}

/// Points shifted by their mean, and that mean, to shift centroids in and back out.
struct Centred<F> {
    points: Array2<F>,
    mean: Array1<F>,
}

impl<F: Float> Centred<F> {
    fn new(x: ArrayView2<'_, F>) -> Self {
        let mean = x.mean_axis(Axis(0)).expect("at least one point");
        Centred {
            points: &x - &mean,
            mean,
        }
    }
}

/// (centroids, labels, n_iter, inertia), as `bench.api.KMeansResult` takes them.
type FitResult<'py, F> = (Bound<'py, PyArray2<F>>, Bound<'py, PyArray1<i64>>, u64, f64);

fn fit_any<'py, F: Float + Element>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, F>,
    init_centroids: PyReadonlyArray2<'py, F>,
    max_iter: u64,
    tol: f64,
) -> PyResult<FitResult<'py, F>> {
    if max_iter == 0 {
        return Err(PyValueError::new_err("max_iter must be at least 1"));
    }
    let (x, init) = (x.as_array(), init_centroids.as_array());
    let tol = F::from(tol).expect("a float tolerance");
    let (fit, mean) = py.detach(|| {
        let centred = Centred::new(x);
        let init = &init - &centred.mean;
        (
            fit_lloyd(centred.points.view(), init, max_iter, tol),
            centred.mean,
        )
    });
    let labels = fit.labels.mapv(|label| label as i64);
    let inertia = fit.inertia.to_f64().expect("a finite inertia");
    Ok((
        (fit.centroids + &mean).into_pyarray(py),
        labels.into_pyarray(py),
        fit.n_iter,
        inertia,
    ))
}

/// Lloyd's K-Means from `init_centroids`, by linfa, in float64.
#[pyfunction]
fn fit_f64<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    init_centroids: PyReadonlyArray2<'py, f64>,
    max_iter: u64,
    tol: f64,
) -> PyResult<FitResult<'py, f64>> {
    fit_any(py, x, init_centroids, max_iter, tol)
}

/// Lloyd's K-Means from `init_centroids`, by linfa, in float32.
#[pyfunction]
fn fit_f32<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    init_centroids: PyReadonlyArray2<'py, f32>,
    max_iter: u64,
    tol: f64,
) -> PyResult<FitResult<'py, f32>> {
    fit_any(py, x, init_centroids, max_iter, tol)
}

fn predict_any<'py, F: Float + Element>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, F>,
    centroids: PyReadonlyArray2<'py, F>,
) -> Bound<'py, PyArray1<i64>> {
    let (x, centroids) = (x.as_array(), centroids.as_array());
    let labels = py.detach(|| {
        let centred = Centred::new(x);
        let centroids = &centroids - &centred.mean;
        model_of(&centroids).predict(&DatasetBase::from(centred.points.view()))
    });
    labels.mapv(|label| label as i64).into_pyarray(py)
}

/// The nearest of `centroids` for every point, by linfa's `predict`, in float64.
#[pyfunction]
fn predict_f64<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    centroids: PyReadonlyArray2<'py, f64>,
) -> Bound<'py, PyArray1<i64>> {
    predict_any(py, x, centroids)
}

/// The nearest of `centroids` for every point, by linfa's `predict`, in float32.
#[pyfunction]
fn predict_f32<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    centroids: PyReadonlyArray2<'py, f32>,
) -> Bound<'py, PyArray1<i64>> {
    predict_any(py, x, centroids)
}

/// Thread pools of this extension and their sizes, for `Implementation.thread_counts()`.
#[pyfunction]
fn thread_counts() -> HashMap<&'static str, usize> {
    HashMap::from([("rayon", rayon::current_num_threads())])
}

#[pymodule]
fn bench_linfa(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(fit_f64, module)?)?;
    module.add_function(wrap_pyfunction!(fit_f32, module)?)?;
    module.add_function(wrap_pyfunction!(predict_f64, module)?)?;
    module.add_function(wrap_pyfunction!(predict_f32, module)?)?;
    module.add_function(wrap_pyfunction!(thread_counts, module)?)?;
    Ok(())
}
