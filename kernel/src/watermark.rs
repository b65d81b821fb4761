//! Event-time progress of one shard, as `promotion/watermark.py` keeps it: per input partition the
//! newest ts seen, the minimum over active partitions minus the allowed lateness, never going back;
//! wall-clock idleness so silent input still lets time move on.

use std::collections::{HashMap, HashSet};

use crate::event::NO_TIME;

const NO_FLOOR: i64 = 1 << 62;

pub struct Watermark {
    pub lateness_ms: i64,
    pub idle_timeout_ms: i64,
    /// Newest ts seen per partition (NO_TIME: known but not heard from yet).
    pub high: HashMap<String, i64>,
    /// Wall-clock ms at which each partition was last heard from (not persisted).
    seen: HashMap<String, i64>,
    /// Partitions that reported their end: they never hold the watermark back.
    finished: HashSet<String>,
    pub value: i64,
}

impl Watermark {
    pub fn new(partitions: &[String], lateness_ms: i64, idle_timeout_ms: i64, now_ms: i64) -> Self {
        Watermark {
            lateness_ms,
            idle_timeout_ms,
            high: partitions.iter().map(|p| (p.clone(), NO_TIME)).collect(),
            seen: partitions.iter().map(|p| (p.clone(), now_ms)).collect(),
            finished: HashSet::new(),
            value: NO_TIME,
        }
    }

    /// Adopt a snapshot's partition marks and value (each partition gets a fresh idle timeout).
    pub fn restore(&mut self, high: HashMap<String, i64>, value: i64, now_ms: i64) {
        for (name, mark) in high {
            self.seen.entry(name.clone()).or_insert(now_ms);
            self.high.insert(name, mark);
        }
        self.value = value;
    }

    pub fn high_of(&self, partition: &str) -> i64 {
        self.high.get(partition).copied().unwrap_or(NO_TIME)
    }

    pub fn raise_high(&mut self, partition: &str, high: i64) {
        if high > self.high_of(partition) {
            self.high.insert(partition.to_owned(), high);
        }
    }

    /// Min high-water mark over the other active partitions (NO_TIME holds it back).
    pub fn floor_excluding(&self, partition: &str, now_ms: i64) -> i64 {
        let limit = now_ms - self.idle_timeout_ms;
        let mut floor = NO_FLOOR;
        for (name, &high) in &self.high {
            if name != partition && self.seen[name] > limit && high < floor && !self.finished.contains(name) {
                floor = high;
            }
        }
        floor
    }

    /// Record a partition's progress after one of its batches, and advance.
    pub fn end_batch(&mut self, partition: &str, batch_high: i64, now_ms: i64, last: bool) {
        if last {
            self.finished.insert(partition.to_owned());
        } else {
            self.finished.remove(partition);
        }
        if batch_high > self.high_of(partition) || !self.high.contains_key(partition) {
            self.high.insert(partition.to_owned(), batch_high.max(self.high_of(partition)));
        }
        self.seen.insert(partition.to_owned(), now_ms);
        self.advance(now_ms);
    }

    /// Recompute from the partitions' marks; move forward by wall clock when all are idle.
    pub fn advance(&mut self, now_ms: i64) {
        if self.high.is_empty() {
            return;
        }
        let limit = now_ms - self.idle_timeout_ms;
        let active = self
            .high
            .iter()
            .filter(|(name, _)| self.seen[*name] > limit && !self.finished.contains(*name))
            .map(|(_, &high)| high)
            .min();
        let candidate = match active {
            Some(floor) => {
                if floor == NO_TIME {
                    return;
                }
                floor - self.lateness_ms
            }
            None => {
                let latest = self.high.values().copied().max().unwrap_or(NO_TIME);
                if latest == NO_TIME {
                    return;
                }
                if self.finished.len() < self.high.len() {
                    // idle, not ended: time goes on at wall-clock speed
                    let last_seen = self.seen.values().copied().max().unwrap_or(now_ms);
                    latest - self.lateness_ms + (now_ms - last_seen)
                } else {
                    latest - self.lateness_ms // every partition ended: nothing moves time on
                }
            }
        };
        if candidate > self.value {
            self.value = candidate;
        }
    }
}
