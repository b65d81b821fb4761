//! The engine's part of a format-7 shard snapshot (`promotion/snapshot.py` documents the layout):
//! `{"watermark": W, "high": {partition: ts}, "users": {user_id: {"sessions": [...], "pending": [...]}}}`.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::event::{Event, Kind};
use crate::sessions::{Basket, Session, ShardSessions, UserSessions};
use crate::compact::IdSet;
use crate::Map;

struct Pairs<'a, T>(&'a [(Box<str>, T)]);

impl<T: Serialize> Serialize for Pairs<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(&**k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct SessionOut<'a> {
    start: i64,
    first_event_id: &'a str,
    end: i64,
    events: u32,
    logged_out: bool,
    type_counts: &'a [u32; 7],
    cart: Pairs<'a, i64>,
    prices: Pairs<'a, f64>,
    viewed: Vec<&'a str>,
    categories: Vec<&'a str>,
    event_ids: Vec<&'a str>,
}

type EventOut<'a> = (i64, &'a str, &'static str, &'a str, Option<&'a str>, Option<&'a str>, Option<f64>, i64);

#[derive(Serialize)]
struct UserOut<'a> {
    sessions: Vec<SessionOut<'a>>,
    pending: Vec<EventOut<'a>>,
}

struct Users<'a>(&'a Map<Box<str>, UserSessions>);

impl Serialize for Users<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (user_id, user) in self.0 {
            map.serialize_entry(&**user_id, &user_out(user))?;
        }
        map.end()
    }
}

fn sorted<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = items.collect();
    v.sort_unstable();
    v
}

fn user_out(user: &UserSessions) -> UserOut<'_> {
    UserOut {
        sessions: user
            .open
            .iter()
            .map(|s| SessionOut {
                start: s.start,
                first_event_id: &s.first_event_id,
                end: s.end,
                events: s.events,
                logged_out: s.logged_out,
                type_counts: &s.type_counts,
                cart: Pairs(s.cart()),
                prices: Pairs(s.prices()),
                viewed: sorted(s.viewed.iter().map(|v| &**v)),
                categories: sorted(s.categories.iter().map(|v| &**v)),
                event_ids: sorted(s.event_ids.iter()),
            })
            .collect(),
        pending: user
            .pending
            .iter()
            .map(|e| {
                (e.ts, &*e.event_id, e.kind.name(), &*e.source, e.product_id.as_deref(), e.category.as_deref(), e.price, e.quantity)
            })
            .collect(),
    }
}

#[derive(Serialize)]
struct StateOut<'a> {
    watermark: i64,
    high: &'a HashMap<String, i64>,
    users: Users<'a>,
}

/// The engine's part of the snapshot, as a JSON object.
pub fn state_json(shard: &ShardSessions) -> Vec<u8> {
    serde_json::to_vec(&StateOut {
        watermark: shard.watermark.value,
        high: &shard.watermark.high,
        users: Users(&shard.users),
    })
    .expect("plain data serializes")
}

// -- reading --------------------------------------------------------------------------------------

struct PairsIn<T>(Vec<(Box<str>, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for PairsIn<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = PairsIn<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PairsIn<T>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.push((k.into_boxed_str(), v));
                }
                Ok(PairsIn(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[derive(Deserialize)]
struct SessionIn {
    start: i64,
    first_event_id: Box<str>,
    end: i64,
    events: u32,
    logged_out: bool,
    type_counts: [u32; 7],
    cart: PairsIn<i64>,
    prices: PairsIn<f64>,
    viewed: Vec<Box<str>>,
    categories: Vec<Box<str>>,
    event_ids: Vec<Box<str>>,
}

type EventIn = (i64, Box<str>, Kind, Box<str>, Option<Box<str>>, Option<Box<str>>, Option<f64>, i64);

#[derive(Deserialize)]
struct UserIn {
    sessions: Vec<SessionIn>,
    pending: Vec<EventIn>,
}

#[derive(Deserialize)]
struct StateIn {
    watermark: i64,
    high: HashMap<String, i64>,
    users: HashMap<String, UserIn>,
}

/// Adopt a format-7 document's watermark, partition marks and users.
pub fn load_json(shard: &mut ShardSessions, document: &[u8], now_ms: i64) -> Result<(), serde_json::Error> {
    let state: StateIn = serde_json::from_slice(document)?;
    shard.watermark.restore(state.high, state.watermark, now_ms);
    let users = state
        .users
        .into_iter()
        .map(|(user_id, user)| {
            let user_id: Box<str> = user_id.into_boxed_str();
            let sessions = user
                .sessions
                .into_iter()
                .map(|s| Session {
                    start: s.start,
                    first_event_id: s.first_event_id,
                    end: s.end,
                    events: s.events,
                    logged_out: s.logged_out,
                    type_counts: s.type_counts,
                    basket: if s.cart.0.is_empty() && s.prices.0.is_empty() {
                        None
                    } else {
                        Some(Box::new(Basket { cart: s.cart.0, prices: s.prices.0 }))
                    },
                    viewed: s.viewed,
                    categories: s.categories,
                    event_ids: IdSet::from_ids(s.event_ids),
                })
                .collect();
            let pending = user
                .pending
                .into_iter()
                .map(|(ts, event_id, kind, source, product_id, category, price, quantity)| Event {
                    ts,
                    event_id,
                    user_id: user_id.clone(),
                    kind,
                    source,
                    product_id,
                    category,
                    price,
                    quantity,
                })
                .collect();
            (user_id, UserSessions { open: sessions, pending, timer: None })
        })
        .collect();
    shard.load_users(users);
    Ok(())
}
