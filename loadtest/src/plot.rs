//! The benchmark plot: server CPU (% of one core) against forwarded packets/s, one line per
//! server, written as SVG with `plotters` (no fonts needed).

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::run::Measurement;

/// Writes the plot of `rows` (grouped by target) to `path`.
pub fn write(path: &Path, rows: &[Measurement]) -> anyhow::Result<()> {
    let mut targets: Vec<&str> = rows.iter().map(|m| m.target.as_str()).collect();
    targets.dedup();
    targets.sort_unstable();
    targets.dedup();
    let cpu = |m: &Measurement| 100.0 * m.cpu_s / m.secs.max(1e-9);
    let max_x = rows.iter().map(|m| m.recv_pps).fold(1.0, f64::max) * 1.1;
    let max_y = rows.iter().map(cpu).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Server CPU vs forwarded packets (loopback)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..max_x, 0f64..max_y)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("packets/s received by subscribers")
        .y_desc("server CPU, % of one core")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let colours = [RED, BLUE, GREEN, MAGENTA];
    for (i, t) in targets.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mut pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|m| m.target == *t)
            .map(|m| (m.recv_pps, cpu(m)))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(*t)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
