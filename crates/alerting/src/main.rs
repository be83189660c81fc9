//! `tiendo-alerting`: runs the alerting service alone.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone(tiendo_alerting::NAME, |deps| async move {
        let db = tiendo_stateful::Database::open(&deps).await?;
        tiendo_alerting::build(deps, &db).await
    })
    .await
}
