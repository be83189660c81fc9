//! `tiendo-aggregation`: runs the aggregation service alone.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone("aggregation", tiendo_aggregation::build).await
}
