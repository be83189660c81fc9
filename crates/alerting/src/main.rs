//! `tiendo-alerting`: runs the alerting service alone.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone("alerting", tiendo_alerting::build).await
}
