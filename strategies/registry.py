"""The strategies the app offers, with what the UI, the CLI and the Learn tab need to know of each."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from strategies import (beam_search, best_of_n, dvts, first_finish, greedy, majority_vote, mcts,
                        particle_filtering, weighted_bon)

PAPER_1B = "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal Test-Time Scaling"


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    title: str
    module: ModuleType
    budget_param: str
    paper: str
    summary: str
    domains: tuple[str, ...]
    uses_verifier: bool

    @property
    def params_cls(self) -> type:
        return self.module.Params

    @property
    def search(self) -> Callable:
        return self.module.search


STRATEGIES: dict[str, StrategyInfo] = {s.name: s for s in [
    StrategyInfo("greedy", "Greedy", greedy, "n", PAPER_1B,
                 "One chain at temperature 0: the baseline.", ("reasoning",), False),
    StrategyInfo("best_of_n", "Best-of-N", best_of_n, "n", PAPER_1B,
                 "Sample N full solutions, keep the verifier's favourite.", ("reasoning",), True),
    StrategyInfo("weighted_bon", "Weighted best-of-N", weighted_bon, "n", PAPER_1B,
                 "Sum verifier scores per answer; the answer with the largest sum wins.", ("reasoning",), True),
    StrategyInfo("majority_vote", "Majority vote", majority_vote, "n", PAPER_1B,
                 "Self-consistency: the most frequent answer among N samples.", ("reasoning",), False),
    StrategyInfo("beam_search", "Beam search", beam_search, "n", PAPER_1B,
                 "Keep the N/M best partial solutions each step; each expands M children.", ("reasoning",), True),
    StrategyInfo("dvts", "DVTS", dvts, "n", PAPER_1B,
                 "N/M independent subtrees, each greedy over M candidates per step.", ("reasoning",), True),
    StrategyInfo("particle_filtering", "Particle filtering", particle_filtering, "n",
                 "A Probabilistic Inference Approach to Inference-Time Scaling of LLMs using Particle-Based "
                 "Monte Carlo Methods",
                 "Resample a population of partial solutions by softmax(logit(PRM)/T) every step.",
                 ("reasoning",), True),
    StrategyInfo("mcts", "MCTS", mcts, "iterations",
                 "Enhancing Test-Time Scaling of Large Language Models with Hierarchical Retrieval-Augmented MCTS",
                 "PUCT tree search with the PRM as value and optional rollouts.", ("reasoning",), True),
    StrategyInfo("first_finish", "First finish", first_finish, "n",
                 "First Finish Search: Efficient Test-Time Scaling in Large Language Models",
                 "Launch N samples, keep the first to finish, stop the rest.", ("reasoning",), False),
]}
