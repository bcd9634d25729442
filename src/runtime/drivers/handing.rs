//! What both drivers do with Application Auto Scaling (AAS): read which targets its
//! scalable targets manage, with the handover records of the shard, and take a target
//! over: the record kept first, then its scaling suspended.
//!
//! What it must not do: decide who may write a target (`knowing::aas` does), or
//! deregister or delete anything of AAS.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::aws::{ItemTable, ScalableTarget, ScalingApi, SuspendedState};
use crate::config::{ShardKey, TargetConfig};
use crate::runtime::knowing::aas::TakeoverOutcome;
use crate::runtime::state::handover::{Handovers, Taking};
use crate::runtime::state::store::{Document as _, Store};

/// Where a shard's handover records are kept, if anywhere.
pub struct Records<T> {
    pub shard: ShardKey,
    pub store: Option<Arc<Store<T>>>,
}

impl<T: ItemTable> Records<T> {
    /// The records of this shard; none where none are kept.
    async fn load(&self) -> Result<Handovers, String> {
        let Some(store) = &self.store else {
            return Ok(Handovers::empty());
        };
        let (mut handovers, _) = store.load::<Handovers>().await?;
        handovers
            .records
            .retain(|record| record.is_of_shard(&self.shard));
        Ok(handovers)
    }

    /// AAS's scalable targets and this shard's records, read at once.
    pub async fn read_aas<S: ScalingApi>(
        &self,
        scaling: &S,
    ) -> (
        Result<Vec<ScalableTarget>, String>,
        Result<Handovers, String>,
    ) {
        let (scalable, records) = tokio::join!(scaling.lambda_targets(), self.load());
        (scalable.map_err(|error| error.to_string()), records)
    }

    /// Takes `target` over: the record first (kept only if none is), then the
    /// suspension of all its scaling. A target the record says was handed back is
    /// left as it is.
    pub async fn take_over<S: ScalingApi>(
        &self,
        scaling: &S,
        target: &TargetConfig,
        before: SuspendedState,
        now: DateTime<Utc>,
    ) -> TakeoverOutcome {
        let Some(store) = &self.store else {
            return TakeoverOutcome::Failed(
                "take_over_aas needs somewhere to keep what it suspends: [leader] or daemon.state_directory".into(),
            );
        };
        let (function, qualifier) = (target.function.name.as_str(), target.qualifier.as_str());
        let recorded = store
            .change(|handovers: &mut Handovers| {
                Ok(handovers.taking(&self.shard, (function, qualifier), before, now))
            })
            .await;
        match recorded {
            Err(error) => TakeoverOutcome::Failed(format!("the record could not be kept: {error}")),
            Ok(Taking::HandedBack) => TakeoverOutcome::HandedBack,
            Ok(Taking::Recorded) => {
                match scaling
                    .set_suspended(function, qualifier, SuspendedState::ALL)
                    .await
                {
                    Ok(()) => TakeoverOutcome::Done,
                    Err(error) => {
                        TakeoverOutcome::Failed(format!("RegisterScalableTarget: {error}"))
                    }
                }
            }
        }
    }
}
