//! `tiendo-aggregation`: runs the aggregation service alone.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone(tiendo_aggregation::NAME, |deps| async move {
        let db = tiendo_stateful::Database::open(&deps).await?;
        tiendo_aggregation::build(deps, &db).await
    })
    .await
}
