//! The leader's tasks: what each was doing, and from which shard and holding, so that
//! its result goes back to that shard as an event, a lost task included. It must not
//! carry anything out itself.

use std::collections::HashMap;

use tokio::task::{Id, JoinError, JoinSet};

use crate::config::{FunctionId, TargetName};
use crate::runtime::knowing::aas::TakeoverOutcome;
use crate::runtime::shard::Event;
use crate::runtime::shard::due::Lane;

/// What a task was doing, for the event that tells its shard it was lost.
#[derive(Debug, Clone)]
pub(super) enum Job {
    Pass,
    Read(Lane),
    Write(FunctionId),
    History,
    TakeOver(TargetName),
}

impl Job {
    fn label(&self) -> &'static str {
        match self {
            Job::Pass => "evaluation",
            Job::Read(_) | Job::History => "read",
            Job::Write(_) | Job::TakeOver(_) => "write",
        }
    }

    fn lost(self) -> Event {
        match self {
            Job::Pass => Event::PassLost,
            Job::Read(lane) => Event::ReadLost { lane },
            Job::Write(function) => Event::WriteLost { function },
            Job::History => Event::HistoryRead(Vec::new()),
            Job::TakeOver(target) => Event::TookOver {
                target,
                outcome: TakeoverOutcome::Failed("the takeover task was lost".into()),
            },
        }
    }
}

/// A task's shard: its index and the generation it was started in.
pub(super) type FromShard = (usize, u64);

/// The tasks of every shard, each ending with its shard and an event.
#[derive(Default)]
pub(super) struct Tasks {
    set: JoinSet<(FromShard, Event)>,
    kinds: HashMap<Id, (FromShard, Job)>,
}

impl Tasks {
    pub(super) fn spawn(
        &mut self,
        shard: FromShard,
        task: Job,
        work: impl Future<Output = Event> + Send + 'static,
    ) {
        let handle = self.set.spawn(async move { (shard, work.await) });
        self.kinds.insert(handle.id(), (shard, task));
    }

    /// The next task to end, as its shard's event; a lost task is counted.
    pub(super) async fn next(
        &mut self,
        shared_metrics: &crate::metrics::Metrics,
    ) -> Option<(FromShard, Event)> {
        let joined = self.set.join_next_with_id().await?;
        Some(self.ended(joined, shared_metrics))
    }

    fn ended(
        &mut self,
        joined: Result<(Id, (FromShard, Event)), JoinError>,
        metrics: &crate::metrics::Metrics,
    ) -> (FromShard, Event) {
        match joined {
            Ok((id, ended)) => {
                self.kinds.remove(&id);
                ended
            }
            Err(error) => {
                let (shard, task) = self
                    .kinds
                    .remove(&error.id())
                    .expect("every task is recorded under its id");
                super::super::count_task_failure(metrics, task.label(), &error);
                (shard, task.lost())
            }
        }
    }

    pub(super) fn abort_all(&mut self) {
        self.set.abort_all();
    }

    pub(super) fn len(&self) -> usize {
        self.set.len()
    }
}
