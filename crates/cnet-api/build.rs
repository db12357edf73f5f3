fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = "../../proto";
    let files = ["cnet/v1/cnet.proto"];
    let descriptors = protox::compile(files, [proto_root])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    for file in files {
        println!("cargo:rerun-if-changed={proto_root}/{file}");
    }
    Ok(())
}
