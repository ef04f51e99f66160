//! Modbus register decoding: any map, any words (first byte picks the map, the rest are split
//! into blocks of the sizes the next bytes say). No panic; decoded values are finite.
#![no_main]
use gridsentry_sensors::modbus::MAPS;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else { return };
    let map = MAPS[usize::from(pick) % MAPS.len()];
    let mut blocks: Vec<Vec<u16>> = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let take = (usize::from(n % 8) * 2).min(tail.len() & !1);
        let words = tail[..take].chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        blocks.push(words);
        rest = &tail[take..];
    }
    let slices: Vec<&[u16]> = blocks.iter().map(Vec::as_slice).collect();
    if let Ok(report) = map.decode(&slices) {
        assert!(report.channels.iter().all(|c| c.value.is_finite()));
    }
});
