"""Exact explanations of a random forest's probability: the tree-path decomposition.

Walking a tree from its root to the leaf a lead lands in, each split moves the predicted
conversion rate from the parent's value to the child's; that move is credited to the
split's feature. Summed over the path, the moves equal leaf - root, so for the forest

    base (the mean root value) + sum of contributions == forest probability

exactly (tests check it). This is what shap's TreeExplainer computes in its fast
"Saabas" mode. Each node's path sum is computed once per tree, so a sample's contributions
are one row lookup per tree (the leaf it lands in): 100,000 leads take a second or two.

The model in use is a calibrated wrapper around the forest: the calibration maps the
forest's probability f to the calibrated one g(f). The contributions are scaled by
(g(f) - g(base)) / (f - base), which keeps their signs and proportions and makes them add
up to the calibrated probability shown to users: g(base) + sum == g(f).
"""

import numpy as np


def _node_paths(tree, n_features: int) -> tuple[np.ndarray, float]:
    """(nodes x features) sum of the moves on the path from the root to each node, and the
    root value; filled one depth at a time from the root down."""
    values = tree.value[:, 0, :]
    totals = values.sum(axis=1, keepdims=True)
    positive = (values / np.where(totals > 0, totals, 1))[:, 1]
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    paths = np.zeros((tree.node_count, n_features))
    frontier = np.array([0])
    while frontier.size:
        split = frontier[left[frontier] >= 0]
        for children in (left[split], right[split]):
            paths[children] = paths[split]
            paths[children, feature[split]] += positive[children] - positive[split]
        frontier = np.concatenate([left[split], right[split]])
    return paths, float(positive[0])


def forest_contributions(forest, X: np.ndarray) -> tuple[np.ndarray, float]:
    """(contributions: samples x features, base) for the forest's class-1 probability: each
    tree adds the path sum of the leaf each sample lands in (forest.apply, one C call)."""
    n_features = X.shape[1]
    leaves = forest.apply(X)
    contributions = np.zeros((X.shape[0], n_features))
    bases = []
    for column, estimator in enumerate(forest.estimators_):
        paths, base = _node_paths(estimator.tree_, n_features)
        contributions += paths[leaves[:, column]]
        bases.append(base)
    return contributions / len(forest.estimators_), float(np.mean(bases))


def calibrated_contributions(forest, calibrate, X: np.ndarray):
    """(probabilities, contributions, base) on the calibrated scale, each row adding up:
    base + contributions.sum(1) == probabilities."""
    contributions, base = forest_contributions(forest, X)
    raw = base + contributions.sum(axis=1)
    probabilities = calibrate(raw)
    calibrated_base = float(calibrate(np.array([base]))[0])
    span = raw - base
    safe = np.where(np.abs(span) > 1e-12, span, 1.0)
    scale = np.where(np.abs(span) > 1e-12, (probabilities - calibrated_base) / safe, 0.0)
    scaled = contributions * scale[:, None]
    # A flat stretch of the calibration with raw == base: the probability is the base.
    return probabilities, scaled, calibrated_base
