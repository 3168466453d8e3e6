//! Generates the messages, the tonic server and the tonic client from the project's one
//! protocol file, `bench/serving/proto/kmeans.proto` (the grpcio server reads the same file).

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["../proto/kmeans.proto"],
        &["../proto"],
    )?;
    Ok(())
}
