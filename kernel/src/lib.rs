//! The per-event path of session-promotions, compiled: decoding, the per-partition watermark and
//! the sessions of one user shard. `promotion/` (Python) is the specification; differential
//! property tests hold this crate's outputs byte-identical to it.

pub mod compact;
pub mod decode;
pub mod event;
pub mod facts;
pub mod profiles;
pub mod rules;
pub mod sessions;
pub mod shard;
pub mod snapshot;
pub mod timefmt;
pub mod watermark;

#[cfg(feature = "python")]
mod python;

/// Session state is millions of small allocations: mimalloc is several times cheaper per
/// allocation than glibc's malloc here (measured with `examples/throughput.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hash maps keyed by user ids and event ids: foldhash is fast and seeded per process.
pub type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type Set<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
