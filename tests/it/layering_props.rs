//! Properties on random DAGs: every path in exactly one layer, layer
//! limits respected, deterministic output, and the closed-form popularity
//! scores equal to the reference's tree-unfolding definition.

use layered_image::plan::graph::{Graph, RawNode};
use layered_image::plan::layering::{auto_layer, classic, pipeline, popularity, popularity_paths};
use num_bigint::BigUint;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap, HashSet};

fn make_graph(n: usize, edges: &[(usize, usize)], sizes: &[u64], names: &[u8]) -> Graph {
    let paths: Vec<String> = (0..n).map(|i| format!("/nix/store/{:032}-{}-{}", (i * 7919) % 1000, (b'a' + names[i] % 4) as char, i % 3)).collect();
    let mut refs: Vec<Vec<String>> = (0..n).map(|i| vec![paths[i].clone()]).collect();
    for &(a, b) in edges {
        let (lo, hi) = (a.min(b), a.max(b));
        if lo != hi && lo < n && hi < n {
            refs[lo].push(paths[hi].clone());
        }
    }
    let raw: Vec<RawNode> = (0..n).map(|i| RawNode { path: paths[i].clone(), references: refs[i].clone(), nar_size: sizes[i] }).collect();
    Graph::build(&raw, "random").unwrap()
}

fn dag() -> impl Strategy<Value = Graph> {
    (0usize..40).prop_flat_map(|n| {
        let m = n.max(1);
        (Just(n), prop::collection::vec((0..m, 0..m), 0..(n * 3 + 1)), prop::collection::vec(0u64..5, m), prop::collection::vec(any::<u8>(), m))
            .prop_map(|(n, edges, sizes, names)| make_graph(n, &edges, &sizes, &names))
    })
}

fn assert_partition(graph: &Graph, layers: &[Vec<String>], ignored: &HashSet<String>) {
    let mut seen = HashMap::new();
    for (i, layer) in layers.iter().enumerate() {
        assert!(!layer.is_empty(), "empty layer {i}");
        for p in layer {
            assert!(seen.insert(p.clone(), i).is_none(), "{p} in two layers");
        }
    }
    let expected: HashSet<&String> = graph.paths.iter().filter(|p| !ignored.contains(*p)).collect();
    assert_eq!(seen.keys().collect::<HashSet<_>>(), expected);
}

/// The reference's own definition: memoised recursive merge of children's
/// counters, each incremented by one, plus one per root.
fn reference_scores(graph: &Graph) -> Vec<BigUint> {
    fn contest(v: usize, g: &Graph, memo: &mut HashMap<usize, HashMap<usize, BigUint>>) -> HashMap<usize, BigUint> {
        if let Some(m) = memo.get(&v) {
            return m.clone();
        }
        let mut pop: HashMap<usize, BigUint> = HashMap::new();
        for &c in &g.children[v] {
            *pop.entry(c as usize).or_default() += 1u32;
            for (k, val) in contest(c as usize, g, memo) {
                *pop.entry(k).or_default() += val + 1u32;
            }
        }
        memo.insert(v, pop.clone());
        pop
    }
    let parents = graph.parents();
    let mut total: HashMap<usize, BigUint> = HashMap::new();
    let mut memo = HashMap::new();
    for root in (0..graph.len()).filter(|&v| parents[v].is_empty()) {
        *total.entry(root).or_default() += 1u32;
        for (k, val) in contest(root, graph, &mut memo) {
            *total.entry(k).or_default() += val + 1u32;
        }
    }
    (0..graph.len()).map(|v| total.remove(&v).unwrap_or_default()).collect()
}

/// auto-layer as described (facts §3), written naively: whole-split copies
/// and explicit sets every round. Returns the layers as sets of nodes.
fn naive_auto_layer(graph: &Graph, limit: i64) -> BTreeSet<BTreeSet<u32>> {
    use std::collections::BTreeSet as S;
    let n = graph.len();
    let parents = graph.parents();
    let closure = |start: u32, edges: &[Vec<u32>]| -> S<u32> {
        let mut seen = S::new();
        let mut todo = vec![start];
        while let Some(v) = todo.pop() {
            for &c in &edges[v as usize] {
                if seen.insert(c) {
                    todo.push(c);
                }
            }
        }
        seen.remove(&start);
        seen
    };
    let mut by_size: Vec<u32> = (0..n as u32).collect();
    by_size.sort_by_key(|&v| graph.nar_size[v as usize]);
    let mut split: Vec<S<u32>> = vec![S::new(); n];
    while let Some(p) = by_size.pop() {
        let mut next = split.clone();
        next[p as usize] = [p].into();
        let deps = closure(p, &graph.children);
        let users = closure(p, &parents);
        for &d in &deps {
            let reduced: S<u32> = next[d as usize].difference(&users).copied().collect();
            next[d as usize] = reduced;
            if next[d as usize].intersection(&deps).next().is_none() {
                next[d as usize].insert(p);
            }
        }
        if next.iter().collect::<S<_>>().len() as i64 > limit {
            break;
        }
        split = next;
    }
    let mut layers: HashMap<S<u32>, S<u32>> = HashMap::new();
    for (v, id) in split.into_iter().enumerate() {
        layers.entry(id).or_default().insert(v as u32);
    }
    layers.into_values().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(200) })]

    #[test]
    fn popularity_scores_equal_reference_definition(graph in dag()) {
        let scores = popularity::scores(&graph.children);
        let reference = reference_scores(&graph);
        for (v, expected) in reference.iter().enumerate() {
            prop_assert_eq!(scores.to_biguint(v), expected.clone());
        }
    }

    #[test]
    fn classic_split_partitions_within_limit(graph in dag(), available in 1usize..12) {
        let order = popularity_paths(&graph);
        prop_assert_eq!(&order, &popularity_paths(&graph));
        let layers = classic::classic_split(&order, available);
        prop_assert!(layers.len() <= available);
        assert_partition(&graph, &layers, &HashSet::new());
    }

    #[test]
    fn auto_layer_partitions_within_limit(graph in dag(), limit in 1i64..12, ignore_every in 2usize..6) {
        let ignored: HashSet<String> = graph.paths.iter().step_by(ignore_every).cloned().collect();
        let layers = auto_layer::auto_layer(&graph, &ignored, limit, false);
        prop_assert!(layers.len() as i64 <= limit);
        assert_partition(&graph, &layers, &ignored);
        prop_assert_eq!(layers, auto_layer::auto_layer(&graph, &ignored, limit, false));
    }

    #[test]
    fn auto_layer_equals_naive_algorithm(graph in dag(), limit in 1i64..40) {
        let layers = auto_layer::layers(&graph, limit);
        let ours: BTreeSet<BTreeSet<u32>> = layers.iter().map(|l| l.paths.iter().copied().collect()).collect();
        prop_assert_eq!(ours, naive_auto_layer(&graph, limit));
        prop_assert!(layers.windows(2).all(|w| w[0].closure_size <= w[1].closure_size));
    }

    #[test]
    fn pipelines_partition_within_limit(graph in dag(), limit in 1u64..8, pick in any::<prop::sample::Index>()) {
        let raw: Vec<RawNode> = (0..graph.len())
            .map(|v| RawNode {
                path: graph.paths[v].clone(),
                references: graph.children[v].iter().map(|&c| graph.paths[c as usize].clone()).collect(),
                nar_size: graph.nar_size[v],
            })
            .collect();
        let some = if graph.is_empty() { "/nix/store/none".to_string() } else { graph.paths[pick.index(graph.len())].clone() };
        let limited = [
            serde_json::json!([["popularity_contest"], ["limit_layers", limit]]),
            serde_json::json!([["popularity_contest"], ["reverse"], ["limit_layers", limit]]),
            serde_json::json!([["split_every", 3], ["limit_layers", limit]]),
        ];
        let unlimited = [
            serde_json::json!([["split_paths", [some.clone()]], ["flatten"], ["map", ["pipe", [["popularity_contest"], ["limit_layers", limit]]]], ["flatten"]]),
            serde_json::json!([["subcomponent_in", [some.clone()]], ["over", "main", ["popularity_contest"]], ["flatten"], ["map", ["remove_paths", some.clone()]]]),
            serde_json::json!([["split_paths", [{"children_of": some.clone()}]], ["flatten"]]),
            serde_json::json!([["subcomponent_out", [some.clone()]], ["flatten"]]),
        ];
        for (p, bounded) in limited.iter().map(|p| (p, true)).chain(unlimited.iter().map(|p| (p, false))) {
            let steps = pipeline::parse_pipeline(p).unwrap();
            let layers = pipeline::run_pipeline(&raw, &HashSet::new(), &steps, "random").unwrap();
            if bounded {
                prop_assert!(layers.len() as u64 <= limit, "{} gave {} layers", p, layers.len());
            }
            let ignored: HashSet<String> = if p.to_string().contains("remove_paths") { [some.clone()].into() } else { HashSet::new() };
            assert_partition(&graph, &layers, &ignored);
            prop_assert_eq!(&layers, &pipeline::run_pipeline(&raw, &HashSet::new(), &steps, "random").unwrap());
        }
    }
}

/// Diamond chains make path counts outgrow u128: scores must stay exact.
#[test]
fn deep_diamonds_beyond_128_bits() {
    let depth = 150;
    let mut raw = Vec::new();
    let name = |i: usize, s: &str| format!("/nix/store/{i:032}-{s}");
    for i in 0..depth {
        let next = name(i + 1, "top");
        raw.push(RawNode { path: name(i, "top"), references: vec![name(i, "l"), name(i, "r")], nar_size: 1 });
        raw.push(RawNode { path: name(i, "l"), references: vec![next.clone()], nar_size: 1 });
        raw.push(RawNode { path: name(i, "r"), references: vec![next], nar_size: 1 });
    }
    raw.push(RawNode { path: name(depth, "top"), references: vec![], nar_size: 1 });
    let graph = Graph::build(&raw, "diamonds").unwrap();
    let scores = popularity::scores(&graph.children);
    let reference = reference_scores(&graph);
    assert!(reference.iter().any(|s| s.bits() > 140));
    for (v, expected) in reference.iter().enumerate() {
        assert_eq!(&scores.to_biguint(v), expected);
    }
    let order = popularity_paths(&graph);
    assert_eq!(order[0], name(depth, "top"));
}
