//! Event-time sessions of one user shard, exactly as `promotion/sessions.py` specifies them.
//!
//! A user's events below the watermark are folded into open `Session`s; events at or above it wait
//! in `pending`, sorted by (ts, event_id). A session closes once the watermark passes its logout or
//! its end + gap; at end of input everything closes. Each user has a timer, a lower bound of the
//! watermark after which something of the user can close.

use std::cmp::Reverse;
use std::collections::BinaryHeap;


use crate::event::{Event, Kind};
use crate::watermark::Watermark;
use crate::compact::{push_exact, IdSet};
use crate::Map;

pub const END_OF_TIME: i64 = i64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    Gap,
    Logout,
    Eof,
}

impl CloseReason {
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Gap => "gap",
            CloseReason::Logout => "logout",
            CloseReason::Eof => "eof",
        }
    }
}

/// What a session remembers of its events, folded in (ts, event_id) order.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub start: i64,
    pub first_event_id: Box<str>,
    pub end: i64,
    pub events: u32,
    pub logged_out: bool,
    pub type_counts: [u32; 7],
    /// Cart and prices, only for sessions that touched a cart (most never do).
    pub basket: Option<Box<Basket>>,
    pub viewed: Vec<Box<str>>,
    pub categories: Vec<Box<str>>,
    pub event_ids: IdSet,
}

/// What a session knows of its cart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Basket {
    /// product -> quantity > 0, in insertion order.
    pub cart: Vec<(Box<str>, i64)>,
    /// product -> last price seen.
    pub prices: Vec<(Box<str>, f64)>,
}

fn add_unique(set: &mut Vec<Box<str>>, value: &str) {
    if !set.iter().any(|v| &**v == value) {
        push_exact(set, value.into());
    }
}

impl Session {
    pub fn starting_with(event: &Event) -> Session {
        let mut session = Session {
            start: event.ts,
            first_event_id: event.event_id.clone(),
            end: event.ts,
            events: 0,
            logged_out: false,
            type_counts: [0; 7],
            basket: None,
            viewed: Vec::new(),
            categories: Vec::new(),
            event_ids: IdSet::default(),
        };
        session.add(event);
        session
    }

    /// Whether an event that sorts after this session's events belongs to it.
    pub fn takes(&self, event: &Event, gap_ms: i64) -> bool {
        !self.logged_out && event.ts - self.end <= gap_ms
    }

    /// Fold in an event that sorts after every event already in the session.
    pub fn add(&mut self, event: &Event) {
        self.end = event.ts;
        self.events += 1;
        self.event_ids.insert_new(&event.event_id);
        self.type_counts[event.kind.index()] += 1;
        let product = event.product_id.as_deref().unwrap_or("");
        match event.kind {
            Kind::ProductView => add_unique(&mut self.viewed, product),
            Kind::AddToCart => {
                let basket = self.basket.get_or_insert_with(Box::default);
                match basket.cart.iter_mut().find(|(p, _)| &**p == product) {
                    Some((_, qty)) => *qty += event.quantity,
                    None => push_exact(&mut basket.cart, (product.into(), event.quantity)),
                }
                if let Some(price) = event.price {
                    match basket.prices.iter_mut().find(|(p, _)| &**p == product) {
                        Some((_, last)) => *last = price,
                        None => push_exact(&mut basket.prices, (product.into(), price)),
                    }
                }
            }
            Kind::RemoveFromCart => {
                if let Some(basket) = &mut self.basket {
                    if let Some(i) = basket.cart.iter().position(|(p, _)| &**p == product) {
                        let left = basket.cart[i].1 - event.quantity;
                        if left > 0 {
                            basket.cart[i].1 = left;
                        } else {
                            basket.cart.remove(i);
                        }
                    }
                }
            }
            Kind::PaymentComplete => {
                if let Some(basket) = &mut self.basket {
                    basket.cart = Vec::new(); // everything in the cart was purchased
                }
            }
            Kind::Logout => self.logged_out = true,
            Kind::Login | Kind::CheckoutStart => {}
        }
        if matches!(event.kind, Kind::ProductView | Kind::AddToCart) {
            if let Some(category) = &event.category {
                add_unique(&mut self.categories, category);
            }
        }
    }

    pub fn cart(&self) -> &[(Box<str>, i64)] {
        self.basket.as_ref().map_or(&[], |b| &b.cart)
    }

    pub fn prices(&self) -> &[(Box<str>, f64)] {
        self.basket.as_ref().map_or(&[], |b| &b.prices)
    }

    pub fn closes_at(&self, gap_ms: i64) -> i64 {
        if self.logged_out {
            self.end
        } else {
            self.end + gap_ms
        }
    }
}

pub struct ClosedSession {
    pub user_id: Box<str>,
    pub session: Session,
    pub reason: CloseReason,
}

/// One user's open state.
#[derive(Default)]
pub struct UserSessions {
    pub open: Vec<Session>,
    pub pending: Vec<Event>,
    pub timer: Option<i64>,
}

impl UserSessions {
    fn knows(&self, event_id: &str) -> bool {
        self.open.iter().any(|s| s.event_ids.contains(event_id))
            || self.pending.iter().any(|e| &*e.event_id == event_id)
    }

    /// Insert in (ts, event_id) order; returns where.
    fn insert_pending(&mut self, event: Event) -> usize {
        let at = self.pending.partition_point(|e| e.order_key() < event.order_key());
        if self.pending.len() == self.pending.capacity() {
            self.pending.reserve_exact(1);
        }
        self.pending.insert(at, event);
        at
    }

    /// Fold pending events below the watermark into sessions; returns sessions started.
    fn settle(&mut self, watermark: i64, gap_ms: i64) -> u64 {
        let ready = self.pending.partition_point(|e| e.ts < watermark);
        let mut opened = 0;
        for event in self.pending.drain(..ready) {
            match self.open.last_mut() {
                Some(last) if last.takes(&event, gap_ms) => last.add(&event),
                _ => {
                    push_exact(&mut self.open, Session::starting_with(&event));
                    opened += 1;
                }
            }
        }
        if self.pending.is_empty() {
            self.pending = Vec::new(); // give its room back: most users wait with nothing pending
        }
        opened
    }

    fn close_ready(&mut self, watermark: i64, gap_ms: i64, user_id: &str, out: &mut Vec<ClosedSession>) {
        let mut closable = 0;
        for session in &self.open {
            if session.logged_out || session.end + gap_ms < watermark {
                closable += 1;
            } else {
                break;
            }
        }
        for session in self.open.drain(..closable) {
            let reason = if session.logged_out { CloseReason::Logout } else { CloseReason::Gap };
            out.push(ClosedSession { user_id: user_id.into(), session, reason });
        }
        if self.open.is_empty() && closable > 0 {
            self.open = Vec::new();
        }
    }

    fn close_all(&mut self, watermark: i64, gap_ms: i64, user_id: &str, out: &mut Vec<ClosedSession>) {
        let last = self.open.len().saturating_sub(1);
        for (i, session) in self.open.drain(..).enumerate() {
            let reason = if session.logged_out {
                CloseReason::Logout
            } else if i < last || session.end + gap_ms < watermark {
                CloseReason::Gap
            } else {
                CloseReason::Eof
            };
            out.push(ClosedSession { user_id: user_id.into(), session, reason });
        }
    }

    /// The watermark after which the first session closes if nothing else arrives.
    fn deadline(&self, gap_ms: i64) -> Option<i64> {
        let (mut end, rest) = if let Some(first) = self.open.first() {
            if first.logged_out {
                return Some(first.end);
            }
            (first.end, &self.pending[..])
        } else {
            let first = self.pending.first()?;
            if first.kind == Kind::Logout {
                return Some(first.ts);
            }
            (first.ts, &self.pending[1..])
        };
        for event in rest {
            if event.ts - end > gap_ms {
                break;
            }
            end = event.ts;
            if event.kind == Kind::Logout {
                return Some(end);
            }
        }
        Some(end + gap_ms)
    }
}

pub struct LateEvent {
    pub event: Event,
    pub watermark: i64,
}

/// The open sessions of one shard's users, and its watermark.
pub struct ShardSessions {
    pub gap_ms: i64,
    pub watermark: Watermark,
    pub users: Map<Box<str>, UserSessions>,
    timers: BinaryHeap<Reverse<(i64, Box<str>)>>,
    pub opened: u64,
    pub duplicates: u64,
}

impl ShardSessions {
    pub fn new(gap_ms: i64, lateness_ms: i64, idle_timeout_ms: i64, partitions: &[String], now_ms: i64) -> Self {
        ShardSessions {
            gap_ms,
            watermark: Watermark::new(partitions, lateness_ms, idle_timeout_ms, now_ms),
            users: Map::default(),
            timers: BinaryHeap::new(),
            opened: 0,
            duplicates: 0,
        }
    }

    /// This shard's events of one batch of one input partition, in partition order.
    /// `highs_before[i]`: the partition's newest ts among the batch's records before event i.
    #[allow(clippy::too_many_arguments)]
    pub fn on_batch(
        &mut self,
        partition: &str,
        events: Vec<Event>,
        highs_before: &[i64],
        batch_high: i64,
        now_ms: i64,
        last: bool,
        closed: &mut Vec<ClosedSession>,
        late: &mut Vec<LateEvent>,
    ) {
        if !events.is_empty() {
            let lateness = self.watermark.lateness_ms;
            let floor = self.watermark.floor_excluding(partition, now_ms);
            let mut high = self.watermark.high_of(partition);
            let mut value = self.watermark.value.max(high.min(floor) - lateness);
            for (event, &before) in events.into_iter().zip(highs_before) {
                if before > high {
                    high = before;
                    value = value.max(high.min(floor) - lateness);
                }
                self.arrive(event, value, closed, late);
            }
            self.watermark.value = value;
            self.watermark.raise_high(partition, high);
        }
        self.watermark.end_batch(partition, batch_high, now_ms, last);
        self.fire_timers(closed);
    }

    /// A repeat of an event the user still has open is dropped, even behind the watermark (a
    /// producer retry, not a late event); otherwise an event behind it is late.
    fn arrive(&mut self, event: Event, watermark: i64, closed: &mut Vec<ClosedSession>, late: &mut Vec<LateEvent>) {
        let gap = self.gap_ms;
        let timers = &mut self.timers;
        if let Some(user) = self.users.get_mut(&*event.user_id) {
            self.opened += user.settle(watermark, gap);
            user.close_ready(watermark, gap, &event.user_id, closed);
            if user.knows(&event.event_id) {
                self.duplicates += 1;
                return;
            }
            if event.ts < watermark {
                late.push(LateEvent { event, watermark });
                return;
            }
            // Something is pending now, so the user stays; only its timer may move earlier.
            let at = user.insert_pending(event);
            if let Some(due) = user.deadline(gap) {
                if user.timer.map_or(true, |t| due < t) {
                    user.timer = Some(due);
                    timers.push(Reverse((due, user.pending[at].user_id.clone())));
                }
            }
        } else if event.ts < watermark {
            late.push(LateEvent { event, watermark });
        } else {
            let mut user = UserSessions::default();
            let user_id = event.user_id.clone();
            user.insert_pending(event);
            Self::lower_timer(&mut user, timers, gap, &user_id);
            self.users.insert(user_id, user);
        }
    }

    /// Schedule the user's deadline if it is earlier than its timer (a later deadline keeps the
    /// earlier timer, which reschedules exactly when it fires).
    fn lower_timer(user: &mut UserSessions, timers: &mut BinaryHeap<Reverse<(i64, Box<str>)>>, gap_ms: i64, user_id: &str) {
        if let Some(due) = user.deadline(gap_ms) {
            if user.timer.map_or(true, |t| due < t) {
                user.timer = Some(due);
                timers.push(Reverse((due, user_id.into())));
            }
        }
    }

    pub fn on_tick(&mut self, now_ms: i64, closed: &mut Vec<ClosedSession>) {
        self.watermark.advance(now_ms);
        self.fire_timers(closed);
    }

    pub fn on_eof(&mut self, closed: &mut Vec<ClosedSession>) {
        let watermark = self.watermark.value;
        for (user_id, mut user) in self.users.drain() {
            self.opened += user.settle(END_OF_TIME, self.gap_ms);
            user.close_all(watermark, self.gap_ms, &user_id, closed);
        }
        self.timers.clear();
    }

    /// Keep the user's timer at or below its exact deadline; drop a user with nothing open.
    fn schedule(
        users: &mut Map<Box<str>, UserSessions>,
        timers: &mut BinaryHeap<Reverse<(i64, Box<str>)>>,
        gap_ms: i64,
        user_id: &str,
    ) {
        let Some(user) = users.get_mut(user_id) else { return };
        if user.deadline(gap_ms).is_none() {
            users.remove(user_id);
        } else {
            Self::lower_timer(user, timers, gap_ms, user_id);
        }
    }

    fn fire_timers(&mut self, closed: &mut Vec<ClosedSession>) {
        let watermark = self.watermark.value;
        let gap = self.gap_ms;
        while let Some(Reverse((due, _))) = self.timers.peek() {
            if *due >= watermark {
                break;
            }
            let Reverse((due, user_id)) = self.timers.pop().expect("peeked");
            let Some(user) = self.users.get_mut(&user_id) else { continue };
            if user.timer != Some(due) {
                continue; // stale: the user has an earlier timer that already fired
            }
            user.timer = None;
            self.opened += user.settle(watermark, gap);
            user.close_ready(watermark, gap, &user_id, closed);
            Self::schedule(&mut self.users, &mut self.timers, gap, &user_id);
        }
    }

    /// Adopt restored users: fold what is below the watermark, schedule every user.
    pub fn load_users(&mut self, users: Map<Box<str>, UserSessions>) {
        let watermark = self.watermark.value;
        for (user_id, mut user) in users {
            user.pending.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
            user.settle(watermark, self.gap_ms);
            user.timer = None;
            self.users.insert(user_id.clone(), user);
            Self::schedule(&mut self.users, &mut self.timers, self.gap_ms, &user_id);
        }
    }
}
