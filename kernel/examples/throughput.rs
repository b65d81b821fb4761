//! The kernel alone on a JSON-lines file: `cargo run --release --example throughput -- FILE`.
//! Prints seconds per stage (decoding; sessions of 64 shards) and events per second.

use std::time::Instant;

use promotions_kernel::decode::decode_plain;
use promotions_kernel::sessions::ShardSessions;

fn main() {
    let path = std::env::args().nth(1).expect("a JSON-lines file");
    let data = std::fs::read(path).expect("readable");
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let shards = 64;
    let parts = vec!["p".to_string()];
    let mut state: Vec<ShardSessions> = (0..shards).map(|_| ShardSessions::new(300_000, 10_000, 30_000, &parts, 0)).collect();
    let (mut decode_s, mut session_s, mut closed_n) = (0.0, 0.0, 0usize);
    for batch in lines.chunks(10_000) {
        let t = Instant::now();
        let events: Vec<_> = batch.iter().filter_map(|raw| decode_plain(raw, 65_536)).collect();
        decode_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut per: Vec<(Vec<_>, Vec<i64>)> = (0..shards).map(|_| (Vec::new(), Vec::new())).collect();
        let mut high = i64::MIN;
        for e in events {
            let s = crc32fast::hash(e.user_id.as_bytes()) as usize % shards;
            let ts = e.ts;
            per[s].0.push(e);
            per[s].1.push(high);
            high = high.max(ts);
        }
        for (shard, (events, highs)) in state.iter_mut().zip(per) {
            let (mut closed, mut late) = (Vec::new(), Vec::new());
            shard.on_batch("p", events, &highs, high, 0, false, &mut closed, &mut late);
            closed_n += closed.len();
        }
        session_s += t.elapsed().as_secs_f64();
    }
    let n = lines.len() as f64;
    println!("decode {decode_s:.3} s ({:.2} us/event), sessions {session_s:.3} s ({:.2} us/event), closed {closed_n}",
             decode_s / n * 1e6, session_s / n * 1e6);
}
