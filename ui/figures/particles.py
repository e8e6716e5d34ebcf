"""Particle lanes: one row per particle slot, lineages across resamplings, extinct ones greyed, and the ESS."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.figures.style import TEMPLATE, WRONG, empty_figure, f32, step_range, tree_steps
from ui.fold import ViewState, num


# ---- particles ----------------------------------------------------------------------------------

def particle_figure(state: ViewState, height: int = 460, max_step: int | None = None) -> go.Figure:
    """Particle genealogy: one lane per particle, a column per resampling, lines from each new particle
    to the particle it copied; lineages with no descendant in the last population are greyed; below,
    the effective sample size per step with the N/2 line adaptive resampling would use. The step axis is the
    tree's (``step_range``; ``max_step``: the whole run's, in a replay)."""
    steps = state.particle_steps
    if not steps:
        return empty_figure("The particle view shows runs that resample a population "
                            "(particle filtering, FK steering). This run has no resampling yet.", height)
    # alive[s][j]: particle j of population s has a descendant in the final population
    alive: list[list[bool]] = [[False] * len(ps.weights) for ps in steps]
    last = steps[-1]
    for i in last.parent:
        if 0 <= i < len(alive[-1]):
            alive[-1][i] = True
    for s in range(len(steps) - 2, -1, -1):
        ps = steps[s]
        nxt = ps.next_index or list(range(len(ps.parent)))
        for i, j in enumerate(ps.parent):
            k = nxt[i] if i < len(nxt) else None
            if k is not None and k < len(alive[s + 1]) and alive[s + 1][k] and 0 <= j < len(alive[s]):
                alive[s][j] = True

    # Display rows: each population is ordered by its parents' rows, so ancestry lines never cross
    # (a particle's index in the population is arbitrary; only who copied whom matters).
    pos: list[list[float]] = [[float(j) for j in range(len(steps[0].weights))]]
    for s in range(len(steps) - 1):
        ps, n_next = steps[s], len(steps[s + 1].weights)
        nxt = ps.next_index or list(range(len(ps.parent)))
        key: dict[int, tuple[float, int]] = {}
        for i, j in enumerate(ps.parent):
            k = nxt[i] if i < len(nxt) else None
            if k is not None and k < n_next and 0 <= j < len(pos[s]):
                key[k] = (pos[s][j], i)
        order = sorted(range(n_next), key=lambda k: key.get(k, (math.inf, k)))
        row = [0.0] * n_next
        for rank, k in enumerate(order):
            row[k] = float(rank)
        pos.append(row)
    final_order = sorted(range(len(last.parent)),
                         key=lambda i: (pos[-1][last.parent[i]] if 0 <= last.parent[i] < len(pos[-1]) else math.inf, i))
    final_pos = [0.0] * len(last.parent)
    for rank, i in enumerate(final_order):
        final_pos[i] = float(rank)

    def y_of(s: int, j: int) -> float:
        return pos[s][j] if 0 <= j < len(pos[s]) else float(j)

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.06)
    live_x: list[float] = []
    live_y: list[float] = []
    dead_x: list[float] = []
    dead_y: list[float] = []
    for s, ps in enumerate(steps):
        nxt = ps.next_index if s + 1 < len(steps) else list(range(len(ps.parent)))
        nxt = nxt or list(range(len(ps.parent)))
        x0, x1 = float(ps.step), float(steps[s + 1].step) if s + 1 < len(steps) else float(ps.step) + 1.0
        for i, j in enumerate(ps.parent):
            k = nxt[i] if i < len(nxt) else None
            if k is None:
                continue
            on = alive[s + 1][k] if s + 1 < len(steps) and k < len(alive[s + 1]) else True
            bx, by = (live_x, live_y) if on else (dead_x, dead_y)
            bx += [x0, x1, math.nan]
            by += [y_of(s, j), y_of(s + 1, k) if s + 1 < len(steps) else final_pos[k], math.nan]
    fig.add_trace(go.Scatter(x=f32(dead_x), y=f32(dead_y), mode="lines", hoverinfo="skip", name="extinct lineage",
                             line={"color": "#d3d3d8", "width": 1}), row=1, col=1)
    fig.add_trace(go.Scatter(x=f32(live_x), y=f32(live_y), mode="lines", hoverinfo="skip",
                             name="surviving lineage", line={"color": "#3b6fd6", "width": 1.6}), row=1, col=1)
    px, py, pw, pc, ph = [], [], [], [], []
    for s, ps in enumerate(steps):
        n = max(len(ps.weights), 1)
        counts = [ps.parent.count(j) for j in range(len(ps.weights))]
        for j, w in enumerate(ps.weights):
            px.append(float(ps.step))
            py.append(y_of(s, j))
            pw.append(w)
            pc.append("#3b6fd6" if alive[s][j] else "#b5b5bb")
            ph.append(f"step {ps.step} · particle {j}<br>weight {w:.3f} (uniform would be {1 / n:.3f})"
                      f"<br>copies after resampling: {counts[j]}" + ("" if alive[s][j] else "<br>lineage extinct"))
    wmax = max(pw) if pw else 1.0
    fig.add_trace(go.Scatter(x=f32(px), y=f32(py), mode="markers", name="particle (size = weight)",
                             hovertext=ph, hovertemplate="%{hovertext}<extra></extra>",
                             marker={"size": f32([5 + 16 * math.sqrt(w / wmax) if wmax > 0 else 6 for w in pw]),
                                     "color": pc, "line": {"color": "#333", "width": 0.5}}), row=1, col=1)
    fx = [float(last.step) + 1.0] * len(last.parent)
    fy = final_pos
    fig.add_trace(go.Scatter(x=f32(fx), y=f32(fy), mode="markers", name="final population",
                             hoverinfo="skip", marker={"size": 6, "color": "#3b6fd6", "symbol": "square"}),
                  row=1, col=1)
    sx = f32([float(ps.step) for ps in steps])
    fig.add_trace(go.Scatter(x=sx, y=f32([ps.ess for ps in steps]), mode="lines+markers", name="ESS",
                             line={"color": "#7a3bd6"},
                             hovertemplate="step %{x}: ESS %{y:.2f}<extra></extra>"), row=2, col=1)
    # FK steering records its threshold (a fraction of N); particle filtering resamples every step, and
    # N/2 is the usual line to read its ESS against
    frac = num(state.params.get("ess_threshold"))
    frac = 0.5 if frac is None else frac
    fig.add_trace(go.Scatter(x=sx, y=f32([len(ps.weights) * frac for ps in steps]), mode="lines",
                             name=f"{'N/2' if frac == 0.5 else f'{frac:g}·N'} (adaptive-resampling threshold)",
                             hoverinfo="skip",
                             line={"color": WRONG, "dash": "dash", "width": 1}), row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=height, uirevision=f"pf-{state.run_id}",
                      margin=dict(l=50, r=10, t=24, b=36), hovermode="closest",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "font": {"size": 11}})
    fig.update_yaxes(title_text="particles (ordered by ancestry)", row=1, col=1, zeroline=False,
                     showticklabels=False)
    fig.update_yaxes(title_text="ESS", row=2, col=1, rangemode="tozero")
    fig.update_xaxes(title_text="resampling step", dtick=1, row=2, col=1)
    fig.update_xaxes(range=step_range(max(max_step or 0, tree_steps(state))))
    return fig
