//! The daemon's writes in flight, and the per-function mark that keeps them to one
//! at a time per function.
//!
//! The mark is released by [`Writes::join_next`] whenever a task ends, whether it
//! returned, panicked or was aborted, so no path can leave a function locked. It must
//! not decide anything: what to write and what to do after is the loop's business.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use tokio::task::{Id, JoinError, JoinSet};

use crate::config::TargetName;

/// What a write task holds while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub target: TargetName,
    pub function: String,
}

pub struct Writes<T> {
    tasks: JoinSet<T>,
    held: HashMap<Id, Held>,
    functions: HashSet<String>,
}

impl<T: Send + 'static> Default for Writes<T> {
    fn default() -> Self {
        Self {
            tasks: JoinSet::new(),
            held: HashMap::new(),
            functions: HashSet::new(),
        }
    }
}

impl<T: Send + 'static> Writes<T> {
    /// Whether a write to `function` is under way.
    pub fn busy(&self, function: &str) -> bool {
        self.functions.contains(function)
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Starts `write` for `held.target`, marking `held.function` busy until it ends.
    pub fn spawn(&mut self, held: Held, write: impl Future<Output = T> + Send + 'static) {
        self.functions.insert(held.function.clone());
        let handle = self.tasks.spawn(write);
        self.held.insert(handle.id(), held);
    }

    /// The next write to end, with what it held (already released). `None` when no
    /// write is in flight.
    pub async fn join_next(&mut self) -> Option<(Held, Result<T, JoinError>)> {
        let joined = self.tasks.join_next_with_id().await?;
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(error) => error.id(),
        };
        let held = self
            .held
            .remove(&id)
            .expect("every spawned write is recorded under its task id");
        self.functions.remove(&held.function);
        Some((held, joined.map(|(_, value)| value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(function: &str) -> Held {
        Held {
            target: format!("{function}:live").into(),
            function: function.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_panicking_write_releases_its_function() {
        let mut writes = Writes::<u32>::default();
        writes.spawn(held("f"), async { panic!("injected panic inside a write") });
        writes.spawn(held("g"), async { 7 });
        assert!(writes.busy("f") && writes.busy("g"));
        let mut ended = Vec::new();
        while let Some((held, result)) = writes.join_next().await {
            ended.push((held.function, result.map_err(|error| error.is_panic())));
        }
        ended.sort();
        assert_eq!(
            ended,
            vec![("f".to_owned(), Err(true)), ("g".to_owned(), Ok(7))]
        );
        assert!(!writes.busy("f") && !writes.busy("g"));
        assert_eq!(writes.len(), 0);
    }

    #[tokio::test]
    async fn an_aborted_write_releases_its_function() {
        let mut writes = Writes::<()>::default();
        writes.spawn(held("f"), std::future::pending());
        writes.tasks.abort_all();
        let (held, result) = writes.join_next().await.expect("one write");
        assert_eq!(held.function, "f");
        assert!(result.is_err_and(|error| error.is_cancelled()));
        assert!(!writes.busy("f"));
    }
}
