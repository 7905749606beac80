//! Byte ranges as sorted, merged intervals, so a million writes are judged in O(n log n)
//! instead of byte by byte.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// `[start, end)` owned by the item with the greatest `(key, id)` covering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    pub start: u64,
    pub end: u64,
    pub key: u64,
    pub id: u64,
}

/// The upper envelope of `items` (`start, end, key, id`): disjoint segments, sorted by
/// offset, each naming the covering item with the greatest `(key, id)`. Gaps are uncovered.
pub fn envelope(mut items: Vec<Seg>) -> Vec<Seg> {
    items.retain(|s| s.start < s.end);
    items.sort_unstable_by_key(|s| s.start);
    let mut points: Vec<u64> = items.iter().flat_map(|s| [s.start, s.end]).collect();
    points.sort_unstable();
    points.dedup();
    let mut heap: BinaryHeap<(u64, u64, Reverse<u64>)> = BinaryHeap::new();
    let mut out: Vec<Seg> = Vec::new();
    let mut next = 0;
    for w in points.windows(2) {
        let (x, y) = (w[0], w[1]);
        while next < items.len() && items[next].start == x {
            let s = items[next];
            heap.push((s.key, s.id, Reverse(s.end)));
            next += 1;
        }
        while heap.peek().is_some_and(|&(_, _, Reverse(end))| end <= x) {
            heap.pop();
        }
        let Some(&(key, id, _)) = heap.peek() else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.end == x && last.id == id && last.key == key => last.end = y,
            _ => out.push(Seg {
                start: x,
                end: y,
                key,
                id,
            }),
        }
    }
    out
}

/// The segments of a sorted, disjoint list that overlap `[start, end)`, clipped to it.
pub fn overlapping(segs: &[Seg], start: u64, end: u64) -> impl Iterator<Item = Seg> + '_ {
    let first = segs.partition_point(|s| s.end <= start);
    segs[first..]
        .iter()
        .take_while(move |s| s.start < end)
        .map(move |s| Seg {
            start: s.start.max(start),
            end: s.end.min(end),
            ..*s
        })
}

/// `[start, end)` ranges sorted and merged (touching ranges join).
pub fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|r| r.0 < r.1);
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: u64, end: u64, key: u64, id: u64) -> Seg {
        Seg {
            start,
            end,
            key,
            id,
        }
    }

    #[test]
    fn the_envelope_keeps_the_greatest_key_per_offset() {
        let env = envelope(vec![
            seg(0, 100, 5, 1),
            seg(20, 40, 9, 2),
            seg(30, 120, 7, 3),
            seg(200, 210, 1, 4),
        ]);
        assert_eq!(
            env,
            vec![
                seg(0, 20, 5, 1),
                seg(20, 40, 9, 2),
                seg(40, 120, 7, 3),
                seg(200, 210, 1, 4)
            ]
        );
        let hits: Vec<Seg> = overlapping(&env, 35, 205).collect();
        assert_eq!(
            hits,
            vec![seg(35, 40, 9, 2), seg(40, 120, 7, 3), seg(200, 205, 1, 4)]
        );
        assert_eq!(overlapping(&env, 120, 200).count(), 0);
    }

    #[test]
    fn merge_joins_overlapping_and_touching_ranges() {
        assert_eq!(
            merge(vec![(10, 20), (0, 5), (5, 8), (15, 30), (40, 40)]),
            vec![(0, 8), (10, 30)]
        );
    }
}
