//! What the provider limiter adds to an LLM call that does not have to
//! wait: `cargo bench -p braid-runtime --bench limiter`. Batches of calls
//! through an endpoint limiter whose slots and buckets never run out
//! (acquire, settle the reported usage, release), against the same loop
//! without the limiter, in the same run; prints the median per call of
//! each and the difference (BENCHMARKS.md).

use braid_runtime::limits::{Declared, EndpointKey, Limits};
use std::hint::black_box;
use std::time::Instant;

const BATCH: u32 = 1_000;
const BATCHES: usize = 300;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits::new(Vec::new());
    let key = EndpointKey {
        provider: "openai".into(),
        base_url: "https://api.openai.com/v1".into(),
        model: "gpt-4o-mini".into(),
        key_env: Some("OPENAI_API_KEY".into()),
    };
    // Limits far above what the loop can reach: no call ever waits.
    let endpoint = limits.endpoint(
        &key,
        Declared {
            max_concurrency: Some(16),
            requests_per_minute: Some(u32::MAX),
            tokens_per_minute: Some(u32::MAX),
        },
    );
    let (mut base, mut limited) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for round in 0..BATCHES + 20 {
            // The baseline: the same loop, with the call's usage but no limiter.
            let start = Instant::now();
            for i in 0..BATCH {
                black_box(async { black_box(i as u64 * 40) }.await);
            }
            let b = start.elapsed().as_nanos() as f64 / BATCH as f64;
            let start = Instant::now();
            for i in 0..BATCH {
                let mut permit = limits.acquire(&endpoint, black_box(120)).await;
                assert!(permit.waited().is_zero());
                permit.settle(black_box(100 + (i as u64 % 40)));
            }
            let l = start.elapsed().as_nanos() as f64 / BATCH as f64;
            // The first rounds warm caches and the allocator.
            if round >= 20 {
                base.push(b);
                limited.push(l);
            }
        }
    });
    let (b, l) = (median(base), median(limited));
    println!("limiter bench: {BATCHES} batches of {BATCH} calls, median per call");
    println!("  baseline (no limiter):        {b:>8.1} ns");
    println!("  limiter (slot + 2 buckets):   {l:>8.1} ns");
    println!("  added by the limiter:         {:>8.1} ns", l - b);
}
