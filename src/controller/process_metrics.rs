//! The process metrics Prometheus clients expose by convention (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, …), read from /proc at each scrape.

use std::fmt;

use procfs::process::{LimitValue, Process};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug)]
pub struct ProcessMetrics;

impl Collector for ProcessMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        // Outside Linux, or without /proc, there is nothing to say.
        let Ok(me) = Process::myself() else {
            return Ok(());
        };
        let ticks = procfs::ticks_per_second() as f64;
        if let Ok(stat) = me.stat() {
            let cpu = (stat.utime + stat.stime) as f64 / ticks;
            let cpu_help = "Total user and system CPU time spent in seconds";
            counter(&mut encoder, "process_cpu_seconds", cpu_help, cpu)?;
            let rss = stat.rss as f64 * procfs::page_size() as f64;
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                rss,
            )?;
            let vsize = stat.vsize as f64;
            gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                vsize,
            )?;
            let threads = stat.num_threads as f64;
            gauge(
                &mut encoder,
                "process_threads",
                "Number of OS threads in the process",
                threads,
            )?;
            if let Ok(boot) = procfs::boot_time_secs() {
                let started = boot as f64 + stat.starttime as f64 / ticks;
                let help = "Start time of the process since the Unix epoch in seconds";
                gauge(&mut encoder, "process_start_time_seconds", help, started)?;
            }
        }
        if let Ok(open) = me.fd_count() {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                open as f64,
            )?;
        }
        if let Ok(limits) = me.limits()
            && let LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            let help = "Maximum number of open file descriptors";
            gauge(&mut encoder, "process_max_fds", help, max as f64)?;
        }
        Ok(())
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}
