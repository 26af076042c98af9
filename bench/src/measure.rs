//! What a measurement records, and how: wall time, peak RSS, LDAP entries read, apiserver writes.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub wall_seconds: f64,
    pub peak_rss_kib: Option<u64>,
    pub entries_read: Option<u64>,
    pub user_group_writes: Option<usize>,
    pub note: String,
}

impl Sample {
    pub fn rss_mib(&self) -> Option<f64> {
        self.peak_rss_kib.map(|k| k as f64 / 1024.0)
    }
}

/// Runs a command under GNU time: wall seconds and maximum resident set of the command itself.
/// Stdout is read line by line and handed to `line` (nothing is kept).
pub fn time_command(cmd: &mut Command, mut line: impl FnMut(&str)) -> Result<Sample, String> {
    let shown = format!("{cmd:?}");
    let stats = std::env::temp_dir().join(format!("usersync-bench-time-{}", std::process::id()));
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(ToOwned::to_owned).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect();
    let started = Instant::now();
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&stats)
        .arg(program)
        .args(args)
        .envs(envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{shown}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    for l in BufReader::new(stdout).lines() {
        line(&l.map_err(|e| format!("{shown}: {e}"))?);
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(|e| format!("{shown}: {e}"))?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{shown} failed ({status}): {stderr}"));
    }
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    let _ = std::fs::remove_file(&stats);
    let rss = text.split_whitespace().nth(1).and_then(|v| v.parse().ok());
    Ok(Sample {
        wall_seconds: wall,
        peak_rss_kib: rss,
        ..Default::default()
    })
}

/// The middle of some numbers (the upper one of the two middle ones of an even count).
pub fn median_of(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The run with the median wall time of several runs of the same scenario, noting every run's time:
/// one run of a few seconds on a shared machine says little.
pub fn median(mut runs: Vec<Sample>) -> Option<Sample> {
    runs.sort_by(|a, b| a.wall_seconds.total_cmp(&b.wall_seconds));
    let times: Vec<String> = runs
        .iter()
        .map(|r| format!("{:.2}", r.wall_seconds))
        .collect();
    let count = runs.len();
    let mut chosen = runs.into_iter().nth(count / 2)?;
    if count > 1 {
        let runs = format!("median of {count} runs ({} s)", times.join(", "));
        chosen.note = if chosen.note.is_empty() {
            runs
        } else {
            format!("{runs}; {}", chosen.note)
        };
    }
    Some(chosen)
}

/// Peak resident set (VmHWM) of a running process, in KiB.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Starts a new peak measurement for a running process (Linux: writing 5 to clear_refs resets
/// VmHWM to the current RSS).
pub fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Counts UserGroup writes in the apiserver's audit log, from where the last call stopped.
pub struct AuditLog {
    path: String,
    offset: u64,
}

impl AuditLog {
    pub fn new(path: String) -> AuditLog {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        AuditLog { path, offset }
    }

    /// UserGroup creates, patches, updates and deletes in `namespace` since the previous call.
    pub fn user_group_writes(&mut self, namespace: &str) -> usize {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return 0;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return 0;
        }
        let mut count = 0;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if !line.ends_with('\n') {
                break; // a line still being written: next time
            }
            self.offset += line.len() as u64;
            if is_write(&line, namespace) {
                count += 1;
            }
            line.clear();
        }
        count
    }
}

fn is_write(line: &str, namespace: &str) -> bool {
    // Cheap substring checks first: the log of a 100k-user run has hundreds of thousands of lines.
    if !line.contains("\"resource\":\"usergroups\"") || !line.contains(namespace) {
        return false;
    }
    let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
        return false;
    };
    event["objectRef"]["namespace"] == namespace
        && matches!(
            event["verb"].as_str(),
            Some("create" | "update" | "patch" | "delete")
        )
}

/// CPU time (user and system) a running process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .stat()
        .ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}
