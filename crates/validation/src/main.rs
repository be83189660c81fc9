//! `tiendo-validation`: runs the validation service alone.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone(tiendo_validation::NAME, tiendo_validation::build).await
}
