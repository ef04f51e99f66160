//! Modbus register maps of real landslide instruments, as data, and decoding of the register
//! words a poll returns into a [`DeformReport`].
//!
//! Why data and not code: a field engineer adding a station needs to see (and later configure)
//! function code, address, word type and scale, exactly as the vendor's sheet prints them. The
//! daemon polls the [`Block`]s of a map (one request per contiguous run per function code) and
//! hands the words back to [`RegisterMap::decode`].
//!
//! Sources: the wire-extensometer, inclinometer and rain-gauge maps follow the devices described
//! in the project's DESIGN.md (DFRobot SEN0575: cumulative rainfall in input registers 0x0008 low
//! word / 0x0009 high word, ÷ 10000 mm). No GNSS vendor publishes a common map; [`GNSS_STATION`]
//! is the common shape of RTK monitoring receivers (ΔE/ΔN/ΔU as IEEE-754 float32, high word
//! first, in input registers) and must be checked against the receiver's own sheet on site.

use crate::channels::{ChannelKind, DeformReport};
use crate::topic::Stream;

/// The read function a field uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// FC 0x03, read holding registers.
    ReadHolding = 3,
    /// FC 0x04, read input registers.
    ReadInput = 4,
}

/// How one value is laid out in 16-bit registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    /// One register, unsigned.
    U16,
    /// One register, two's complement.
    I16,
    /// Two registers, unsigned, low word at the lower address.
    U32LowFirst,
    /// Two registers, unsigned, high word at the lower address.
    U32HighFirst,
    /// Two registers, two's complement, high word first.
    I32HighFirst,
    /// Two registers, IEEE-754 binary32, high word first.
    F32HighFirst,
}

impl Word {
    /// Registers the value occupies.
    pub const fn registers(self) -> u16 {
        match self {
            Word::U16 | Word::I16 => 1,
            _ => 2,
        }
    }

    /// The raw value of `regs` (exactly [`Word::registers`] registers).
    fn raw(self, regs: &[u16]) -> f64 {
        let pair = |hi: u16, lo: u16| (u32::from(hi) << 16) | u32::from(lo);
        match self {
            Word::U16 => f64::from(regs[0]),
            Word::I16 => f64::from(regs[0] as i16),
            Word::U32LowFirst => f64::from(pair(regs[1], regs[0])),
            Word::U32HighFirst => f64::from(pair(regs[0], regs[1])),
            Word::I32HighFirst => f64::from(pair(regs[0], regs[1]) as i32),
            Word::F32HighFirst => f64::from(f32::from_bits(pair(regs[0], regs[1]))),
        }
    }
}

/// One value of a device: where it is and how to turn it into a channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    /// The channel it fills (the unit is part of the channel).
    pub channel: ChannelKind,
    /// Read function.
    pub function: Function,
    /// First register address (0-based, as on the wire).
    pub address: u16,
    /// Layout.
    pub word: Word,
    /// The raw value is divided by this.
    pub divisor: f64,
    /// Unit as the vendor prints it (informational; the channel fixes the unit).
    pub unit: &'static str,
}

/// A device model: its fields and the stream its readings go to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegisterMap {
    /// Config name of the kind, e.g. `"inclinometer"`.
    pub kind: &'static str,
    /// Human description and source.
    pub description: &'static str,
    /// Stream the readings are published on (`deform` or `rain`).
    pub stream: Stream,
    /// Fields, sorted by function then address.
    pub fields: &'static [Field],
}

/// One read request: function, first address, register count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Read function.
    pub function: Function,
    /// First register.
    pub address: u16,
    /// Number of registers.
    pub count: u16,
}

/// Why register words could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ModbusDecodeError {
    /// A different number of blocks than [`RegisterMap::blocks`] returned.
    #[error("expected {expected} register blocks, got {got}")]
    BlockCount {
        /// Blocks of the map.
        expected: usize,
        /// Blocks given.
        got: usize,
    },
    /// A block shorter or longer than requested (a misframed or foreign reply).
    #[error("block {block}: expected {expected} registers, got {got}")]
    BlockLength {
        /// Index of the block.
        block: usize,
        /// Registers requested.
        expected: u16,
        /// Registers received.
        got: usize,
    },
    /// A float register pair holds NaN or infinity (sensor fault).
    #[error("channel {0:?} is not a finite number (sensor fault)")]
    NotFinite(ChannelKind),
}

/// Most blocks a map needs (one per function code and gap).
pub const BLOCKS_MAX: usize = 4;

impl RegisterMap {
    /// The read requests that cover every field: fields of one function code at adjacent
    /// addresses share a request.
    pub fn blocks(&self) -> heapless::Vec<Block, BLOCKS_MAX> {
        let mut out: heapless::Vec<Block, BLOCKS_MAX> = heapless::Vec::new();
        for f in self.fields {
            if let Some(last) = out.last_mut() {
                if last.function == f.function && last.address.checked_add(last.count) == Some(f.address) {
                    last.count += f.word.registers();
                    continue;
                }
            }
            let block = Block { function: f.function, address: f.address, count: f.word.registers() };
            // The static maps below need at most two blocks; a test checks every map.
            let _ = out.push(block);
        }
        out
    }

    /// Decodes the words of every block (in [`RegisterMap::blocks`] order) into a report.
    pub fn decode(&self, words: &[&[u16]]) -> Result<DeformReport, ModbusDecodeError> {
        let blocks = self.blocks();
        if words.len() != blocks.len() {
            return Err(ModbusDecodeError::BlockCount { expected: blocks.len(), got: words.len() });
        }
        for (i, (b, w)) in blocks.iter().zip(words).enumerate() {
            if usize::from(b.count) != w.len() {
                return Err(ModbusDecodeError::BlockLength { block: i, expected: b.count, got: w.len() });
            }
        }
        let mut report = DeformReport::default();
        for f in self.fields {
            let (i, b) = blocks
                .iter()
                .enumerate()
                .find(|(_, b)| {
                    b.function == f.function && f.address >= b.address && f.address - b.address < b.count
                })
                .expect("blocks() covers every field");
            let at = usize::from(f.address - b.address);
            let value = f.word.raw(&words[i][at..at + usize::from(f.word.registers())]) / f.divisor;
            if !value.is_finite() {
                return Err(ModbusDecodeError::NotFinite(f.channel));
            }
            // Maps hold each channel once (checked by a test), so push cannot fail.
            let _ = report.push(f.channel, value);
        }
        Ok(report)
    }
}

const fn field(
    channel: ChannelKind,
    function: Function,
    address: u16,
    word: Word,
    divisor: f64,
    unit: &'static str,
) -> Field {
    Field { channel, function, address, word, divisor, unit }
}

/// Wire extensometer: displacement in holding register 0, value / 100 mm.
pub const WIRE_EXTENSOMETER: RegisterMap = RegisterMap {
    kind: "wire_extensometer",
    description: "wire (draw-wire) extensometer: FC03 reg 0, u16 / 100 mm",
    stream: Stream::Deform,
    fields: &[field(ChannelKind::DisplacementMm, Function::ReadHolding, 0, Word::U16, 100.0, "mm")],
};

/// Dual-axis inclinometer: input registers 0..2 = X, Y (int16 / 100 °), temperature (int16 / 10 °C).
pub const INCLINOMETER: RegisterMap = RegisterMap {
    kind: "inclinometer",
    description: "dual-axis inclinometer: FC04 regs 0-2, i16 X/100 deg, Y/100 deg, temperature/10 C",
    stream: Stream::Deform,
    fields: &[
        field(ChannelKind::TiltXDeg, Function::ReadInput, 0, Word::I16, 100.0, "deg"),
        field(ChannelKind::TiltYDeg, Function::ReadInput, 1, Word::I16, 100.0, "deg"),
        field(ChannelKind::TemperatureC, Function::ReadInput, 2, Word::I16, 10.0, "C"),
    ],
};

/// DFRobot SEN0575 tipping-bucket rain gauge: cumulative rainfall in input registers 0x08 (low
/// word) and 0x09 (high word), ÷ 10000 mm.
pub const RAIN_GAUGE_SEN0575: RegisterMap = RegisterMap {
    kind: "rain_gauge_sen0575",
    description: "DFRobot SEN0575 rain gauge: FC04 regs 0x08/0x09 (low word first) / 10000 mm",
    stream: Stream::Rain,
    fields: &[field(
        ChannelKind::RainCumulativeMm,
        Function::ReadInput,
        0x08,
        Word::U32LowFirst,
        10000.0,
        "mm",
    )],
};

/// GNSS displacement station (RTK monitoring receiver): ΔE, ΔN, ΔU in mm as float32, high word
/// first, input registers 0..5 (see the module doc on its source).
pub const GNSS_STATION: RegisterMap = RegisterMap {
    kind: "gnss_station",
    description: "GNSS displacement station: FC04 regs 0-5, f32 (high word first) dE, dN, dU mm",
    stream: Stream::Deform,
    fields: &[
        field(ChannelKind::DisplacementEastMm, Function::ReadInput, 0, Word::F32HighFirst, 1.0, "mm"),
        field(ChannelKind::DisplacementNorthMm, Function::ReadInput, 2, Word::F32HighFirst, 1.0, "mm"),
        field(ChannelKind::DisplacementUpMm, Function::ReadInput, 4, Word::F32HighFirst, 1.0, "mm"),
    ],
};

/// Every known map.
pub const MAPS: [&RegisterMap; 4] = [&WIRE_EXTENSOMETER, &INCLINOMETER, &RAIN_GAUGE_SEN0575, &GNSS_STATION];

/// The map named `kind` (as in config files), if any.
pub fn map_for(kind: &str) -> Option<&'static RegisterMap> {
    MAPS.into_iter().find(|m| m.kind == kind)
}

#[cfg(test)]
#[path = "modbus_tests.rs"]
mod tests;
