//! What a roll-out does next, decided from what is recorded: pure and synchronous, like the
//! rules, so every step is testable without a broker or a clock.
//!
//! Waves are cumulative percentages of the devices chosen at creation (`1,10,50,100`: 1 % first,
//! then up to 10 %, …). A wave opens only when every device of the earlier ones finished
//! (confirmed, failed or rolled back) or has been offline longer than the grace (it is still
//! updated when it returns). The roll-out pauses itself as soon as the devices that failed or
//! rolled back reach `abort_pct` of the devices in the open waves; devices not yet offered stay
//! untouched until a person resumes it.

use crate::orders::ota::{FleetDevice, Rollout, Target};
use gridsentry_sensors::ota::{Report, UpdateState};
use std::collections::HashMap;

/// Every state a device has in a roll-out.
pub const STATES: [&str; 8] =
    ["pending", "offered", "downloading", "verifying", "rebooting", "confirmed", "rolled_back", "failed"];

/// States a device ends a roll-out in.
pub const TERMINAL: [&str; 3] = ["confirmed", "failed", "rolled_back"];

/// Reads `--waves` (`1,10,50,100`): increasing percentages, the last 100.
pub fn parse_waves(s: &str) -> Result<Vec<u32>, String> {
    let waves: Vec<u32> = s
        .split(',')
        .map(|w| w.trim().parse::<u32>().map_err(|_| format!("`{w}` is not a percentage")))
        .collect::<Result<_, _>>()?;
    if waves.is_empty() || waves.len() > 10 {
        return Err("1 to 10 waves".into());
    }
    if waves.windows(2).any(|w| w[0] >= w[1]) || waves[0] == 0 || waves.last() != Some(&100) {
        return Err(
            "waves are increasing percentages of the devices, from 1, ending at 100 (e.g. 1,10,50,100)"
                .into(),
        );
    }
    Ok(waves)
}

/// Each device's wave: `devices` in their order, wave k holding those up to ⌈n·p_k/100⌉.
pub fn assign(devices: &[String], waves: &[u32]) -> Vec<(String, u32)> {
    let n = devices.len();
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let wave =
                waves.iter().position(|&p| i < (n * p as usize).div_ceil(100)).unwrap_or(waves.len() - 1);
            (d.clone(), wave as u32 + 1)
        })
        .collect()
}

/// What the roll-out does now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep going.
    Wait,
    /// Open the next wave.
    Advance,
    /// Every device finished.
    Done,
    /// Too many failed: pause, with why.
    Pause(String),
}

fn offline_past(fleet: Option<&&FleetDevice>, now_ms: i64, grace_ms: i64) -> bool {
    fleet.is_none_or(|f| !f.online && now_ms - f.seen_ms > grace_ms)
}

/// The decision for an active roll-out.
pub fn decide(
    r: &Rollout,
    targets: &[Target],
    fleet: &HashMap<&str, &FleetDevice>,
    now_ms: i64,
    grace_ms: i64,
) -> Decision {
    let open: Vec<&Target> = targets.iter().filter(|t| t.wave <= r.wave).collect();
    let failed = open.iter().filter(|t| t.state == "failed" || t.state == "rolled_back").count();
    let failed = failed.saturating_sub(r.failed_base as usize);
    if failed > 0 && failed * 100 >= r.abort_pct as usize * open.len() {
        return Decision::Pause(format!(
            "{failed} of the {} devices in waves 1–{} failed or rolled back (pause at {} %)",
            open.len(),
            r.wave,
            r.abort_pct
        ));
    }
    let finished = |t: &&Target| TERMINAL.contains(&t.state.as_str());
    let settled =
        open.iter().all(|t| finished(t) || offline_past(fleet.get(t.device.as_str()), now_ms, grace_ms));
    if !settled {
        return Decision::Wait;
    }
    if (r.wave as usize) < r.waves.len() {
        Decision::Advance
    } else if targets.iter().all(|t| finished(&t)) {
        Decision::Done
    } else {
        Decision::Wait
    }
}

/// The devices to send the offer to now: in an open wave, not finished, online, not running the
/// image yet, and either never offered or idle again `reoffer_ms` after the last offer (the
/// offer was lost, or the device restarted without resuming).
pub fn offers<'a>(
    r: &Rollout,
    targets: &'a [Target],
    fleet: &HashMap<&str, &FleetDevice>,
    now_ms: i64,
    reoffer_ms: i64,
) -> Vec<&'a Target> {
    if r.status != "active" {
        return Vec::new();
    }
    targets
        .iter()
        .filter(|t| t.wave <= r.wave && !TERMINAL.contains(&t.state.as_str()))
        .filter(|t| {
            let Some(f) = fleet.get(t.device.as_str()) else { return false };
            let idle_again = f.state == "idle" && now_ms - t.offered_ms.unwrap_or(0) >= reoffer_ms;
            f.online && f.version != r.firmware.version && (t.state == "pending" || idle_again)
        })
        .collect()
}

/// How a device's report moves its row in roll-out `r`: `(state, bytes_done, error)`, or
/// nothing when it says nothing new about this roll-out.
pub fn on_report(r: &Rollout, t: &Target, rep: &Report) -> Option<(String, Option<i64>, Option<String>)> {
    if TERMINAL.contains(&t.state.as_str()) {
        return None;
    }
    let error = rep.error.as_ref().map(|e| e.to_string());
    let bytes = rep.offset.map(i64::from);
    match (rep.rollout, rep.state) {
        (Some(id), UpdateState::Idle) if i64::from(id) == r.id => None,
        // On trial: still restarting into it, as far as the roll-out goes, until it confirms.
        (Some(id), UpdateState::Trial) if i64::from(id) == r.id => Some(("rebooting".into(), None, None)),
        (Some(id), s) if i64::from(id) == r.id => {
            if s == UpdateState::Confirmed && rep.version.as_str() != r.firmware.version {
                let e = format!("confirmed version {} instead of {}", rep.version, r.firmware.version);
                return Some(("failed".into(), bytes, Some(e)));
            }
            Some((s.as_str().into(), bytes, error))
        }
        // Back without naming the roll-out: running the image means it took (the device lost
        // its report on the way); the old one after a restart into the new one means it reverted.
        (None, _) if rep.version.as_str() == r.firmware.version => Some(("confirmed".into(), None, None)),
        (None, UpdateState::Idle) if t.state == "rebooting" => {
            Some(("rolled_back".into(), None, Some(format!("back on {} after the restart", rep.version))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::ota::Firmware;

    fn rollout(wave: u32, abort_pct: u32) -> Rollout {
        Rollout {
            id: 1,
            firmware: Firmware {
                id: 1,
                board: "host".into(),
                version: "2.0.0".into(),
                size: 10,
                sha256: String::new(),
                signature: String::new(),
                added_ms: 0,
                who: "t".into(),
            },
            matcher: "all".into(),
            waves: vec![10, 50, 100],
            abort_pct,
            wave,
            status: "active".into(),
            reason: None,
            order_id: None,
            failed_base: 0,
            created_ms: 0,
            who: "t".into(),
            updated_ms: 0,
        }
    }

    fn target(device: &str, wave: u32, state: &str) -> Target {
        Target {
            device: device.into(),
            wave,
            state: state.into(),
            bytes_done: 0,
            error: None,
            state_ms: 0,
            offered_ms: None,
        }
    }

    fn fleet_dev(device: &str, online: bool, seen_ms: i64) -> FleetDevice {
        FleetDevice {
            device: device.into(),
            site: "s".into(),
            board: "host".into(),
            version: "1.0.0".into(),
            slot: "a".into(),
            state: "idle".into(),
            online,
            seen_ms,
        }
    }

    #[test]
    fn waves_split_by_cumulative_percentage() {
        let devices: Vec<String> = (0..200).map(|i| format!("s/d{i:03}")).collect();
        let w = assign(&devices, &[1, 10, 50, 100]);
        let count = |k| w.iter().filter(|(_, x)| *x == k).count();
        assert_eq!((count(1), count(2), count(3), count(4)), (2, 18, 80, 100));
        // Few devices: the first wave still gets one.
        let w = assign(&devices[..3], &[1, 10, 50, 100]);
        assert_eq!(w.iter().map(|x| x.1).collect::<Vec<_>>(), [1, 3, 4]);
        assert!(parse_waves("1,10,50,100").is_ok());
        for bad in ["", "0,100", "10,5,100", "10,50", "1,x,100", "10,10,100"] {
            assert!(parse_waves(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pauses_at_the_failure_rate_and_advances_only_when_settled() {
        let mut t: Vec<Target> = (0..10).map(|i| target(&format!("d{i}"), 1, "downloading")).collect();
        t.extend((10..20).map(|i| target(&format!("d{i}"), 2, "pending")));
        let fleet_rows: Vec<FleetDevice> = (0..20).map(|i| fleet_dev(&format!("d{i}"), true, 0)).collect();
        let fleet: HashMap<&str, &FleetDevice> = fleet_rows.iter().map(|f| (f.device.as_str(), f)).collect();
        let r = rollout(1, 20);
        assert_eq!(decide(&r, &t, &fleet, 0, 1000), Decision::Wait);
        t[0].state = "failed".into();
        assert_eq!(decide(&r, &t, &fleet, 0, 1000), Decision::Wait, "1 of 10 is under 20 %");
        t[1].state = "rolled_back".into();
        assert!(matches!(decide(&r, &t, &fleet, 0, 1000), Decision::Pause(_)), "2 of 10 is 20 %");
        let r = rollout(1, 50);
        for x in &mut t[2..10] {
            x.state = "confirmed".into();
        }
        assert_eq!(decide(&r, &t, &fleet, 0, 1000), Decision::Advance);
        let r2 = rollout(3, 50);
        assert_eq!(decide(&r2, &t, &fleet, 0, 1000), Decision::Wait, "wave 2 still pending");
        for x in &mut t[10..] {
            x.state = "confirmed".into();
        }
        assert_eq!(decide(&r2, &t, &fleet, 0, 1000), Decision::Done);
    }

    #[test]
    fn an_offline_device_holds_its_wave_only_for_the_grace() {
        let t = vec![target("a", 1, "confirmed"), target("b", 1, "offered"), target("c", 2, "pending")];
        let rows = [fleet_dev("a", true, 0), fleet_dev("b", false, 1000), fleet_dev("c", true, 0)];
        let fleet: HashMap<&str, &FleetDevice> = rows.iter().map(|f| (f.device.as_str(), f)).collect();
        let r = rollout(1, 50);
        assert_eq!(decide(&r, &t, &fleet, 1500, 1000), Decision::Wait);
        assert_eq!(decide(&r, &t, &fleet, 2001, 1000), Decision::Advance);
        // Offers: only online, open-wave, not-finished devices.
        assert!(offers(&r, &t, &fleet, 2001, 60_000).is_empty(), "b is offline, c's wave is closed");
        let r2 = rollout(2, 50);
        assert_eq!(
            offers(&r2, &t, &fleet, 2001, 60_000).iter().map(|x| &x.device).collect::<Vec<_>>(),
            ["c"]
        );
        let mut paused = r2.clone();
        paused.status = "paused".into();
        assert!(offers(&paused, &t, &fleet, 2001, 60_000).is_empty());
    }

    #[test]
    fn reports_move_the_device() {
        let r = rollout(1, 50);
        let rep = |state, rollout: Option<u32>, version: &str| Report {
            v: 1,
            board: "host".try_into().unwrap(),
            version: version.try_into().unwrap(),
            slot: "a".try_into().unwrap(),
            state,
            rollout,
            offset: Some(2048),
            error: None,
        };
        let t = target("a", 1, "offered");
        assert_eq!(
            on_report(&r, &t, &rep(UpdateState::Downloading, Some(1), "1.0.0")),
            Some(("downloading".into(), Some(2048), None))
        );
        assert_eq!(
            on_report(&r, &t, &rep(UpdateState::Downloading, Some(9), "1.0.0")),
            None,
            "another roll-out"
        );
        let rebooting = target("a", 1, "rebooting");
        assert_eq!(
            on_report(&r, &rebooting, &rep(UpdateState::Idle, None, "1.0.0")).unwrap().0,
            "rolled_back"
        );
        assert_eq!(on_report(&r, &rebooting, &rep(UpdateState::Idle, None, "2.0.0")).unwrap().0, "confirmed");
        assert_eq!(
            on_report(&r, &rebooting, &rep(UpdateState::Confirmed, Some(1), "1.5.0")).unwrap().0,
            "failed"
        );
        assert_eq!(
            on_report(&r, &target("a", 1, "confirmed"), &rep(UpdateState::Failed, Some(1), "1.0.0")),
            None
        );
    }
}
