"""Makes savvi.txt: reference values for canary_core::stats::anytime from the PyPI package savvi.

Run once in a throwaway virtualenv (the tests read the committed output, not savvi):

    python3 -m venv /tmp/savvi && /tmp/savvi/bin/pip install savvi==0.3.1
    /tmp/savvi/bin/python savvi_vectors.py > savvi.txt

Lines:
  odds <k> <theta0 ...> | <counts ...> | <log odds>
      Multinomial(alpha, theta0, k) updated with the counts in three batches; log of .odds.
  ratio <k> <alpha> <rho_baseline> <rho_canary> <baseline> <canary> | <lower> <upper> <log odds>
      InhomogeneousPoissonProcess(alpha, rho, weights=[[-1, 1]], k) updated with the counts;
      conf_int of the contrast delta_canary - delta_baseline (the log rate ratio), and log odds.
"""

import numpy as np
from savvi.multinomial import InhomogeneousPoissonProcess, Multinomial


def batches(counts):
    counts = np.array(counts, dtype=np.int64)
    first = counts // 3
    second = counts // 3
    return [first, second, counts - first - second]


def odds(k, theta0, counts):
    m = Multinomial(0.05, np.array(theta0), k)
    for x in batches(counts):
        m.update(x)
    print("odds", k, *theta0, "|", *counts, "|", repr(float(np.log(m.odds))))


def ratio(k, alpha, rho, counts):
    p = InhomogeneousPoissonProcess(alpha, np.array(rho), np.array([[-1.0, 1.0]]), k)
    for x in batches(counts):
        p.update(x)
    lo, hi = p.calculate_conf_int()[0]
    print(
        "ratio", k, alpha, *rho, *counts, "|",
        repr(float(lo)), repr(float(hi)), repr(float(np.log(p.odds))),
    )


for k in [1.0, 10.0, 100.0]:
    for theta0, counts in [
        ([0.5, 0.5], [10, 10]),
        ([0.5, 0.5], [60, 40]),
        ([0.9, 0.1], [180, 35]),
        ([0.9, 0.1], [900, 100]),
        ([0.9, 0.1], [4500, 700]),
        ([0.2, 0.3, 0.5], [20, 35, 45]),
        ([0.2, 0.3, 0.5], [200, 250, 650]),
        ([0.75, 0.25], [0, 12]),
    ]:
        odds(k, theta0, counts)

for k in [10.0, 100.0]:
    for alpha in [0.05, 0.001]:
        for rho, counts in [
            ([0.9, 0.1], [180, 35]),
            ([0.9, 0.1], [900, 100]),
            ([0.9, 0.1], [5000, 1100]),
            ([0.75, 0.25], [300, 160]),
            ([0.5, 0.5], [40, 25]),
        ]:
            ratio(k, alpha, rho, counts)
