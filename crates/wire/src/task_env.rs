//! The environment a Dataset program's task is started with: the names
//! both sides use, and the typed [`ReplayEnv`] the driver sends and the
//! task reads back.
//!
//! The driver (`dataset/jobs.rs` in the shoal crate) writes the replay
//! values as the job's `[params]`, which reach every task as
//! `SHOAL_PARAM_<NAME>` variables, and starts the tasks with
//! `SHOAL_ROLE=task`; an agent that keeps a task resident adds
//! `SHOAL_EXECUTOR=1`. The task (`dataset/task.rs`) reads them back with
//! [`ReplayEnv::from_env`]. Both sides go through this module, so a name
//! or a format cannot drift between them; a value that does not parse is
//! an error that names the variable and the value, never a default.
//!
//! The variables every task gets (`SHOAL_STAGE`, `SHOAL_PARTITION`, ...)
//! belong to the task request ([`crate::message`]), not here.

/// Set to [`ROLE_TASK`] in the command of every task of a Dataset
/// program: the program then replays `main` up to its job instead of
/// driving.
pub const ROLE_ENV: &str = "SHOAL_ROLE";
/// The value of [`ROLE_ENV`] that makes a program a task.
pub const ROLE_TASK: &str = "task";

/// Set to [`EXECUTOR_ON`] by an agent that starts a Dataset program as a
/// resident executor (`crate::executor`).
pub const EXECUTOR_ENV: &str = "SHOAL_EXECUTOR";
/// The value of [`EXECUTOR_ENV`] that makes a task an executor.
pub const EXECUTOR_ON: &str = "1";

/// How a job's `[params]` reach its tasks: `SHOAL_PARAM_` and the name in
/// capitals.
pub const PARAM_PREFIX: &str = "SHOAL_PARAM_";

/// Param names of the replay values (lower case, as in `[params]`).
pub const PARAM_JOB: &str = "job";
pub const PARAM_LAYOUT: &str = "layout";
pub const PARAM_PLAN: &str = "plan";
pub const PARAM_SLOTS: &str = "slots";

/// The variable a param named `name` becomes in a task's environment.
pub fn param_var(name: &str) -> String {
    format!("{PARAM_PREFIX}{}", name.to_ascii_uppercase())
}

/// What a task needs to replay its program up to its job, as the driver
/// planned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayEnv {
    /// The job's number in the program's deterministic walk.
    pub job: u32,
    /// Map partitions per root of the job, in segment order.
    pub layout: Vec<u32>,
    /// The driver's description of the job's plan, compared by the task.
    pub plan: String,
    /// The driver's default shuffle partitions.
    pub slots: u32,
}

/// A replay value as a param: numbers stay numbers in `$SHOAL_PARAMS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayParam {
    Int(u32),
    Str(String),
}

/// A replay variable that is missing or does not parse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskEnvError {
    #[error(
        "the task's environment has no {var}: a Dataset task is started by its program's driver, which sets it; \
         run the program itself, not one of its tasks"
    )]
    Missing { var: String },
    #[error(
        "{var} is {value:?}, which is not {expected}: the task cannot tell which part of the job is its own; \
         rerun the program from its driver (was the job's [params] changed by hand?)"
    )]
    Malformed { var: String, value: String, expected: &'static str },
}

impl ReplayEnv {
    /// The params the driver puts in the job (names as in `[params]`).
    pub fn to_params(&self) -> Vec<(&'static str, ReplayParam)> {
        let layout: Vec<String> = self.layout.iter().map(u32::to_string).collect();
        vec![
            (PARAM_JOB, ReplayParam::Int(self.job)),
            (PARAM_LAYOUT, ReplayParam::Str(layout.join(","))),
            (PARAM_PLAN, ReplayParam::Str(self.plan.clone())),
            (PARAM_SLOTS, ReplayParam::Int(self.slots)),
        ]
    }

    /// Reads the replay values back; `lookup` is `std::env::var(..).ok()`
    /// in a task, a table in tests.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<ReplayEnv, TaskEnvError> {
        let var = |name: &str| {
            let var = param_var(name);
            lookup(&var).map(|value| (var.clone(), value)).ok_or(TaskEnvError::Missing { var })
        };
        let (job_var, job) = var(PARAM_JOB)?;
        let (layout_var, layout) = var(PARAM_LAYOUT)?;
        let (slots_var, slots) = var(PARAM_SLOTS)?;
        Ok(ReplayEnv {
            job: number(&job_var, &job)?,
            layout: parse_layout(&layout_var, &layout)?,
            plan: var(PARAM_PLAN)?.1,
            slots: number(&slots_var, &slots)?,
        })
    }
}

fn number(var: &str, value: &str) -> Result<u32, TaskEnvError> {
    value.parse().map_err(|_| malformed(var, value, "a number"))
}

/// `2,1,3`; empty for a job without map roots.
fn parse_layout(var: &str, value: &str) -> Result<Vec<u32>, TaskEnvError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    value.split(',').map(|n| n.parse().map_err(|_| malformed(var, value, "a comma-separated list of partition counts"))).collect()
}

fn malformed(var: &str, value: &str, expected: &'static str) -> TaskEnvError {
    TaskEnvError::Malformed { var: var.to_string(), value: value.to_string(), expected }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(replay: &ReplayEnv) -> HashMap<String, String> {
        replay
            .to_params()
            .into_iter()
            .map(|(name, v)| {
                let text = match v {
                    ReplayParam::Int(n) => n.to_string(),
                    ReplayParam::Str(s) => s,
                };
                (param_var(name), text)
            })
            .collect()
    }

    fn read(vars: &HashMap<String, String>) -> Result<ReplayEnv, TaskEnvError> {
        ReplayEnv::from_env(|name| vars.get(name).cloned())
    }

    #[test]
    fn what_the_driver_writes_the_task_reads_back() {
        for layout in [vec![], vec![4], vec![2, 0, 7]] {
            let replay = ReplayEnv { job: 3, layout, plan: "job 3: #1 map at x.rs:1:1, \"a,b\"".into(), slots: 8 };
            assert_eq!(read(&env(&replay)), Ok(replay));
        }
    }

    #[test]
    fn params_keep_their_names_and_types() {
        let replay = ReplayEnv { job: 1, layout: vec![2, 3], plan: "p".into(), slots: 4 };
        let params = replay.to_params();
        assert_eq!(
            params,
            [
                ("job", ReplayParam::Int(1)),
                ("layout", ReplayParam::Str("2,3".into())),
                ("plan", ReplayParam::Str("p".into())),
                ("slots", ReplayParam::Int(4)),
            ]
        );
        assert_eq!(param_var("layout"), "SHOAL_PARAM_LAYOUT");
    }

    #[test]
    fn a_malformed_layout_is_an_error_naming_the_variable_and_the_value() {
        let mut vars = env(&ReplayEnv { job: 0, layout: vec![1], plan: "p".into(), slots: 1 });
        vars.insert("SHOAL_PARAM_LAYOUT".into(), "2,x".into());
        assert_eq!(
            read(&vars).unwrap_err().to_string(),
            "SHOAL_PARAM_LAYOUT is \"2,x\", which is not a comma-separated list of partition counts: the task cannot \
             tell which part of the job is its own; rerun the program from its driver (was the job's [params] changed by hand?)"
        );
        // A trailing comma is no longer a silent empty entry.
        vars.insert("SHOAL_PARAM_LAYOUT".into(), "2,".into());
        assert!(read(&vars).unwrap_err().to_string().starts_with("SHOAL_PARAM_LAYOUT is \"2,\", which is not"));
    }

    #[test]
    fn a_malformed_number_names_the_variable_and_the_value() {
        let mut vars = env(&ReplayEnv { job: 0, layout: vec![1], plan: "p".into(), slots: 1 });
        vars.insert("SHOAL_PARAM_SLOTS".into(), "-1".into());
        assert!(
            read(&vars).unwrap_err().to_string().starts_with("SHOAL_PARAM_SLOTS is \"-1\", which is not a number: "),
            "{:?}",
            read(&vars)
        );
    }

    #[test]
    fn a_missing_variable_says_how_tasks_are_started() {
        let mut vars = env(&ReplayEnv { job: 0, layout: vec![1], plan: "p".into(), slots: 1 });
        vars.remove("SHOAL_PARAM_PLAN");
        assert_eq!(
            read(&vars).unwrap_err().to_string(),
            "the task's environment has no SHOAL_PARAM_PLAN: a Dataset task is started by its program's driver, which \
             sets it; run the program itself, not one of its tasks"
        );
    }
}
