use super::*;

#[test]
fn every_map_is_well_formed() {
    for map in MAPS {
        let blocks = map.blocks();
        let covered: u16 = blocks.iter().map(|b| b.count).sum();
        let needed: u16 = map.fields.iter().map(|f| f.word.registers()).sum();
        assert_eq!(covered, needed, "{}: blocks cover exactly the fields", map.kind);
        for (i, f) in map.fields.iter().enumerate() {
            assert!(map.fields[..i].iter().all(|p| p.channel != f.channel), "{}: channel twice", map.kind);
        }
        assert_eq!(map_for(map.kind), Some(map));
    }
}

#[test]
fn wire_extensometer_hundredths_of_a_mm() {
    // holding reg 0 = 0x04D2 = 1234 -> 12.34 mm
    let r = WIRE_EXTENSOMETER.decode(&[&[0x04D2]]).unwrap();
    assert_eq!(r.get(ChannelKind::DisplacementMm), Some(12.34));
}

#[test]
fn inclinometer_signed_tilt_and_temperature() {
    assert_eq!(
        INCLINOMETER.blocks().as_slice(),
        &[Block { function: Function::ReadInput, address: 0, count: 3 }]
    );
    // X = 0xFF38 = -200 -> -2.00 deg; Y = 0x0096 = 150 -> 1.50 deg; T = 0x00E1 = 225 -> 22.5 C
    let r = INCLINOMETER.decode(&[&[0xFF38, 0x0096, 0x00E1]]).unwrap();
    assert_eq!(r.get(ChannelKind::TiltXDeg), Some(-2.0));
    assert_eq!(r.get(ChannelKind::TiltYDeg), Some(1.5));
    assert_eq!(r.get(ChannelKind::TemperatureC), Some(22.5));
}

#[test]
fn rain_gauge_low_word_first() {
    assert_eq!(
        RAIN_GAUGE_SEN0575.blocks().as_slice(),
        &[Block { function: Function::ReadInput, address: 8, count: 2 }]
    );
    // reg 0x08 (low) = 0x2710, reg 0x09 (high) = 0x0001 -> 0x0001_2710 = 75536 -> 7.5536 mm
    let r = RAIN_GAUGE_SEN0575.decode(&[&[0x2710, 0x0001]]).unwrap();
    assert_eq!(r.get(ChannelKind::RainCumulativeMm), Some(7.5536));
}

#[test]
fn gnss_float_high_word_first() {
    // 12.5f32 = 0x4148_0000; -3.25f32 = 0xC050_0000; 0.0
    let r = GNSS_STATION.decode(&[&[0x4148, 0x0000, 0xC050, 0x0000, 0x0000, 0x0000]]).unwrap();
    assert_eq!(r.get(ChannelKind::DisplacementEastMm), Some(12.5));
    assert_eq!(r.get(ChannelKind::DisplacementNorthMm), Some(-3.25));
    assert_eq!(r.get(ChannelKind::DisplacementUpMm), Some(0.0));
}

#[test]
fn bad_replies_are_errors() {
    assert_eq!(INCLINOMETER.decode(&[]), Err(ModbusDecodeError::BlockCount { expected: 1, got: 0 }));
    assert_eq!(
        INCLINOMETER.decode(&[&[1, 2]]),
        Err(ModbusDecodeError::BlockLength { block: 0, expected: 3, got: 2 })
    );
    // 0x7FC0_0000 is a NaN: a GNSS receiver without a fix
    let nan = [0x7FC0, 0, 0, 0, 0, 0];
    assert_eq!(
        GNSS_STATION.decode(&[&nan]),
        Err(ModbusDecodeError::NotFinite(ChannelKind::DisplacementEastMm))
    );
}

#[test]
fn signed_and_unsigned_32_bit_words() {
    assert_eq!(Word::I32HighFirst.raw(&[0xFFFF, 0xFFFE]), -2.0);
    assert_eq!(Word::U32HighFirst.raw(&[0x0001, 0x0000]), 65536.0);
    assert_eq!(Word::U32LowFirst.raw(&[0x0000, 0x0001]), 65536.0);
}
