//! The SQLite store against the shared contract, and what a restart keeps.

use serde_json::json;
use sluice_store::{Page, SaveMode, SqliteStore, Store};

#[tokio::test]
async fn sqlite_in_memory_meets_the_contract() {
    let store = SqliteStore::in_memory().await.unwrap();
    sluice_store::contract::check(&store).await;
}

#[tokio::test]
async fn sqlite_file_meets_the_contract_and_keeps_data_across_reopen() {
    let dir = std::env::temp_dir().join(format!("sluice-store-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        sluice_store::contract::check(&store).await;
        store
            .save_version(
                "acme",
                "kept",
                &json!({"name": "kept"}),
                SaveMode::NextMinor,
                "ada",
            )
            .await
            .unwrap();
    }
    let reopened = SqliteStore::open(&path).await.unwrap();
    let names: Vec<_> = reopened
        .list_pipelines("acme", Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["echo", "kept"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
