//! The popularity contest of `closure-graph.py`, computed from its closed
//! form instead of by unfolding the DAG into a tree.
//!
//! The reference's score for `x` is `Σ N(u)` over `x` and its ancestors,
//! where `N(u)` counts the distinct paths from any root to `u`. `N` grows
//! exponentially with diamond depth, so it is exact (big integers, then
//! limbs as wide as each sum can get). Ancestor sets are swept block by
//! block of 1024 columns so memory stays O(V·1024/8) while the work is
//! O(E·V/64) mask words, spread over threads with rayon; see [`scores`].

use crate::plan::graph::{parents_of, topo_order};
use num_bigint::BigUint;
use rayon::prelude::*;
use std::cmp::Ordering;

const BLOCK_WORDS: usize = 16;

/// `closure-graph.py`'s `package_name`: the name moved before the hash, so
/// ties in score sort by name, then by hash.
pub fn package_name(path: &str) -> String {
    match path.split_once('-') {
        Some((first, rest)) => format!("{rest}-{first}"),
        None => path.to_string(),
    }
}

/// Exact popularity scores as little-endian u64 limbs, each as wide as
/// the sum of the weights up to its node needs (a chain of diamonds makes
/// path counts of thousands of bits, but only at its end).
pub struct Scores {
    /// By topological position: `values[start[i]..start[i + 1]]`.
    start: Vec<usize>,
    values: Vec<u64>,
    /// Each node's topological position.
    pos: Vec<u32>,
}

impl Scores {
    pub fn get(&self, v: usize) -> &[u64] {
        let i = self.pos[v] as usize;
        &self.values[self.start[i]..self.start[i + 1]]
    }

    pub fn to_biguint(&self, v: usize) -> BigUint {
        let digits: Vec<u32> = self.get(v).iter().flat_map(|&w| [w as u32, (w >> 32) as u32]).collect();
        BigUint::new(digits)
    }

    fn cmp(&self, a: usize, b: usize) -> Ordering {
        let trim = |x: &[u64]| -> usize { x.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1) };
        let (x, y) = (self.get(a), self.get(b));
        let (x, y) = (&x[..trim(x)], &y[..trim(y)]);
        x.len().cmp(&y.len()).then_with(|| x.iter().rev().cmp(y.iter().rev()))
    }
}

/// Limbs up to the highest non-zero one (at least one).
fn significant(x: &[u64]) -> usize {
    x.iter().rposition(|&w| w != 0).map_or(1, |i| i + 1)
}

/// Scores of every node of an acyclic graph (`children` without self-loops).
///
/// `S(x) = Σ N(u)` over the ancestors-or-self `u` of `x`. Ancestor sets are
/// bit masks over one block of columns at a time; a row starts from the
/// mask and block sum of its parent with the most ancestors in the block
/// (a subset of its own), and adds only the weights of the ancestors that
/// parent lacks. On chain-like closures that is a handful per row, where
/// summing every ancestor took O(V²) big-number additions (10,000
/// diamonds: 64 s).
pub fn scores(children: &[Vec<u32>]) -> Scores {
    let n = children.len();
    let order = topo_order(children).expect("popularity needs an acyclic graph");
    let parents = parents_of(children);
    let mut pos = vec![0u32; n];
    for (i, &v) in order.iter().enumerate() {
        pos[v as usize] = i as u32;
    }

    let parent_pos: Vec<Vec<u32>> = order.iter().map(|&v| parents[v as usize].iter().map(|&p| pos[p as usize]).collect()).collect();
    drop(parents);
    // N(u), the paths from a root to u, by topological position, each as
    // wide as it needs; and a score slot per node as wide as the sum of the
    // weights up to it (a score never exceeds it).
    let mut wstart = vec![0usize; n + 1];
    let mut weight: Vec<u64> = Vec::new();
    let mut start = vec![0usize; n + 1];
    let mut prefix: Vec<u64> = Vec::new();
    let mut tmp: Vec<u64> = Vec::new();
    for i in 0..n {
        let ps = &parent_pos[i];
        if ps.is_empty() {
            weight.push(1);
        } else {
            // A sum of k < 2^64 numbers needs at most one limb more.
            let width = ps.iter().map(|&p| wstart[p as usize + 1] - wstart[p as usize]).max().unwrap_or(1) + 1;
            tmp.clear();
            tmp.resize(width, 0);
            for &p in ps {
                add_limbs(&mut tmp, &weight[wstart[p as usize]..wstart[p as usize + 1]]);
            }
            weight.extend_from_slice(&tmp[..significant(&tmp)]);
        }
        wstart[i + 1] = weight.len();
        let w = &weight[wstart[i]..wstart[i + 1]];
        prefix.resize(prefix.len().max(w.len()) + 1, 0);
        add_limbs(&mut prefix, w);
        prefix.truncate(significant(&prefix));
        start[i + 1] = start[i] + prefix.len();
    }
    drop(tmp);
    drop(prefix);
    let slots = start[n];
    let w_of = |u: usize| &weight[wstart[u]..wstart[u + 1]];

    let values = std::sync::Mutex::new(vec![0u64; slots]);
    let words = n.div_ceil(64).clamp(1, BLOCK_WORDS);
    let cols = words * 64;
    let blocks: Vec<usize> = (0..n).step_by(cols).collect();
    blocks.par_iter().for_each(|&c0| {
        let c1 = (c0 + cols).min(n);
        let mut block_sum: Vec<u64> = Vec::new();
        for u in c0..c1 {
            block_sum.resize(block_sum.len().max(w_of(u).len()) + 1, 0);
            add_limbs(&mut block_sum, w_of(u));
            block_sum.truncate(significant(&block_sum));
        }
        let limbs = block_sum.len();
        drop(block_sum);
        let rows = n - c0;
        let mut masks = vec![0u64; rows * words];
        let mut counts = vec![0u32; rows];
        let mut sums = vec![0u64; rows * limbs];
        for i in c0..n {
            let r = i - c0;
            // The parent with the most ancestors in this block.
            let best = parent_pos[i].iter().map(|&p| p as usize).filter(|&p| p >= c0).max_by_key(|&p| (counts[p - c0], std::cmp::Reverse(p)));
            let (done, rest) = masks.split_at_mut(r * words);
            let mask = &mut rest[..words];
            let (sums_done, sums_rest) = sums.split_at_mut(r * limbs);
            let acc = &mut sums_rest[..limbs];
            let base: Option<&[u64]> = best.map(|p| &done[(p - c0) * words..(p - c0 + 1) * words]);
            if let Some(p) = best {
                mask.copy_from_slice(&done[(p - c0) * words..(p - c0 + 1) * words]);
                acc.copy_from_slice(&sums_done[(p - c0) * limbs..(p - c0 + 1) * limbs]);
            }
            for &pp in &parent_pos[i] {
                let pp = pp as usize;
                if pp >= c0 && Some(pp) != best {
                    for (m, s) in mask.iter_mut().zip(&done[(pp - c0) * words..(pp - c0 + 1) * words]) {
                        *m |= s;
                    }
                }
            }
            if i < c1 {
                mask[(i - c0) / 64] |= 1 << ((i - c0) % 64);
            }
            let mut count = 0;
            for (w, &word) in mask.iter().enumerate() {
                count += word.count_ones();
                let mut bits = word & !base.map_or(0, |b| b[w]);
                while bits != 0 {
                    let b = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    add_limbs(acc, w_of(c0 + w * 64 + b));
                }
            }
            counts[r] = count;
        }
        drop(masks);
        let mut values = crate::stop::lock(&values);
        for (r, chunk) in sums.chunks_exact(limbs).enumerate() {
            let i = c0 + r;
            add_limbs(&mut values[start[i]..start[i + 1]], chunk);
        }
    });
    Scores { start, values: values.into_inner().unwrap_or_else(|p| p.into_inner()), pos }
}

/// `acc += x`, where the sum fits `acc` (limbs of `x` beyond it are zero).
fn add_limbs(acc: &mut [u64], x: &[u64]) {
    let mut carry = false;
    for (i, a) in acc.iter_mut().enumerate() {
        let b = x.get(i).copied().unwrap_or(0);
        if i >= x.len() && !carry {
            break;
        }
        let (s1, c1) = a.overflowing_add(b);
        let (s2, c2) = s1.overflowing_add(carry as u64);
        *a = s2;
        carry = c1 || c2;
    }
    debug_assert!(!carry && x.iter().skip(acc.len()).all(|&w| w == 0), "limb width is sized for the largest sum");
}

/// Node indices most popular first, ties by [`package_name`] ascending.
///
/// Every node of a valid (acyclic, complete) graph is a root or reachable
/// from one, so the reference's "missing paths" tail never applies here.
pub fn popularity_order(children: &[Vec<u32>], paths: &[&str]) -> Vec<u32> {
    let scores = scores(children);
    let names: Vec<String> = paths.iter().map(|p| package_name(p)).collect();
    let mut order: Vec<u32> = (0..children.len() as u32).collect();
    order.par_sort_unstable_by(|&a, &b| scores.cmp(b as usize, a as usize).then_with(|| names[a as usize].cmp(&names[b as usize])).then(a.cmp(&b)));
    order
}
