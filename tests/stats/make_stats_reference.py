"""Regenerate fixtures/stats_reference.json (reference values for tests/stats).

Run from the repository root:

    /work/devenv/bin/python tests/stats/make_stats_reference.py

Every value is computed independently of faceattr: closed forms in pure Python (``math``,
``statistics.NormalDist``, exact enumeration with ``fractions``), ``scipy.stats.beta.ppf`` /
``scipy.stats.t.ppf`` for quantiles, and, where marked, statsmodels itself at the recorded
version (a self-consistency pin, not an independent reference). Each entry records the
expression that produced it and the versions. R is not available here.
"""

from __future__ import annotations

import itertools
import json
import math
import platform
import sys
from fractions import Fraction
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import scipy
import statsmodels
from scipy import optimize, stats

COMMAND = "/work/devenv/bin/python tests/stats/make_stats_reference.py"
OUT = Path(__file__).resolve().parents[2] / "fixtures" / "stats_reference.json"
VERSIONS = {
    "python": platform.python_version(),
    "numpy": np.__version__,
    "scipy": scipy.__version__,
    "statsmodels": statsmodels.__version__,
}
PURE = {"python": platform.python_version()}
Z = NormalDist()


def entry(inputs: dict[str, Any], expected: dict[str, Any], how: str, versions: dict[str, str],
          tol: float = 1e-6) -> dict[str, Any]:
    return {"inputs": inputs, "expected": expected, "how": how, "command": COMMAND,
            "versions": versions, "atol": tol}


def wilson(c: int, n: int, z: float) -> tuple[float, float]:
    p = c / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    d = 1 + z * z / n
    return max(0.0, (centre - half) / d), min(1.0, (centre + half) / d)


def clopper_pearson(c: int, n: int, alpha: float) -> tuple[float, float]:
    lo = 0.0 if c == 0 else float(stats.beta.ppf(alpha / 2, c, n - c + 1))
    hi = 1.0 if c == n else float(stats.beta.ppf(1 - alpha / 2, c + 1, n - c))
    return lo, hi


PROP_CASES = [(0, 1), (1, 1), (0, 10), (1, 10), (3, 10), (10, 10), (18, 20), (81, 263),
              (500, 1000), (1, 2000)]


def proportions() -> list[dict[str, Any]]:
    out = []
    for (c, n), alpha in itertools.product(PROP_CASES, (0.05, 0.1)):
        lo, hi = wilson(c, n, Z.inv_cdf(1 - alpha / 2))
        out.append(entry({"count": c, "n": n, "alpha": alpha, "method": "wilson"},
                         {"low": lo, "high": hi},
                         "Wilson 1927 score formula, z = NormalDist().inv_cdf(1 - alpha/2)", PURE))
        lo, hi = clopper_pearson(c, n, alpha)
        out.append(entry({"count": c, "n": n, "alpha": alpha, "method": "clopper-pearson"},
                         {"low": lo, "high": hi},
                         "scipy.stats.beta.ppf(alpha/2, c, n-c+1), beta.ppf(1-alpha/2, c+1, n-c)",
                         VERSIONS))
    return out


def bounds() -> list[dict[str, Any]]:
    out = []
    for (c, n), alpha in itertools.product(PROP_CASES, (0.05, 0.1)):
        z1 = Z.inv_cdf(1 - alpha)
        lo, hi = wilson(c, n, z1)
        up_cp = 1.0 if c == n else float(stats.beta.ppf(1 - alpha, c + 1, n - c))
        lo_cp = 0.0 if c == 0 else float(stats.beta.ppf(alpha, c, n - c + 1))
        for side, w, cp in (("upper", hi, up_cp), ("lower", lo, lo_cp)):
            out.append(entry({"count": c, "n": n, "alpha": alpha, "side": side,
                              "method": "wilson"}, {"bound": w},
                             "Wilson formula with z = NormalDist().inv_cdf(1 - alpha)", PURE))
            out.append(entry({"count": c, "n": n, "alpha": alpha, "side": side,
                              "method": "clopper-pearson"}, {"bound": cp},
                             "upper beta.ppf(1-alpha, c+1, n-c); lower beta.ppf(alpha, c, n-c+1)",
                             VERSIONS))
    return out


def mcnemar() -> list[dict[str, Any]]:
    out = []
    for b, c in [(0, 0), (1, 0), (5, 7), (7, 5), (0, 9), (12, 3), (40, 25), (1, 1)]:
        m = b + c
        k = min(b, c)
        tail = Fraction(sum(math.comb(m, i) for i in range(k + 1)), 2**m)
        p = min(Fraction(1), 2 * tail)
        out.append(entry({"n_a_only": b, "n_b_only": c}, {"statistic": k, "p_value": float(p)},
                         "exact: min(1, 2 * sum_{i<=min(b,c)} comb(b+c, i) / 2^(b+c)) in Fraction",
                         PURE))
    return out


COCHRAN_TABLES = [
    [[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 0, 1]],
    [[1, 0, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 1, 0], [1, 1, 1], [1, 0, 0], [0, 0, 1]],
]


def cochran() -> list[dict[str, Any]]:
    out = []
    for x in COCHRAN_TABLES:
        k = len(x[0])
        cols = [sum(r[j] for r in x) for j in range(k)]
        rows = [sum(r) for r in x]
        tot = sum(rows)
        num = (k - 1) * (k * sum(c * c for c in cols) - tot * tot)
        q = num / (k * tot - sum(r * r for r in rows))
        assert k == 3
        out.append(entry({"rows": x}, {"statistic": q, "p_value": math.exp(-q / 2), "df": k - 1},
                         "Cochran 1950 closed form; chi2 sf with df=2 is exp(-Q/2)", PURE))
    return out


def newcombe_unpaired() -> list[dict[str, Any]]:
    out = [entry({"count_a": 56, "n_a": 70, "count_b": 48, "n_b": 80, "alpha": 0.05},
                 {"low": 0.0524, "high": 0.3339},
                 "published: Newcombe (1998) Stat Med 17:873, Table II, method 10, 56/70 - 48/80",
                 {"source": "literature (4 decimals)"}, tol=5e-5)]
    for ca, na, cb, nb in [(56, 70, 48, 80), (0, 10, 0, 20), (10, 10, 0, 20), (5, 50, 0, 60),
                           (9, 10, 3, 10), (120, 400, 95, 380)]:
        z = Z.inv_cdf(0.975)
        p1, p2 = ca / na, cb / nb
        l1, u1 = wilson(ca, na, z)
        l2, u2 = wilson(cb, nb, z)
        d = p1 - p2
        lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
        out.append(entry({"count_a": ca, "n_a": na, "count_b": cb, "n_b": nb, "alpha": 0.05},
                         {"low": lo, "high": hi},
                         "Newcombe 1998 method 10 square-and-add of pure-Python Wilson limits",
                         PURE))
    return out


def newcombe_paired() -> list[dict[str, Any]]:
    out = []
    for a, b, c, d in [(3, 7, 5, 15), (10, 0, 0, 10), (0, 5, 0, 5), (20, 9, 1, 20), (8, 2, 12, 3),
                       (0, 0, 0, 7), (30, 0, 0, 0)]:
        n = a + b + c + d
        z = Z.inv_cdf(0.975)
        p1, p2 = (a + b) / n, (a + c) / n
        l1, u1 = wilson(a + b, n, z)
        l2, u2 = wilson(a + c, n, z)
        den = (a + b) * (c + d) * (a + c) * (b + d)
        num = a * d - b * c
        if den == 0:
            phi = 0.0
        elif num > n / 2:
            phi = (num - n / 2) / math.sqrt(den)
        elif num < 0:
            phi = num / math.sqrt(den)
        else:
            phi = 0.0
        dd = p1 - p2
        dl2 = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
        du2 = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
        lo = dd - math.sqrt(max(0.0, dl2))
        hi = dd + math.sqrt(max(0.0, du2))
        out.append(entry({"n_both": a, "n_a_only": b, "n_b_only": c, "n_neither": d, "alpha": 0.05},
                         {"low": max(-1.0, lo), "high": min(1.0, hi)},
                         "Newcombe 1998b method 10 (phi corrected as in biostatUZH "
                         "confIntPairedProportion), pure-Python Wilson limits", PURE))
    return out


def multiplicity() -> list[dict[str, Any]]:
    out = []
    for ps in ([0.01, 0.04, 0.03, 0.005], [0.2, 0.001, 0.04, 0.04, 0.9], [0.5], [0.0, 1.0, 0.02]):
        k = len(ps)
        order = sorted(range(k), key=lambda i: ps[i])
        holm = [0.0] * k
        run = 0.0
        for rank, i in enumerate(order):
            run = max(run, min(1.0, (k - rank) * ps[i]))
            holm[i] = run
        bh = [0.0] * k
        run = 1.0
        for rank in range(k - 1, -1, -1):
            i = order[rank]
            run = min(run, k * ps[i] / (rank + 1))
            bh[i] = min(1.0, run)
        out.append(entry({"p_values": ps, "alpha": 0.05},
                         {"holm": holm, "holm_reject": [q <= 0.05 for q in holm],
                          "benjamini-hochberg": bh, "bh_reject": [q <= 0.05 for q in bh]},
                         "Holm 1979 step-down / BH 1995 step-up adjusted p by hand", PURE))
    return out


def wilcoxon_exact() -> list[dict[str, Any]]:
    out = []
    for d in ([1.5, -0.3, 2.2, 0.7, -1.1, 3.4, 0.9, 2.8],
              [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, -0.7, 0.8, 0.9, 1.0],
              [-2.0, -1.0, 0.5, -3.5, -0.25, -4.0]):
        n = len(d)
        ranks = {i: r + 1 for r, i in enumerate(sorted(range(n), key=lambda i: abs(d[i])))}
        r_plus = sum(ranks[i] for i in range(n) if d[i] > 0)
        total = n * (n + 1) // 2
        dist = [sum(r for r, s in zip(range(1, n + 1), signs, strict=True) if s)
                for signs in itertools.product((0, 1), repeat=n)]
        le = Fraction(sum(1 for w in dist if w <= r_plus), 2**n)
        ge = Fraction(sum(1 for w in dist if w >= r_plus), 2**n)
        two = min(Fraction(1), 2 * min(le, ge))
        out.append(entry({"differences": d},
                         {"r_plus": r_plus, "r_minus": total - r_plus, "p_two_sided": float(two),
                          "p_larger": float(ge), "p_smaller": float(le)},
                         "exact enumeration of all 2^n sign vectors (no ties, no zeros)", PURE))
    return out


def t_interval() -> list[dict[str, Any]]:
    out = []
    for x, alpha in (([0.1, 0.4, 0.35, 0.8, 0.2], 0.05), ([1.0, 2.0, 4.0, 8.0], 0.1)):
        n = len(x)
        m = sum(x) / n
        s = math.sqrt(sum((v - m) ** 2 for v in x) / (n - 1))
        q = float(stats.t.ppf(1 - alpha / 2, n - 1))
        out.append(entry({"values": x, "alpha": alpha}, {"low": m - q * s / math.sqrt(n),
                                                          "high": m + q * s / math.sqrt(n)},
                         "mean +- scipy.stats.t.ppf(1-alpha/2, n-1) * s / sqrt(n)", VERSIONS))
    return out


def score_test() -> list[dict[str, Any]]:
    out = []
    for ca, na, cb, nb in [(3, 50, 7, 60), (5, 50, 0, 60), (56, 70, 48, 80), (30, 100, 30, 100)]:
        p1, p2 = ca / na, cb / nb
        p = (ca + cb) / (na + nb)
        zz = (p1 - p2) / math.sqrt(p * (1 - p) * (1 / na + 1 / nb))
        out.append(entry({"count_a": ca, "n_a": na, "count_b": cb, "n_b": nb},
                         {"statistic": zz, "p_value": 2 * (1 - Z.cdf(abs(zz)))},
                         "pooled z = (p1-p2)/sqrt(p(1-p)(1/n1+1/n2)); p = 2(1-Phi(|z|))", PURE))
    return out


def power() -> list[dict[str, Any]]:
    out = []
    for p10, p01, alpha, pw in [(0.15, 0.05, 0.05, 0.8), (0.10, 0.02, 0.05, 0.9),
                                (0.3, 0.2, 0.01, 0.8)]:
        psi, dl = p10 + p01, p10 - p01
        za, zb = Z.inv_cdf(1 - alpha / 2), Z.inv_cdf(pw)
        n = (za * math.sqrt(psi) + zb * math.sqrt(psi - dl * dl)) ** 2 / dl**2
        out.append(entry({"rate_a_only": p10, "rate_b_only": p01, "alpha": alpha, "power": pw},
                         {"n_exact": n, "n": math.ceil(n)}, "Connor 1987 formula", PURE))
    for pa, pb, alpha, pw in [(0.3, 0.2, 0.05, 0.8), (0.9, 0.7, 0.05, 0.9), (0.05, 0.0, 0.05, 0.8)]:
        h = 2 * math.asin(math.sqrt(pa)) - 2 * math.asin(math.sqrt(pb))
        za, zb = Z.inv_cdf(1 - alpha / 2), Z.inv_cdf(pw)
        n = 2 * ((za + zb) / h) ** 2
        out.append(entry({"rate_a": pa, "rate_b": pb, "alpha": alpha, "power": pw},
                         {"h": h, "n_approx": n},
                         "Cohen 1988 ch. 6: per-arm n ~ 2 ((z_{1-alpha/2} + z_power) / h)^2 "
                         "(ignores the far rejection tail)",
                         PURE, tol=1e-3))
    for p10, p01, n, alpha in [(0.15, 0.05, 100, 0.05), (0.2, 0.0, 30, 0.05)]:
        psi, dl = p10 + p01, p10 - p01
        za = Z.inv_cdf(1 - alpha / 2)
        pw = Z.cdf((math.sqrt(n) * abs(dl) - za * math.sqrt(psi)) / math.sqrt(psi - dl * dl)) \
            if psi > dl * dl else 1.0
        out.append(entry({"rate_a_only": p10, "rate_b_only": p01, "n": n, "alpha": alpha},
                         {"power": pw}, "Connor 1987 power formula", PURE))
    return out


def fm_restricted_numeric(x1: int, n1: int, x2: int, n2: int, d0: float) -> tuple[float, float]:
    def nll(p1: float) -> float:
        p2 = p1 - d0
        terms = [(x1, p1), (n1 - x1, 1 - p1), (x2, p2), (n2 - x2, 1 - p2)]
        return -sum(k * math.log(p) for k, p in terms if k > 0)

    lo, hi = max(0.0, d0) + 1e-15, min(1.0, 1.0 + d0) - 1e-15
    r = optimize.minimize_scalar(nll, bounds=(lo, hi), method="bounded",
                                 options={"xatol": 1e-14})
    return float(r.x), float(r.x) - d0


def tost_unpaired() -> list[dict[str, Any]]:
    # statsmodels 0.15.0 score_test_proportions_2indep has a wrong linear coefficient in the
    # restricted-MLE cubic for compare="diff", value != 0 (statsmodels issue #10269), so the
    # reference maximises the restricted likelihood numerically instead.
    out = []
    cases = [(30, 100, 32, 100, 0.1), (3, 50, 7, 60, 0.1), (120, 400, 95, 380, 0.05),
             (0, 40, 2, 50, 0.1), (40, 40, 49, 50, 0.1)]
    for ca, na, cb, nb, m in cases:
        ps = []
        for d0, upper in ((-m, False), (m, True)):
            q1, q2 = fm_restricted_numeric(ca, na, cb, nb, d0)
            z = (ca / na - cb / nb - d0) / math.sqrt(q1 * (1 - q1) / na + q2 * (1 - q2) / nb)
            ps.append(Z.cdf(z) if upper else 1 - Z.cdf(z))
        out.append(entry({"count_a": ca, "n_a": na, "count_b": cb, "n_b": nb, "margin": m},
                         {"p_lower": ps[0], "p_upper": ps[1]},
                         "Farrington-Manning z with the restricted MLE found by "
                         "scipy.optimize.minimize_scalar(bounded, xatol=1e-14); "
                         "p_lower = 1 - Phi(z(-m)), p_upper = Phi(z(m))", VERSIONS))
    return out


def main() -> None:
    data = {
        "_about": ("Reference values for tests/stats. Regenerate with the command in each entry; "
                   "'how' says what produced the value and 'versions' with which software."),
        "_python": sys.version.split()[0],
        "proportion_interval": proportions(),
        "proportion_bound": bounds(),
        "mcnemar_exact": mcnemar(),
        "cochran_q": cochran(),
        "newcombe_unpaired": newcombe_unpaired(),
        "newcombe_paired": newcombe_paired(),
        "multiplicity": multiplicity(),
        "wilcoxon_exact": wilcoxon_exact(),
        "t_interval": t_interval(),
        "score_test_2indep": score_test(),
        "power": power(),
        "tost_unpaired": tost_unpaired(),
    }
    OUT.write_text(json.dumps(data, allow_nan=False, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
