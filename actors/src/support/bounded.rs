//! Keeping per-player maps bounded: when one is full, the least recently
//! touched tenth goes at once, so the scan is paid rarely rather than on
//! every new player.

use std::collections::HashMap;
use std::hash::Hash;

/// Removes the entries whose `touched` stamp is among the oldest tenth of
/// `map` (at least one entry).
pub fn forget_oldest_tenth<K: Eq + Hash, V>(map: &mut HashMap<K, V>, touched: impl Fn(&V) -> u64) {
    if map.is_empty() {
        return;
    }
    let mut stamps: Vec<u64> = map.values().map(&touched).collect();
    let cut = (stamps.len() / 10).max(1);
    let (_, threshold, _) = stamps.select_nth_unstable(cut - 1);
    let threshold = *threshold;
    map.retain(|_, value| touched(value) > threshold);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_tenth_goes() {
        let mut map: HashMap<u32, u64> = (0..100).map(|n| (n, u64::from(n))).collect();
        forget_oldest_tenth(&mut map, |stamp| *stamp);
        assert_eq!(map.len(), 90);
        assert!((0..10).all(|n| !map.contains_key(&n)));
        assert!((10..100).all(|n| map.contains_key(&n)));

        let mut small: HashMap<u32, u64> = HashMap::from([(1, 5), (2, 7)]);
        forget_oldest_tenth(&mut small, |stamp| *stamp);
        assert_eq!(small.keys().copied().collect::<Vec<_>>(), [2]);
        let mut empty: HashMap<u32, u64> = HashMap::new();
        forget_oldest_tenth(&mut empty, |stamp| *stamp);
    }
}
