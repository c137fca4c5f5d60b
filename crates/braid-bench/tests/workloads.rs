//! Every workload runs to its checked result on a small size, and the bench's
//! event counts are the stored events. No timing is asserted.

use braid_bench::one::{Status, measure};
use braid_bench::workloads::{NEST_DEPTH, RETRY_ATTEMPTS, Workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_workload_completes_and_passes_its_check() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (Workload::W1, 20),
        (Workload::W2, 50),
        (Workload::W3, 3),
        (Workload::W4, NEST_DEPTH),
        (Workload::W5, RETRY_ATTEMPTS),
    ];
    for (w, size) in cases {
        let r = measure(w, size, 2, 1, dir.path()).await;
        assert_eq!(r.status, Status::Ok, "{w} {size}: {:?}", r.error);
        assert_eq!(r.samples.len(), 2, "{w}: two timed runs");
        assert!(r.first.is_some(), "{w}: the warm-up is recorded");
        let last = r.samples.last().unwrap();
        assert_eq!(r.events_counted, Some(last.events), "{w}: stored events");
        assert!(r.vmhwm_kib.unwrap() > 0);
        match w {
            Workload::W1 => assert_eq!(last.events, r.samples[0].events),
            Workload::W2 => assert_eq!(last.extra["sum"], serde_json::json!(50 * 49 / 2)),
            Workload::W3 => assert_eq!(last.extra["max_inflight"], serde_json::json!(3)),
            Workload::W5 => {
                assert_eq!(last.extra["attempts"], serde_json::json!(3));
                let delays = last.extra["delays_ms"].as_u64().unwrap();
                assert!((18..=22).contains(&delays), "10 + 10 ms ± 10 %: {delays}");
            }
            // The check already compared the innermost value; the stored
            // events must cover every level's run, not just the top one.
            Workload::W4 => assert!(last.events >= 2 * NEST_DEPTH, "{}", last.events),
        }
    }
}
