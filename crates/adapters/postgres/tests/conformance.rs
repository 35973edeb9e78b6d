//! `PgStore` against the order store conformance suite, on a real PostgreSQL server.

use oms_postgres::PgStore;
use oms_testkit::postgres::PostgresServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_store_passes_the_order_store_suite() {
    let server = PostgresServer::new();
    let url = server.url();
    oms_conformance::order_store_suite(|| {
        let url = url.clone();
        async move {
            let store = PgStore::connect(&url, 4).await.expect("connect");
            store.migrate().await.expect("migrate");
            store
        }
    })
    .await;
}
