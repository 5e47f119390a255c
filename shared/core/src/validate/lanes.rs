//! Where blocks of rows are checked: on a few worker threads side by side, or on the calling
//! thread. Either way the results come back in the order the blocks went in, and at most two
//! blocks per worker are in flight, so memory stays bounded however fast the file is read.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::Scope;

use super::ValidateError;
use super::rows::{BlockChecked, RowChecker};
use crate::sheets::RowBlock;

type Work<'a> = (Arc<RowChecker<'a>>, RowBlock);
type Done = Result<BlockChecked, ValidateError>;

/// One worker: blocks go in, their results come out, in order.
struct Lane<'a> {
    work: SyncSender<Work<'a>>,
    done: Receiver<Done>,
}

pub struct Lanes<'a> {
    lanes: Vec<Lane<'a>>,
    /// Results of blocks checked on the calling thread, when there are no workers.
    inline: VecDeque<Done>,
    sent: usize,
    received: usize,
}

/// Blocks a worker may hold: one being checked, one waiting.
const PER_LANE: usize = 2;

impl<'a> Lanes<'a> {
    /// No worker threads: each block is checked when it is sent.
    pub fn inline() -> Lanes<'a> {
        Lanes {
            lanes: Vec::new(),
            inline: VecDeque::new(),
            sent: 0,
            received: 0,
        }
    }

    /// `workers` threads in `scope`, which ends when this is dropped and they have finished.
    pub fn spawn<'scope, 'env>(scope: &'scope Scope<'scope, 'env>, workers: usize) -> Lanes<'a>
    where
        'a: 'scope,
    {
        let lanes = (0..workers)
            .map(|_| {
                let (work, work_rx) = sync_channel::<Work<'a>>(PER_LANE);
                let (done_tx, done) = sync_channel::<Done>(PER_LANE);
                scope.spawn(move || {
                    for (checker, block) in work_rx {
                        if done_tx.send(checker.check(block)).is_err() {
                            break;
                        }
                    }
                });
                Lane { work, done }
            })
            .collect();
        Lanes {
            lanes,
            ..Lanes::inline()
        }
    }

    /// As many workers as the machine has cores for, up to four: the reading thread and the
    /// Parquet writer need their share too.
    pub fn workers() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    }

    /// Whether another block can be sent before the oldest result is taken in. Results
    /// checked on the calling thread are held the same way, so they are taken in as often.
    pub fn has_room(&self) -> bool {
        self.sent - self.received < PER_LANE * self.lanes.len().max(1)
    }

    pub(super) fn send(&mut self, checker: &Arc<RowChecker<'a>>, block: RowBlock) {
        if self.lanes.is_empty() {
            self.inline.push_back(checker.check(block));
        } else {
            let lane = &self.lanes[self.sent % self.lanes.len()];
            // A worker is gone only if it panicked; receiving this block's result says so.
            let _ = lane.work.send((checker.clone(), block));
        }
        self.sent += 1;
    }

    /// The result of the oldest block not yet received, waiting for it; `None` when every
    /// block sent has been received.
    pub(super) fn receive(&mut self) -> Option<Done> {
        if self.received == self.sent {
            return None;
        }
        let done = if self.lanes.is_empty() {
            self.inline.pop_front()?
        } else {
            let lane = &self.lanes[self.received % self.lanes.len()];
            lane.done.recv().unwrap_or(Err(ValidateError::Stopped))
        };
        self.received += 1;
        Some(done)
    }
}
