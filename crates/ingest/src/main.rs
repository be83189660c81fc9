//! `tiendo-ingest`: runs the ingest service alone.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone(tiendo_ingest::NAME, tiendo_ingest::build).await
}
