"""The Learn tab's cards: one per strategy, in plain words. Paper titles come from the strategy registry
(which quotes ../shared/papers.md); a test checks they match that file exactly."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Card:
    idea: str
    pseudocode: str
    wins: str
    loses: str


CARDS: dict[str, Card] = {
    "greedy": Card(
        idea="Decode one chain at temperature 0, always taking the most likely next token. No search, no "
             "verifier: this is the point every test-time method is measured against (budget 1).",
        pseudocode="""state = prompt
while not finished(state):
    state += most_likely_next_step(state)
return answer(state)""",
        wins="Easy problems the model already solves reliably; the cheapest answer you can get.",
        loses="Any problem where the model's first guess is wrong: it never reconsiders a step.",
    ),
    "best_of_n": Card(
        idea="Sample N complete solutions independently at a temperature above 0, score each with a verifier, "
             "return the one it likes best. On the image side the same algorithm is random search over noises.",
        pseudocode="""samples = [sample_solution(prompt) for _ in range(N)]
scores  = [verifier(s) for s in samples]          # PRM aggregated: last / min / prod / mean
return samples[argmax(scores)]""",
        wins="Easy and medium problems with a reasonable verifier; embarrassingly parallel; often as good as "
             "tree search at equal compute (the compute-optimal paper's finding for small budgets).",
        loses="Hard problems where almost no full sample is right, and when the verifier can be fooled: "
              "more samples give it more chances to pick a confident wrong answer.",
    ),
    "weighted_bon": Card(
        idea="Best-of-N, but the verifier's scores are summed per final answer: an answer reached by many "
             "good-looking samples beats one lucky high score. Needs real answer extraction and equivalence.",
        pseudocode="""samples = [sample_solution(prompt) for _ in range(N)]
total = defaultdict(float)
for s in samples:
    total[canonical_answer(s)] += verifier(s)
return argmax(total)""",
        wins="Medium problems where the right answer recurs; more robust to a noisy verifier than plain "
             "best-of-N.",
        loses="Free-form answers that are hard to compare, and hard problems where the right answer is a "
              "minority.",
    ),
    "deepconf": Card(
        idea="Majority vote over the traces the model itself was sure of. A token's confidence is how peaked the "
             "model's distribution was there (minus the mean of its top-k log-probabilities); a trace's group "
             "confidence is that averaged over a sliding window. Offline, the least confident traces are dropped "
             "and the rest vote, weighted by confidence. Online, a few warm-up traces set a threshold and every "
             "later trace is stopped at the token where its window confidence falls below it: those tokens are "
             "never generated.",
        pseudocode="""warm = [sample_with_logprobs(prompt) for _ in range(W)]
bar  = quantile([min(window_conf(t)) for t in warm], 1 - keep)
rest = [sample_with_logprobs(prompt, stop=lambda t: window_conf(t)[-1] < bar)
        for _ in range(N - W)]
voters = [t for t in warm + rest if finished(t) and min(window_conf(t)) >= bar]
return argmax_answer(sum of conf(t) over voters per answer)""",
        wins="Long reasoning traces where a wrong turn shows as hesitation (low-confidence stretches): online "
             "it saves the tokens of traces that were going wrong, offline it filters them out of the vote.",
        loses="A model that is confidently wrong (errors with peaked distributions) or traces too short for a "
              "window to see a dip: then it is majority vote with fewer voters.",
    ),
    "majority_vote": Card(
        idea="Self-consistency: sample N solutions and return the most frequent final answer. No verifier at "
             "all, so it is the honest baseline for what a verifier adds.",
        pseudocode="""answers = [canonical_answer(sample_solution(prompt)) for _ in range(N)]
return most_common(answers)""",
        wins="When the model is right more often than it is consistently wrong; no verifier to train or fool.",
        loses="Problems where errors agree (a systematic mistake) or where the right answer is rare.",
    ),
    "beam_search": Card(
        idea="Search step by step with a process reward model (PRM). Each step N candidates are scored; the best "
             "N/M survive and each expands M children. Finished candidates leave the beam and compete at the "
             "end; when fewer than N/M open beams survive, they share the N generations, so every step costs "
             "N. A chain that reaches the step limit stops there and competes without an answer.",
        pseudocode="""beams = [prompt]
for step in range(max_steps):
    cands = [b + next_step(b) for b in share(beams, N)]   # N per step: M each, more once beams finish
    done += [c for c in cands if finished(c)]
    beams = top_k(open(cands), key=PRM, k=N // M)                 # the rest are pruned
return best(done, key=PRM)""",
        wins="Hard problems at small and medium budgets: the PRM corrects course at every step instead of "
             "judging only complete answers (the compute-optimal paper's winner on hard questions).",
        loses="Easy problems and large budgets: the beams collapse onto one prefix (low diversity) and PRM "
              "errors early in the chain prune the right path for good.",
    ),
    "dvts": Card(
        idea="Diverse verifier tree search: split the budget into N/M independent subtrees; each is a greedy "
             "search that keeps the best of its M children per step. Subtrees never exchange candidates, so the "
             "final answers stay diverse where beam search collapses. A finished subtree's M generations go "
             "to the open subtrees, so every step costs N.",
        pseudocode="""subtrees = [prompt] * (N // M)
for step in range(max_steps):
    for i, node in enumerate(open(subtrees)):
        kids = [node + next_step(node) for _ in range(N // len(open(subtrees)))]   # M while all are open
        subtrees[i] = max(kids, key=PRM)            # the other M-1 are pruned
return best(subtrees, key=PRM)""",
        wins="Large budgets and easy-to-medium problems, where beam search's lack of diversity hurts.",
        loses="Small budgets (few subtrees, each shallow in choice) and very hard problems.",
    ),
    "particle_filtering": Card(
        idea="Treat the PRM as a likelihood and run sequential Monte Carlo: N particles (partial solutions) each "
             "take one step, get a weight softmax(logit(r)/T) from the PRM score r, and the population is "
             "resampled in proportion to the weights. Good particles multiply, poor ones die out, but a "
             "low-scoring particle can survive by chance, which keeps the search from over-trusting the PRM.",
        pseudocode="""particles = [prompt + next_step(prompt) for _ in range(N)]
for step in range(max_steps):
    r = [PRM(p) for p in particles]
    w = softmax(logit(r) / T)                     # not softmax(r): nearly flat for r in [0, 1]
    parents = multinomial(w, N)                   # the genealogy view draws these
    particles = [extend(particles[a]) for a in parents]
return best(finished(particles), key=PRM)""",
        wins="Medium and hard problems where the PRM is informative but imperfect: the paper reports better "
             "scaling than deterministic search with the same reward model.",
        loses="A badly calibrated PRM (weights become flat or degenerate: watch the ESS drop), and tiny budgets.",
    ),
    "mcts": Card(
        idea="Monte Carlo tree search: repeatedly select a path by PUCT (value plus an exploration bonus), "
             "expand a leaf into a few children, evaluate them with the PRM (and optionally a rollout to the "
             "end), and back the value up the path. The budget is the number of expansions: selection skips "
             "subtrees that are entirely finished, so every iteration generates, and the search ends early "
             "once the whole tree is finished.",
        pseudocode="""for it in range(iterations):
    path = select(root, by=PUCT, skip=finished_subtrees)   # Q + c * P * sqrt(N_parent + 1) / (1 + N_child)
    kids = expand(path[-1], width)
    v = PRM(best(kids)) or PRM(rollout(best(kids)))
    backup(path, v)
return best(finished_nodes, key=PRM)""",
        wins="Problems where revisiting an earlier branch pays off and rollouts are cheap.",
        loses="Often does not beat best-of-N at equal compute on math (rollouts are expensive, values noisy): "
              "the app shows that honestly.",
    ),
    "first_finish": Card(
        idea="Decode N samples together and return the first one to finish; the batch stops at that token, so "
             "the others' remaining tokens are never generated. Shorter traces are more often correct. The "
             "budget buys N samples until the first ends: best-of-N at the same N and seed draws the same "
             "samples to their ends, and the difference is the saving (small on the embedded chains, whose "
             "length is fixed by the problem; large for models whose traces vary in length).",
        pseudocode="""batch = [prompt] * N                 # one batched decode
while not any(ended(s) for s in batch):
    batch = [s + next_token(s) for s in batch]
return first(s for s in batch if ended(s))   # the rest are cut here""",
        wins="Reasoning models that ramble when wrong; latency-bound serving (it stops early).",
        loses="Tasks where the quick answer is the careless one; it ignores any verifier; a server that cannot "
              "stop the other samples saves nothing.",
    ),
    "budget_forcing": Card(
        idea="For a model that thinks before it answers (a thought between <think> and </think>): the budget is "
             "the number of thinking tokens per sample. At the budget the end of thinking is forced and the model "
             "must answer from what it has thought so far; if it tries to stop before a minimum, its stop is "
             "replaced by 'Wait,' and it thinks on (re-checking its work), up to a number of extensions. Several "
             "samples, each forced so, can vote. This is s1's budget forcing as m1 applies it; m1 finds an optimum "
             "near 4K thinking tokens, past which its models overthink.",
        pseudocode="""thought, waits = "<think>", 0
while tokens(thought) < budget:
    thought += think(thought, up_to=budget - tokens(thought))
    if tried_to_stop(thought):
        if tokens(thought) < min_thinking and waits < max_waits:
            thought += "Wait,"; waits += 1        # think on
        else:
            break
answer = complete(thought + "</think>")        # forced at the budget
return majority_vote(answers of N such samples)""",
        wins="Thinking models whose accuracy grows with thought length: a dial from 'answer now' (budget 1) to "
             "'think it through', at a known token cost per sample.",
        loses="Models that do not think (it needs thinking delimiters), budgets past the point of overthinking, "
              "and extensions that make a model talk itself out of a right answer.",
    ),
    "refine": Card(
        idea="Sequential refinement with feedback: solve, have a critic check the solution, and revise where it "
             "says the first error is, until the critic accepts it or R attempts are used. With the oracle as the "
             "critic this is refinement with a perfect verifier, the paper's upper bound. The tiny policy cannot "
             "read a critique, so a revision keeps the steps before the flagged one and regenerates the rest: no "
             "revision training is needed, and each revision costs only the steps it rewrites. Several chains can "
             "refine in parallel and vote.",
        pseudocode="""attempt = solve(prompt)
for r in range(R):
    critique = critic(attempt)                  # k critiques, voted
    if critique.says_correct:
        break
    i = critique.first_wrong_step
    attempt = solve(prompt + attempt.steps[:i - 1])   # keep the steps before it
return attempt""",
        wins="A critic that finds the first error reliably (the oracle: every wrong attempt is caught, so "
             "accuracy climbs with R at a fraction of N fresh samples' tokens).",
        loses="A critic that accepts wrong answers (the chain stops there) or flags right steps (it rewrites "
              "what was fine); and a policy that repeats the same mistake from the same prefix.",
    ),
    "evoscale": Card(
        idea="Evolution over whole solutions: sample a population of N, keep the best few by the critic's score, "
             "and fill the rest of the next generation with their children. A child keeps its parent's steps up "
             "to the first one the parent's critique flags and regenerates from there (mutation conditioned on "
             "feedback), so the population moves toward what the critic accepts. Satori-SWE trains its model to "
             "evolve itself; here the conditioning is explicit and needs no training.",
        pseudocode="""pop = [solve(prompt) for _ in range(N)]
for g in range(G - 1):
    parents = sorted(pop, key=critic_score)[-keep:]
    if critic_score(parents[-1]) == 1: break       # accepted by every critique
    children = [regenerate_from(flagged_step(p), p) for p in cycle(parents)][:N - keep]
    pop = parents + children
return max(pop, key=critic_score)""",
        wins="Problems where a right answer is a few corrections away from the population's best, with a critic "
             "that ranks candidates well.",
        loses="A population whose best candidates share one mistake the critic misses (it evolves toward it), and "
              "small N, where a few early choices decide everything.",
    ),
    "solve_detect_verify": Card(
        idea="For a thinking model: think in chunks; at every detection point force the end of thinking on a "
             "copy of the thought, let the model answer, and have the critic check that answer with a flexible "
             "budget (one critique, more only when they disagree). The first answer it verifies ends the run, so "
             "the rest of the thought is never generated; a rejected one lets the thought go on.",
        pseudocode="""thought = "<think>"
while tokens(thought) < budget:
    thought += think(thought, chunk)
    if model_ended(thought): break
    answer = complete(thought + "</think>")     # probe: the answer so far
    if verify(answer, k_fast, k_slow): return answer   # stop thinking here
return complete(thought + "</think>")""",
        wins="Models that keep thinking after they have the answer, with a reliable critic: the saved thinking "
             "tokens are real, the probes' answer tokens are the price.",
        loses="A critic that verifies a wrong early answer (it stops on it), and short thoughts, where the probes "
              "cost more than the thinking they save.",
    ),
    "thought_truncation": Card(
        idea="TrimR: watch the thought and cut its redundant rest. Every few tokens the answer so far is probed; "
             "once the same answer comes back several probes in a row the thought is only re-checking it "
             "(overthinking), so, if the critic accepts it (or with confirm=none, on the agreement alone), the "
             "rest of the thought is cut and that answer stands. It waits for the answer to settle, so it thinks "
             "longer than Solve-Detect-Verify and leans less on the critic.",
        pseudocode="""thought, answers = "<think>", []
while tokens(thought) < budget:
    thought += think(thought, chunk)
    if model_ended(thought): break
    answers.append(complete(thought + "</think>"))
    if len(set(answers[-repeats:])) == 1 and len(answers) >= repeats and accepted(answers[-1]):
        return answers[-1]                      # the rest of the thought is cut
return complete(thought + "</think>")""",
        wins="Long thoughts that reach their answer early and then re-check it; no critic is needed with "
             "confirm=none.",
        loses="Thoughts whose answer keeps changing (it never settles, and the probes are wasted), and answers "
              "that settle on a mistake the critic misses.",
    ),
    "rebase": Card(
        idea="Reward-balanced search (REBASE, Wu et al., \"Inference Scaling Laws\", 2024; cited here under ETS, the "
             "seed paper built on its code). Every step the open chains share the step's expansions in proportion "
             "to softmax(PRM score / T): a strong partial solution gets many children, a weak one few or none. "
             "Nothing is set aside as in beam search's N/M, so the tree stays as wide as the budget. A chain that "
             "finishes leaves the frontier and takes its slot with it: the width is N minus the chains finished, "
             "and the run ends with N answers, voted on with their scores.",
        pseudocode="""frontier, width = [prompt], N
for step in range(max_steps):
    w = softmax([PRM(c) / T for c in frontier])
    kids = share(width, w)                       # ceil in score order: sums to width, the weak may get 0
    cands = [c + next_step(c) for c, k in zip(frontier, kids) for _ in range(k)]
    done += [c for c in cands if finished(c)]
    width -= count(finished(cands))              # a finished chain takes its slot
    frontier = open(cands)
return weighted_vote(done, key=PRM)""",
        wins="Medium budgets with a PRM that ranks steps well: it spends more on the promising branches without "
             "betting everything on the top few, so it keeps more diversity than beam search at the same N.",
        loses="A PRM whose scores are flat (T then decides everything) and memory: many distinct prefixes stay "
              "alive, so its KV cache is large (what ETS prunes).",
    ),
    "ets": Card(
        idea="Efficient tree search: REBASE, with a pruning step first. An integer program picks which frontier "
             "candidates to keep: it rewards each kept candidate's REBASE share, charges the KV cache the kept tree "
             "needs (a kept path keeps all its ancestors; shared prefixes are paid once) and rewards covering every "
             "semantic cluster of the frontier, so redundant branches go and distinct ideas stay. The kept "
             "candidates then share all of REBASE's width: as many steps generated, on fewer prefixes. Here two "
             "arithmetic partial solutions are in one cluster when their running values agree.",
        pseudocode="""for step in range(max_steps):
    O = share(width, softmax(PRM(frontier) / T)) / width
    keep = argmax_{x, y, z binary}  sum(O * x) - lambda_b * kv_cost(x, y) + lambda_s / K * sum(z)
           s.t. y[a] >= x[i] for a above i,  z[k] <= sum(x in cluster k),  sum(x) >= 1
    frontier = [c for c, x in zip(frontier, keep) if x]
    cands = REBASE step over frontier with the whole width      # as in REBASE
return weighted_vote(done, key=PRM)""",
        wins="Serving at scale, where the KV cache bounds the batch: the paper reports a 1.8x smaller average "
             "cache than REBASE with minimal accuracy loss. Frontiers with many near-duplicate branches (here: "
             "chains at the same value).",
        loses="Clusters that miss real differences (two different wrong routes to one value merge) and a "
              "lambda_b set too high, which prunes to a single path, like greedy search.",
    ),
    # ---- images: a step is one denoising step; the searched object is the noise (or a latent x_t) ----
    "random_search": Card(
        idea="Best-of-N for diffusion: denoise N independent initial noises and keep the image the verifier "
             "scores highest. The same code as best-of-N; every candidate keeps its noise seed, so any "
             "image can be regenerated exactly.",
        pseudocode="""noises = [gaussian(seed=s) for s in seeds[:N]]
images = [denoise(z) for z in noises]           # N x steps NFE (x2 with guidance)
return images[argmax(verifier(x) for x in images)]""",
        wins="A reliable verifier and a budget of a few dozen samples: the paper's strong, simple baseline.",
        loses="Verifier hacking: with many samples it finds images the search verifier loves and a held-out "
              "judge does not (compare the two scores as N grows).",
    ),
    "zero_order": Card(
        idea="Local search in noise space: score a pivot noise, try K neighbours on the sphere of its norm at "
             "cosine about 0.95, move to the best neighbour if it beats the pivot, otherwise keep the pivot "
             "and draw new neighbours. It runs on a deterministic sampler (DDIM eta 0 or the flow ODE), as in the "
             "paper: with a stochastic one a neighbour's image is as far from the pivot's as a random noise's. "
             "Budget N buys N full denoising runs (1 pivot + K per round), the NFE of random search at N.",
        pseudocode="""pivot = random_noise(); best = verifier(denoise(pivot))
while budget_left():
    nbrs = [perturb(pivot, cosine=0.95) for _ in range(K)]
    top = max(nbrs, key=lambda z: verifier(denoise(z)))
    if score(top) > best: pivot, best = top, score(top)   # else the round is rejected
return denoise(pivot)""",
        wins="When good noises cluster: small steps around a good pivot keep what works.",
        loses="Rugged verifier landscapes, and a first pivot far from anything good.",
    ),
    "search_over_paths": Card(
        idea="Beam search along the denoising trajectory: denoise P paths part way, take each back a few steps "
             "with fresh noise into M branches, denoise further, score x0-hat, keep the best P, repeat. Budget N "
             "buys the NFE of N full samplings: a path with its branches costs several samplings (47 steps on 20 "
             "at the defaults), so P is N x steps / that cost, rounded (7 paths at N = 16).",
        pseudocode="""P = round(N * steps / steps_per_path)        # matched NFE: N full samplings
paths = [denoise(noise(), to=start) for _ in range(P)]
while not at_end(paths):
    branches = [renoise(p, back=f) for p in paths for _ in range(M)]
    branches = [denoise(b, steps=f + b_steps) for b in branches]
    paths = top_k(branches, key=lambda x: verifier(x0_hat(x)), k=P)
return best(paths, key=verifier)""",
        wins="Verifiers that can already judge x0-hat part way through the schedule.",
        loses="Early steps, where x0-hat is blurry and scores mislead; small budgets, where a few paths (one at "
              "N = 1, costing 2.35 samplings) is all the NFE buys.",
    ),
    "fk_steering": Card(
        idea="Sequential Monte Carlo for diffusion: N particles denoise in lockstep; at scheduled steps x0-hat "
             "is scored, a potential (max, diff or sum of rewards) sets log-space weights, and the population "
             "is resampled (systematic, when ESS < N/2) so good particles multiply. The same particle view as "
             "reasoning particle filtering. Budget N buys N particles, each denoised once through the schedule: "
             "the NFE of random search at N (resampling copies states for free).",
        pseudocode="""xs = [noise() for _ in range(N)]; logw = zeros(N)
for t in schedule:
    xs = [step(x, t) for x in xs]                 # stochastic sampler (DDPM / DDIM eta > 0)
    if t in window and t % every == 0:
        logw += lmbda * potential(verifier(x0_hat(xs)))
        if ESS(softmax(logw)) < N / 2:
            xs = systematic_resample(xs, softmax(logw)); logw[:] = 0
return best(xs, key=verifier)""",
        wins="Steering towards a reward at a fraction of best-of-N's NFE; rewards readable mid-schedule.",
        loses="A deterministic sampler (copies stay identical), lambda badly matched to the reward's range, "
              "and resampling too early on blurry x0-hat.",
    ),
    "evo_search": Card(
        idea="Evolution over noises, then latents: keep the elites, pick parents by tournament, mutate them on "
             "the sphere of their norm, and move the mutation point down the denoising trajectory as the "
             "generations go, so children keep more of their parents and cost fewer steps. Budget N buys the NFE of "
             "N full denoising runs: generations are added while they fit, the last one cut short.",
        pseudocode="""pop = [noise() for _ in range(P)]
for g in generations():
    ranked = sorted(pop, key=fitness, reverse=True)
    children = [mutate(tournament(ranked), beta, at_step=g * stride) for _ in range(P - E)]
    pop = ranked[:E] + children
return max(everything_evaluated, key=fitness)""",
        wins="Larger budgets, where it keeps diversity that random search wastes and greedy searches lose.",
        loses="Small budgets (too few generations to evolve) and noisy fitness.",
    ),
    "rollover_budget_forcing": Card(
        idea="For flow models made stochastic: the flow ODE is turned into an SDE with the same marginals, so "
             "one point x_t has many possible next points. Split the NFE budget over the steps; at each step "
             "draw next points one at a time, score their x0-hat, and move on at the first that beats the best "
             "reward so far, rolling the step's unused NFE over to the next step. Budget N buys N x steps model "
             "evaluations, the NFE of random search at N.",
        pseudocode="""x = best_of(noises(K), key=verifier(x0_hat)); best = reward(x)
for t in steps:
    quota = per_step + leftover                 # leftover rolled over from earlier steps
    for j in range(quota):
        y = sde_step(x, t)                      # one NFE: stochastic, so every y differs
        if reward(x0_hat(y)) > best: break      # better: move on now
    x = y if improved else best_candidate_of_step
    leftover = quota - (j + 1) if improved else 0
return final_step(x)""",
        wins="Budgets spread over many steps with a verifier that reads x0-hat early (flow models' x0-hat is "
             "sharp); it never spends a step's quota once that step has already found something better.",
        loses="An ODE sampler (every candidate is the same point), and rewards that drop along the trajectory: "
              "then no step beats the early best and every quota is spent in full.",
    ),
    "more_steps": Card(
        idea="The baseline the diffusion paper starts from: spend the budget on a longer sampling schedule "
             "(N times the steps) instead of on search. No verifier.",
        pseudocode="""return denoise(noise(), steps=N * default_steps)""",
        wins="Very few steps to begin with.",
        loses="Beyond a few dozen steps quality stops improving: that flat curve is why search is needed.",
    ),
}


def card_markdown(name: str) -> str:
    """The card's text (markdown; gr.Markdown sanitizes it)."""
    from strategies.params import specs
    from strategies.registry import STRATEGIES

    info = STRATEGIES[name]
    card = CARDS.get(name)
    paper = f"**Paper:** *{info.paper}*" + ("" if info.seed_paper else " (a later paper, not in the seed list)")
    lines = [f"### {info.title}", "", card.idea if card else info.summary, ""]
    if card:
        lines += ["```python", card.pseudocode, "```", "",
                  paper, "",
                  f"**When it wins:** {card.wins}", "", f"**When it does not:** {card.loses}", ""]
    else:
        lines += [paper, ""]
    params = [f"- `{s.name}` (default `{s.default}`{' — set by the budget' if s.name == info.budget_param else ''})"
              f": {s.help}" for s in specs(info.params_cls)]
    lines += ["**Parameters:**", *params]
    if not info.uses_verifier:
        lines += ["", "_Uses no verifier._"]
    return "\n".join(lines)
