"""The strategies the app offers, with what the UI, the CLI and the Learn tab need to know of each."""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from strategies import (beam_search, best_of_n, budget_forcing, deepconf, dvts, ets, evo_search, evoscale, first_finish,
                        fk_steering, greedy, majority_vote, mcts, more_steps, particle_filtering, rebase, refine,
                        rollover_budget_forcing, search_over_paths, solve_detect_verify, thought_truncation,
                        weighted_bon, zero_order)
from strategies.params import ParamSpec, specs

PAPER_1B = "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal Test-Time Scaling"
PAPER_ETS = "ETS: Efficient Tree Search for Inference-Time Scaling"
PAPER_DIFFUSION = "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising Steps"


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
    seed_paper: bool = True  # the paper is one of ../shared/papers.md's (False: a later one the issues name)
    # the budget's unit in the caps: 1 when it counts samples or iterations; a strategy whose budget counts tokens
    # (budget forcing: thinking tokens per sample) may go to ``budget_scale`` x the app's budget cap
    budget_scale: int = 1
    # a strategy whose budget counts tokens may also draw parallel samples: the parameter a sweep's samples axis
    # sets (budget forcing's n)
    samples_param: str | None = None
    needs_thinking: bool = False  # only for a thinking model (a policy with thinking delimiters)
    # only with a verifier that critiques (SearchSpace.critique), checked before the run: True, or a rule on the
    # built parameters where a parameter decides (thought truncation with confirm=critic)
    needs_critic: bool | Callable[[object], bool] = False

    def critic_needed(self, params: object) -> bool:
        return self.needs_critic(params) if callable(self.needs_critic) else self.needs_critic

    @property
    def params_cls(self) -> type:
        return self.module.Params

    @property
    def search(self) -> Callable:
        return self.module.search

    @property
    def budget_spec(self) -> ParamSpec:
        """The parameter the budget sets; its help says what the budget buys."""
        return next(s for s in specs(self.params_cls) if s.name == self.budget_param)


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
    StrategyInfo("deepconf", "DeepConf", deepconf, "n", "Deep Think with Confidence (Fu et al., 2025)",
                 "Vote over the traces the model is confident in; online, stop a trace when its confidence drops.",
                 ("reasoning",), False, seed_paper=False),
    StrategyInfo("first_finish", "First finish", first_finish, "n",
                 "First Finish Search: Efficient Test-Time Scaling in Large Language Models",
                 "Decode N samples together; the first to finish wins and the rest are stopped at that token.", ("reasoning",), False),
    StrategyInfo("budget_forcing", "Budget forcing", budget_forcing, "budget",
                 "m1: Unleash the Potential of Test-Time Scaling for Medical Reasoning with Large Language Models",
                 "A thinking model thinks up to the budget in tokens: the end of thinking is forced there, and an "
                 "early stop becomes 'Wait,'.", ("reasoning",), False, budget_scale=64,
                 samples_param="n", needs_thinking=True),
    StrategyInfo("thought_truncation", "Thought truncation (TrimR)", thought_truncation, "budget",
                 "TrimR: Verifier-based Training-Free Thinking Compression for Efficient Test-Time Scaling",
                 "Probe a thinking model's answer every few tokens; once it repeats (and the critic accepts it), cut "
                 "the rest of the thought.", ("reasoning",), True, budget_scale=64, needs_thinking=True,
                 needs_critic=lambda p: p.confirm == "critic"),
    StrategyInfo("solve_detect_verify", "Solve-Detect-Verify", solve_detect_verify, "budget",
                 "Solve-Detect-Verify: Inference-Time Scaling with Flexible Generative Verifier",
                 "Probe a thinking model's answer every few tokens; stop thinking at the first one the critic "
                 "verifies (more critiques only when the first disagree).", ("reasoning",), True, budget_scale=64,
                 needs_thinking=True, needs_critic=True),
    StrategyInfo("refine", "Refine with feedback", refine, "rounds",
                 "Inference-Time Scaling for Complex Tasks: Where We Stand and What Lies Ahead",
                 "Solve, critique, regenerate from the first step the critique flags; up to R attempts per chain.",
                 ("reasoning",), True, needs_critic=True),
    StrategyInfo("evoscale", "EvoScale", evoscale, "n",
                 "Satori-SWE: Evolutionary Test-Time Scaling for Sample-Efficient Software Engineering",
                 "A population evolved for G generations: keep the best by critique score, regenerate the rest "
                 "from their flagged steps.", ("reasoning",), True, needs_critic=True),
    StrategyInfo("rebase", "REBASE", rebase, "n",
                 "Inference Scaling Laws: An Empirical Analysis of Compute-Optimal Inference for Problem-Solving "
                 "with Language Models (Wu et al., 2024)",
                 "Split each step's N expansions over the open chains by softmax(PRM/T); finished chains leave.",
                 ("reasoning",), True, seed_paper=False),
    StrategyInfo("ets", "ETS", ets, "n", PAPER_ETS,
                 "REBASE, but an integer program first prunes the frontier to few shared prefixes that still cover "
                 "its semantic clusters (a smaller KV cache).", ("reasoning",), True),
    # image domain; random search IS best-of-N (same module: N noises from the prompt root, best verified)
    StrategyInfo("random_search", "Random search", best_of_n, "n", PAPER_DIFFUSION,
                 "Denoise N independent initial noises, keep the verifier's favourite image.",
                 ("image", "t2i"), True),
    StrategyInfo("zero_order", "Zero-order search", zero_order, "n", PAPER_DIFFUSION,
                 "Move a pivot noise to its best neighbour at cosine 0.95 while that improves the score "
                 "(deterministic sampler).",
                 ("image", "t2i"), True),
    StrategyInfo("search_over_paths", "Search over paths", search_over_paths, "n", PAPER_DIFFUSION,
                 "Denoise P paths part way, re-noise into M branches each, keep the best P, repeat; P is sized "
                 "so the NFE is N samplings'.",
                 ("image", "t2i"), True),
    StrategyInfo("fk_steering", "FK steering", fk_steering, "n",
                 "A General Framework for Inference-time Scaling and Steering of Diffusion Models",
                 "Particles resampled by potentials of x0-hat rewards (SMC with adaptive systematic resampling).",
                 ("image", "t2i"), True),
    StrategyInfo("evo_search", "Evolutionary search", evo_search, "n",
                 "Scaling Image and Video Generation via Test-Time Evolutionary Search",
                 "Elites, tournament selection and norm-preserving mutation of noises, then of latents.",
                 ("image", "t2i"), True),
    StrategyInfo("rollover_budget_forcing", "Rollover budget forcing", rollover_budget_forcing, "n",
                 "Inference-Time Scaling for Flow Models via Stochastic Generation and Rollover Budget Forcing",
                 "A flow-SDE chain takes the first candidate that beats its best reward and rolls the step's "
                 "unused NFE over to the next step.", ("image",), True),
    StrategyInfo("more_steps", "More denoising steps", more_steps, "n", PAPER_DIFFUSION,
                 "The baseline: one image with N times the denoising steps, no verifier.",
                 ("image", "t2i"), False),
]}
