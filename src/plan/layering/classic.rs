//! The seed-era layer split (the conf derivation's jq program): the
//! `available - 1` most popular paths get a layer each, all the others
//! share one last layer, and an empty last layer is dropped.

pub fn classic_split<T: Clone>(popular_first: &[T], available_layers: usize) -> Vec<Vec<T>> {
    let singles = available_layers.saturating_sub(1).min(popular_first.len());
    let mut layers: Vec<Vec<T>> = popular_first[..singles].iter().map(|p| vec![p.clone()]).collect();
    let rest = &popular_first[singles..];
    if !rest.is_empty() {
        layers.push(rest.to_vec());
    }
    layers
}
