"""`benchmarks.scaling_analysis` recovers known exponents from synthetic sweeps.

The synthetic sweeps follow the Chinchilla form L(N, C) = A N^-alpha +
B (C / 6N)^-beta, score = 100 - L, whose compute-optimal size grows as
C^(beta / (alpha + beta)) and whose best score approaches 100 as
C^(-alpha beta / (alpha + beta)).
"""

import numpy as np
import pytest

from benchmarks import scaling_analysis as sa

ALPHA, BETA = 0.5, 0.4
PARAMS_EXPONENT = BETA / (ALPHA + BETA)  # 0.444
DISTANCE_EXPONENT = -ALPHA * BETA / (ALPHA + BETA)  # -0.222


def _sweep(sizes, budgets, seeds=3, noise=0.0, method='pac', seed=0):
  rng = np.random.default_rng(seed)
  records = []
  for s in range(seeds):
    for n in sizes:
      for c in budgets:
        loss = 2000.0 * n**-ALPHA + 400.0 * (c / (6 * n))**-BETA
        records.append({'method': method, 'params': n, 'flops': c, 'seed': s,
                        'score': 100.0 - loss + rng.normal(0.0, noise)})
  return records


def test_power_law_fit_is_exact_on_a_power_law():
  x = np.geomspace(1.0, 1e6, 7)
  fit = sa.fit_power_law(x, 3.0 * x**-0.7)
  assert fit.exponent == pytest.approx(-0.7, abs=1e-9)
  assert fit.prefactor == pytest.approx(3.0, rel=1e-9)
  np.testing.assert_allclose(fit(x), 3.0 * x**-0.7, rtol=1e-9)


@pytest.mark.parametrize('x,y', [([1.0, 1.0], [2.0, 3.0]),
                                 ([1.0, 2.0], [0.0, 1.0]),
                                 ([1.0, 2.0, 3.0], [1.0, 2.0])])
def test_power_law_fit_rejects_what_it_cannot_fit(x, y):
  with pytest.raises(ValueError):
    sa.fit_power_law(x, y)


def test_optimal_size_lies_between_ladder_sizes():
  sizes = np.geomspace(1e3, 1e6, 7)
  # A parabola in log N peaking at N = 3e4, between two sizes of the ladder.
  scores = 50.0 - (np.log(sizes) - np.log(3e4))**2
  assert sa.optimal_size(sizes, scores) == pytest.approx(3e4, rel=1e-6)
  # At the ladder's end there is no interior maximum: the end size.
  assert sa.optimal_size(sizes, np.arange(7.0)) == sizes[-1]


def test_dense_noiseless_sweep_recovers_the_exponents_within_0_01():
  records = _sweep(np.geomspace(1e4, 1e7, 19), np.geomspace(1e10, 1e14, 9))
  out = sa.analyse(records, 'pac', num_bootstrap=20)
  assert out['params_vs_flops']['exponent'] == pytest.approx(
      PARAMS_EXPONENT, abs=0.01)
  assert out['distance_vs_flops']['exponent'] == pytest.approx(
      DISTANCE_EXPONENT, abs=0.01)
  assert [p['flops'] for p in out['frontier']] == sorted(
      p['flops'] for p in out['frontier'])


def test_small_noisy_sweep_recovers_them_within_the_stated_tolerance():
  """A ladder like the CPU sweep's (6 sizes, 6 budgets, 30x each), 5 seeds,
  scores with noise of 0.5 points: the size exponent within 0.2 (scores
  near the optimum differ by less than the noise, so N_opt moves a ladder
  step; over other noise seeds it ranged 0.37-0.62 around 0.44), the
  distance exponent within 0.03; each 90% interval holds its estimate."""
  records = _sweep(np.geomspace(2e4, 2e6, 6), np.geomspace(1e11, 3e12, 6),
                   seeds=5, noise=0.5)
  out = sa.analyse(records, 'pac', num_bootstrap=300)
  for key, truth, tolerance in (('params_vs_flops', PARAMS_EXPONENT, 0.2),
                                ('distance_vs_flops', DISTANCE_EXPONENT,
                                 0.03)):
    fit = out[key]
    lo, hi = fit['interval']
    assert fit['exponent'] == pytest.approx(truth, abs=tolerance), key
    assert lo <= fit['exponent'] <= hi, key


def test_methods_are_analysed_apart_and_missing_ones_refused():
  records = (_sweep([1e4, 1e5, 1e6], [1e11, 1e12], method='pac') +
             _sweep([1e4, 1e5, 1e6], [1e11, 1e12], method='bc'))
  for r in records:
    if r['method'] == 'bc':
      r['score'] -= 10.0
  pac = sa.analyse(records, 'pac', num_bootstrap=5)
  bc = sa.analyse(records, 'bc', num_bootstrap=5)
  assert [p['score'] - 10.0 for p in pac['frontier']] == pytest.approx(
      [p['score'] for p in bc['frontier']])
  with pytest.raises(ValueError, match='no records'):
    sa.analyse(records, 'cql')


def test_iso_return_grid_places_each_cell():
  cells = {(1e4, 1e11): 1.0, (1e5, 1e11): 2.0, (1e4, 1e12): 3.0}
  params, flops, grid = sa.iso_return_grid(cells)
  assert params.tolist() == [1e4, 1e5] and flops.tolist() == [1e11, 1e12]
  np.testing.assert_array_equal(grid, [[1.0, 2.0], [3.0, np.nan]])
