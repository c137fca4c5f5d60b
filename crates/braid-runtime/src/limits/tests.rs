//! The limiter on its own: the smallest declared limit holds, buckets follow
//! SPEC §4's semantics, and processes of a cluster split every limit.

use super::*;

fn key(model: &str) -> EndpointKey {
    EndpointKey {
        provider: "openai_compatible".into(),
        base_url: "http://llm.local/v1".into(),
        model: model.into(),
        key_env: None,
    }
}

fn declared(c: Option<u32>, rpm: Option<u32>, tpm: Option<u32>) -> Declared {
    Declared {
        max_concurrency: c,
        requests_per_minute: rpm,
        tokens_per_minute: tpm,
    }
}

/// Calls (each releasing its slot at once) until one has to wait for the
/// buckets; returns how many went without waiting.
async fn burst(limits: &Limits, e: &Arc<Endpoint>, tokens: u64) -> usize {
    burst_and_wait(limits, e, tokens).await.0
}

/// [`burst`], and how long the first call that waited waited.
async fn burst_and_wait(limits: &Limits, e: &Arc<Endpoint>, tokens: u64) -> (usize, Duration) {
    let mut sent = 0;
    loop {
        let waited = limits.acquire(e, tokens).await.waited();
        if !waited.is_zero() {
            return (sent, waited);
        }
        sent += 1;
    }
}

#[test]
fn bucket_is_full_at_start_then_refills_at_r_per_minute() {
    let t0 = Instant::now();
    let mut b = Bucket::full(600.0, t0);
    for _ in 0..600 {
        assert_eq!(b.take(1.0, t0), Duration::ZERO);
    }
    // Empty: the next token comes after 1/10 s, the one after it 1/10 s later.
    assert_eq!(b.take(1.0, t0), Duration::from_millis(100));
    assert_eq!(b.take(1.0, t0), Duration::from_millis(200));
    // Two seconds on: 20 tokens refilled, 2 of them already reserved.
    let later = t0 + Duration::from_secs(2);
    assert_eq!(b.take(18.0, later), Duration::ZERO);
    assert!(b.take(1.0, later) > Duration::ZERO);
    // Never above capacity, however long it rests.
    let mut b = Bucket::full(60.0, t0);
    b.put(1000.0, t0 + Duration::from_secs(3600));
    assert_eq!(b.take(60.0, t0 + Duration::from_secs(3600)), Duration::ZERO);
    assert!(b.take(1.0, t0 + Duration::from_secs(3600)) > Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn profiles_and_configuration_share_one_endpoint_and_the_smallest_holds() {
    let limits = Limits::new(vec![EndpointLimit {
        provider: "openai_compatible".into(),
        base_url: Some("http://llm.local/v1/".into()),
        model: "gpt-test".into(),
        limits: declared(None, Some(120), None),
    }]);
    // Version 1 declares 8 slots and 600 rpm; version 2 of the same
    // endpoint 5 slots; the configuration 120 rpm.
    let v1 = limits.endpoint(&key("gpt-test"), declared(Some(8), Some(600), None));
    let v2 = limits.endpoint(&key("gpt-test"), declared(Some(5), None, None));
    assert!(Arc::ptr_eq(&v1, &v2), "one limiter per endpoint");
    assert_eq!(v1.declared(), declared(Some(5), Some(120), None));
    assert_eq!(v1.free_slots(), 5);
    // Another model is another endpoint, with no configured limit.
    let other = limits.endpoint(&key("other"), declared(Some(3), None, None));
    assert_eq!(other.free_slots(), 3);
    // 120 requests go at once, the 121st waits half a second (2 a second).
    assert_eq!(burst(&limits, &v1, 0).await, 120);
    let start = tokio::time::Instant::now();
    let _p = limits.acquire(&v1, 0).await;
    // The 121st waited 0.5 s and the send margin; the refill during the
    // margin counts, so the 122nd waits 0.5 s in all.
    assert_eq!(start.elapsed(), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn a_smaller_limit_declared_while_slots_are_out_takes_effect_as_they_return() {
    let limits = Limits::new(Vec::new());
    let e = limits.endpoint(&key("m"), declared(Some(4), None, None));
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(limits.acquire(&e, 0).await);
    }
    limits.endpoint(&key("m"), declared(Some(2), None, None));
    // Two of the four slots are owed: they are forgotten as they come back.
    out.truncate(1);
    assert_eq!(e.free_slots(), 1);
    out.clear();
    assert_eq!(e.free_slots(), 2);
}

#[tokio::test(start_paused = true)]
async fn tokens_bucket_draws_the_estimate_and_is_corrected_by_reported_usage() {
    let limits = Limits::new(Vec::new());
    let e = limits.endpoint(&key("m"), declared(Some(100), None, Some(6000)));
    // 6,000 a minute = 100 a second. A 1,000-token estimate that really
    // used 4,000 leaves 2,000, so the next 2,000 go and 100 more wait 1 s.
    let mut p = limits.acquire(&e, 1000).await;
    p.settle(4000);
    drop(p);
    let p = limits.acquire(&e, 2000).await;
    assert_eq!(p.waited(), Duration::ZERO);
    let start = tokio::time::Instant::now();
    let p = limits.acquire(&e, 100).await;
    assert_eq!(start.elapsed(), Duration::from_secs(1) + SEND_MARGIN);
    drop(p);
    // An estimate above what was used gives the difference back.
    let mut p = limits.acquire(&e, 3000).await;
    assert!(p.waited() >= Duration::from_secs(30));
    p.settle(0);
    let p = limits.acquire(&e, 3000).await;
    assert_eq!(p.waited(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_call_cancelled_while_waiting_gives_its_reservation_back() {
    let limits = Limits::new(Vec::new());
    let e = limits.endpoint(&key("m"), declared(Some(10), Some(60), None));
    // 60 at once; the 61st waited a second for its token.
    assert_eq!(burst(&limits, &e, 0).await, 60);
    // Empty again: a call that gives up waiting must not push the next
    // call further back.
    let gave_up = tokio::time::timeout(Duration::from_millis(10), limits.acquire(&e, 0)).await;
    assert!(gave_up.is_err());
    let start = tokio::time::Instant::now();
    let _p = limits.acquire(&e, 0).await;
    assert_eq!(start.elapsed(), Duration::from_millis(990));
}

#[tokio::test(start_paused = true)]
async fn two_processes_each_take_half_of_every_limit_and_get_it_back_alone() {
    // Two "processes": two limiters of the same endpoint, each told by its
    // heartbeat that two processes are live.
    let (a, b) = (Limits::new(Vec::new()), Limits::new(Vec::new()));
    let limit = declared(Some(8), Some(600), None);
    let (ea, eb) = (a.endpoint(&key("m"), limit), b.endpoint(&key("m"), limit));
    a.set_live(2);
    b.set_live(2);
    // The share is applied at the next call: 4 slots and 300 requests at
    // once each; together exactly the endpoint's 8 and 600.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(a.acquire(&ea, 0).await);
        held.push(b.acquire(&eb, 0).await);
    }
    assert_eq!((ea.free_slots(), eb.free_slots()), (0, 0));
    held.clear();
    // Each bucket refills at 5 a second: once empty, the next call waits
    // 0.2 s and the send margin. b got 1.25 tokens while a waited: one more
    // call, and 0.15 s (and the margin) for the next.
    let first_wait = Duration::from_millis(200) + SEND_MARGIN;
    assert_eq!(burst_and_wait(&a, &ea, 0).await, (296, first_wait));
    assert_eq!(
        burst_and_wait(&b, &eb, 0).await,
        (297, Duration::from_millis(200))
    );
    // Process b leaves: a alone gets the whole limit back.
    a.set_live(1);
    let _one = a.acquire(&ea, 0).await;
    assert_eq!(ea.free_slots(), 7);
    // At least one slot each, whatever the number of processes.
    let c = Limits::new(Vec::new());
    c.set_live(50);
    let ec = c.endpoint(&key("m"), limit);
    let _only = c.acquire(&ec, 0).await;
    assert_eq!(ec.free_slots(), 0);
}
