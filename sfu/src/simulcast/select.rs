//! Layer selection as a pure function: which simulcast layer a subscriber gets for one track,
//! from the layers' measured bitrates and resolutions, the subscriber's bandwidth budget for
//! that track and how large it shows the tile; and [`Hysteresis`], which keeps that choice from
//! flapping when the estimate hovers at a layer's bitrate.

use std::time::{Duration, Instant};

use crate::View;

/// A higher layer is taken only when the budget exceeds its bitrate by this much (percent)...
const UP_MARGIN_PERCENT: u64 = 20;
/// ...for this long without a break, when the budget was what held the down track below the
/// layer its view wants. Moving down never waits.
pub(crate) const UP_HOLD: Duration = Duration::from_secs(2);

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
/// - down at once: when the current layer no longer fits the budget (or the view, or stopped
///   arriving), the down track moves to what does;
/// - up only when the budget exceeds the higher layer's bitrate by [`UP_MARGIN_PERCENT`], and,
///   if the budget was what held it down, only after that has held for [`UP_HOLD`]. An up-move
///   because the view grew (the budget was never the limit) is immediate.
///
/// So an estimate hovering at a layer's bitrate keeps the down track where it is instead of
/// switching (each switch costs a keyframe) several times a second.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hysteresis {
    /// Since when an up-move has been possible without a break.
    up_since: Option<Instant>,
    /// The last choice was below the wanted layer because of the budget.
    budget_limited: bool,
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
        let keep = choose_layer(layers, budget, view);
        let wanted = choose_layer(layers, None, view);
        let choice = match current {
            // Starting, or the current layer is gone or hidden: no history to respect.
            Some(c) if layers.get(c).is_some_and(|l| l.active) && keep.is_some() => {
                let up = choose_layer(
                    layers,
                    budget.map(|b| b * 100 / (100 + UP_MARGIN_PERCENT)),
                    view,
                );
                match (keep, up) {
                    (Some(k), _) if k < c => {
                        self.up_since = None;
                        keep
                    }
                    (_, Some(u)) if u > c => {
                        if self.budget_limited {
                            let since = *self.up_since.get_or_insert(now);
                            if now.saturating_duration_since(since) >= UP_HOLD {
                                self.up_since = None;
                                Some(u)
                            } else {
                                Some(c)
                            }
                        } else {
                            self.up_since = None;
                            Some(u)
                        }
                    }
                    _ => {
                        self.up_since = None;
                        Some(c)
                    }
                }
            }
            _ => {
                self.up_since = None;
                keep
            }
        };
        self.budget_limited = match (choice, wanted) {
            (Some(c), Some(w)) => c < w,
            _ => false,
        };
        choice
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

    /// Runs `Hysteresis` over a series of budgets, one every 250 ms (the media loop's tick),
    /// starting on the top layer; returns the choices.
    fn run(budgets: &[u64], view: View) -> Vec<Option<usize>> {
        let t0 = Instant::now();
        let layers = ladder();
        let mut h = Hysteresis::default();
        let mut current = Some(2);
        budgets
            .iter()
            .enumerate()
            .map(|(n, &b)| {
                let now = t0 + Duration::from_millis(250 * n as u64);
                current = h.choose(&layers, Some(b), view, current, now);
                current
            })
            .collect()
    }

    fn switches(choices: &[Option<usize>]) -> usize {
        choices.windows(2).filter(|w| w[0] != w[1]).count()
    }

    #[test]
    fn an_estimate_hovering_at_a_layer_does_not_flap() {
        // The budget hovers around the top layer's 1.5 Mbit/s (±8 %) for five seconds, as a
        // steady estimate does: the pure rule switches on every crossing, hysteresis once.
        let hovering: Vec<u64> = (0..20)
            .map(|n| if n % 2 == 0 { 1_380_000 } else { 1_620_000 })
            .collect();
        let plain: Vec<Option<usize>> = hovering
            .iter()
            .map(|&b| choose_layer(&ladder(), Some(b), view(1280, 720)))
            .collect();
        assert!(switches(&plain) >= 10, "{plain:?}");
        let held = run(&hovering, view(1280, 720));
        // From "f": down to "h" at the first dip, and there it stays.
        assert!(held.iter().all(|c| *c == Some(1)), "{held:?}");
        assert_eq!(switches(&held), 0);
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
        // Just above "f" without the margin is not enough to climb.
        let mut budgets = vec![200_000; 4];
        budgets.extend([1_600_000; 20]);
        assert!(run(&budgets, large)[4..].iter().all(|c| *c != Some(2)));
    }

    #[test]
    fn a_larger_view_moves_up_at_once_when_the_budget_was_not_the_limit() {
        let t0 = Instant::now();
        let layers = ladder();
        let mut h = Hysteresis::default();
        let small = h.choose(&layers, Some(5_000_000), view(320, 180), None, t0);
        assert_eq!(small, Some(0));
        let large = h.choose(&layers, Some(5_000_000), view(1280, 720), small, t0);
        assert_eq!(large, Some(2));
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
    }
}
