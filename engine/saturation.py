"""The saturation point of a strategy's accuracy-vs-budget curve (TTSPM, Wang et al. 2025, "Scaling over Scaling:
Exploring Test-Time Scaling Pareto in Large Reasoning Models").

The paper's Test-Time Scaling Performance Model gives parallel scaling (N independent samples, one picked) and
sequential scaling (N rounds of rethinking, an absorbing correct state) one form:

    F(N) = F_max * (1 - (1 - p)^N)

with p the chance that one more unit of budget succeeds (p_sample, p_rethink) and F_max the ceiling the selection
can reach. One more unit then buys ΔF(N) = F(N+1) - F(N) = F_max * p * (1 - p)^N, which falls below a stated gain
ε after the saturation point

    N* = ceil( ln(ε / (F_max * p)) / ln(1 - p) )      (at least 1),

the budget beyond which the next unit buys less than ε. Choices where the paper is silent: F_max and p are fitted
to the measured curve by least squares (``scipy.optimize.curve_fit``, F_max in [0, 1], p in (0, 1)), on every
strategy alike (the step searches are read as parallel scaling over their N); the unit is the strategy's own
budget N; ε defaults to 0.001 accuracy (0.1 accuracy points) per one more unit of N; a curve needs three distinct
budgets (two parameters and one degree of freedom to check them), and fewer gives a "not enough budgets" result,
as does a fit that does not converge, never an exception. A saturation point past the largest measured budget is
flagged as extrapolated. A strategy drawing parallel samples beside a token budget (budget forcing's n) has one
curve per sample count, over its thinking budget: its unit is then one thinking token per sample.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

DEFAULT_GAIN = 0.001   # accuracy per one more unit of budget N: 0.1 accuracy points
MIN_BUDGETS = 3
_P_MAX = 1.0 - 1e-9


@dataclass(frozen=True)
class Saturation:
    """A fitted curve and its saturation point, or why there is none (``status`` other than "ok")."""

    status: str                   # "ok", "not enough budgets", "fit failed"
    message: str
    f_max: float | None = None
    p: float | None = None
    budget: int | None = None     # N*: beyond it one more unit of N buys less than ``gain``
    gain: float = DEFAULT_GAIN
    rmse: float | None = None     # of the fit on the measured points, in accuracy
    extrapolated: bool = False    # N* lies past the largest measured budget
    n_budgets: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def predict(self, n: float) -> float:
        """F(n) of the fitted model (only when ``ok``)."""
        return ttspm(np.asarray(float(n)), self.f_max, self.p).item()

    def to_dict(self) -> dict:
        return asdict(self)


def ttspm(n: np.ndarray, f_max: float, p: float) -> np.ndarray:
    """F(N) = F_max (1 - (1 - p)^N)."""
    return f_max * (1.0 - np.power(1.0 - p, n))


def saturation_budget(f_max: float, p: float, gain: float = DEFAULT_GAIN) -> int:
    """The smallest N >= 1 with F(N+1) - F(N) = F_max p (1-p)^N below ``gain``."""
    if p >= _P_MAX:
        return 1  # everything is reached with the first unit
    first = f_max * p
    if first <= 0 or first * (1.0 - p) < gain:
        return 1
    return max(1, math.ceil(math.log(gain / first) / math.log(1.0 - p)))


def fit_saturation(budgets: list[float], accuracies: list[float], gain: float = DEFAULT_GAIN) -> Saturation:
    """Fit TTSPM to one strategy's (budget, accuracy) points and report its saturation point."""
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
        raise ValueError(f"the gain must be a positive number, got {gain!r}")
    pts: dict[float, list[float]] = {}
    for b, a in zip(budgets, accuracies):
        if b is None or a is None or not (math.isfinite(float(b)) and math.isfinite(float(a))) or float(b) < 1:
            continue
        pts.setdefault(float(b), []).append(float(a))
    n = len(pts)
    if n < MIN_BUDGETS:
        return Saturation("not enough budgets", f"not enough budgets: {n} measured, the fit needs {MIN_BUDGETS}",
                          gain=gain, n_budgets=n)
    xs = np.array(sorted(pts))
    ys = np.array([sum(pts[x]) / len(pts[x]) for x in xs])
    top = float(ys.max())
    start = (min(1.0, max(top, 1e-3)), min(0.5, max(1e-3, float(ys[0]) / max(top, 1e-3))))
    try:
        with warnings.catch_warnings():  # three points fitted exactly leave no covariance: not a failure here
            warnings.simplefilter("ignore", OptimizeWarning)
            (f_max, p), _ = curve_fit(ttspm, xs, ys, p0=start, bounds=([0.0, 1e-6], [1.0, _P_MAX]), maxfev=20_000)
    except (RuntimeError, ValueError) as exc:
        return Saturation("fit failed", f"the fit did not converge: {exc}", gain=gain, n_budgets=n)
    f_max, p = float(f_max), float(p)
    rmse = float(np.sqrt(np.mean((ttspm(xs, f_max, p) - ys) ** 2)))
    star = saturation_budget(f_max, p, gain)
    beyond = star > xs.max()
    return Saturation("ok", f"N* = {star}" + (" (extrapolated past the largest budget)" if beyond else ""),
                      f_max=f_max, p=p, budget=star, gain=gain, rmse=rmse, extrapolated=bool(beyond), n_budgets=n)


def series(cell: dict) -> str:
    """The curve a sweep cell lies on: its strategy, and its parallel samples where it has that axis."""
    samples = cell.get("samples")
    return str(cell.get("strategy")) + (f" n={samples}" if samples is not None else "")


def sweep_saturation(result: dict | None, level: str = "all", binning: str = "difficulty",
                     gain: float = DEFAULT_GAIN) -> dict[str, Saturation]:
    """Each curve's (``series``) saturation point on a sweep result's accuracy-vs-budget curve, on all problems
    (``level`` "all") or one level of ``binning`` (the cells' ``by_difficulty`` or ``by_pass1``)."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    key = "by_pass1" if binning == "pass1" else "by_difficulty"
    for cell in (result or {}).get("results") or []:
        acc = cell.get("accuracy") if level == "all" else (cell.get(key) or {}).get(level)
        if acc is None or cell.get("budget") is None:
            continue
        bs, accs = curves.setdefault(series(cell), ([], []))
        bs.append(float(cell["budget"]))
        accs.append(float(acc))
    return {s: fit_saturation(bs, accs, gain) for s, (bs, accs) in curves.items()}
