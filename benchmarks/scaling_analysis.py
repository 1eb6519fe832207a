"""Scaling-law analysis of a model-size x compute sweep (pure NumPy).

Input: one record per (method, model size, compute budget, seed), each with
`params` (N), `flops` (C, the training compute of that budget) and `score`
(normalised return: 0 = random behaviour, 100 = expert). What it derives, as
in the scaling-law papers (Kaplan et al. 2020; Hoffmann et al. 2022; for
offline RL, PAC, Springenberg et al. 2024):

  * the compute-optimal frontier: for each budget C, the size N_opt(C) with
    the best score (the vertex of a parabola in log N through the best size
    and up to two neighbours each side, kept within one ladder step of the
    best size, so N_opt is not limited to the ladder's sizes; the ladder's
    best size where the curve has no interior maximum, including at the
    ladder's ends, where the true optimum may lie beyond) and the best score
    there;
  * power laws N_opt = a C^b and (100 - best score) = a C^-b along the
    frontier, fitted by least squares in log-log space;
  * intervals: percentiles of the exponents over bootstrap resamples of the
    seeds (one seed's run covers every budget of its size, so a resample
    draws whole runs);
  * iso-return contours: the mean score on the (log N, log C) grid.

The tests (tests/benchmarks/test_scaling_analysis.py) recover known exponents
from synthetic sweeps.
"""

import collections
import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

# A frontier score at or above the expert's leaves no distance to fit; the
# distance is floored here (in normalised points).
MIN_DISTANCE = 1.0


@dataclasses.dataclass(frozen=True)
class PowerLaw:
  """y = prefactor * x ** exponent, with a bootstrap interval on exponent."""
  exponent: float
  prefactor: float
  interval: Optional[Tuple[float, float]] = None

  def __call__(self, x):
    return self.prefactor * np.asarray(x, float) ** self.exponent

  def as_dict(self) -> Dict[str, object]:
    return {'exponent': self.exponent, 'prefactor': self.prefactor,
            'interval': None if self.interval is None else list(self.interval)}


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> PowerLaw:
  """Least-squares line through (log x, log y); needs 2+ distinct x > 0."""
  x, y = np.asarray(x, float), np.asarray(y, float)
  if x.shape != y.shape or x.ndim != 1:
    raise ValueError(f'x and y must be 1-D and alike: {x.shape}, {y.shape}')
  if np.unique(x).size < 2 or np.any(x <= 0) or np.any(y <= 0):
    raise ValueError('a power law needs 2+ distinct x and all x, y > 0')
  slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
  return PowerLaw(float(slope), float(np.exp(intercept)))


def optimal_size(params: Sequence[float], scores: Sequence[float]) -> float:
  """The size with the best score on one budget's curve, between sizes.

  The vertex of the parabola in log N through the best size and up to two
  neighbours each side (a local fit: the whole curve is not a parabola),
  kept within one ladder step of the best size; the best size itself when it
  is at the ladder's end or the curve there is not concave.
  """
  order = np.argsort(params)
  sizes = np.asarray(params, float)[order]
  logn = np.log(sizes)
  s = np.asarray(scores, float)[order]
  best = int(np.argmax(s))
  lo, hi = max(0, best - 2), min(len(s), best + 3)
  if best in (0, len(s) - 1) or hi - lo < 3:
    return float(sizes[best])
  a, b, _ = np.polyfit(logn[lo:hi], s[lo:hi], 2)
  if a >= 0:
    return float(sizes[best])
  # Within one ladder step of the best size: on a noisy curve the parabola
  # through five points can peak far from where the data do.
  vertex = np.clip(-b / (2 * a), logn[best - 1], logn[best + 1])
  return float(np.exp(vertex))


def mean_scores(records: Sequence[Mapping[str, object]], method: str
                ) -> Dict[Tuple[float, float], float]:
  """{(params, flops): mean score over seeds} of one method."""
  cells = collections.defaultdict(list)
  for r in records:
    if r['method'] == method:
      cells[(float(r['params']), float(r['flops']))].append(float(r['score']))
  return {cell: float(np.mean(v)) for cell, v in cells.items()}


def frontier(cells: Mapping[Tuple[float, float], float]
             ) -> List[Dict[str, float]]:
  """Per budget (ascending): N_opt, the best size on the ladder, its score."""
  by_budget = collections.defaultdict(dict)
  for (n, c), score in cells.items():
    by_budget[c][n] = score
  points = []
  for c in sorted(by_budget):
    sizes = sorted(by_budget[c])
    scores = [by_budget[c][n] for n in sizes]
    best = int(np.argmax(scores))
    points.append({'flops': c, 'params_opt': optimal_size(sizes, scores),
                   'params_best': sizes[best], 'score': scores[best]})
  return points


def _fits(points: Sequence[Mapping[str, float]]
          ) -> Tuple[PowerLaw, PowerLaw]:
  flops = [p['flops'] for p in points]
  params = fit_power_law(flops, [p['params_opt'] for p in points])
  distance = fit_power_law(flops, [max(100.0 - p['score'], MIN_DISTANCE)
                                   for p in points])
  return params, distance


def analyse(records: Sequence[Mapping[str, object]], method: str,
            num_bootstrap: int = 1000, seed: int = 0,
            level: float = 0.9) -> Dict[str, object]:
  """Frontier and fits of one method, with `level` bootstrap intervals.

  Returns {'frontier', 'params_vs_flops', 'distance_vs_flops',
  'num_seeds'}: the fits as `PowerLaw.as_dict()`; `params_vs_flops` is
  N_opt = a C^b, `distance_vs_flops` is 100 - score = a C^b (b < 0 when
  more compute gets closer to the expert).
  """
  own = [r for r in records if r['method'] == method]
  if not own:
    raise ValueError(f'no records of method {method!r}')
  points = frontier(mean_scores(own, method))
  if len(points) < 2:
    raise ValueError('a fit needs records at 2+ compute budgets')
  params_fit, distance_fit = _fits(points)

  # Bootstrap: per size, draw that size's seeds (whole runs) with
  # replacement; the resampled means give a frontier and fits.
  runs = collections.defaultdict(lambda: collections.defaultdict(dict))
  for r in own:
    runs[float(r['params'])][r['seed']][float(r['flops'])] = float(r['score'])
  rng = np.random.default_rng(seed)
  exponents = []
  for _ in range(num_bootstrap):
    cells = collections.defaultdict(list)
    for n, by_seed in runs.items():
      seeds = list(by_seed)
      for drawn in rng.choice(len(seeds), size=len(seeds)):
        for c, score in by_seed[seeds[drawn]].items():
          cells[(n, c)].append(score)
    sample = frontier({cell: float(np.mean(v)) for cell, v in cells.items()})
    p, d = _fits(sample)
    exponents.append((p.exponent, d.exponent))
  exponents = np.asarray(exponents)
  tail = 100 * (1 - level) / 2

  def interval(column):
    lo, hi = np.percentile(exponents[:, column], [tail, 100 - tail])
    return float(lo), float(hi)

  return {
      'frontier': points,
      'params_vs_flops': dataclasses.replace(
          params_fit, interval=interval(0)).as_dict(),
      'distance_vs_flops': dataclasses.replace(
          distance_fit, interval=interval(1)).as_dict(),
      'num_seeds': {str(int(n)): len(s) for n, s in sorted(runs.items())},
      'interval_level': level,
  }


def iso_return_grid(cells: Mapping[Tuple[float, float], float]
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(params [S], flops [B], scores [B, S]) for contour plots; NaN where a
  cell has no record."""
  params = np.array(sorted({n for n, _ in cells}))
  flops = np.array(sorted({c for _, c in cells}))
  grid = np.full((flops.size, params.size), np.nan)
  for (n, c), score in cells.items():
    grid[np.searchsorted(flops, c), np.searchsorted(params, n)] = score
  return params, flops, grid
