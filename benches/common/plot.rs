//! Log-log line charts as SVG: the plots the report links to.

/// One line of a chart: its name in the legend, its colour, and its points
/// (x, y), both above zero (others are left out).
pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// Drawn dashed, in the plot and in the legend.
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// Where the x axis has its grid lines and labels.
pub enum XTicks {
    /// At every power of ten; the axis spans whole decades.
    Decades,
    /// At every x of the points; the axis spans just those.
    AtPoints,
}

/// A log-log chart: one line per series, a grid line and label at every tick
/// (every power of ten on the y axis), the legend right of the plot area.
pub struct LogLogChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_ticks: XTicks,
    /// The label of the tick at x (the value, not its logarithm).
    pub x_tick_label: fn(f64) -> String,
    /// The label of the tick at y, a power of ten.
    pub y_tick_label: fn(f64) -> String,
    pub series: Vec<Series>,
}

/// The chart's size and the margins around the plot area (the legend sits in the right one).
const W: f64 = 800.0;
const H: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

impl LogLogChart {
    pub fn to_svg(&self) -> String {
        let points: Vec<(f64, f64)> = self.points().flat_map(|(_, p)| p).collect();
        if points.is_empty() {
            return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>\n".into();
        }
        // The extent of the points on each axis, and the axes' ranges, as logarithms (base 10).
        let extent = |of: fn(&(f64, f64)) -> f64| {
            points
                .iter()
                .map(|p| of(p).log10())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        let ((xmin, xmax), (ymin, ymax)) = (extent(|p| p.0), extent(|p| p.1));
        let (x0, x1) = match self.x_ticks {
            XTicks::Decades => (xmin.floor(), xmax.ceil().max(xmin.floor() + 1.0)),
            XTicks::AtPoints => (xmin, xmax.max(xmin + 2f64.log10())),
        };
        let (y0, y1) = (ymin.floor(), ymax.ceil().max(ymin.floor() + 1.0));
        let x_ticks: Vec<f64> = match self.x_ticks {
            XTicks::Decades => ((x0 as i32)..=(x1 as i32)).map(|e| 10f64.powi(e)).collect(),
            XTicks::AtPoints => {
                let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
                xs.sort_by(f64::total_cmp);
                xs.dedup();
                xs
            }
        };
        let px = |x: f64| LEFT + (x.log10() - x0) / (x1 - x0) * (W - LEFT - RIGHT);
        let py = |y: f64| TOP + (y1 - y.log10()) / (y1 - y0) * (H - TOP - BOTTOM);

        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
            LEFT + (W - LEFT - RIGHT) / 2.0,
            escape(&self.title),
        );
        for x in x_ticks {
            svg += &format!(
                "<line x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\n\
                 <text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
                H - BOTTOM,
                H - BOTTOM + 18.0,
                escape(&(self.x_tick_label)(x)),
                px = px(x),
            );
        }
        for e in (y0 as i32)..=(y1 as i32) {
            let y = 10f64.powi(e);
            svg += &format!(
                "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{}\" y2=\"{py:.1}\" stroke=\"#ddd\"/>\n\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                W - RIGHT,
                LEFT - 6.0,
                py(y) + 4.0,
                escape(&(self.y_tick_label)(y)),
                py = py(y),
            );
        }
        svg += &format!(
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#888\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
             <text x=\"16\" y=\"{mid}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {mid})\">{}</text>\n",
            W - LEFT - RIGHT,
            H - TOP - BOTTOM,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            H - 10.0,
            escape(&self.x_label),
            escape(&self.y_label),
            mid = TOP + (H - TOP - BOTTOM) / 2.0,
        );
        for (i, (series, pts)) in self.points().enumerate() {
            let color = series.color;
            let dash = if series.dashed { " stroke-dasharray=\"6 4\"" } else { "" };
            let path: Vec<String> = pts.clone().map(|(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
            svg += &format!(
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n",
                path.join(" ")
            );
            for (x, y) in pts {
                svg += &format!("<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"/>\n", px(x), py(y));
            }
            let (lx, ly) = (W - RIGHT + 16.0, TOP + 16.0 + 20.0 * i as f64);
            svg += &format!(
                "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n\
                 <text x=\"{}\" y=\"{}\">{}</text>\n",
                lx + 24.0,
                lx + 30.0,
                ly + 4.0,
                escape(&series.name),
            );
        }
        svg += "</svg>\n";
        svg
    }

    /// Each series with the points a log scale can show.
    fn points(&self) -> impl Iterator<Item = (&Series, impl Iterator<Item = (f64, f64)> + Clone)> {
        self.series.iter().map(|s| (s, s.points.iter().copied().filter(|&(x, y)| x > 0.0 && y > 0.0)))
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
