"""Learn's map of the field: the survey's four questions (seed paper 23: what to scale, how, where, how well) and
every seed paper of ../shared/papers.md placed on them, in the project's own words.

A paper's ``runs`` names the registry strategies that implement it: the page links those that are in the
registry to their cards (and so to their example runs); a name not registered yet (a strategy being built on
another branch) shows the paragraph on what running it would need instead. ``feature`` names a part of the app
that is not a strategy (a verifier, the compute meter, a fit on the Scaling tab). Titles are quoted exactly
as papers.md has them; a test checks it.
"""
from __future__ import annotations

from dataclasses import dataclass

SURVEY = "What, How, Where, and How Well? A Survey on Test-Time Scaling in Large Language Models"


@dataclass(frozen=True)
class Branch:
    key: str
    question: str
    idea: str
    leaves: tuple[tuple[str, str], ...]  # (leaf name, one line)


# The survey's four dimensions with the leaves this page uses (a subset of the survey's own, enough to place
# every seed paper).
BRANCHES: tuple[Branch, ...] = (
    Branch("what", "1. What to scale",
           "Which quantity grows when we spend more at test time.",
           (("parallel", "more independent samples, then pick or vote (best-of-N, majority vote, random noise search)"),
            ("sequential", "a longer or revised chain: think longer, refine, force a 'Wait,'"),
            ("hybrid", "a tree or a population that both branches and deepens (beam search, MCTS, particles)"),
            ("internal", "the model itself decides how long to think (reasoning models trained for it)"))),
    Branch("how", "2. How to scale",
           "The technique that turns compute into quality.",
           (("tuning", "train the model or the verifier to use test-time compute (SFT, RL)"),
            ("stimulation", "prompt or force the model to produce more (budget forcing, 'Wait,')"),
            ("verification", "a verifier scores candidates or steps (PRM, ORM, generative judge, classifier)"),
            ("search", "use the scores to steer generation (beam, tree, particle, evolutionary search)"),
            ("aggregation", "combine finished candidates (best, weighted vote, majority, first to finish)"))),
    Branch("where", "3. Where to scale",
           "The tasks and modalities it has been applied to.",
           (("math", "math and formal reasoning (this app's arithmetic chains, MATH-500, GSM8K)"),
            ("code and planning", "software engineering, PDDL planning"),
            ("medical and knowledge", "medical QA, retrieval-augmented QA"),
            ("agents", "GUI and web agents, robots, multi-agent systems"),
            ("images", "image generation (this app's digits and text-to-image)"),
            ("video", "video generation and video understanding"),
            ("judging", "evaluation itself: reward models and LLM judges"))),
    Branch("how_well", "4. How well",
           "How a method is measured.",
           (("accuracy", "pass@1, pass@N (the oracle ceiling), judged quality"),
            ("efficiency", "tokens, FLOPs, NFE, memory traffic (KV bytes), latency"),
            ("scalability", "how far the curve keeps rising before it saturates"),
            ("hacking", "the search verifier's score against a held-out judge"))),
)


@dataclass(frozen=True)
class Place:
    number: int
    title: str
    what: tuple[str, ...]
    how: tuple[str, ...]
    where: tuple[str, ...]
    how_well: tuple[str, ...]
    text: str                      # what it scales, in our words
    runs: tuple[str, ...] = ()     # registry strategies that implement it
    feature: str = ""              # a part of the app (not a strategy) that implements it
    needs: str = ""                # what running it here would need, when nothing here runs it


PLACES: tuple[Place, ...] = (
    Place(1, "Can 1B LLM Surpass 405B LLM? Rethinking Compute-Optimal Test-Time Scaling",
          ("parallel", "hybrid"), ("verification", "search", "aggregation"), ("math",), ("accuracy", "efficiency"),
          "Which search to run depends on the policy, the PRM and the problem's difficulty; chosen per difficulty, "
          "a small policy with search beats a much larger one answering once. Lessons 1 and 2 redo both claims.",
          runs=("greedy", "best_of_n", "weighted_bon", "majority_vote", "beam_search", "dvts"),
          feature="the Scaling tab's compute-optimal table"),
    Place(2, "Video-T1: Test-Time Scaling for Video Generation",
          ("parallel", "hybrid"), ("verification", "search"), ("video",), ("accuracy", "efficiency"),
          "Scales the number of noise candidates for a text-to-video model, then Tree-of-Frames: a beam search "
          "whose step is a chunk of frames, pruned by video verifiers.",
          needs="a video diffusion model that generates frames autoregressively and a video verifier; the search "
                "itself is the beam core with a frame chunk as a step, so a video domain implementing SearchSpace "
                "would run it."),
    Place(3, "Inference-Time Scaling for Diffusion Models beyond Scaling Denoising Steps",
          ("parallel", "hybrid"), ("verification", "search"), ("images",), ("accuracy", "efficiency", "hacking"),
          "Spend compute on searching the initial noise (and paths) against a verifier instead of on more "
          "denoising steps; warns that a search verifier can be hacked. Lesson 3 shows the hacking.",
          runs=("random_search", "zero_order", "search_over_paths", "more_steps")),
    Place(4, "Inference-Time Scaling for Generalist Reward Modeling",
          ("parallel",), ("tuning", "verification", "aggregation"), ("judging",), ("accuracy",),
          "Scales the reward model, not the policy: a generative RM writes principles and critiques, k samples of "
          "it vote, and a meta RM filters the votes; SPCT trains it with RL.",
          feature="the generative judge verifier (k sampled judgments, vote / mean / min rules)",
          needs="for the full method, an RM trained with SPCT and a meta RM; the embedded models include no "
                "judge trained this way."),
    Place(5, "Inference-Time Scaling for Flow Models via Stochastic Generation and Rollover Budget Forcing",
          ("hybrid",), ("search",), ("images",), ("efficiency",),
          "Makes a flow model's sampler stochastic (an SDE, a VP interpolant) so particle methods apply, and rolls "
          "each step's unused NFE over to the next.",
          runs=("rollover_budget_forcing",), feature="the flow_sde sampler and the interpolant option"),
    Place(6, "Heimdall: test-time scaling on the generative verification",
          ("parallel",), ("tuning", "verification"), ("math", "judging"), ("accuracy",),
          "A long-CoT verifier trained by RL; repeated judgments raise its accuracy, and pessimistic verification "
          "picks the solution with the least doubt.",
          feature="the generative judge's min rule (pessimistic aggregation)",
          needs="a verifier trained by RL to judge long chains; any causal LM can be loaded as the judge."),
    Place(7, "GenPRM: Scaling Test-Time Compute of Process Reward Models via Generative Reasoning",
          ("parallel",), ("tuning", "verification"), ("math", "judging"), ("accuracy",),
          "A PRM that reasons (and runs code) before judging each step, scaled by sampling its judgments.",
          feature="the generative judge per prefix (per_step=prefix)",
          needs="a judge that executes code in its critique; the app has no code sandbox."),
    Place(8, "m1: Unleash the Potential of Test-Time Scaling for Medical Reasoning with Large Language Models",
          ("sequential", "internal"), ("tuning", "stimulation"), ("medical and knowledge",), ("accuracy", "efficiency"),
          "Thinking longer helps medical QA up to about 4K tokens, then overthinking hurts; budget forcing adds "
          "double-checks but can also break right answers. Lesson 5 tries it on tiny-think.",
          runs=("budget_forcing",)),
    Place(9, "Inference-Time Scaling for Complex Tasks: Where We Stand and What Lies Ahead",
          ("parallel", "sequential"), ("verification", "aggregation"), ("math", "code and planning"),
          ("accuracy", "scalability"),
          "Brackets what scaling can do on eight hard tasks: independent calls and feedback loops, with perfect "
          "verifiers as the upper bound; gains shrink as problems get harder.",
          feature="the oracle verifier and the pass@N ceiling on the Scaling tab"),
    Place(10, "AgentTTS: Large Language Model Agent for Test-time Compute-optimal Scaling Strategy in Complex Tasks",
          ("parallel",), ("search",), ("agents",), ("efficiency",),
          "An LLM agent searches for the model and budget of every stage of a multi-stage task, instead of a grid.",
          needs="a multi-stage task whose stages take different models; the Scaling tab's sweep is the brute-force "
                "grid this agent replaces, over one stage."),
    Place(11, "Kinetics: Rethinking Test-Time Scaling Laws",
          ("parallel", "sequential"), ("search",), ("math",), ("efficiency", "scalability"),
          "Counts memory traffic, not just FLOPs: at test time attention over a long KV cache dominates, so small "
          "models are less efficient than FLOPs suggest; proposes sparse attention.",
          feature="the compute meter's eFLOPs (FLOPs plus KV bytes at a FLOPs-per-byte rate) and the Compare and "
                  "Scaling axes",
          needs="for its sparse-attention proposal, a model with block-sparse attention."),
    Place(12, "SoftCoT++: Test-Time Scaling with Soft Chain-of-Thought Reasoning",
          ("parallel", "internal"), ("stimulation", "aggregation"), ("math",), ("accuracy",),
          "Thinks in continuous latent 'soft thoughts' and diversifies them (perturbed initial tokens, a "
          "contrastive loss) so parallel samples differ, then votes.",
          needs="an assistant model that emits soft thought embeddings and a projection into the policy's input "
                "space; the policies here take tokens only."),
    Place(13, "RoboMonkey: Scaling Test-Time Sampling and Verification for Vision-Language-Action Models",
          ("parallel",), ("verification", "aggregation"), ("agents",), ("accuracy", "scalability"),
          "Samples robot actions from a vision-language-action model, perturbs and votes them, and lets a VLM "
          "verifier pick one; action error follows a power law in the number of samples.",
          needs="a VLA model, a simulator to act in and an action verifier: a robotics domain."),
    Place(14, "First Finish Search: Efficient Test-Time Scaling in Large Language Models",
          ("parallel",), ("aggregation",), ("math",), ("accuracy", "efficiency"),
          "Shorter traces are more often right: decode N samples together and keep the first that finishes.",
          runs=("first_finish",)),
    Place(15, "Enhancing Test-Time Scaling of Large Language Models with Hierarchical Retrieval-Augmented MCTS",
          ("hybrid",), ("search", "verification"), ("math",), ("accuracy",),
          "MCTS over reasoning steps with retrieved similar problems and steps as in-context help.",
          runs=("mcts",), needs="for the retrieval half, a corpus of solved problems and a retriever; the app runs "
                                "the MCTS with the PRM as value, without retrieval."),
    Place(16, "TrimR: Verifier-based Training-Free Thinking Compression for Efficient Test-Time Scaling",
          ("sequential",), ("verification",), ("math",), ("efficiency",),
          "A small verifier watches a reasoning model think and cuts the thinking once further thoughts are "
          "redundant, saving tokens.",
          runs=("thought_truncation",),
          needs="a thinking policy (tiny-think) and a verifier asked, at each thought boundary, whether the answer "
                "so far is settled."),
    Place(17, "State Tuning: State-based Test-Time Scaling on RWKV-7",
          ("internal",), ("tuning",), ("math",), ("accuracy",),
          "For an RNN (RWKV-7), scales and tunes the recurrent state instead of growing a KV cache.",
          needs="an RWKV-7 model and state training; every policy here is a transformer."),
    Place(18, "Scaling Image and Video Generation via Test-Time Evolutionary Search",
          ("hybrid",), ("search",), ("images", "video"), ("accuracy", "hacking"),
          "Evolves the noises, then the intermediate latents: elites, selection, mutations that keep the norm.",
          runs=("evo_search",)),
    Place(19, "TTS-VAR: A Test-Time Scaling Framework for Visual Auto-Regressive Generation",
          ("hybrid",), ("search", "verification"), ("images",), ("accuracy", "efficiency"),
          "For a next-scale visual autoregressive model: a batch that shrinks over scales, clustering for diversity "
          "at coarse scales and resampling by potential at fine ones.",
          needs="a visual autoregressive (VAR) model; the search is close to the SMC core with a scale as a step."),
    Place(20, "Scaling Test-Time Inference with Policy-Optimized, Dynamic Retrieval-Augmented Generation via KV "
              "Caching and Decoding",
          ("sequential",), ("tuning", "search"), ("medical and knowledge",), ("accuracy", "efficiency"),
          "Retrieval-augmented generation that decides when and what to retrieve from the model's attention, with "
          "an RL-tuned policy and KV-cache compression to keep long contexts cheap.",
          needs="a retriever and a corpus, a knowledge-QA domain and a KV compression step in the policy."),
    Place(21, "J1: Exploring Simple Test-Time Scaling for LLM-as-a-Judge",
          ("sequential", "parallel"), ("tuning", "verification"), ("judging",), ("accuracy",),
          "An LLM judge that thinks longer (and is sampled more) judges better.",
          feature="the generative judge verifier"),
    Place(22, "ETS: Efficient Tree Search for Inference-Time Scaling",
          ("hybrid",), ("search",), ("math",), ("efficiency",),
          "Tree search that keeps the frontier's prefixes shared (small KV cache) while keeping its semantic "
          "diversity.",
          runs=("ets", "rebase")),
    Place(23, SURVEY,
          ("parallel", "sequential", "hybrid", "internal"), ("tuning", "stimulation", "verification", "search",
                                                              "aggregation"),
          ("math",), ("accuracy", "efficiency", "scalability"),
          "This map: four questions that place any test-time scaling method.",
          feature="this page's spine (the Learn tab)"),
    Place(24, "GTA1: GUI Test-time Scaling Agent",
          ("parallel",), ("verification", "aggregation"), ("agents",), ("accuracy",),
          "A GUI agent samples several action proposals each step and a judge picks one.",
          needs="a GUI environment with screenshots, a grounding model and a judge of actions: an agent domain "
                "whose step is one action."),
    Place(25, "Satori-SWE: Evolutionary Test-Time Scaling for Sample-Efficient Software Engineering",
          ("sequential",), ("tuning", "search"), ("code and planning",), ("efficiency",),
          "Treats generation as evolution: each round the model refines its own earlier patches, needing far fewer "
          "samples than best-of-N.",
          runs=("evoscale",),
          needs="a policy that revises its own earlier answers given in the prompt and a verifier of whole answers."),
    Place(26, "A Probabilistic Inference Approach to Inference-Time Scaling of LLMs using Particle-Based Monte Carlo "
              "Methods",
          ("hybrid",), ("search", "verification"), ("math",), ("accuracy", "scalability"),
          "Sample the typical set instead of the PRM's mode: particles resampled by the PRM as a likelihood are less "
          "easily hacked than beam search. Lesson 4 puts it against beam search.",
          runs=("particle_filtering",)),
    Place(27, "Reflect-DiT: Inference-Time Scaling for Text-to-Image Diffusion Transformers via In-Context Reflection",
          ("sequential",), ("tuning", "verification"), ("images",), ("accuracy",),
          "The diffusion transformer sees its earlier images with a VLM's critique and generates a better one.",
          needs="a DiT fine-tuned to take earlier images and critiques in context, and a critic VLM (the t2i domain "
                "would host it)."),
    Place(28, "Solve-Detect-Verify: Inference-Time Scaling with Flexible Generative Verifier",
          ("sequential",), ("verification",), ("math",), ("efficiency", "accuracy"),
          "Solve, detect the point where a solution is complete, then verify with a generative verifier that "
          "thinks fast first and slow only when unsure.",
          runs=("solve_detect_verify",),
          needs="a thinking policy and a generative verifier with a fast and a slow mode."),
    Place(29, "CyberV: Cybernetics for Test-time Scaling in Video Understanding",
          ("sequential",), ("verification",), ("video",), ("accuracy",),
          "A control loop around a video MLLM: a sensor watches attention drift and a controller triggers "
          "self-correction with more frames.",
          needs="a video MLLM and video QA data."),
    Place(30, "Accelerated Test-Time Scaling with Model-Free Speculative Sampling",
          ("parallel",), ("search",), ("math",), ("efficiency",),
          "Sampled reasoning repeats itself, so an n-gram table drafts tokens for free and the model only checks "
          "them: same distribution, fewer passes.",
          feature="the Drafting (speculative sampling) option of the reasoning policies (ngram)"),
    Place(31, "Scaling over Scaling: Exploring Test-Time Scaling Pareto in Large Reasoning Models",
          ("parallel", "sequential"), ("aggregation",), ("math",), ("scalability",),
          "A performance model (TTSPM) of parallel and sequential scaling that predicts the budget past which more "
          "compute stops paying.",
          feature="the saturation fit on the Scaling tab"),
    Place(32, "Generating Symbolic World Models via Test-time Scaling of Large Language Models",
          ("parallel", "sequential"), ("search", "verification"), ("code and planning",), ("accuracy",),
          "Best-of-N over PDDL domains, then fine-grained refinement, so a classical planner can search them.",
          needs="a PDDL validator and planner as the verifier, and a policy that writes PDDL."),
    Place(33, "Atom of Thoughts for Markov LLM Test-Time Scaling",
          ("sequential",), ("stimulation", "search"), ("math",), ("accuracy", "efficiency"),
          "Each step contracts the question into a smaller self-contained one, so a state carries no history.",
          needs="a policy that decomposes and rewrites questions; the arithmetic chains could be contracted one "
                "operation at a time, but the tiny policies are not trained to rewrite."),
    Place(34, "Revisiting Multi-Agent Debate as Test-Time Scaling: A Systematic Study of Conditional Effectiveness",
          ("parallel", "sequential"), ("aggregation",), ("math", "agents"), ("accuracy",),
          "Agents answer, read each other's answers and revise; on math it helps little over one agent's scaling, "
          "more on hard problems and weak models.",
          needs="several policies that read other agents' answers in their prompt and rounds of revision."),
    Place(35, "Thinking vs. Doing: Agents that Reason by Scaling Test-Time Interaction",
          ("sequential",), ("tuning",), ("agents",), ("accuracy",),
          "Scales the number of interaction steps a web agent takes (explore, backtrack, re-plan) rather than its "
          "thinking per step.",
          needs="a web environment and an agent policy trained to act in it."),
    Place(36, "Video-RTS: Rethinking Reinforcement Learning and Test-Time Scaling for Efficient and Enhanced Video "
              "Reasoning",
          ("sequential",), ("tuning", "aggregation"), ("video",), ("accuracy", "efficiency"),
          "Adds video frames sparse to dense until the answers agree.",
          needs="a video MLLM and video QA data."),
    Place(37, "Plan and Budget: Effective and Efficient Test-Time Scaling on Large Language Model Reasoning",
          ("sequential",), ("stimulation",), ("math",), ("efficiency",),
          "Plans sub-questions and gives each a token budget by its estimated difficulty, against both overthinking "
          "and underthinking.",
          needs="a thinking policy that plans sub-questions; budget forcing with per-step budgets on tiny-think "
                "would be a first version."),
    Place(38, "Two Heads are Better Than One: Test-time Scaling of Multi-agent Collaborative Reasoning",
          ("sequential",), ("tuning",), ("agents", "math"), ("accuracy",),
          "Agents fine-tuned on collaborative traces, with a CEO agent that steers the discussion and its depth.",
          needs="several collaborating policies and a coordinator; as for debate, the tiny policies cannot read "
                "each other."),
    Place(39, "Transformers Don't Need LayerNorm at Inference Time: Scaling LayerNorm Removal to GPT-2 XL and the "
              "Implications for Mechanistic Interpretability",
          ("internal",), ("tuning",), ("math",), ("efficiency",),
          "Not a search: LayerNorm is fine-tuned away from GPT-2 with little loss, making the model easier to "
          "interpret. It sits at the map's edge, as inference-time model surgery rather than spending compute.",
          needs="the LN-free GPT-2 checkpoints and interpretability tooling; nothing to search."),
    Place(40, "A General Framework for Inference-time Scaling and Steering of Diffusion Models",
          ("hybrid",), ("search", "verification"), ("images",), ("accuracy", "hacking"),
          "Feynman-Kac steering: diffusion particles resampled by potentials of intermediate rewards; a small model "
          "steered beats a larger fine-tuned one.",
          runs=("fk_steering",)),
)
