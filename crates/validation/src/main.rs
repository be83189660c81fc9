//! `tiendo-validation`: runs the validation service alone.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone("validation", tiendo_validation::Validation::build).await
}
