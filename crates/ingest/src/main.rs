//! `tiendo-ingest`: runs the ingest service alone.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone("ingest", tiendo_ingest::Ingest::build).await
}
