"""A sweep's thinking-budget axis: parallel against sequential scaling at equal thinking tokens.

"Scaling over Scaling" (Wang et al. 2025) sets parallel scaling (N samples, one answer picked) against sequential
scaling (one sample thinking longer); s1's budget forcing, as m1 uses it, puts both on one knob, the thinking
budget per sample. A pair is N samples of budget B reduced by a vote (the sweep cell (strategy, B, N)) against one
sample of budget N x B (the cell (strategy, N x B, 1)): the same thinking tokens allowed per problem.

Choices where the papers are silent: pairs are formed only where both cells were measured at exactly N x B, never
interpolated between budgets; "equal" is the allowance, and the tokens each side really spent are reported beside
it (a sample that stops thinking on its own spends less than its budget, and each parallel sample writes its own
answer, so equal allowances are not equal spend); a strategy's cells pair only with its own.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pair:
    """N samples of budget B against one sample of budget N x B."""

    strategy: str
    samples: int       # N of the parallel side
    budget: int        # B, the parallel side's thinking budget per sample
    parallel: dict     # the sweep cell (strategy, B, N)
    sequential: dict   # the sweep cell (strategy, N x B, 1)

    @property
    def allowance(self) -> int:
        """The thinking tokens allowed per problem on either side."""
        return self.samples * self.budget

    def to_dict(self) -> dict:
        return {"strategy": self.strategy, "samples": self.samples, "budget": self.budget,
                "allowance": self.allowance, "parallel": _side(self.parallel), "sequential": _side(self.sequential)}


def _side(cell: dict) -> dict:
    return {"accuracy": cell.get("accuracy"), "thinking_tokens": spent(cell, "thinking_tokens"),
            "generated_tokens": spent(cell, "generated_tokens")}


def thinking_cells(result: dict | None) -> list[dict]:
    """The cells on the thinking axis: those of a strategy that draws parallel samples beside a token budget."""
    return [c for c in (result or {}).get("results") or [] if c.get("samples") is not None]


def spent(cell: dict, key: str = "thinking_tokens") -> float | None:
    """The mean tokens of kind ``key`` a cell's runs spent per problem (None where the runs did not count them)."""
    v = (cell.get("compute") or {}).get(key)
    return float(v) if isinstance(v, (int, float)) else None


def equal_token_pairs(result: dict | None) -> list[Pair]:
    """Every (N > 1 samples of budget B, one sample of budget N x B) pair the sweep measured, by strategy, B, N."""
    cells = thinking_cells(result)
    single = {(c.get("strategy"), int(c["budget"])): c for c in cells if c["samples"] == 1}
    pairs = [Pair(str(c.get("strategy")), int(c["samples"]), int(c["budget"]), c,
                  single[(c.get("strategy"), int(c["budget"]) * int(c["samples"]))])
             for c in cells
             if c["samples"] > 1 and (c.get("strategy"), int(c["budget"]) * int(c["samples"])) in single]
    return sorted(pairs, key=lambda p: (p.strategy, p.allowance, p.samples))
