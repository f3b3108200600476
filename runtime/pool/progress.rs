//! `par_map!(..; progress = true)`: a progress bar on stderr while the results come in.
//!
//! The bar is driven by the results themselves, counted as their chunks arrive,
//! so it costs nothing when it is not asked for and needs no hook in the engine.
//! In input order a result is counted once those before it have arrived too, so
//! the bar may lag behind the work by a few chunks; in completion order it does
//! not. When stderr is not a terminal the bar draws nothing.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::Result;

/// With a known total: tqdm's layout (percent, bar, count, elapsed < left, rate).
const BAR: &str =
    "{msg} {percent:>3}% [{wide_bar}] {human_pos}/{human_len} [{elapsed_precise}<{eta_precise}, {per_sec:0}]";
/// Without one: a spinner and the count.
const SPINNER: &str = "{msg} {spinner} {human_pos} done [{elapsed_precise}, {per_sec:0}]";

/// How often the bar is redrawn while no result arrives, so that the clock and
/// the spinner move during a long chunk.
const TICK: Duration = Duration::from_millis(100);

/// Collects `results` into a `Vec`, stopping at the first error, while a bar
/// labelled with `task` shows how many of `total` (when known) have arrived.
pub(crate) fn collect<R>(task: &str, total: Option<usize>, results: impl Iterator<Item = Result<R>>) -> Result<Vec<R>> {
    let bar = bar(task, total);
    let mut values = Vec::with_capacity(total.unwrap_or(0));
    for result in results {
        match result {
            Ok(value) => {
                values.push(value);
                bar.inc(1);
            }
            Err(e) => {
                // Left on screen where it stopped, as a record of how far it got.
                bar.abandon();
                return Err(e);
            }
        }
    }
    bar.finish();
    Ok(values)
}

fn bar(task: &str, total: Option<usize>) -> ProgressBar {
    // The templates are constants (checked by the tests below): the fallbacks never run.
    let bar = match total {
        Some(n) => ProgressBar::new(n as u64)
            .with_style(ProgressStyle::with_template(BAR).unwrap_or_else(|_| ProgressStyle::default_bar())),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template(SPINNER).unwrap_or_else(|_| ProgressStyle::default_spinner())),
    };
    // `module::path::task` is long; the function's own name says which bar this is.
    let short = task.rsplit("::").next().unwrap_or(task);
    let bar = bar.with_message(short.to_string());
    bar.enable_steady_tick(TICK);
    bar
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_templates_are_valid() {
        assert!(ProgressStyle::with_template(BAR).is_ok());
        assert!(ProgressStyle::with_template(SPINNER).is_ok());
    }

    #[test]
    fn collect_returns_the_values_in_the_order_given() {
        let results = (0..5u64).map(Ok);
        assert_eq!(collect("m::square", Some(5), results).ok(), Some(vec![0, 1, 2, 3, 4]));
        assert_eq!(collect("m::square", None, (0..3u64).map(Ok)).ok(), Some(vec![0, 1, 2]));
    }

    #[test]
    fn collect_stops_at_the_first_error() {
        let results = vec![Ok(1u64), Err(crate::Error::Timeout), Ok(3)];
        assert!(matches!(collect("m::square", Some(3), results.into_iter()), Err(crate::Error::Timeout)));
    }
}
