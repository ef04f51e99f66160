//! Criterion benchmarks of the spine on one core, without the network:
//! - `decode+rules`: topic parse, payload decode, sequence dedup and rule evaluation per reading
//!   (target: ≥ 1,000,000 readings/s);
//! - `pipeline-commit`: the same plus the durable group commit to SQLite (batches of 512).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gridsentry::flow::{Ack, Inbound};
use gridsentry::metrics::Metrics;
use gridsentry::orders::{SlaTable, Store};
use gridsentry::pipeline::{Outputs, Pipeline};
use gridsentry::rules::{Colour, Condition, Engine, RuleConfig, Threshold};
use gridsentry_sensors::*;
use std::collections::HashMap;
use std::sync::Arc;

const DEVICES: u32 = 1000;
const T0: u64 = 1_764_072_000_000;

fn rules() -> Vec<RuleConfig> {
    let t = Threshold {
        stream: Stream::Noise,
        field: "laeq_db".into(),
        above: Some(70.0),
        below: None,
        clear: 65.0,
        for_s: 60,
        clear_for_s: 30,
        night: None,
    };
    vec![RuleConfig {
        id: "noise".into(),
        name: String::new(),
        colour: Colour::Yellow,
        sites: vec![],
        escalate: vec![],
        flap: None,
        condition: Condition::Threshold(t),
    }]
}

/// (topic, payload) of reading `i`: devices round-robin, 1 % of readings over the limit.
fn message(i: u32) -> (String, Vec<u8>) {
    let dev = i % DEVICES;
    let seq = i / DEVICES;
    let db = if i.is_multiple_of(100) { 75.0 } else { 55.0 };
    let body = Body::Noise(NoiseReport {
        l10_db: Some(db + 2.0),
        l90_db: Some(db - 5.0),
        ..NoiseReport::levels(db, db + 5.0)
    });
    let header = Header {
        site: Id::new("plaza-1").unwrap(),
        device: Id::new(&format!("nb-{dev}")).unwrap(),
        boot_id: 1,
        seq,
        time: Timestamp::Utc(T0 + u64::from(seq) * 1000),
        historical: false,
    };
    let r = Reading { header, body };
    let topic = Topic::new(r.header.site.clone(), r.header.device.clone(), Stream::Noise).to_string();
    (topic, codec::encode_vec(Format::Json, &r).unwrap())
}

fn decode_and_rules(c: &mut Criterion) {
    for format in [Format::Json, Format::Binary] {
        decode_and_rules_in(c, format);
    }
}

fn decode_and_rules_in(c: &mut Criterion, format: Format) {
    let msgs: Vec<_> = (0..100_000)
        .map(message)
        .map(|(t, p)| (t, codec::encode_vec(format, &codec::decode(&p).unwrap()).unwrap()))
        .collect();
    let name = |what: &str| format!("{what}/{}", if format == Format::Json { "json" } else { "binary" });
    let mut g = c.benchmark_group("spine");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function(name("decode"), |b| {
        b.iter(|| {
            msgs.iter()
                .map(|(topic, payload)| {
                    codec::decode_on(&Topic::parse(topic).unwrap(), payload).unwrap().header.seq
                })
                .sum::<u32>()
        })
    });
    let readings: Vec<Reading> = msgs.iter().map(|(_, p)| codec::decode(p).unwrap()).collect();
    g.bench_function(name("rules"), |b| {
        b.iter_batched(
            || Engine::new(rules(), jiff::tz::TimeZone::UTC).unwrap(),
            |mut engine| {
                let mut out = Vec::new();
                for r in &readings {
                    engine.apply(r, r.utc_ms().unwrap_or(T0), &mut out);
                }
                out.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function(name("decode+rules"), |b| {
        b.iter_batched(
            || {
                (
                    Engine::new(rules(), jiff::tz::TimeZone::UTC).unwrap(),
                    HashMap::<(Id, Id), (u32, u32)>::new(),
                )
            },
            |(mut engine, mut seqs)| {
                let mut out = Vec::new();
                for (topic, payload) in &msgs {
                    let topic = Topic::parse(topic).unwrap();
                    let r = codec::decode_on(&topic, payload).unwrap();
                    let last = seqs.entry((topic.site, topic.device)).or_insert((r.header.boot_id, 0));
                    if r.header.seq >= last.1 {
                        last.1 = r.header.seq;
                        engine.apply(&r, r.utc_ms().unwrap_or(T0), &mut out);
                    }
                }
                out.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn pipeline_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let msgs: Vec<Reading> = (0..51_200).map(|i| codec::decode(&message(i).1).unwrap()).collect();
    let mut g = c.benchmark_group("spine");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.sample_size(10);
    let mut run = 0;
    g.bench_function("pipeline-commit", |b| {
        b.iter_batched(
            || {
                run += 1;
                let store =
                    Store::open(&dir.path().join(format!("b{run}.db")), SlaTable::default(), vec![]).unwrap();
                let out = Outputs {
                    changes: tokio::sync::broadcast::channel(1 << 16).0,
                    outbox: tokio::sync::watch::channel(0).0,
                    metrics: Arc::new(Metrics::default()),
                    live: Arc::default(),
                    report: None,
                };
                Pipeline::new(Engine::new(rules(), jiff::tz::TimeZone::UTC).unwrap(), store, out).unwrap()
            },
            |mut p| {
                for chunk in msgs.chunks(512) {
                    let mut inbound = chunk
                        .iter()
                        .map(|r| {
                            Inbound::new(
                                Topic::new(r.header.site.clone(), r.header.device.clone(), Stream::Noise),
                                r.clone(),
                                Default::default(),
                                T0,
                                Ack::None,
                            )
                        })
                        .collect::<Vec<_>>();
                    p.step(&mut inbound, false).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, decode_and_rules, pipeline_commit);
criterion_main!(benches);
