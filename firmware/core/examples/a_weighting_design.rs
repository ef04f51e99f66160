//! Prints the A-weighting design at 48 kHz and its deviation from the analytic curve:
//! `cd firmware && cargo run -p gridsentry-firmware-core --example a_weighting_design`.

#[path = "../tests/support/design.rs"]
mod design;

fn main() {
    let fs = 48_000.0;
    let d = design::design(fs);
    for (i, s) in d.sections.iter().enumerate() {
        println!("section {i}: b {:?} a {:?}", s.b, s.a);
    }
    println!("gain {:?}", d.gain);
    let mut worst: (f64, f64) = (0.0, 0.0);
    for f in design::third_octaves() {
        let e = d.response_db(f, fs) - design::analytic_db(f);
        println!(
            "{f:8.1} Hz  analytic {:8.3}  design {:8.3}  error {e:+.3}",
            design::analytic_db(f),
            d.response_db(f, fs)
        );
        if e.abs() > worst.1.abs() {
            worst = (f, e);
        }
    }
    let fine = (0..=2000).map(|i| 20.0 * 800f64.powf(i as f64 / 2000.0));
    let fine_worst = fine.map(|f| (d.response_db(f, fs) - design::analytic_db(f)).abs()).fold(0.0, f64::max);
    println!("worst at 1/3-octave centres: {:+.3} dB at {:.1} Hz; worst 20 Hz..16 kHz (2001 points): {fine_worst:.3} dB", worst.1, worst.0);
}
