//! Compiles `reelfarm/v1/*.proto` with protox (no protoc needed) and generates the tonic/prost
//! code, plus the encoded file descriptor set that gRPC reflection serves.

use std::path::PathBuf;

use prost::Message as _;

const FILES: [&str; 5] = [
    "reelfarm/v1/common.proto",
    "reelfarm/v1/render.proto",
    "reelfarm/v1/template.proto",
    "reelfarm/v1/trigger.proto",
    "reelfarm/v1/worker.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(FILES, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("reelfarm_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .btree_map(".")
        // Decode errors are INVALID_ARGUMENT naming the field (see `codec.rs`).
        .codec_path("crate::ProtoCodec")
        .compile_fds(fds)?;
    Ok(())
}
