//! One simulated run: a signed in-process cluster, a network and faults
//! drawn from the seed, and a checker after every step.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use pbft_core::{
    Cluster, ClusterAuth, Config, Digest, Envelope, Event, ExecResult, Input, KvService, Output,
    ReplicaId, Request, Seq, SlotPhase,
};

use super::describe::describe;
use super::profile::{
    Draw, Profile, LARGE_CHUNK, LARGE_LINE, LARGE_MAX_BATCH, LARGE_MAX_REQUEST, LARGE_VALUE,
};

/// Steps between ticks of every replica.
const TICK_EVERY: u64 = 10;
/// Steps a client waits before retrying at every honest replica.
const RETRY_EVERY: u64 = 1000;
/// The liveness bound: steps after the faults stop.
pub const LIVENESS_STEPS: u64 = 60_000;

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The faults it drew.
    pub profile: Profile,
    /// The first violation, if any.
    pub failure: Option<String>,
    /// Steps taken.
    pub steps: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// The last events before the end, for a failure report.
    pub trace: VecDeque<String>,
    /// A digest of every event, to show that a seed replays exactly.
    pub fingerprint: Digest,
}

struct Sim {
    profile: Profile,
    cluster: Cluster<KvService>,
    rng: fastrand::Rng,
    queue: Vec<(u64, Envelope)>,
    step: u64,
    /// Replicas down: each stops until it restarts.
    crashed: BTreeSet<usize>,
    /// Replicas down with empty memory: the messages they sent before and
    /// that are still queued are lost too. (What a replica that crashed
    /// with its disk had sent is on the network and arrives.)
    unsent: BTreeSet<usize>,
    partitioned: Option<Vec<usize>>,
    faults_on: bool,
    requests: Vec<(Request, u64)>,
    /// Liveness probes: each honest replica's one request, sent to it
    /// alone, once, when the faults stop.
    probes: BTreeMap<usize, Request>,
    /// The replicas that have answered their probe.
    answered: BTreeSet<usize>,
    checker: Checker,
    /// Why a crashed replica could not start again, if one could not.
    restart_failure: Option<String>,
    trace: VecDeque<String>,
    fingerprint: Vec<u8>,
    verbose: bool,
}

/// The fault profile seed `seed` draws: the first thing [`run`] draws
/// from it.
pub fn profile_of(seed: u64, draw: Draw) -> Profile {
    Profile::of_seed(seed, draw).0
}

/// How to run one seed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Which faults the seed draws.
    pub draw: Draw,
    /// The replicas use a deliberately wrong quorum (the self-test).
    pub broken_quorum: bool,
    /// The run ends after the safety phase.
    pub safety_only: bool,
    /// Every control message sent and every rejection is printed to stderr.
    pub verbose: bool,
}

/// Runs seed `seed` as `options` say.
pub fn run(seed: u64, options: Options) -> Outcome {
    let Options {
        draw,
        broken_quorum,
        safety_only,
        verbose,
    } = options;
    let (profile, rng) = Profile::of_seed(seed, draw);
    let mut config = Config::new(profile.n).with_checkpoint_interval(profile.k);
    config.view_change_timeout = profile.view_change_timeout;
    if profile.large_values {
        // A request fits; a batch of three does, a view change carrying
        // the batches of a window would not.
        config.max_request_bytes = LARGE_MAX_REQUEST;
        config.max_batch_bytes = LARGE_MAX_BATCH;
        // The state goes in chunks that fit the line: it soon outgrows it.
        config.state_chunk_bytes = LARGE_CHUNK;
    }
    if broken_quorum {
        // Commit on f + 1 instead of 2f + 1.
        config.broken_quorum_for_self_test = Some((profile.n - 1) / 3 + 1);
    }
    let cluster = Cluster::durable(&config, ClusterAuth::Seeded(seed), |_| KvService::default())
        .expect("the profile's configuration is valid");
    let honest: BTreeSet<usize> = (0..profile.n)
        .filter(|r| profile.byzantine(*r).is_none())
        .collect();
    let mut sim = Sim {
        checker: Checker::new(honest, profile.n),
        restart_failure: None,
        profile,
        cluster,
        rng,
        queue: Vec::new(),
        step: 0,
        crashed: BTreeSet::new(),
        unsent: BTreeSet::new(),
        partitioned: None,
        faults_on: true,
        requests: Vec::new(),
        probes: BTreeMap::new(),
        answered: BTreeSet::new(),
        trace: VecDeque::new(),
        fingerprint: Vec::new(),
        verbose,
    };
    let failure = sim.play(safety_only).err();
    Outcome {
        seed,
        delivered: sim.cluster.delivered(),
        steps: sim.step,
        trace: sim.trace,
        fingerprint: Digest::of(&sim.fingerprint),
        profile: sim.profile,
        failure,
    }
}

impl Sim {
    fn play(&mut self, safety_only: bool) -> Result<(), String> {
        let plan: Vec<u64> = {
            let end = self.profile.safety_steps * 2 / 3;
            let mut at: Vec<u64> = (0..self.profile.requests)
                .map(|_| self.rng.u64(0..end))
                .collect();
            at.sort_unstable();
            at
        };
        // Safety phase: faults on.
        while self.step < self.profile.safety_steps {
            self.faults();
            while self.requests.len() < plan.len() && plan[self.requests.len()] <= self.step {
                self.submit_new();
            }
            self.advance()?;
        }
        self.checker.status_history(&self.cluster)?;
        if safety_only {
            return Ok(());
        }
        // Liveness phase: the partition heals, the crashed replica
        // restarts, and only the lasting loss stays; Byzantine replicas
        // stay Byzantine. Every honest replica gets one request of its own,
        // sent to it alone and never again, as a client that talks to one
        // node does: the cluster as a whole progressing is not enough,
        // each honest replica must answer its client.
        self.faults_on = false;
        self.partitioned = None;
        self.unsent.clear();
        for r in std::mem::take(&mut self.crashed) {
            self.restart(r);
        }
        self.send_probes();
        let deadline = self.step + LIVENESS_STEPS;
        loop {
            let missing = self.checker.missing_anywhere(self.requests.len());
            let silent: Vec<usize> = self
                .probes
                .keys()
                .filter(|r| !self.answered.contains(r))
                .copied()
                .collect();
            if missing.is_empty() && silent.is_empty() {
                break;
            }
            if self.step >= deadline {
                let what = if missing.is_empty() {
                    format!("replicas {silent:?} did not answer their own client")
                } else {
                    format!("requests {missing:?} not executed on every honest replica")
                };
                return Err(format!(
                    "liveness: {what} within {LIVENESS_STEPS} steps of the faults stopping\n{}",
                    self.replica_states()
                ));
            }
            if self.step.is_multiple_of(RETRY_EVERY) {
                self.retry();
            }
            self.advance()?;
        }
        self.checker.status_history(&self.cluster)
    }

    /// Sends each honest replica its liveness probe.
    fn send_probes(&mut self) {
        for r in self.checker.honest.clone() {
            let request = Request::new(&format!("p{r}"), Some(1), &format!("set p{r}=live"));
            self.note(format!("probe p{r} -> r{r}"));
            self.cluster.submit(ReplicaId(r as u32), request.clone());
            self.probes.insert(r, request);
        }
    }

    /// Notes the probes that `events` answer: their own replica executed
    /// them, or answered them from its cache.
    fn note_answers(&mut self, events: &[Event]) {
        for event in events {
            let r = event.replica.index();
            let Some(probe) = self.probes.get(&r) else {
                continue;
            };
            let answered = match &event.output {
                Output::Executed(x) => x.batch.requests().contains(probe),
                Output::Answered { request, .. } => request == probe,
                _ => false,
            };
            if answered {
                self.answered.insert(r);
            }
        }
    }

    /// One step: a tick now and then, then one message delivered.
    fn advance(&mut self) -> Result<(), String> {
        self.step += 1;
        if self.step.is_multiple_of(TICK_EVERY) {
            for r in 0..self.profile.n {
                if !self.crashed.contains(&r) {
                    self.cluster.tick(ReplicaId(r as u32));
                }
            }
        }
        // Drawn only when the profile has early syncs, so that the runs of
        // profiles without them replay as they did before.
        if self.profile.early_sync > 0 && self.rng.u32(0..1000) < self.profile.early_sync {
            // A replica that is down syncs nothing.
            let r = self.rng.usize(0..self.profile.n);
            if !self.crashed.contains(&r) {
                self.cluster.sync(ReplicaId(r as u32));
            }
        }
        self.collect_sends();
        self.deliver_one();
        if let Some(failure) = self.restart_failure.take() {
            return Err(failure);
        }
        self.observe()
    }

    fn faults(&mut self) {
        if let Some((r, at, back)) = self.profile.crash {
            if self.step == at {
                self.crashed.insert(r);
                self.unsent.insert(r);
                self.note(format!("crash r{r}"));
            }
            if self.step == back && self.crashed.remove(&r) {
                self.unsent.remove(&r);
                self.restart(r);
            }
        }
        if let Some((replicas, at, back)) = self.profile.disk_crash.clone() {
            if self.step == at {
                self.note(format!("crash {replicas:?} with their disks"));
                for &r in &replicas {
                    self.crash_in_step(r);
                }
                self.crashed.extend(&replicas);
            }
            if self.step == back {
                for r in replicas {
                    if self.crashed.remove(&r) {
                        self.restart(r);
                    }
                }
            }
        }
        if let Some((side, at, heal)) = self.profile.partition.clone() {
            if self.step == at {
                self.partitioned = Some(side.clone());
                self.note(format!("partition {side:?}"));
            }
            if self.step == heal {
                self.partitioned = None;
                self.note("heal".into());
            }
        }
    }

    /// Crashes replica `r` in the middle of a step: it takes the next
    /// message queued for it (or a tick), and only a prefix of that step's
    /// outputs, drawn from the seed, is carried out. Records written but
    /// not synced by then are lost, as are the outputs after the prefix.
    fn crash_in_step(&mut self, r: usize) {
        let id = ReplicaId(r as u32);
        let input = match self.queue.iter().position(|(_, e)| e.to == id) {
            Some(k) => {
                let (_, envelope) = self.queue.remove(k);
                Input::Message {
                    from: envelope.from,
                    signed: envelope.signed,
                }
            }
            None => Input::Tick,
        };
        let carried = self.rng.usize(0..16);
        match self.cluster.crash_in_step(id, input, carried) {
            Ok(total) => self.note(format!(
                "r{r} crashed after {} of its step's {total} outputs",
                carried.min(total)
            )),
            Err(e) => self.restart_failure = Some(format!("r{r} could not crash: {e}")),
        }
    }

    /// Starts crashed replica `r` again: from its disk if it crashed with
    /// it, else with empty memory and an empty disk.
    fn restart(&mut self, r: usize) {
        let id = ReplicaId(r as u32);
        let with_disk = self
            .profile
            .disk_crash
            .as_ref()
            .is_some_and(|(replicas, _, _)| replicas.contains(&r));
        let restarted = if with_disk {
            self.note(format!("restart r{r} from its disk"));
            let before = self.checker.last[r];
            let restored = self.cluster.crash_with_disk(id, KvService::default());
            let after = self.cluster.replica(id).last_executed();
            if restored.is_ok() && after < before {
                self.restart_failure = Some(format!(
                    "durability: r{r} executed through {before} before its crash, but only \
                     through {after} after restarting from its disk"
                ));
            }
            restored
        } else {
            self.note(format!("restart r{r} with empty memory"));
            self.cluster.restart(id, KvService::default())
        };
        self.checker.restarted(r);
        if let Err(e) = restarted {
            self.restart_failure = Some(format!("r{r} could not restart: {e}"));
        }
    }

    /// A random honest replica that is up, if any is.
    fn honest_target(&mut self) -> Option<usize> {
        let up = |r: usize| self.profile.byzantine(r).is_none() && !self.crashed.contains(&r);
        if !(0..self.profile.n).any(up) {
            return None;
        }
        loop {
            let r = self.rng.usize(0..self.profile.n);
            if self.profile.byzantine(r).is_none() && !self.crashed.contains(&r) {
                return Some(r);
            }
        }
    }

    fn submit_new(&mut self) {
        let i = self.requests.len();
        let value = if self.profile.large_values {
            format!("{i}{}", "v".repeat(LARGE_VALUE))
        } else {
            i.to_string()
        };
        let request = Request::new(&format!("c{i}"), Some(1), &format!("set k{i}={value}"));
        match self.honest_target() {
            Some(to) => {
                self.note(format!("client c{i} -> r{to}"));
                self.cluster.submit(ReplicaId(to as u32), request.clone());
            }
            // Every honest replica is down: the client's retries in the
            // liveness phase deliver it.
            None => self.note(format!("client c{i}: every honest replica is down")),
        }
        self.requests.push((request, self.step));
    }

    /// Clients whose request has not executed widely enough send it again
    /// to every honest replica, as PBFT clients do.
    fn retry(&mut self) {
        let missing = self.checker.missing(self.requests.len(), self.profile.n);
        for i in missing {
            let request = self.requests[i].0.clone();
            for r in 0..self.profile.n {
                if self.profile.byzantine(r).is_none() {
                    self.cluster.submit(ReplicaId(r as u32), request.clone());
                }
            }
        }
    }

    /// Moves the cluster's outgoing messages onto the simulated network,
    /// through the Byzantine behaviours and the network's faults.
    fn collect_sends(&mut self) {
        let sent = self.cluster.take_in_flight();
        let mut i = 0;
        while i < sent.len() {
            // Consecutive envelopes with one message are one multicast.
            let mut j = i + 1;
            while j < sent.len() && sent[j].from == sent[i].from && sent[j].signed == sent[i].signed
            {
                j += 1;
            }
            let from = sent[i].from;
            let targets: Vec<ReplicaId> = sent[i..j].iter().map(|e| e.to).collect();
            if self.verbose {
                self.print_send(from, &targets, &sent[i].signed.message);
            }
            let outgoing = match self.profile.byzantine(from.index()) {
                Some(behaviour) => {
                    behaviour.apply(self.cluster.replica(from), targets, sent[i].signed.clone())
                }
                None => targets
                    .into_iter()
                    .map(|t| (t, sent[i].signed.clone()))
                    .collect(),
            };
            for (to, signed) in outgoing {
                if self.profile.large_values && signed.message.payload_size() > LARGE_LINE {
                    // Over the transport's line: lost every time.
                    continue;
                }
                let envelope = Envelope { from, to, signed };
                let loss = if self.faults_on {
                    self.profile.loss
                } else {
                    self.profile.lasting_loss
                };
                if self.rng.u32(0..1000) < loss {
                    continue;
                }
                let copies = if self.faults_on && self.rng.u32(0..1000) < self.profile.duplicate {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let delay = if self.faults_on {
                        self.rng.u64(0..=self.profile.max_delay)
                    } else {
                        0
                    };
                    self.queue.push((self.step + delay, envelope.clone()));
                }
            }
            i = j;
        }
    }

    fn deliver_one(&mut self) {
        let due: Vec<usize> = (0..self.queue.len())
            .filter(|&k| self.queue[k].0 <= self.step)
            .collect();
        if due.is_empty() {
            return;
        }
        let pick = if self.profile.reorder && self.faults_on {
            due[self.rng.usize(0..due.len())]
        } else {
            due[0]
        };
        let (_, envelope) = self.queue.remove(pick);
        let (from, to) = (envelope.from.index(), envelope.to.index());
        if self.crashed.contains(&to) || self.unsent.contains(&from) {
            return;
        }
        if let Some(side) = &self.partitioned {
            if side.contains(&from) != side.contains(&to) {
                return;
            }
        }
        self.fingerprint
            .extend_from_slice(&pbft_core::message_bytes(&envelope.signed.message));
        self.note(format!(
            "r{from} -> r{to}: {}",
            envelope.signed.message.kind()
        ));
        self.cluster.deliver(envelope);
    }

    fn observe(&mut self) -> Result<(), String> {
        let events = self.cluster.take_events();
        for event in &events {
            self.fingerprint
                .extend_from_slice(format!("{:?}", event.output).as_bytes());
            if let Output::Executed(x) = &event.output {
                self.note(format!(
                    "r{} executed #{} {:?}",
                    event.replica.0, x.seq.0, x.digest
                ));
            }
            if self.verbose {
                let replica = self.cluster.replica(event.replica);
                match &event.output {
                    Output::Executed(x) => eprintln!(
                        "step {} tick {}: r{} executed {} {:?} ({} requests, {} {})",
                        self.step,
                        self.step / TICK_EVERY,
                        event.replica.0,
                        x.seq,
                        x.digest,
                        x.batch.requests().len(),
                        x.view,
                        replica.view()
                    ),
                    Output::Restored { seq, .. } => eprintln!(
                        "step {} tick {}: r{} restored {seq}",
                        self.step,
                        self.step / TICK_EVERY,
                        event.replica.0
                    ),
                    _ => {}
                }
                if let Output::Rejected { from, kind, reason } = &event.output {
                    eprintln!(
                        "step {} tick {}: r{} rejected {kind} from r{}: {reason}",
                        self.step,
                        self.step / TICK_EVERY,
                        event.replica.0,
                        from.0
                    );
                }
            }
        }
        self.note_answers(&events);
        self.checker.observe(&self.cluster, &events)
    }

    /// With `--verbose`: a control message as it leaves its sender.
    fn print_send(&self, from: ReplicaId, to: &[ReplicaId], message: &pbft_core::Message) {
        let Some(what) = describe(message) else {
            return;
        };
        let to: Vec<u32> = to.iter().map(|r| r.0).collect();
        let sender = self.cluster.replica(from);
        eprintln!(
            "step {} tick {}: r{} sends {what} to {to:?} (it is in {}{}; queue {})",
            self.step,
            self.step / TICK_EVERY,
            from.0,
            sender.view(),
            if sender.view_active() {
                ""
            } else {
                ", changing"
            },
            self.queue.len()
        );
    }

    /// One line per replica: where it stands, for a liveness report.
    fn replica_states(&self) -> String {
        let mut lines = Vec::new();
        for replica in self.cluster.replicas() {
            let r = replica.id().index();
            let role = match self.profile.byzantine(r) {
                Some(behaviour) => format!("Byzantine: {behaviour}"),
                None => "honest".to_string(),
            };
            lines.push(format!(
                "  r{r} ({role}): {} {}, executed {}, stable checkpoint {}, behind {:?}, \
                 timeout {}, timer {:?} at tick {}, view changes held {:?}",
                replica.view(),
                if replica.view_active() {
                    "active"
                } else {
                    "changing"
                },
                replica.last_executed(),
                replica.stable_checkpoint().seq,
                replica.behind(),
                replica.view_change_timeout(),
                replica.view_change_deadline(),
                replica.ticks(),
                replica
                    .view_changes()
                    .map(|vc| (vc.replica.0, vc.new_view.0))
                    .collect::<Vec<_>>(),
            ));
        }
        lines.join("\n")
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == 40 {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("step {}: {line}", self.step));
    }
}

/// The safety checks, after every step.
struct Checker {
    honest: BTreeSet<usize>,
    /// The digest executed at each number by any honest replica.
    chosen: BTreeMap<Seq, Digest>,
    /// Each honest replica's last executed number.
    last: Vec<Seq>,
    /// The digest of every stable checkpoint an honest replica reached.
    stable: BTreeMap<Seq, Digest>,
    /// The result of each executed request.
    results: BTreeMap<String, ExecResult>,
    /// Which honest replicas executed each request (by client).
    executed_by: BTreeMap<String, BTreeSet<usize>>,
    /// The number each request executed at (by client).
    executed_at: BTreeMap<String, Seq>,
}

impl Checker {
    fn new(honest: BTreeSet<usize>, n: usize) -> Checker {
        Checker {
            honest,
            chosen: BTreeMap::new(),
            last: vec![Seq(0); n],
            stable: BTreeMap::new(),
            results: BTreeMap::new(),
            executed_by: BTreeMap::new(),
            executed_at: BTreeMap::new(),
        }
    }

    /// Status tells the truth about the past: every number an honest
    /// replica executed still reports executed, with the batch chosen
    /// there (or as collected by a checkpoint), whatever view changes came
    /// after.
    fn status_history(&self, cluster: &Cluster<KvService>) -> Result<(), String> {
        for &r in &self.honest {
            let replica = cluster.replica(ReplicaId(r as u32));
            for n in 1..=self.last[r].0 {
                let status = replica.status(Seq(n));
                let chosen = self.chosen.get(&Seq(n));
                let digest_ok = status.digest.is_none() || status.digest.as_ref() == chosen;
                if !status.executed || !digest_ok {
                    return Err(format!(
                        "r{r} executed through {} but its status for {n} reports {} \
                         (executed: {}, digest {:?})",
                        self.last[r], status.phase, status.executed, status.digest
                    ));
                }
            }
        }
        Ok(())
    }

    fn restarted(&mut self, r: usize) {
        self.last[r] = Seq(0);
    }

    fn observe(&mut self, cluster: &Cluster<KvService>, events: &[Event]) -> Result<(), String> {
        for event in events
            .iter()
            .filter(|e| self.honest.contains(&e.replica.index()))
        {
            let r = event.replica.index();
            match &event.output {
                Output::Restored { seq, .. } => self.last[r] = *seq,
                Output::Executed(x) => {
                    if x.seq != self.last[r].next() {
                        return Err(format!(
                            "gap: r{r} executed {} after {}",
                            x.seq, self.last[r]
                        ));
                    }
                    self.last[r] = x.seq;
                    let first = *self.chosen.entry(x.seq).or_insert(x.digest);
                    if first != x.digest {
                        return Err(format!(
                            "agreement: r{r} executed {:?} at {}, another honest replica {:?}",
                            x.digest, x.seq, first
                        ));
                    }
                    let status = cluster.replica(event.replica).status(x.seq);
                    let phase = status.phase;
                    if !matches!(phase, SlotPhase::Committed | SlotPhase::Checkpointed) {
                        return Err(format!(
                            "r{r} executed {} without a commit certificate ({phase})",
                            x.seq
                        ));
                    }
                    if phase == SlotPhase::Committed && status.digest != Some(x.digest) {
                        return Err(format!(
                            "r{r} executed {:?} at {} but its status reports {:?}",
                            x.digest, x.seq, status.digest
                        ));
                    }
                    for (request, result) in x.batch.requests().iter().zip(&x.results) {
                        let client = request.client.as_str().to_string();
                        self.results
                            .entry(client.clone())
                            .or_insert_with(|| result.clone());
                        self.executed_at.entry(client.clone()).or_insert(x.seq);
                        self.executed_by.entry(client).or_default().insert(r);
                    }
                }
                Output::Answered {
                    request, result, ..
                } => {
                    let client = request.client.as_str();
                    if self
                        .results
                        .get(client)
                        .is_some_and(|first| first != result)
                    {
                        return Err(format!(
                            "r{r} answered {client} with {result}, not what was executed"
                        ));
                    }
                }
                _ => {}
            }
        }
        for &r in &self.honest {
            let stable = cluster.replica(ReplicaId(r as u32)).stable_checkpoint();
            let first = *self.stable.entry(stable.seq).or_insert(stable.digest);
            if first != stable.digest {
                return Err(format!("stable checkpoints disagree at {}", stable.seq));
            }
        }
        Ok(())
    }

    /// Requests whose effects some honest replica's state does not hold
    /// yet: not executed anywhere, or executed at a number beyond some
    /// honest replica's last executed (or restored) one.
    fn missing_anywhere(&self, requests: usize) -> Vec<usize> {
        (0..requests)
            .filter(|i| match self.executed_at.get(&format!("c{i}")) {
                None => true,
                Some(seq) => self.honest.iter().any(|&r| self.last[r] < *seq),
            })
            .collect()
    }

    /// Requests not yet executed by f + 1 honest replicas: their clients
    /// do not have the `f + 1` matching replies they wait for.
    fn missing(&self, requests: usize, n: usize) -> Vec<usize> {
        let weak = (n - 1) / 3 + 1;
        (0..requests)
            .filter(|i| {
                self.executed_by
                    .get(&format!("c{i}"))
                    .map_or(0, |s| s.len())
                    < weak
            })
            .collect()
    }
}
