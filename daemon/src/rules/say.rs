//! What rules say to people, in both languages the console offers (zh-CN first: the people who
//! act on an order read Chinese; English for the rest and for logs).
//!
//! Why here and not in the console: a summary is written once, when the order changes, and read
//! in many places (console, CLI, webhooks, chat apps, the demo's lines). Writing both texts at that
//! moment keeps every reader a plain lookup, and keeps the words next to the numbers they
//! describe, with their units (次/分, dB(A), mm, mm/天, °).

use super::config::{Condition, Threshold};
use super::slope::Forecast;
use gridsentry_sensors::Stream;
use jiff::tz::TimeZone;

/// One text for people, in English and in Chinese.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Said {
    /// English.
    pub en: String,
    /// Simplified Chinese.
    pub zh: String,
}

impl Said {
    /// Both texts.
    pub fn new(en: impl Into<String>, zh: impl Into<String>) -> Said {
        Said { en: en.into(), zh: zh.into() }
    }

    /// `en: self.en` / `zh：self.zh`.
    pub fn after(&self, en: &str, zh: &str) -> Said {
        Said::new(format!("{en}: {}", self.en), format!("{zh}：{}", self.zh))
    }

    /// `self.en: en` / `self.zh：zh`.
    pub fn then(&self, more: &Said) -> Said {
        Said::new(format!("{}: {}", self.en, more.en), format!("{}：{}", self.zh, more.zh))
    }
}

/// A field's name for people and its unit.
fn field_zh(field: &str) -> (&'static str, &'static str) {
    match field {
        "laeq_db" => ("等效声级", "dB(A)"),
        "lafmax_db" => ("最大声级", "dB(A)"),
        "l10_db" => ("L10 声级", "dB(A)"),
        "l90_db" => ("L90 背景声级", "dB(A)"),
        "lcpeak_db" => ("C 计权峰值声级", "dB(C)"),
        "bpm" => ("心率", "次/分"),
        "disp_mm" => ("位移", "mm"),
        "disp_e_mm" => ("东向位移", "mm"),
        "disp_n_mm" => ("北向位移", "mm"),
        "disp_u_mm" => ("垂直位移", "mm"),
        "tilt_x_deg" => ("X 轴倾角", "°"),
        "tilt_y_deg" => ("Y 轴倾角", "°"),
        "crack_mm" => ("裂缝宽度", "mm"),
        "rain_cum_mm" => ("累计雨量", "mm"),
        "temp_c" => ("温度", "°C"),
        _ => ("数值", ""),
    }
}

fn stream_zh(s: Stream) -> &'static str {
    match s {
        Stream::Noise => "噪声",
        Stream::Hr => "心率",
        Stream::Deform => "形变",
        Stream::Rain => "雨量",
        Stream::Status => "状态",
    }
}

/// `12 s`, `5 min`, `2 h`: seconds as people read them.
fn span(s: u64) -> (String, String) {
    match s {
        s if s % 3600 == 0 && s > 0 => (format!("{} h", s / 3600), format!("{} 小时", s / 3600)),
        s if s % 60 == 0 && s > 0 => (format!("{} min", s / 60), format!("{} 分钟", s / 60)),
        s => (format!("{s} s"), format!("{s} 秒")),
    }
}

/// The display name of a condition kind, for rules without a `name`.
pub fn default_name(c: &Condition) -> &'static str {
    match c {
        Condition::Threshold(t) if t.stream == Stream::Noise => "噪声超标",
        Condition::Threshold(t) if t.stream == Stream::Hr => "心率异常",
        Condition::Threshold(t) if t.stream == Stream::Rain => "雨量超标",
        Condition::Threshold(_) => "形变超限",
        Condition::HrDrop(_) => "心率骤降",
        Condition::HrLow(_) => "心率过低",
        Condition::BandRemoved(_) => "手环摘下",
        Condition::NoData(_) => "设备失联",
        Condition::TangentAngle(_) => "边坡加速变形",
        Condition::Rainfall(_) => "强降雨",
    }
}

fn threshold(t: &Threshold, v: Option<f64>) -> Said {
    let (name, unit) = field_zh(&t.field);
    let unit = match unit {
        "" | "°" => unit.to_string(),
        u => format!(" {u}"),
    };
    let (now_en, now_zh) = match v {
        Some(v) => (format!(" ({v:.1})"), format!("（当前 {v:.1}{unit}）")),
        None => (String::new(), String::new()),
    };
    match (t.above, t.below) {
        (Some(a), _) => {
            Said::new(format!("{} above {a}{now_en}", t.field), format!("{name}超过 {a}{unit}{now_zh}"))
        }
        (None, Some(b)) => {
            Said::new(format!("{} below {b}{now_en}", t.field), format!("{name}低于 {b}{unit}{now_zh}"))
        }
        (None, None) => Said::new(t.field.clone(), name),
    }
}

/// What a condition is about, with the value seen (`flapping`: it keeps starting and stopping).
pub fn describe(c: &Condition, value: Option<f64>, flapping: bool) -> Said {
    let v_en = value.map_or(String::new(), |v| format!(" ({v:.1})"));
    let said = match c {
        Condition::Threshold(t) => threshold(t, value),
        Condition::HrDrop(_) => Said::new(
            format!("sharp heart-rate drop while worn{v_en}"),
            match value {
                Some(v) => format!("佩戴中心率骤降（当前 {v:.0} 次/分）"),
                None => "佩戴中心率骤降".into(),
            },
        ),
        Condition::HrLow(l) => Said::new(
            format!("heart rate below {} bpm while worn{v_en}", l.below_bpm),
            match value {
                Some(v) => format!("佩戴中心率低于 {} 次/分（当前 {v:.0} 次/分）", l.below_bpm),
                None => format!("佩戴中心率低于 {} 次/分", l.below_bpm),
            },
        ),
        Condition::BandRemoved(_) => {
            Said::new("wristband taken off (no skin contact)", "手环已摘下（未检测到皮肤接触）")
        }
        Condition::NoData(n) => {
            Said::new(format!("no {} data", n.stream), format!("无{}数据", stream_zh(n.stream)))
        }
        Condition::TangentAngle(t) => {
            Said::new(format!("{} accelerating", t.field), format!("{}加速变形", field_zh(&t.field).0))
        }
        Condition::Rainfall(r) => {
            let zh = span(r.window_s).1;
            let now_zh = value.map_or(String::new(), |v| format!("（当前 {v:.1} mm）"));
            Said::new(
                format!("rain over {} s above {} mm{v_en}", r.window_s, r.above_mm),
                format!("{zh}内降雨超过 {} mm{now_zh}", r.above_mm),
            )
        }
    };
    match flapping {
        true => said.after("flapping", "频繁波动"),
        false => said,
    }
}

/// `no hr data for 120 s` — a silent device.
pub fn no_data_for(stream: Stream, s: u64) -> Said {
    let (_, zh) = span(s);
    Said::new(format!("no {stream} data for {s} s"), format!("{zh}无{}数据", stream_zh(stream)))
}

/// An open condition's colour step.
pub fn still_active(s: u64) -> Said {
    let (_, zh) = span(s);
    Said::new(format!("still active after {s} s"), format!("持续 {zh}仍未解除"))
}

/// The condition ended.
pub fn back_to_normal() -> Said {
    Said::new("back to normal", "已恢复正常")
}

/// A late raise found still active by a live reading.
pub fn live_again() -> Said {
    Said::new("still active on live data", "实时数据确认条件仍在持续")
}

/// A flapping condition settled.
pub fn stopped_flapping() -> Said {
    Said::new("stopped flapping", "波动已停止")
}

/// The gateway's last will.
pub fn offline() -> Said {
    Said::new("gateway reported the device offline (last will)", "网关报告设备离线（遗嘱消息）")
}

/// A silent device spoke again.
pub fn data_again() -> Said {
    Said::new("data again", "数据已恢复")
}

/// A forecast failure time, in the daemon's zone with its offset (a red slope forecast must not
/// be read 8 hours wrong).
pub fn forecast(f: &Forecast, tz: &TimeZone) -> Said {
    let ts = jiff::Timestamp::from_millisecond(f.failure_ms as i64).ok();
    let local = ts.map_or_else(
        || f.failure_ms.to_string(),
        |t| t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %:z").to_string(),
    );
    Said::new(
        format!("{local} (R² {:.2}, {} points)", f.r2, f.points),
        format!("{local}（R² {:.2}，{} 个点）", f.r2, f.points),
    )
}

/// A slope station's level: the tangent angle, its velocities, the forecast, and whether the red
/// level waits for other stations.
pub fn slope(
    angle: f64,
    velocity: f64,
    creep: f64,
    f: Option<&Forecast>,
    needed: Option<usize>,
    tz: &TimeZone,
) -> Said {
    let mut s = Said::new(
        format!("tangent angle {angle:.1}° (v {velocity:.2} mm/d, v_c {creep:.2} mm/d)"),
        format!("切线角 {angle:.1}°（速率 {velocity:.2} mm/天，蠕变速率 {creep:.2} mm/天）"),
    );
    if let Some(f) = f {
        let when = forecast(f, tz);
        s.en += &format!("; failure forecast {}", when.en);
        s.zh += &format!("；预测失稳时间 {}", when.zh);
    }
    if let Some(n) = needed {
        s.en += &format!("; red level awaiting corroboration ({n} stations needed)");
        s.zh += &format!("；红色等级待其他测站印证（需 {n} 个测站）");
    }
    s
}

/// A capped red slope level confirmed by enough stations.
pub fn corroborated(stations: usize) -> Said {
    Said::new(
        format!("red confirmed by {stations} stations of the site"),
        format!("红色等级已由本站点 {stations} 个测站印证"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(json: &str) -> Condition {
        let c: Condition = serde_json::from_str(json).unwrap();
        c.check().unwrap();
        c
    }

    /// Every kind of condition says what it sees in Chinese, with the value and its unit.
    #[test]
    fn each_condition_kind_speaks_chinese_with_units() {
        let cases = [
            (
                r#"{"type":"threshold","stream":"noise","field":"laeq_db","above":70,"clear":65}"#,
                Some(75.04),
                "等效声级超过 70 dB(A)（当前 75.0 dB(A)）",
            ),
            (
                r#"{"type":"threshold","stream":"hr","field":"bpm","below":40,"clear":45}"#,
                Some(38.0),
                "心率低于 40 次/分（当前 38.0 次/分）",
            ),
            (
                r#"{"type":"threshold","stream":"deform","field":"tilt_x_deg","above":2.5,"clear":2}"#,
                Some(3.12),
                "X 轴倾角超过 2.5°（当前 3.1°）",
            ),
            (
                r#"{"type":"threshold","stream":"deform","field":"crack_mm","above":5,"clear":4}"#,
                Some(6.0),
                "裂缝宽度超过 5 mm（当前 6.0 mm）",
            ),
            (
                r#"{"type":"hr_drop","drop_pct":30,"window_s":60,"clear_for_s":60}"#,
                Some(48.0),
                "佩戴中心率骤降（当前 48 次/分）",
            ),
            (
                r#"{"type":"hr_low","below_bpm":40,"for_s":30,"clear_for_s":30}"#,
                Some(35.0),
                "佩戴中心率低于 40 次/分（当前 35 次/分）",
            ),
            (r#"{"type":"band_removed","for_s":8}"#, None, "手环已摘下（未检测到皮肤接触）"),
            (r#"{"type":"no_data","stream":"noise","silent_s":120}"#, None, "无噪声数据"),
            (r#"{"type":"tangent_angle","field":"disp_mm","creep_mm_per_day":1.0}"#, None, "位移加速变形"),
            (
                r#"{"type":"rainfall","window_s":86400,"above_mm":100,"clear_mm":80,"clear_for_s":3600}"#,
                Some(120.5),
                "24 小时内降雨超过 100 mm（当前 120.5 mm）",
            ),
        ];
        for (json, value, want) in cases {
            let said = describe(&condition(json), value, false);
            assert_eq!(said.zh, want, "{json}");
            assert!(!said.en.is_empty());
        }
        let flapping = describe(&condition(cases[0].0), Some(75.0), true);
        assert!(
            flapping.zh.starts_with("频繁波动：") && flapping.en.starts_with("flapping: "),
            "{flapping:?}"
        );
        assert_eq!(no_data_for(Stream::Hr, 300).zh, "5 分钟无心率数据");
        let slope = slope(84.0, 12.3, 1.0, None, Some(2), &TimeZone::UTC);
        assert_eq!(
            slope.zh,
            "切线角 84.0°（速率 12.30 mm/天，蠕变速率 1.00 mm/天）；红色等级待其他测站印证（需 2 个测站）"
        );
    }

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(3600).1, "1 小时");
        assert_eq!(span(300).1, "5 分钟");
        assert_eq!(span(45).1, "45 秒");
        assert_eq!(span(0).1, "0 秒");
    }

    #[test]
    fn a_forecast_reads_in_local_time_with_its_offset() {
        let f = Forecast { failure_ms: 1_764_558_000_000, r2: 0.98, points: 14 };
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let s = forecast(&f, &tz);
        assert_eq!(s.en, "2025-12-01 11:00:00 +08:00 (R² 0.98, 14 points)");
        assert_eq!(s.zh, "2025-12-01 11:00:00 +08:00（R² 0.98，14 个点）");
    }
}
