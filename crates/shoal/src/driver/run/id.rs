//! The run id, `YYYYMMDD-HHMMSS-<job>-<hex4>`: made here, read here.
//!
//! It names the run's dir under `.shoal/runs/`, the run's scratch on
//! every host and its containers, and it is how `--resume` finds the
//! latest run of a job ([`crate::driver::state`] walks the dirs; this
//! module says which job a name belongs to). The ids of one job sort by
//! time as strings. The job part is the job's name made file-name safe,
//! so a name with dashes (`word-count`) stays whole: the job is
//! everything between the time and the last dash.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// One run's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId {
    /// `YYYYMMDD-HHMMSS`, UTC.
    stamp: String,
    /// The job's safe name ([`RunId::safe_job_name`]).
    job: String,
    /// Tells apart two runs of a job started in the same second.
    random: u16,
}

/// A string that is not a run id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id:?} is not a run id (one looks like 20261201-231055-wordcount-ab12: date, time, job name, 4 hex digits); `shoal runs` lists the runs there are")]
pub struct RunIdError {
    pub id: String,
}

/// The longest job part of an id, in characters.
const MAX_JOB: usize = 32;

/// `YYYYMMDD-HHMMSS-`
const STAMP_LEN: usize = 15;

impl RunId {
    /// The id of a run of `job` started at `time`.
    pub fn new(job: &str, time: SystemTime, random: u16) -> RunId {
        let secs = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let (d, s) = (secs / 86_400, secs % 86_400);
        let (y, m, day) = civil(d as i64);
        let stamp = format!("{y:04}{m:02}{day:02}-{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60);
        RunId { stamp, job: Self::safe_job_name(job), random }
    }

    /// The id of a run of `job` starting now; the random part comes from
    /// the clock's nanoseconds.
    pub fn now(job: &str) -> RunId {
        let now = SystemTime::now();
        let nanos = now.duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        RunId::new(job, now, (nanos & 0xffff) as u16)
    }

    /// The job's name as the id spells it.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// A job name as run ids spell it (file-name safe, at most 32
    /// characters).
    pub fn safe_job_name(job: &str) -> String {
        job.chars().map(|c| if safe(c) { c } else { '_' }).take(MAX_JOB).collect()
    }
}

fn safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04x}", self.stamp, self.job, self.random)
    }
}

impl FromStr for RunId {
    type Err = RunIdError;

    fn from_str(id: &str) -> Result<RunId, RunIdError> {
        let bad = || RunIdError { id: id.to_string() };
        let stamp = id.get(..STAMP_LEN).filter(|s| is_stamp(s)).ok_or_else(bad)?;
        let rest = id[STAMP_LEN..].strip_prefix('-').ok_or_else(bad)?;
        let (job, hex) = rest.rsplit_once('-').ok_or_else(bad)?;
        let hex_ok = hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex_ok || job.chars().count() > MAX_JOB || !job.chars().all(safe) {
            return Err(bad());
        }
        let random = u16::from_str_radix(hex, 16).map_err(|_| bad())?;
        Ok(RunId { stamp: stamp.to_string(), job: job.to_string(), random })
    }
}

/// `YYYYMMDD-HHMMSS`, digits where digits go.
fn is_stamp(s: &str) -> bool {
    s.bytes().enumerate().all(|(i, b)| if i == 8 { b == b'-' } else { b.is_ascii_digit() })
}

/// Days since the epoch to (year, month, day), proleptic Gregorian.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2026-12-01 23:10:55 UTC.
    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_166_655)
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_414), (2025, 11, 22));
    }

    #[test]
    fn an_id_formats_and_parses_back() {
        let id = RunId::new("wordcount", at(), 0xab12);
        assert_eq!(id.to_string(), "20261201-231055-wordcount-ab12");
        assert_eq!("20261201-231055-wordcount-ab12".parse(), Ok(id.clone()));
        assert_eq!(id.job(), "wordcount");
        let small = RunId::new("j", UNIX_EPOCH, 7);
        assert_eq!((small.to_string().as_str(), small.to_string().parse()), ("19700101-000000-j-0007", Ok(small)));
    }

    #[test]
    fn a_job_name_with_dashes_stays_whole() {
        let id: RunId = "20261201-231055-word-count-3-ab12".parse().unwrap();
        assert_eq!(id.job(), "word-count-3");
        assert_eq!(id, RunId::new("word-count-3", at(), 0xab12));
    }

    #[test]
    fn a_job_name_is_made_safe_and_short() {
        let id = RunId::new("my job/é", at(), 1);
        assert_eq!(id.job(), "my_job__");
        assert_eq!(id.to_string().parse::<RunId>().unwrap().job(), "my_job__");
        assert_eq!(RunId::new(&"x".repeat(40), at(), 1).job().len(), 32);
    }

    #[test]
    fn malformed_ids_are_refused_with_a_sentence() {
        for id in [
            "short",
            "run-1",
            "20261201-231055-wordcount",
            "20261201-231055-wordcount-AB12",
            "2026120x-231055-w-ab12",
            "20261201-231055-a b-ab12",
            "",
        ] {
            assert_eq!(id.parse::<RunId>(), Err(RunIdError { id: id.into() }), "{id:?}");
        }
        assert_eq!(
            "latest".parse::<RunId>().unwrap_err().to_string(),
            "\"latest\" is not a run id (one looks like 20261201-231055-wordcount-ab12: date, time, job name, 4 hex digits); `shoal runs` lists the runs there are"
        );
    }
}
