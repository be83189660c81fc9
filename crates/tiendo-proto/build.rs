//! Compiles `proto/` with protox (pure Rust), so building needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("tiendo/v1/tiendo.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let descriptors = protox::compile([&file], [&root])?;
    prost_build::Config::new()
        .type_attribute(".tiendo.v1", "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default)]")
        // A department's typo ("valeu") must come back as a rejection, not be ignored.
        .type_attribute(".tiendo.v1.Observation", "#[serde(deny_unknown_fields)]")
        // What the progress methods could not say is left out of an alert's JSON, not null or "".
        .field_attribute(".tiendo.v1.Alert.score", "#[serde(skip_serializing_if = \"Option::is_none\")]")
        .field_attribute(".tiendo.v1.Alert.projected", "#[serde(skip_serializing_if = \"Option::is_none\")]")
        .field_attribute(".tiendo.v1.Alert.expected_attainment", "#[serde(skip_serializing_if = \"String::is_empty\")]")
        .compile_fds(descriptors)?;
    Ok(())
}
