//! Byte ranges owned by the newest item covering them, kept as disjoint segments in a
//! B-tree, so reads are judged against a million writes in O(n log n), not byte by byte.

use std::collections::BTreeMap;

/// Byte ranges owned by the acknowledged write with the greatest (invoke time, id).
#[derive(Default)]
pub struct Newest(BTreeMap<u64, (u64, u64, u64)>);

impl Newest {
    /// Write `id` invoked at `t0` covers `[a, b)`.
    pub fn insert(&mut self, a: u64, b: u64, t0: u64, id: u64) {
        if a >= b {
            return;
        }
        let old: Vec<(u64, (u64, u64, u64))> = self.overlapping(a, b).collect();
        for (start, _) in &old {
            self.0.remove(start);
        }
        let mut cur = a;
        for (start, (end, k, i)) in old {
            if start < a {
                self.0.insert(start, (a, k, i));
            }
            let (x, y) = (start.max(a), end.min(b));
            if cur < x {
                self.0.insert(cur, (x, t0, id));
            }
            let keep = (k, i) > (t0, id);
            self.0.insert(x, if keep { (y, k, i) } else { (y, t0, id) });
            cur = y;
            if end > b {
                self.0.insert(b, (end, k, i));
            }
        }
        if cur < b {
            self.0.insert(cur, (b, t0, id));
        }
        self.coalesce(a, b);
    }

    /// Join touching segments of one item around `[a, b)`, so repeated writes of one range
    /// keep the map small.
    fn coalesce(&mut self, a: u64, b: u64) {
        let from = self.0.range(..a).next_back().map_or(a, |(s, _)| *s);
        let keys: Vec<u64> = self.0.range(from..=b).map(|(s, _)| *s).collect();
        let mut prev: Option<u64> = None;
        for k in keys {
            let cur = self.0[&k];
            if let Some(p) = prev {
                let last = self.0[&p];
                if last.0 == k && (last.1, last.2) == (cur.1, cur.2) {
                    self.0.remove(&k);
                    self.0.insert(p, (cur.0, cur.1, cur.2));
                    continue;
                }
            }
            prev = Some(k);
        }
    }

    /// `(start, (end, t0, id))` of the segments overlapping `[a, b)`, by offset.
    pub fn overlapping(&self, a: u64, b: u64) -> impl Iterator<Item = (u64, (u64, u64, u64))> {
        let mut v: Vec<(u64, (u64, u64, u64))> = self
            .0
            .range(..b)
            .rev()
            .take_while(|(_, (end, _, _))| *end > a)
            .map(|(s, e)| (*s, *e))
            .collect();
        v.reverse();
        v.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_item_owns_each_byte() {
        let mut n = Newest::default();
        n.insert(0, 100, 5, 1);
        n.insert(20, 40, 9, 2);
        n.insert(30, 120, 7, 3);
        n.insert(200, 210, 1, 4);
        n.insert(0, 10, 1, 5);
        let all: Vec<_> = n.overlapping(0, 1000).collect();
        assert_eq!(
            all,
            vec![
                (0, (20, 5, 1)),
                (20, (40, 9, 2)),
                (40, (120, 7, 3)),
                (200, (210, 1, 4))
            ]
        );
        let hits: Vec<_> = n
            .overlapping(35, 205)
            .map(|(s, (e, _, id))| (s, e, id))
            .collect();
        assert_eq!(hits, vec![(20, 40, 2), (40, 120, 3), (200, 210, 4)]);
        assert_eq!(n.overlapping(120, 200).count(), 0);
    }
}
