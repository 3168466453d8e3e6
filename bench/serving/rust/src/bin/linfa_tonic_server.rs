//! linfa's K-Means predict on a tonic gRPC server: Palmieri 2019's "linfa on a Rust gRPC
//! server". Default settings, as the article's, with TCP_NODELAY set on every accepted
//! connection (tonic's builder sets it only when it binds the socket itself).
//!
//! `linfa-tonic-server --model model.json [--port P] [--cpus 0,1]`: reads the centroids the
//! harness fitted, listens on 127.0.0.1 (on another free port when P is taken), prints
//! `LISTENING <port>` once it accepts requests, and serves until it is killed.

use std::error::Error;
use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use bench_serving::proto::k_means_server::{KMeans as KMeansService, KMeansServer};
use bench_serving::proto::{Labels, Points};
use bench_serving::{die_with_parent, pin_to_cpus};
use clap::Parser;
use linfa::DatasetBase;
use linfa::prelude::*;
use linfa_clustering::{IncrKMeansError, KMeans, KMeansInit};
use linfa_nn::distance::L2Dist;
use ndarray::{Array2, ArrayView2};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

type Model = KMeans<f64, L2Dist>;

#[derive(Parser)]
struct Options {
    /// JSON file holding the fitted centroids: {"centroids": [[x, y], ...]}.
    #[arg(long)]
    model: PathBuf,
    /// Port on 127.0.0.1; 0, or a port already in use, takes a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Cores to run on, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    cpus: Vec<usize>,
}

/// linfa's model whose centroids are `centroids`. linfa makes models only by fitting: one
/// step of its incremental K-Means on the centroids themselves leaves each where it is (its
/// only member is itself). The `linfa` extension builds its models the same way.
fn model_of(centroids: &Array2<f64>) -> Model {
    let params = KMeans::params(centroids.nrows())
        .init_method(KMeansInit::Precomputed(centroids.clone()))
        .check()
        .expect("valid K-Means parameters");
    match params.fit_with(None, &DatasetBase::from(centroids.view())) {
        Ok(model) | Err(IncrKMeansError::NotConverged(model)) => model,
        Err(error) => panic!("linfa could not build the model: {error}"),
    }
}

fn read_centroids(path: &PathBuf) -> Result<Array2<f64>, Box<dyn Error>> {
    let model: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let rows = model["centroids"]
        .as_array()
        .ok_or("the model file has no \"centroids\" list")?;
    let values = rows
        .iter()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .map(|value| {
            value
                .as_f64()
                .ok_or("a centroid coordinate is not a number")
        })
        .collect::<Result<Vec<f64>, _>>()?;
    let features = values.len() / rows.len().max(1);
    Ok(Array2::from_shape_vec((rows.len(), features), values)?)
}

struct Predictor {
    model: Model,
    features: usize,
}

#[tonic::async_trait]
impl KMeansService for Predictor {
    async fn predict(&self, request: Request<Points>) -> Result<Response<Labels>, Status> {
        let points = request.into_inner();
        let features = points.n_features as usize;
        if features != self.features || !points.values.len().is_multiple_of(features) {
            return Err(Status::invalid_argument(format!(
                "expected points of {} features, got {} values of {} features",
                self.features,
                points.values.len(),
                points.n_features
            )));
        }
        let x = ArrayView2::from_shape((points.values.len() / features, features), &points.values)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        let labels = self.model.predict(&DatasetBase::from(x));
        Ok(Response::new(Labels {
            labels: labels.iter().map(|&label| label as u32).collect(),
        }))
    }
}

/// A listener on 127.0.0.1:`port`, or on a free port when that one is taken.
fn listen(port: u16) -> std::io::Result<TcpIncoming> {
    let address = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match TcpIncoming::bind(address(port)) {
        Err(error) if error.kind() == ErrorKind::AddrInUse && port != 0 => {
            TcpIncoming::bind(address(0))
        }
        bound => bound,
    }
}

async fn serve(predictor: Predictor, port: u16) -> Result<(), Box<dyn Error>> {
    let incoming = listen(port)?.with_nodelay(Some(true));
    let bound = incoming.local_addr()?.port();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "LISTENING {bound}")?;
    stdout.flush()?;
    Server::builder()
        .add_service(KMeansServer::new(predictor))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    die_with_parent();
    let options = Options::parse();
    pin_to_cpus(&options.cpus)?;
    let centroids = read_centroids(&options.model)?;
    let predictor = Predictor {
        features: centroids.ncols(),
        model: model_of(&centroids),
    };
    // tokio's default runtime: one worker thread per core this process may run on.
    tokio::runtime::Runtime::new()?.block_on(serve(predictor, options.port))
}
