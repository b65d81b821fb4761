//! A shard of users as `promotion/shard.py` keeps it: the sessions, the users' profiles, the
//! rules in force, and what closed sessions produce, in emission order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::Kind;
use crate::facts::{cart_value, notification_id, notification_json, Facts};
use crate::profiles::{Profile, ProfileFacts};
use crate::rules::RuleSet;
use crate::sessions::{ClosedSession, CloseReason, ShardSessions};
use crate::Map;

/// A notification, encoded, with what the Python side needs for its record and metrics.
pub struct Notification {
    pub user_id: Box<str>,
    pub value: Vec<u8>,
    pub id: String,
    pub action: &'static str,
    pub rule: String,
}

/// What a closed session tells the metrics.
pub struct ClosedStats {
    pub reason: CloseReason,
    pub start: i64,
    pub end: i64,
    pub events: u32,
}

#[derive(Default)]
pub struct StepOutput {
    pub notifications: Vec<Notification>,
    pub closed: Vec<ClosedStats>,
}

pub struct Shard {
    pub sessions: ShardSessions,
    profile_ttl_ms: i64,
    pub profiles: Map<Box<str>, Profile>,
    expiries: BinaryHeap<Reverse<(i64, Box<str>)>>,
    rules: Option<RuleSet>,
    /// The rules document in force, as given (kept in snapshots).
    rules_document: Option<Vec<u8>>,
}

impl Shard {
    pub fn new(sessions: ShardSessions, profile_ttl_ms: i64) -> Shard {
        Shard { sessions, profile_ttl_ms, profiles: Map::default(), expiries: BinaryHeap::new(), rules: None, rules_document: None }
    }

    pub fn set_rules(&mut self, document: &[u8]) -> Result<(), String> {
        self.rules = Some(RuleSet::from_document(document)?);
        self.rules_document = Some(document.to_vec());
        Ok(())
    }

    pub fn rules_document(&self) -> Option<&[u8]> {
        self.rules_document.as_deref()
    }

    /// Facts, decisions and notifications of closed sessions, in emission order; each session
    /// is then folded into its user's profile (rules see the profile as it was before).
    pub fn finish(&mut self, mut closed: Vec<ClosedSession>, out: &mut StepOutput) {
        let gap = self.sessions.gap_ms;
        closed.sort_by(|a, b| {
            let key = |c: &ClosedSession| (c.session.closes_at(gap), c.session.start);
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0)
                .then_with(|| a.user_id.cmp(&b.user_id))
                .then_with(|| ka.1.cmp(&kb.1))
                .then_with(|| a.session.first_event_id.cmp(&b.session.first_event_id))
        });
        let ttl = self.profile_ttl_ms;
        let uses_profile = self.rules.as_ref().is_some_and(|r| r.uses_profile);
        for c in &closed {
            let s = &c.session;
            let mut profile_facts = ProfileFacts::none();
            if ttl > 0 {
                let expired = self.profiles.get(&c.user_id).is_some_and(|p| p.last_ts + ttl < s.start);
                if expired || !self.profiles.contains_key(&c.user_id) {
                    self.profiles.insert(c.user_id.clone(), Profile::default());
                    self.expiries.push(Reverse((s.end + ttl, c.user_id.clone())));
                } else if uses_profile {
                    profile_facts = self.profiles[&c.user_id].facts(s.start);
                }
            }
            let mut facts = Facts { user_id: &c.user_id, session: s, reason: c.reason, cart_value: cart_value(s), profile: profile_facts };
            if let Some(rules) = &self.rules {
                if let Some(decision) = rules.decide(&mut facts) {
                    let id = notification_id(&facts, &decision, &rules.version);
                    let value = notification_json(&facts, &decision, &rules.version, &id);
                    out.notifications.push(Notification {
                        user_id: c.user_id.clone(),
                        value,
                        id,
                        action: decision.action.name(),
                        rule: decision.rule.to_owned(),
                    });
                }
            }
            if ttl > 0 {
                let paid = s.type_counts[Kind::PaymentComplete.index()] > 0;
                if let Some(profile) = self.profiles.get_mut(&c.user_id) {
                    profile.record_session(s.end, paid, &s.categories);
                }
            }
            out.closed.push(ClosedStats { reason: c.reason, start: s.start, end: s.end, events: s.events });
        }
        let watermark = self.sessions.watermark.value;
        if ttl > 0 && self.expiries.peek().is_some_and(|Reverse((due, _))| *due < watermark) {
            self.expire_profiles(watermark);
        }
    }

    fn expire_profiles(&mut self, watermark: i64) {
        let ttl = self.profile_ttl_ms;
        while let Some(Reverse((due, _))) = self.expiries.peek() {
            if *due >= watermark {
                break;
            }
            let Reverse((_, user_id)) = self.expiries.pop().expect("peeked");
            let Some(profile) = self.profiles.get(&user_id) else { continue };
            let due = profile.last_ts + ttl;
            if due >= watermark {
                self.expiries.push(Reverse((due, user_id)));
            } else if self.sessions.users.contains_key(&user_id) {
                self.expiries.push(Reverse((watermark + self.sessions.gap_ms, user_id)));
            } else {
                self.profiles.remove(&user_id);
            }
        }
    }

    /// The whole format-7 document.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = br#"{"version":7,"profiles":"#.to_vec();
        out.extend(serde_json::to_vec(&ProfilesOut(&self.profiles)).expect("plain data"));
        out.extend_from_slice(br#","rules":"#);
        out.extend_from_slice(self.rules_document.as_deref().unwrap_or(b"null"));
        out.push(b',');
        out.extend_from_slice(&crate::snapshot::state_json(&self.sessions)[1..]);
        out
    }

    /// Adopt a format-7 document (profiles, rules document, watermark and users).
    pub fn restore(&mut self, document: &[u8], now_ms: i64) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            rules: Option<&'a RawValue>,
            profiles: Map<String, Profile>,
        }
        let head: Head = serde_json::from_slice(document).map_err(|e| e.to_string())?;
        if let Some(rules) = head.rules {
            if rules.get() != "null" {
                self.set_rules(rules.get().as_bytes())?;
            }
        }
        let ttl = self.profile_ttl_ms;
        for (user_id, profile) in head.profiles {
            let user_id = user_id.into_boxed_str();
            self.expiries.push(Reverse((profile.last_ts + ttl, user_id.clone())));
            self.profiles.insert(user_id, profile);
        }
        crate::snapshot::load_json(&mut self.sessions, document, now_ms).map_err(|e| e.to_string())
    }
}

struct ProfilesOut<'a>(&'a Map<Box<str>, Profile>);

impl serde::Serialize for ProfilesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(&**k, v)?;
        }
        map.end()
    }
}
