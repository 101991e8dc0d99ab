//! Layer selection as a pure function: which simulcast layer a subscriber gets for one track,
//! from the layers' measured bitrates and resolutions, the subscriber's bandwidth budget for
//! that track and how large it shows the tile; and [`Hysteresis`], which keeps that choice from
//! flapping when the estimate hovers at a layer's bitrate.

use std::time::{Duration, Instant};

use crate::View;

/// A higher layer is taken only when the budget exceeds its bitrate by this much (percent)...
const UP_MARGIN_PERCENT: u64 = 20;
/// ...for this long without a break (unless the move is for a larger view: then at once).
pub(crate) const UP_HOLD: Duration = Duration::from_secs(2);
/// The current layer is kept while the budget is at least its bitrate less this much
/// (percent): a layer running a little over the budget (a keyframe, an encoder overshoot; the
/// budget already keeps 10 % of the estimate as headroom) is no reason to switch.
const DOWN_MARGIN_PERCENT: u64 = 10;
/// Least time between two budget-driven switches of one down track. Within it, a down-switch
/// needs a real drop: the budget below the current layer's bitrate by [`DROP_PERCENT`].
pub(crate) const MIN_DWELL: Duration = Duration::from_secs(2);
/// What counts as a real drop inside [`MIN_DWELL`] (percent below the current layer's bitrate).
const DROP_PERCENT: u64 = 25;

/// What the SFU knows about one incoming simulcast layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerInfo {
    /// Measured bitrate in bit/s (0 before the first measurement window closes).
    pub(crate) bitrate: u64,
    /// Resolution from the last keyframe, 0×0 when unknown (e.g. H.264).
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Media arrived recently (a layer the publisher stopped sending is never chosen).
    pub(crate) active: bool,
}

/// Heights assumed for layers whose resolution is unknown, lowest layer first, counted from
/// the top layer down (the usual browser ladder: full, half, quarter of 720p).
const ASSUMED_TOP_HEIGHT: u32 = 720;

/// Chooses a layer for one down track: an index into `layers`, which are ordered from the
/// lowest quality to the highest. `None` means forward nothing (hidden tile, or no layer
/// arriving).
///
/// Rules:
/// 1. An invisible view gets nothing.
/// 2. The wanted layer is the smallest active one at least ~90 % of the view's height (or
///    width); an unknown view size wants the highest active layer.
/// 3. With a budget, the highest active layer not above the wanted one whose bitrate fits is
///    taken; when none fits, the lowest active layer (video degrades, it does not freeze;
///    audio is never part of this choice).
pub(crate) fn choose_layer(layers: &[LayerInfo], budget: Option<u64>, view: View) -> Option<usize> {
    if !view.visible {
        return None;
    }
    let active: Vec<usize> = (0..layers.len())
        .filter(|i| layers.get(*i).is_some_and(|l| l.active))
        .collect();
    let (&lowest, &highest) = (active.first()?, active.last()?);
    let wanted = if view.width == 0 && view.height == 0 {
        highest
    } else {
        active
            .iter()
            .copied()
            .find(|&i| covers(layers, i, view))
            .unwrap_or(highest)
    };
    let Some(budget) = budget else {
        return Some(wanted);
    };
    let affordable = active
        .iter()
        .copied()
        .rfind(|&i| i <= wanted && layers.get(i).is_some_and(|l| l.bitrate <= budget));
    Some(affordable.unwrap_or(lowest))
}

/// Layer choice with hysteresis for one down track (the pure rule is [`choose_layer`]):
/// - down promptly: when the budget falls below the current layer's bitrate by more than
///   [`DOWN_MARGIN_PERCENT`], the down track moves to the highest layer that fits the budget.
///   Within [`MIN_DWELL`] of the previous switch only a real drop (more than [`DROP_PERCENT`]
///   below) moves it, so the keyframe that a switch asks for (which inflates the new layer's
///   measured bitrate for a window or two) cannot bounce it straight back;
/// - down at once when the view shrinks, the tile is hidden or the current layer stops arriving;
/// - up only when the budget exceeds the higher layer's bitrate by [`UP_MARGIN_PERCENT`] and
///   has done so for [`UP_HOLD`] without a break; an up-move because the view grew is immediate
///   (when the budget affords it with the same margin).
///
/// So an estimate hovering at a layer's bitrate keeps the down track where it is instead of
/// switching (each switch costs a keyframe) several times a second. Time is passed in (the
/// media loop's clock), never slept.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hysteresis {
    /// Since when an up-move has been possible without a break.
    up_since: Option<Instant>,
    /// When the down track last switched layer (budget- or view-driven).
    switched_at: Option<Instant>,
    /// The view of the previous choice (an up-move for a larger view does not wait).
    view: Option<View>,
}

impl Hysteresis {
    /// The layer for this down track now, given the `current` one (index into `layers`).
    pub(crate) fn choose(
        &mut self,
        layers: &[LayerInfo],
        budget: Option<u64>,
        view: View,
        current: Option<usize>,
        now: Instant,
    ) -> Option<usize> {
        let view_changed = self.view.is_some_and(|v| v != view);
        self.view = Some(view);
        let keep = choose_layer(layers, budget, view);
        let wanted = choose_layer(layers, None, view);
        let (Some(c), Some(_), Some(wanted)) = (current, keep, wanted) else {
            // Starting, hidden, or nothing arriving: no history to respect.
            self.up_since = None;
            return self.switched(current, keep, now);
        };
        if !layers.get(c).is_some_and(|l| l.active) || wanted < c {
            // The current layer stopped arriving, or the view shrank below it.
            self.up_since = None;
            return self.switched(current, keep.map(|k| k.min(wanted)), now);
        }
        let need = layers.get(c).map_or(0, |l| l.bitrate);
        if let Some(budget) = budget {
            let dwelling = self
                .switched_at
                .is_some_and(|at| now.saturating_duration_since(at) < MIN_DWELL);
            let margin = if dwelling {
                DROP_PERCENT
            } else {
                DOWN_MARGIN_PERCENT
            };
            if budget.saturating_mul(100) < need.saturating_mul(100 - margin) {
                self.up_since = None;
                let down = keep.map(|k| k.min(c.saturating_sub(1)));
                return self.switched(current, down, now);
            }
        }
        let up = choose_layer(
            layers,
            budget.map(|b| b * 100 / (100 + UP_MARGIN_PERCENT)),
            view,
        )
        .filter(|&u| u > c);
        let Some(up) = up else {
            self.up_since = None;
            return Some(c);
        };
        if view_changed {
            self.up_since = None;
            return self.switched(current, Some(up), now);
        }
        let since = *self.up_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= UP_HOLD {
            self.up_since = None;
            return self.switched(current, Some(up), now);
        }
        Some(c)
    }

    /// Returns `to`, noting the time when it differs from a `from` layer.
    fn switched(&mut self, from: Option<usize>, to: Option<usize>, now: Instant) -> Option<usize> {
        if from.is_some() && to.is_some() && from != to {
            self.switched_at = Some(now);
        }
        to
    }
}

/// Whether layer `i` is large enough for `view` (within 10 %).
fn covers(layers: &[LayerInfo], i: usize, view: View) -> bool {
    let Some(layer) = layers.get(i) else {
        return false;
    };
    let (width, height) = if layer.height > 0 {
        (layer.width, layer.height)
    } else {
        let below_top = (layers.len() - 1 - i).min(8) as u32;
        let h = ASSUMED_TOP_HEIGHT >> below_top;
        (h * 16 / 9, h)
    };
    u64::from(height) * 10 >= u64::from(view.height) * 9
        || (view.height == 0 && u64::from(width) * 10 >= u64::from(view.width) * 9)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn layer(kbps: u64, width: u32, height: u32) -> LayerInfo {
        LayerInfo {
            bitrate: kbps * 1000,
            width,
            height,
            active: true,
        }
    }

    fn ladder() -> Vec<LayerInfo> {
        vec![
            layer(150, 320, 180),
            layer(500, 640, 360),
            layer(1500, 1280, 720),
        ]
    }

    fn view(width: u32, height: u32) -> View {
        View {
            visible: true,
            width,
            height,
        }
    }

    #[test]
    fn table_of_choices() {
        let kbps = |k: u64| Some(k * 1000);
        let hidden = View {
            visible: false,
            width: 1280,
            height: 720,
        };
        let cases: Vec<(&str, Option<u64>, View, Option<usize>)> = vec![
            (
                "large tile, plenty of bandwidth",
                kbps(5000),
                view(1280, 720),
                Some(2),
            ),
            (
                "large tile, no estimate yet",
                None,
                view(1280, 720),
                Some(2),
            ),
            (
                "large tile, 800 kbit/s",
                kbps(800),
                view(1280, 720),
                Some(1),
            ),
            (
                "large tile, 200 kbit/s",
                kbps(200),
                view(1280, 720),
                Some(0),
            ),
            (
                "large tile, nothing fits",
                kbps(50),
                view(1280, 720),
                Some(0),
            ),
            ("thumbnail, plenty", kbps(5000), view(320, 180), Some(0)),
            ("medium tile", kbps(5000), view(600, 338), Some(1)),
            ("larger than half", kbps(5000), view(720, 405), Some(2)),
            ("unknown size", kbps(5000), View::default(), Some(2)),
            (
                "unknown size, 600 kbit/s",
                kbps(600),
                View::default(),
                Some(1),
            ),
            ("hidden", kbps(5000), hidden, None),
        ];
        for (name, budget, v, want) in cases {
            assert_eq!(choose_layer(&ladder(), budget, v), want, "{name}");
        }
    }

    #[test]
    fn inactive_layers_are_skipped_and_none_means_nothing() {
        let mut layers = ladder();
        layers[2].active = false;
        assert_eq!(choose_layer(&layers, None, view(1280, 720)), Some(1));
        layers[0].active = false;
        layers[1].active = false;
        assert_eq!(choose_layer(&layers, None, view(1280, 720)), None);
        assert_eq!(choose_layer(&[], None, View::default()), None);
    }

    #[test]
    fn unknown_resolutions_use_the_usual_ladder() {
        let layers = vec![layer(100, 0, 0), layer(300, 0, 0), layer(900, 0, 0)];
        assert_eq!(choose_layer(&layers, None, view(320, 180)), Some(0));
        assert_eq!(choose_layer(&layers, None, view(640, 360)), Some(1));
        assert_eq!(choose_layer(&layers, None, view(1920, 1080)), Some(2));
        // Two layers: they are taken as 360p and 720p.
        assert_eq!(choose_layer(&layers[1..], None, view(320, 180)), Some(0));
    }

    /// Runs `Hysteresis` over a series of budgets (bit/s), one every 250 ms (the media loop's
    /// tick), starting on layer `start` with `layers`; returns the choices.
    fn run_on(
        layers: &[Vec<LayerInfo>],
        budgets: &[u64],
        view: View,
        start: usize,
    ) -> Vec<Option<usize>> {
        let t0 = Instant::now();
        let mut h = Hysteresis::default();
        let mut current = Some(start);
        budgets
            .iter()
            .enumerate()
            .map(|(n, &b)| {
                let now = t0 + Duration::from_millis(250 * n as u64);
                let l = &layers[n.min(layers.len() - 1)];
                current = h.choose(l, Some(b), view, current, now);
                current
            })
            .collect()
    }

    fn run(budgets: &[u64], view: View) -> Vec<Option<usize>> {
        run_on(&[ladder()], budgets, view, 2)
    }

    fn switches(choices: &[Option<usize>]) -> usize {
        choices.windows(2).filter(|w| w[0] != w[1]).count()
    }

    /// `n` ticks alternating between `a` and `b` kbit/s.
    fn hover(a: u64, b: u64, n: usize) -> Vec<u64> {
        (0..n)
            .map(|i| if i % 2 == 0 { a * 1000 } else { b * 1000 })
            .collect()
    }

    #[test]
    fn hovering_estimates_switch_at_most_once() {
        let large = view(1280, 720);
        // (name, budgets over 5 s, starting layer, most switches allowed, layer at the end)
        let cases: Vec<(&str, Vec<u64>, usize, usize, usize)> = vec![
            // ±8 % around "f"'s 1.5 Mbit/s: within the down margin, "f" stays.
            ("±8 % at f, on f", hover(1380, 1620, 20), 2, 0, 2),
            // ±15 % around "f": down to "h" at the first dip; up needs 1.8 Mbit/s: stays.
            ("±15 % at f, on f", hover(1275, 1725, 20), 2, 1, 1),
            // On "h", hovering around "f"'s bitrate: above the up threshold (1.8 Mbit/s) every
            // other tick never holds long enough to climb.
            ("around f, on h", hover(1400, 1900, 20), 1, 0, 1),
            // The outside report: a steady ~1 Mbit/s estimate (budget ~0.9 Mbit/s) with "f"
            // measured at 0.8–1.05 Mbit/s (an encoder near its cap, keyframes).
            ("steady 0.9 Mbit/s, f wobbling", vec![900_000; 20], 1, 1, 1),
            // Slow swings (1 s up, 1 s down) around "h"'s 500 kbit/s, ±20 %, on "h".
            (
                "slow ±20 % at h, on h",
                (0..20)
                    .map(|i| if (i / 4) % 2 == 0 { 400_000 } else { 600_000 })
                    .collect(),
                1,
                1,
                0,
            ),
        ];
        for (name, budgets, start, most, end) in cases {
            let layers: Vec<Vec<LayerInfo>> = if name.starts_with("steady") {
                // "f" measured anew every tick: 0.8, 1.05, 0.85, 1.0, ... Mbit/s.
                (0..20)
                    .map(|i| {
                        let mut l = ladder();
                        l[2].bitrate = [800_000, 1_050_000, 850_000, 1_000_000][i % 4];
                        l
                    })
                    .collect()
            } else {
                vec![ladder()]
            };
            let choices = run_on(&layers, &budgets, large, start);
            assert!(switches(&choices) <= most, "{name}: {choices:?}");
            assert_eq!(choices.last(), Some(&Some(end)), "{name}: {choices:?}");
            // The pure rule flaps on every one of these.
            let plain: Vec<Option<usize>> = budgets
                .iter()
                .enumerate()
                .map(|(n, &b)| choose_layer(&layers[n.min(layers.len() - 1)], Some(b), large))
                .collect();
            assert!(switches(&plain) >= 4, "{name}: the pure rule {plain:?}");
        }
    }

    #[test]
    fn a_real_drop_moves_down_at_once_and_recovery_climbs_after_the_hold() {
        let large = view(1280, 720);
        // 5 Mbit/s, then a drop to 200 kbit/s: "q" on the very next choice.
        let mut budgets = vec![5_000_000; 4];
        budgets.extend([200_000; 4]);
        // Recovery: above "f" with margin; it takes UP_HOLD (8 ticks) of that to climb.
        budgets.extend([5_000_000; 12]);
        let choices = run(&budgets, large);
        assert_eq!(
            &choices[..5],
            &[Some(2), Some(2), Some(2), Some(2), Some(0)]
        );
        assert_eq!(choices[7], Some(0));
        let climbed = choices.iter().skip(8).position(|c| *c == Some(2));
        assert_eq!(climbed, Some(8), "{choices:?}");
        assert_eq!(switches(&choices), 2);
        // Just above "f" without the margin is not enough to climb.
        let mut budgets = vec![200_000; 4];
        budgets.extend([1_600_000; 20]);
        assert!(run(&budgets, large)[4..].iter().all(|c| *c != Some(2)));
        // A drop right after a climb (inside the dwell) still moves down at once.
        let mut budgets = vec![200_000; 2];
        budgets.extend([5_000_000; 9]);
        budgets.extend([600_000; 2]);
        let choices = run(&budgets, large);
        assert_eq!(choices[10], Some(2), "{choices:?}");
        assert_eq!(choices[11], Some(1), "{choices:?}");
    }

    #[test]
    fn the_keyframe_of_a_climb_does_not_bounce_it_back() {
        let large = view(1280, 720);
        // On "h" with 1.85 Mbit/s: climbs to "f" after the hold (tick 8). The keyframe asked
        // for makes "f" measure 2.2 Mbit/s for the next two seconds (more than the budget
        // plus the down margin, less than a real drop): it stays on "f".
        let mut layers = vec![ladder(); 9];
        let mut spiked = ladder();
        spiked[2].bitrate = 2_200_000;
        layers.extend(vec![spiked; 7]);
        layers.push(ladder());
        let choices = run_on(&layers, &[1_850_000; 20], large, 1);
        assert_eq!(choices[8], Some(2), "{choices:?}");
        assert!(choices[8..].iter().all(|c| *c == Some(2)), "{choices:?}");
        // The same spike after the dwell is a reason to move down.
        let mut layers = vec![ladder(); 17];
        let mut spiked = ladder();
        spiked[2].bitrate = 2_200_000;
        layers.push(spiked);
        let choices = run_on(&layers, &[1_850_000; 18], large, 1);
        assert_eq!(choices[16], Some(2), "{choices:?}");
        assert_eq!(choices[17], Some(1), "{choices:?}");
    }

    #[test]
    fn a_larger_view_moves_up_at_once_when_the_budget_affords_it() {
        let t0 = Instant::now();
        let layers = ladder();
        let mut h = Hysteresis::default();
        let small = h.choose(&layers, Some(5_000_000), view(320, 180), None, t0);
        assert_eq!(small, Some(0));
        let large = h.choose(&layers, Some(5_000_000), view(1280, 720), small, t0);
        assert_eq!(large, Some(2));
        // Smaller again: down at once, even inside the dwell.
        let medium = h.choose(&layers, Some(5_000_000), view(640, 360), large, t0);
        assert_eq!(medium, Some(1));
        // Hidden: nothing, and shown again starts afresh.
        let hidden = View {
            visible: false,
            ..view(1280, 720)
        };
        assert_eq!(h.choose(&layers, Some(5_000_000), hidden, large, t0), None);
        assert_eq!(
            h.choose(&layers, Some(5_000_000), view(1280, 720), None, t0),
            Some(2)
        );
        // The current layer stopped arriving: moves at once.
        let mut gone = ladder();
        gone[2].active = false;
        assert_eq!(
            h.choose(&gone, Some(5_000_000), view(1280, 720), Some(2), t0),
            Some(1)
        );
        // A larger view the budget does not afford with the margin: stays.
        let mut h = Hysteresis::default();
        let small = h.choose(&layers, Some(1_700_000), view(640, 360), None, t0);
        assert_eq!(small, Some(1));
        assert_eq!(
            h.choose(&layers, Some(1_700_000), view(1280, 720), small, t0),
            Some(1)
        );
    }
}
