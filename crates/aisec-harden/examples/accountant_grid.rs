//! Reads a JSON list of {"q", "sigma", "steps", "delta"} on stdin and writes
//! aisec's RDP and PLD epsilons for each as JSON on stdout; used by
//! `bench/harden/accountant.py` to cross-check against Opacus and
//! dp-accounting.

use aisec_harden::accountant::{PldAccountant, PldSettings, RdpAccountant};
use std::io::{Read, Write};

#[derive(serde::Deserialize)]
struct Row {
    q: f64,
    sigma: f64,
    steps: u64,
    delta: f64,
    /// Optional PLD grid spacing and FFT size cap (defaults otherwise).
    grid: Option<f64>,
    max_points: Option<usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let rows: Vec<Row> = serde_json::from_str(&input)?;
    let mut out = Vec::new();
    for r in rows {
        let t0 = std::time::Instant::now();
        let mut rdp = RdpAccountant::new();
        rdp.step(r.sigma, r.q, r.steps)?;
        let (eps_rdp, order) = rdp.epsilon(r.delta)?;
        let t_rdp = t0.elapsed().as_secs_f64();
        let t1 = std::time::Instant::now();
        let d = PldSettings::default();
        let mut pld = PldAccountant::with_settings(PldSettings {
            grid: r.grid.unwrap_or(d.grid),
            max_points: r.max_points.unwrap_or(d.max_points),
        })?;
        pld.step(r.sigma, r.q, r.steps)?;
        let eps_pld = pld.epsilon(r.delta)?;
        let t_pld = t1.elapsed().as_secs_f64();
        out.push(serde_json::json!({
            "q": r.q, "sigma": r.sigma, "steps": r.steps, "delta": r.delta,
            "rdp": eps_rdp, "rdp_order": order, "pld": eps_pld,
            "rdp_seconds": t_rdp, "pld_seconds": t_pld,
        }));
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
    Ok(())
}
