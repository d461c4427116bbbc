//! What a topic's snapshot holds (its lanes and the workers to wake), and
//! the subscription bookkeeping it is built from.

use crate::core::producer::SlotKind;
use crate::lane::rings::Lane;
use crate::loom::sync::Arc;
use crate::runtime::sub_state::SubShared;
use crate::runtime::workers::{Runtime, WorkerShared, DRAINING, RUNNING};

/// One lane of a snapshot and the workers to wake after pushing to it.
pub(crate) struct Target<T> {
    pub(super) lane: Arc<Lane<T>>,
    pub(super) wake: Vec<Arc<WorkerShared>>,
}

/// The immutable snapshot producers read: the lanes with live subscriptions.
pub(crate) struct Targets<T> {
    pub(super) state: u8,
    pub(super) lanes: Vec<Target<T>>,
}

impl<T> Targets<T> {
    /// Whether a slot of `kind` may publish: anyone while running; only
    /// handlers (worker slots) while draining.
    #[inline(always)]
    pub(super) fn accepts(&self, kind: SlotKind) -> bool {
        self.state == RUNNING || (self.state == DRAINING && kind == SlotKind::Worker)
    }
}

/// Subscription bookkeeping, changed under `TopicShared::control`.
pub(super) struct Control<T> {
    pub(super) state: u8,
    /// Live lanes by id (a lane's index in producer views); `None`: a free
    /// id, reused by the next new lane.
    pub(super) lanes: Vec<Option<Arc<Lane<T>>>>,
    /// Lane id of each worker's lane, while it has one.
    pub(super) worker_lane: Vec<Option<usize>>,
    /// Live plain subscriptions per worker.
    pub(super) worker_subs: Vec<usize>,
    /// Groups with at least one member (a group whose last member leaves is
    /// removed, and its lane retired).
    pub(super) groups: Vec<GroupEntry>,
    /// Live subscriptions, in subscription order, for `Engine::metrics`:
    /// pushed once the worker has the handler, removed by their detach.
    pub(super) subs: Vec<LiveSub<T>>,
}

/// A live subscription as the topic lists it (`Control::subs`).
pub(super) struct LiveSub<T> {
    pub(super) shared: Arc<SubShared>,
    /// The group's name, for a group member.
    pub(super) group: Option<Box<str>>,
    /// The lane it takes its events from (fixed for its life).
    pub(super) lane: Arc<Lane<T>>,
    pub(super) worker: usize,
}

pub(super) struct GroupEntry {
    pub(super) name: Box<str>,
    /// Lane id.
    pub(super) lane: usize,
    /// Live members per worker.
    pub(super) members: Vec<usize>,
    /// Members placed so far (round-robin cursor).
    pub(super) placed: usize,
}

impl<T> Control<T> {
    /// A new lane, under the first free id.
    pub(super) fn new_lane(&mut self, group: bool, capacity: usize) -> Arc<Lane<T>> {
        let id = match self.lanes.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.lanes.push(None);
                self.lanes.len() - 1
            }
        };
        let lane = Arc::new(Lane::new(id, group, capacity));
        self.lanes[id] = Some(lane.clone());
        lane
    }

    pub(super) fn lane(&self, id: usize) -> Option<&Arc<Lane<T>>> {
        self.lanes.get(id).and_then(Option::as_ref)
    }

    pub(super) fn worker_lane(&mut self, w: usize, capacity: usize) -> Arc<Lane<T>> {
        if let Some(lane) = self.worker_lane[w].and_then(|id| self.lane(id)) {
            return lane.clone();
        }
        let lane = self.new_lane(false, capacity);
        self.worker_lane[w] = Some(lane.id);
        lane
    }

    /// Takes worker `w`'s lane out of the bookkeeping and retires it (its
    /// last subscription left).
    pub(super) fn retire_worker_lane(&mut self, w: usize) -> Option<Arc<Lane<T>>> {
        let id = self.worker_lane[w].take()?;
        let lane = self.lanes.get_mut(id)?.take()?;
        lane.retire();
        Some(lane)
    }

    pub(super) fn group(&mut self, name: &str, workers: usize, capacity: usize) -> usize {
        if let Some(g) = self.groups.iter().position(|g| &*g.name == name) {
            return g;
        }
        let name: Box<str> = name.into();
        let lane = self.new_lane(true, capacity);
        self.groups.push(GroupEntry {
            name,
            lane: lane.id,
            members: vec![0; workers],
            placed: 0,
        });
        self.groups.len() - 1
    }

    /// The group whose lane is `lane`, if it is still live.
    pub(super) fn group_of(&self, lane: &Arc<Lane<T>>) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| self.lane(g.lane).is_some_and(|l| Arc::ptr_eq(l, lane)))
    }

    /// Drops subscription `id` from the live list (its detach).
    pub(super) fn forget(&mut self, id: u64) {
        self.subs.retain(|s| s.shared.id != id);
    }

    /// Whether any subscription (plain or group member) is live.
    pub(super) fn has_subscribers(&self) -> bool {
        self.worker_subs.iter().any(|&n| n > 0) || !self.groups.is_empty()
    }

    /// The snapshot for the current bookkeeping.
    pub(super) fn targets(&self, runtime: &Runtime) -> Targets<T> {
        let mut lanes = Vec::new();
        for (w, id) in self.worker_lane.iter().enumerate() {
            let lane = id.and_then(|id| self.lane(id));
            if let (Some(lane), true) = (lane, self.worker_subs[w] > 0) {
                lanes.push(Target {
                    lane: lane.clone(),
                    wake: vec![runtime.workers[w].clone()],
                });
            }
        }
        for g in &self.groups {
            let wake: Vec<_> = (g.members.iter().enumerate())
                .filter(|(_, &m)| m > 0)
                .map(|(w, _)| runtime.workers[w].clone())
                .collect();
            if let (Some(lane), false) = (self.lane(g.lane), wake.is_empty()) {
                lanes.push(Target {
                    lane: lane.clone(),
                    wake,
                });
            }
        }
        Targets {
            state: self.state,
            lanes,
        }
    }
}
