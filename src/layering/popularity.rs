//! The popularity contest of `closure-graph.py`, computed from its closed
//! form instead of by unfolding the DAG into a tree.
//!
//! The reference's score for `x` is `Σ N(u)` over `x` and its ancestors,
//! where `N(u)` counts the distinct paths from any root to `u`. `N` grows
//! exponentially with diamond depth, so it is exact (big integers, then
//! fixed-width limbs sized to the largest possible sum). Ancestor sets are
//! swept block by block of 4096 columns so memory stays O(V·4096/8) while
//! the work is O(E·V/64), spread over threads with rayon.

use crate::graph::{parents_of, topo_order};
use num_bigint::BigUint;
use rayon::prelude::*;
use std::cmp::Ordering;

const BLOCK_WORDS: usize = 64;

/// `closure-graph.py`'s `package_name`: the name moved before the hash, so
/// ties in score sort by name, then by hash.
pub fn package_name(path: &str) -> String {
    match path.split_once('-') {
        Some((first, rest)) => format!("{rest}-{first}"),
        None => path.to_string(),
    }
}

/// Exact popularity scores as little-endian u64 limbs, `limbs` per node.
pub struct Scores {
    pub limbs: usize,
    pub values: Vec<u64>,
}

impl Scores {
    pub fn get(&self, v: usize) -> &[u64] {
        &self.values[v * self.limbs..(v + 1) * self.limbs]
    }

    pub fn to_biguint(&self, v: usize) -> BigUint {
        let digits: Vec<u32> = self.get(v).iter().flat_map(|&w| [w as u32, (w >> 32) as u32]).collect();
        BigUint::new(digits)
    }

    fn cmp(&self, a: usize, b: usize) -> Ordering {
        self.get(a).iter().rev().cmp(self.get(b).iter().rev())
    }
}

/// Scores of every node of an acyclic graph (`children` without self-loops).
pub fn scores(children: &[Vec<u32>]) -> Scores {
    let n = children.len();
    let order = topo_order(children).expect("popularity needs an acyclic graph");
    let parents = parents_of(children);
    let mut pos = vec![0u32; n];
    for (i, &v) in order.iter().enumerate() {
        pos[v as usize] = i as u32;
    }

    let mut paths_to: Vec<BigUint> = vec![BigUint::default(); n];
    for &v in &order {
        let v = v as usize;
        paths_to[v] = if parents[v].is_empty() { BigUint::from(1u32) } else { parents[v].iter().map(|&p| &paths_to[p as usize]).sum() };
    }
    let total: BigUint = paths_to.iter().sum();
    let limbs = (total.bits() as usize).div_ceil(64).max(1);
    // Indexed by topological position from here on.
    let mut weight = vec![0u64; n * limbs];
    for (i, &v) in order.iter().enumerate() {
        for (k, d) in paths_to[v as usize].iter_u64_digits().enumerate() {
            weight[i * limbs + k] = d;
        }
    }
    let parent_pos: Vec<Vec<u32>> = order.iter().map(|&v| parents[v as usize].iter().map(|&p| pos[p as usize]).collect()).collect();

    let words = n.div_ceil(64).clamp(1, BLOCK_WORDS);
    let cols = words * 64;
    let blocks: Vec<usize> = (0..n).step_by(cols).collect();
    let partials: Vec<(usize, Vec<u64>)> = blocks
        .par_iter()
        .map(|&c0| {
            let c1 = (c0 + cols).min(n);
            let rows = n - c0;
            let mut masks = vec![0u64; rows * words];
            let mut sums = vec![0u64; rows * limbs];
            for i in c0..n {
                let r = i - c0;
                let (done, rest) = masks.split_at_mut(r * words);
                let mask = &mut rest[..words];
                if i < c1 {
                    mask[(i - c0) / 64] |= 1 << ((i - c0) % 64);
                }
                for &pp in &parent_pos[i] {
                    let pp = pp as usize;
                    if pp >= c0 {
                        let src = &done[(pp - c0) * words..(pp - c0 + 1) * words];
                        for (m, s) in mask.iter_mut().zip(src) {
                            *m |= s;
                        }
                    }
                }
                let acc = &mut sums[r * limbs..(r + 1) * limbs];
                for (w, &word) in mask.iter().enumerate() {
                    let mut bits = word;
                    while bits != 0 {
                        let b = bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        let u = c0 + w * 64 + b;
                        add_limbs(acc, &weight[u * limbs..(u + 1) * limbs]);
                    }
                }
            }
            (c0, sums)
        })
        .collect();

    let mut by_pos = vec![0u64; n * limbs];
    for (c0, sums) in partials {
        for (r, chunk) in sums.chunks_exact(limbs).enumerate() {
            let i = c0 + r;
            add_limbs(&mut by_pos[i * limbs..(i + 1) * limbs], chunk);
        }
    }
    let mut values = vec![0u64; n * limbs];
    for (i, &v) in order.iter().enumerate() {
        values[v as usize * limbs..(v as usize + 1) * limbs].copy_from_slice(&by_pos[i * limbs..(i + 1) * limbs]);
    }
    Scores { limbs, values }
}

fn add_limbs(acc: &mut [u64], x: &[u64]) {
    let mut carry = false;
    for (a, &b) in acc.iter_mut().zip(x) {
        let (s1, c1) = a.overflowing_add(b);
        let (s2, c2) = s1.overflowing_add(carry as u64);
        *a = s2;
        carry = c1 || c2;
    }
    debug_assert!(!carry, "limb width is sized for the largest sum");
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
