"""Pure views of image runs: a folded ``views.ViewState`` in, gallery items and a strips figure out.

An image node's ``preview`` is the path of a PNG the backend wrote once, when it made the node
(``<node>.png``: x0-hat, the final image once finished, the latent itself for a fresh, perturbed or
re-noised latent), with ``<node>_xt.png`` (the latent x_t) beside it when the node has both. Nothing here
decodes or writes an image: the gallery gets file paths and the strips figure gets URLs of Gradio's file
route, so each picture is encoded once, by the backend, and fetched by the browser as a file.

Paths come from stored events, and a database can be crafted, so a path is shown only when it names a
PNG file inside the images root (:func:`image_path`); the UI serves exactly that folder.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from urllib.parse import quote

import plotly.graph_objects as go

from ui.figures.style import TEMPLATE, CHOSEN, empty_figure, esc
from ui.fold import NodeView, ViewState

log = logging.getLogger(__name__)

GALLERY_MAX = 64       # candidates shown in the gallery, best first
STRIP_LINEAGES = 6     # lineages drawn as strips
STRIP_COLUMNS = 11     # nodes per strip (evenly spaced along a longer lineage, first and last kept)
CELL_PX = 56           # height of one strip row
FILE_ROUTE = "gradio_api/file="  # Gradio's file route, relative to the page (works under a root path too)


def image_path(path: str | None, root: Path) -> str | None:
    """``path`` made absolute and normalised, when it is a PNG file inside ``root``; else None.

    ``..`` is collapsed before the containment check; symbolic links are not followed (only the backend
    writes into the images folder, and a stored event can name a path but not create a link)."""
    if not path or not str(path).endswith(".png"):
        return None
    p = os.path.abspath(path)
    base = os.path.abspath(root)
    if os.path.commonpath([p, base]) != base or not os.path.isfile(p):
        return None
    return p


def xt_path(preview: str) -> str:
    """Where the backend writes a node's x_t beside its x0-hat preview."""
    p = Path(preview)
    return str(p.with_name(f"{p.stem}_xt.png"))


def file_url(path: str) -> str:
    return FILE_ROUTE + quote(path, safe="/")


def _score(n: NodeView) -> float:
    return n.score if n.score is not None else -math.inf


def judge_caption(state: ViewState, n: NodeView) -> str:
    """The held-out judge's verdict on a candidate: predicted class and right or wrong, once known."""
    j = state.judged.get(n.id)
    if j is not None:
        mark = {True: "✓", False: "✗"}.get(j.get("judge_correct"), "?")
        return f"judge {j.get('judge_predicted')} {mark}"
    if state.status in ("running", "starting"):
        return "judge at the end"
    return "judge –"


def gallery_items(state: ViewState, root: Path, limit: int = GALLERY_MAX) -> list[tuple[str, str]]:
    """(image path, caption) for the finished candidates, highest verifier score first.

    The caption holds the node (★ the chosen one), its verifier score and what the judge reads (its
    predicted class) with its verdict, ✓ or ✗; short, as the gallery overlays it on the thumbnail (plain
    text: the gallery shows captions as text)."""
    finished = [n for n in state.nodes.values() if n.finished]
    finished.sort(key=lambda n: (-_score(n), n.order))
    out: list[tuple[str, str]] = []
    for n in finished:
        path = image_path(n.preview, root)
        if path is None:
            continue
        score = "–" if n.score is None else f"{n.score:.3f}"
        star = "★ " if n.id == state.selected else ""
        out.append((path, f"{star}{n.id} · {score} · {judge_caption(state, n)}"))
        if len(out) >= limit:
            break
    return out


def lineages(state: ViewState, limit: int = STRIP_LINEAGES) -> list[list[str]]:
    """Node ids from the first image to a leaf, for the leaves worth showing.

    Once candidates have finished: the chosen one first, then the best scored. While running: the
    current frontier (leaves that are not pruned, deepest first, best scored first)."""
    finished = [n for n in state.nodes.values() if n.finished]
    if finished:
        leaves = sorted(finished, key=lambda n: (n.id != state.selected, -_score(n), n.order))
    else:
        leaves = [n for n in state.nodes.values()
                  if n.parent is not None and not n.pruned and not state.children.get(n.id)]
        leaves.sort(key=lambda n: (-n.step, -_score(n), n.order))
    out = []
    for leaf in leaves[:limit]:
        path, seen = [], set()
        nid: str | None = leaf.id
        while nid is not None and nid in state.nodes and nid not in seen:
            seen.add(nid)
            path.append(nid)
            nid = state.nodes[nid].parent
        out.append([p for p in reversed(path) if state.nodes[p].parent is not None])  # the prompt has no image
    return [p for p in out if p]


def _columns(n: int, most: int) -> list[int]:
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


def _cells(n: NodeView, root: Path) -> tuple[str | None, str | None]:
    """(x_t image, x0-hat image) of a node: both for a denoised latent, the image itself twice once
    finished (x_0), only x_t for a latent without a prediction (a fresh, perturbed or re-noised one)."""
    own = image_path(n.preview, root)
    if own is None:
        return None, None
    xt = image_path(xt_path(own), root)
    if xt is not None:
        return xt, own
    if n.finished:
        return own, own
    return own, None


def strips_figure(state: ViewState, root: Path, url=file_url, max_columns: int = STRIP_COLUMNS,
                  limit: int = STRIP_LINEAGES) -> go.Figure:
    """x_t | x0-hat strips: two rows per lineage (x_t above, its x0-hat below), one column per node
    along the lineage, thumbnails drawn from the backend's PNGs by URL; the chosen lineage is framed."""
    paths = lineages(state, limit)
    rows: list[tuple[str, list[str]]] = []
    for p in paths:
        cols = [p[i] for i in _columns(len(p), max_columns)]
        if any(c != (None, None) for c in (_cells(state.nodes[nid], root) for nid in cols)):
            rows.append((p[-1], cols))
    if not rows:
        return empty_figure("Strips of x_t and x0-hat along each lineage show here once the run has images.",
                            160)
    images, hx, hy, hover = [], [], [], []
    ticks, labels = [], []
    steps_by_col: dict[int, set[int]] = {}
    for r, (leaf, cols) in enumerate(rows):
        y_xt, y_x0 = 2 * r, 2 * r + 1
        leaf_node = state.nodes[leaf]
        score = "" if leaf_node.score is None else f" ({leaf_node.score:.2f})"
        ticks += [y_xt, y_x0]
        labels += [f"{'★ ' if leaf == state.selected else ''}{esc(leaf)}{score} x_t", "x0-hat"]
        for c, nid in enumerate(cols):
            n = state.nodes[nid]
            steps_by_col.setdefault(c, set()).add(n.step)
            for y, img, what in zip((y_xt, y_x0), _cells(n, root), ("x_t", "x0-hat")):
                if img is None:
                    continue
                images.append({"source": url(img), "xref": "x", "yref": "y", "x": c, "y": y, "sizex": 0.94,
                               "sizey": 0.94, "xanchor": "center", "yanchor": "middle", "sizing": "contain",
                               "layer": "above"})
                hx.append(c)
                hy.append(y)
                kind = "final image" if n.finished else what
                scored = n.score is not None and (what == "x0-hat" or n.finished)  # the verifier reads x0-hat
                verifier = f"<br>verifier score {n.score:.3f}" if scored else ""
                hover.append(f"<b>{esc(nid)}</b> · step {n.step} · {kind}{verifier}"
                             + ("<br>pruned" if n.pruned else ""))
    n_cols = max(len(cols) for _, cols in rows)
    aligned = all(len(s) == 1 for s in steps_by_col.values())
    chosen = [r for r, (leaf, _cols) in enumerate(rows) if leaf == state.selected]
    # a transparent marker under every thumbnail carries its hover text (layout images have none)
    hover_trace = {"type": "scatter", "x": hx, "y": hy, "mode": "markers", "hovertext": hover,
                   "hovertemplate": "%{hovertext}<extra></extra>", "name": "images",
                   "marker": {"size": 30, "opacity": 0, "symbol": "square"}}
    # _validate=False: plotly's per-property validation of ~100 layout images was most of the build time
    # (tests/test_image_views.py checks the figure's JSON); everything here is built by this function
    fig = go.Figure(data=[hover_trace], _validate=False, layout={
        "template": TEMPLATE, "height": 70 + CELL_PX * 2 * len(rows), "images": images,
        "margin": dict(l=130, r=10, t=34, b=36), "hovermode": "closest", "showlegend": False,
        "uirevision": f"strips-{state.run_id}",
        "title": {"text": "x_t | x0-hat along each lineage" + (" (chosen first)" if state.selected else ""),
                  "font": {"size": 13}, "y": 0.99, "yanchor": "top"},
        "xaxis": {"range": [-0.5, n_cols - 0.5], "showgrid": False, "zeroline": False,
                  "title": {"text": "denoising step" if aligned else "along the lineage (hover for the step)"},
                  "tickvals": list(range(n_cols)),
                  "ticktext": [str(next(iter(steps_by_col[c]))) for c in range(n_cols)] if aligned
                  else [""] * n_cols},
        "yaxis": {"range": [2 * len(rows) - 0.5, -0.5], "showgrid": False, "zeroline": False,
                  "tickvals": ticks, "ticktext": labels},
        "shapes": [{"type": "rect", "x0": -0.5, "x1": n_cols - 0.5, "y0": 2 * r - 0.5, "y1": 2 * r + 1.5,
                    "line": {"color": CHOSEN, "width": 2}} for r in chosen],  # the chosen lineage, framed
    })
    return fig
