//! `tiendo-ingest`: runs the ingest service alone.

/// jemalloc instead of the system's malloc: faster (17–29% more observations a second
/// through the pipeline) and less fragmented (docs/performance.md, issue 15, change 7).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tiendo_runtime::standalone(tiendo_ingest::NAME, tiendo_ingest::build).await
}
