//! Layer selection as a pure function: which simulcast layer a subscriber gets for one track,
//! from the layers' measured bitrates and resolutions, the subscriber's bandwidth budget for
//! that track and how large it shows the tile.

use crate::View;

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
}
