use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::TryStreamExt;
use proptest::prelude::*;
use tabflow_emulator::Options;
use tabflow_site::generate;
use tabflow_wire::filter::{Filter, Op};

use crate::*;

#[tokio::test]
async fn filters_are_pushed_to_the_server() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let before = stats(&emu.url).await["requests"].as_u64().unwrap();
    let wbs = c.workbooks().filter(Filter::new().and("tags", Op::Eq, "sensitive")).collect().await.unwrap();
    let after = stats(&emu.url).await["requests"].as_u64().unwrap();
    let want = emu.emulator.snapshot().workbooks.iter().filter(|w| w.tags.iter().any(|t| t == "sensitive")).count();
    assert_eq!(wbs.len(), want);
    assert_eq!(after - before, 1, "one page of 1000 is enough");
}

/// Reads 10k workbooks in pages of 250 while another task deletes and creates workbooks.
/// Every workbook that existed throughout must be returned exactly once; nothing twice.
fn paging_case(seed: u64, deletes: usize, creates: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let site = generate::generate(&generate::Options { scale: 10_000, seed });
        let emu = tabflow_emulator::start(Options::new(site)).await.unwrap();
        let c = connect(&emu).await;
        let initial: Vec<String> = emu.emulator.snapshot().workbooks.iter().map(|w| w.id.clone()).collect();
        let deleted = Arc::new(std::sync::Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let emu = emu.emulator.clone();
            let deleted = deleted.clone();
            let stop = stop.clone();
            let initial = initial.clone();
            tokio::spawn(async move {
                let mut k = seed as usize;
                for i in 0..deletes.max(creates) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    emu.with_site(|s| {
                        if i < deletes && !s.workbooks.is_empty() {
                            k = (k * 7919 + 13) % s.workbooks.len();
                            let gone = s.workbooks.remove(k);
                            deleted.lock().unwrap().insert(gone.id);
                        }
                        if i < creates {
                            let mut w = s.workbooks[0].clone();
                            w.id = format!("00000000-0000-4000-8000-{:012x}", i);
                            w.name = format!("inserted {i}");
                            w.views.clear();
                            s.workbooks.insert(k % (s.workbooks.len() + 1), w);
                        }
                    });
                    tokio::task::yield_now().await;
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                drop(initial);
            })
        };
        let got: Vec<String> =
            c.workbooks().page_size(250).stream().map_ok(|w| w.id.unwrap()).try_collect().await.unwrap();
        stop.store(true, Ordering::Relaxed);
        writer.await.unwrap();
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "an item was returned twice");
        let deleted = deleted.lock().unwrap();
        for id in &initial {
            if !deleted.contains(id) {
                assert!(unique.contains(id), "workbook {id} existed throughout but was skipped");
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn paging_under_concurrent_writes_never_loses_or_repeats(seed in 1u64..1000, deletes in 0usize..60, creates in 0usize..60) {
        paging_case(seed, deletes, creates);
    }
}

#[tokio::test]
async fn metadata_paging_collects_every_node() {
    let emu = demo().await;
    let c = connect(&emu).await;
    let lineage = c.datasource_lineage().await.unwrap();
    assert_eq!(lineage.len(), emu.emulator.snapshot().datasources.len());
    let wbs = c.workbook_lineage().await.unwrap();
    assert_eq!(wbs.len(), emu.emulator.snapshot().workbooks.len());
    let e = c.metadata("{ nosuchroot { luid } }", serde_json::json!({})).await.unwrap_err();
    assert!(matches!(e, tabflow_client::Error::Graphql(_)), "{e:?}");
}
