//! The per-event path of session-promotions, compiled: decoding, the per-partition watermark and
//! the sessions of one user shard. `promotion/` (Python) is the specification; differential
//! property tests hold this crate's outputs byte-identical to it.

pub mod decode;
pub mod event;
pub mod sessions;
pub mod snapshot;
pub mod timefmt;
pub mod watermark;

#[cfg(feature = "python")]
mod python;
