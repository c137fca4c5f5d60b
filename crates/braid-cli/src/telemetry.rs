//! The telemetry of `braid serve` (docs/observability.md): the process-wide
//! Prometheus recorder behind `GET /metrics`, and, when an OTLP endpoint is
//! configured, the exporter that sends each run as a trace.

use crate::config;
use anyhow::{Context as _, Result};
use braid_runtime::{HISTOGRAM_BUCKETS, Traces};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use std::time::Duration;

/// How often histograms drop their expired samples.
const UPKEEP: Duration = Duration::from_secs(5);

/// What `braid serve` records.
pub struct Telemetry {
    /// Rendered by `GET /metrics`.
    pub metrics: PrometheusHandle,
    /// Set when traces are exported.
    pub traces: Option<Traces>,
}

/// Installs the metrics recorder (once per process) and, with an endpoint,
/// the trace exporter. Must run inside the tokio runtime.
pub fn start(config: &config::Telemetry) -> Result<Telemetry> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in HISTOGRAM_BUCKETS {
        builder = builder
            .set_buckets_for_metric(Matcher::Full((*name).to_string()), buckets)
            .with_context(|| format!("the buckets of {name}"))?;
    }
    let metrics = builder
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let traces = match &config.otlp_endpoint {
        Some(base) => Some(traces(base, &config.service_name)?),
        None => None,
    };
    Ok(Telemetry { metrics, traces })
}

/// The OTLP/HTTP protobuf exporter to `{base}/v1/traces`, on a reqwest
/// client of the app's own TLS set-up (ring; no second crypto library).
fn traces(base: &str, service_name: &str) -> Result<Traces> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("braid/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client of the trace exporter")?;
    let endpoint = format!("{}/v1/traces", base.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint.clone())
        .build()
        .with_context(|| format!("the trace exporter to {endpoint}"))?;
    eprintln!("exporting traces to {endpoint}");
    Ok(Traces::new(exporter, service_name))
}
