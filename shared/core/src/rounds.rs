//! Rounds: callers asking for the same work at once share it. At most one round per key runs;
//! a caller that arrives while one runs waits for the next round, which starts after it
//! arrived and so sees everything that happened before. The refresh of a period on deadline
//! day and the "has the table moved?" probe of every read coalesce this way: under load the
//! work runs about once per round trip, not once per caller.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

/// Coalesced work per key, each round answering with a `V`.
#[derive(Debug)]
pub struct Rounds<K, V> {
    rounds: Mutex<HashMap<K, Round<V>>>,
    finished: Notify,
}

impl<K, V> Default for Rounds<K, V> {
    fn default() -> Self {
        Rounds {
            rounds: Mutex::new(HashMap::new()),
            finished: Notify::new(),
        }
    }
}

/// One key's callers: how many asked, how many the last finished round covers, its answer.
#[derive(Debug)]
struct Round<V> {
    running: bool,
    asked: u64,
    covered: u64,
    answer: Option<V>,
}

impl<V> Default for Round<V> {
    fn default() -> Self {
        Round {
            running: false,
            asked: 0,
            covered: 0,
            answer: None,
        }
    }
}

/// What a caller does next.
enum Turn<V> {
    Answered(V),
    Wait,
    Run(u64),
}

impl<K: Eq + Hash + Clone, V: Clone> Rounds<K, V> {
    /// The answer of a round of `work` that started after this call: either this caller's own
    /// `work`, or another caller's started later than this one arrived. A failed round's
    /// error goes to the caller that ran it; its waiters run the next round.
    pub async fn run<F, Fut, E>(&self, key: &K, work: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let mine = self.with(key, |r| {
            r.asked += 1;
            r.asked
        });
        let target = loop {
            // Registered before looking, so a round finishing in between still wakes us.
            let finished = self.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            let turn = self.with(key, |r| match &r.answer {
                Some(answer) if r.covered >= mine => Turn::Answered(answer.clone()),
                _ if r.running => Turn::Wait,
                _ => {
                    r.running = true;
                    Turn::Run(r.asked)
                }
            });
            match turn {
                Turn::Answered(answer) => return Ok(answer),
                Turn::Wait => finished.await,
                Turn::Run(target) => break target,
            }
        };
        // Dropped however the round ends, also when the caller is cancelled mid-round (a
        // client that hung up): the next waiter then runs it.
        let _running = Running { rounds: self, key };
        let result = work().await;
        if let Ok(answer) = &result {
            self.with(key, |r| {
                r.covered = target;
                r.answer = Some(answer.clone());
            });
        }
        result
    }

    fn with<T>(&self, key: &K, f: impl FnOnce(&mut Round<V>) -> T) -> T {
        let mut rounds = self.rounds.lock().unwrap_or_else(PoisonError::into_inner);
        match rounds.get_mut(key) {
            Some(round) => f(round),
            None => f(rounds.entry(key.clone()).or_default()),
        }
    }
}

/// A round in progress; ends it when dropped.
struct Running<'a, K: Eq + Hash + Clone, V: Clone> {
    rounds: &'a Rounds<K, V>,
    key: &'a K,
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for Running<'_, K, V> {
    fn drop(&mut self) {
        self.rounds.with(self.key, |r| r.running = false);
        self.rounds.finished.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[tokio::test]
    async fn callers_arriving_during_a_round_share_the_next() {
        let rounds: Rounds<&str, u64> = Rounds::default();
        let runs = AtomicU64::new(0);
        let gate = tokio::sync::Semaphore::new(0);
        let work = || async {
            // The first round waits until everyone has arrived.
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 1 {
                gate.acquire().await.unwrap().forget();
            }
            Ok::<u64, ()>(n)
        };
        let callers = (0..8).map(|_| rounds.run(&"k", work));
        let all = futures::future::join_all(callers);
        let release = async {
            tokio::task::yield_now().await;
            gate.add_permits(1);
        };
        let (answers, ()) = tokio::join!(all, release);
        let answers: Vec<u64> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers[0], 1, "the first ran alone");
        assert!(answers[1..].iter().all(|a| *a == 2), "{answers:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // A later caller never gets an answer from before it arrived.
        assert_eq!(rounds.run(&"k", work).await, Ok(3));
        // Keys are independent.
        assert_eq!(rounds.run(&"other", work).await, Ok(4));
    }

    #[tokio::test]
    async fn a_cancelled_round_is_run_again_by_a_waiter() {
        let rounds: Rounds<(), u64> = Rounds::default();
        let never = rounds.run(&(), std::future::pending::<Result<u64, ()>>);
        let waiting = rounds.run(&(), || async { Ok::<u64, ()>(2) });
        tokio::pin!(waiting);
        // The first caller starts its round, the second waits for the next; then the first
        // hangs up.
        tokio::select! {
            biased;
            _ = never => unreachable!(),
            _ = &mut waiting => panic!("answered before the first round ended"),
            () = tokio::task::yield_now() => {}
        }
        let answer = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await;
        assert_eq!(answer.expect("the waiter took the round over"), Ok(2));
    }

    #[tokio::test]
    async fn a_failed_round_is_run_again_by_a_waiter() {
        let rounds: Rounds<(), u64> = Rounds::default();
        let runs = AtomicU64::new(0);
        let first = rounds.run(&(), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Err::<u64, &str>("down")
        });
        let second = rounds.run(&(), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<u64, &str>(7)
        });
        let (first, second) = tokio::join!(first, second);
        assert_eq!(first, Err("down"));
        assert_eq!(second, Ok(7));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
