//! Task requests: what an attempt the book launched looks like on the
//! wire (command for its host, input, shuffle settings, container), and
//! each host's `RunEnv`, sent once ahead of its first task.

use shoal_core::cluster::TransportKind;
use shoal_core::job::{Partitioner, SortOrder, StepSpec};
use shoal_wire::{InputFile, KeyFormat, Message, ShuffleOut, TaskRequest};

use super::super::book::{Launch, Needed};
use super::super::prepare::PARAMS_PATH;
use super::Engine;
use crate::driver::Host;

impl Engine<'_> {
    /// The request of `launch` on `h`; a reduce reads `buckets`.
    pub(super) fn request(&mut self, h: &Host, launch: Launch, buckets: &[Needed]) -> TaskRequest {
        let (job, planned) = (self.job, &self.plan.tasks[launch.task as usize]);
        if planned.stage == 1 {
            let reduce = job.reduce.as_ref().expect("reduce tasks exist only with [reduce]");
            return TaskRequest {
                inputs: buckets.iter().map(|n| n.bucket.block.hash).collect(),
                merge_in: self.key_format(),
                keep_output: job.output.on_hosts || job.output.held,
                ..self.common(h, launch, &reduce.step, job.command_for(&reduce.step, h.name()).to_string())
            };
        }
        let mut command = job.command_for(&job.map, h.name()).to_string();
        if planned.arg.is_some() {
            command = crate::argument::bind(&command);
        }
        let on_host = self.job.input.parts.as_ref().and_then(|p| p.get(planned.partition as usize));
        let in_place = planned
            .input
            .as_ref()
            .filter(|s| s.data.is_none() && self.reads_in_place(h, launch.task))
            .map(|s| Box::new(in_place(s, on_host.and_then(|p| p.file_size))));
        TaskRequest {
            arg: planned.arg.clone(),
            inputs: planned.input.iter().filter(|s| s.data.is_none() && in_place.is_none()).map(|s| s.hash).collect(),
            input_data: planned.input.as_ref().and_then(|s| s.data.as_deref()).map(<[u8]>::to_vec),
            input_file: in_place,
            shuffle_out: self.shuffle_out(),
            skip_bad: launch.skip_bad,
            keep_output: (job.output.on_hosts || job.output.held) && job.reduce.is_none(),
            ..self.common(h, launch, &job.map, command)
        }
    }

    /// True when host `h` reads the input of task `task` itself, where it
    /// lives: any input on this machine's own (local) hosts, which see the
    /// driver's files; a `shared:` input or a host's own file elsewhere.
    pub(super) fn reads_in_place(&self, h: &Host, task: u32) -> bool {
        if self.held_input(task).is_some() {
            return false;
        }
        if h.spec.transport == TransportKind::Local {
            return true;
        }
        // A program's partitions say each for itself (a `shared:` file
        // beside parts only this machine holds).
        let partition = self.plan.tasks[task as usize].partition as usize;
        match self.job.input.parts.as_ref().and_then(|p| p.get(partition)) {
            Some(part) => part.file_size.is_some(),
            None => self.plan.shared_input,
        }
    }

    /// The host that holds task `task`'s input, when only a host does (a
    /// program's cached part).
    pub(super) fn held_input(&self, task: u32) -> Option<&str> {
        let partition = self.plan.tasks[task as usize].partition as usize;
        self.job.input.parts.as_ref()?.get(partition)?.held_on.as_deref()
    }

    /// What a request of `launch` on `h` carries whatever its stage: who
    /// it is, its command, the step's limits, the run's variables, and its
    /// place in its stage.
    fn common(&mut self, h: &Host, launch: Launch, step: &StepSpec, command: String) -> TaskRequest {
        let planned = &self.plan.tasks[launch.task as usize];
        TaskRequest {
            env_id: self.run_env(h),
            partition: planned.partition,
            stage: planned.stage,
            partitions: self.book.stage_size(planned.stage) as u32,
            timeout_ms: step.timeout.map(|t| t.as_millis() as u64),
            container: self.container(step, launch.attempt),
            resident: step.resident,
            slots: h.slots(),
            ..TaskRequest::new(self.plan.run_id.to_string(), launch.task, launch.attempt, command)
        }
    }

    /// The container of a step that names an image.
    fn container(&self, step: &StepSpec, attempt: u32) -> Option<shoal_wire::Container> {
        let image = step.image.clone()?;
        Some(shoal_wire::Container {
            image,
            name: format!("shoal-{}-{attempt}", self.plan.run_id),
            memory: step.memory,
            cpus: step.cpus,
            network: step.network,
        })
    }

    /// The key format of the shuffle, from `[reduce]`.
    fn key_format(&self) -> Option<KeyFormat> {
        let r = self.job.reduce.as_ref()?;
        Some(KeyFormat { sep: r.key.sep.as_bytes().to_vec(), fields: r.key.fields as u32, numeric: r.sort == SortOrder::Numeric })
    }

    /// What a map task does with its output when the job has a reduce.
    fn shuffle_out(&self) -> Option<ShuffleOut> {
        let r = self.job.reduce.as_ref()?;
        Some(ShuffleOut {
            partitions: self.book.stage_size(1) as u32,
            key: self.key_format()?,
            modulo: r.partitioner == Partitioner::Modulo,
            combine: self.job.combine.as_ref().map(|c| c.command.clone()),
            sort_buffer: r.sort_buffer,
        })
    }

    /// The id of the variables every task of the run gets on host `h`;
    /// the first call sends them (`RunEnv`, ahead of any task naming it:
    /// both travel in the link's ordered control queue).
    fn run_env(&mut self, h: &Host) -> u64 {
        if let Some(id) = self.env_ids.get(&h.index) {
            return *id;
        }
        let mut env: Vec<(String, String)> = h.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let work = format!("{}/runs/{}/work", h.info.workdir, self.plan.run_id);
        env.extend([
            ("SHOAL_HOST".into(), h.name().to_string()),
            // Where the agent keeps bin/, blocks/ and runs/: what outlives
            // a run on the host (the Python package's environments) goes
            // under it.
            ("SHOAL_AGENT_DIR".into(), h.info.workdir.clone()),
            ("SHOAL_RUN".into(), self.plan.run_id.to_string()),
            ("SHOAL_SEED".into(), self.job.job.seed.to_string()),
            ("SHOAL_PARAMS".into(), format!("{work}/{PARAMS_PATH}")),
        ]);
        for (k, v) in &self.job.params {
            env.push((format!("SHOAL_PARAM_{}", k.to_ascii_uppercase()), v.to_env()));
        }
        let id = h.next_id();
        // A host that is gone gets no task either; its loss is reported on its own.
        if let Err(e) = h.send_now(Message::RunEnv { run: self.plan.run_id.to_string(), id, env, params: self.plan.params.clone() }) {
            if !e.is_gone() {
                let why =
                    format!("the run's task variables (the host's env and [params]) are too large: {e}; put big data in a [sync] file");
                self.book.fail(why);
            }
        }
        self.env_ids.insert(h.index, id);
        id
    }
}

/// A partition read where it lives: its file by absolute path (the agent
/// runs elsewhere), and the file's size, which the host checks: as the
/// partition says (`InputPart::file_size`: the host aligns its range to
/// lines), else as this machine sees it now.
fn in_place(s: &crate::driver::blocks::Source, on_host: Option<u64>) -> InputFile {
    if let Some(size) = on_host {
        return InputFile { path: s.path.display().to_string(), offset: s.offset, len: s.len, size, lines: true };
    }
    let path = std::path::absolute(&s.path).unwrap_or_else(|_| s.path.clone());
    let size = std::fs::metadata(&path).map_or(s.offset + s.len, |m| m.len());
    InputFile { path: path.display().to_string(), offset: s.offset, len: s.len, size, lines: false }
}
