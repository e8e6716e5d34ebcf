"""Figure: copies of one particle under the flow ODE stay one image; under the SDE conversion they diverge.

On the embedded tiny-digits model (``backends.image`` flow samplers): one particle is denoised to step
``--at`` of ``--steps``, copied ``--copies`` times with ``ImageSpace.resample`` (what FK steering and other
particle methods do; each copy gets its own RNG key), and every copy is denoised to the end, once with
``flow_ode`` and once with ``flow_sde`` on the linear and on the VP interpolant. Each row of the figure shows
the ancestor's x0-hat at the copy point, then the copies' final images; the script prints the mean pairwise
distance between the copies of each row.

    python scripts/flow_ode_vs_sde.py [--out docs/flow_ode_vs_sde.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rows(label: int, steps: int, at: int, copies: int, diffusion: float, seed: int):
    import torch

    from backends.image.loaders import load_image_model
    from backends.image.diffusion import Sampling
    from backends.image.space import ImageSpace

    model = load_image_model("tiny-digits")
    out = []
    for title, scheduler, interpolant in [("flow ODE (linear)", "flow_ode", "linear"),
                                          (f"flow SDE (linear, g = {diffusion:g} s^2)", "flow_sde", "linear"),
                                          (f"flow SDE (VP, g = {diffusion:g} s^2)", "flow_sde", "vp")]:
        sampling = Sampling(steps=steps, scheduler=scheduler, diffusion=diffusion, interpolant=interpolant)
        space = ImageSpace(model, None, label, sampling, seed=seed)
        node = space.initial(1)[0]
        for _ in range(at):
            node = space.extend([node], 1)[0][0]
        leaves = space.complete(space.resample([node], [0] * copies))
        finals = torch.stack([leaf.payload.x for leaf in leaves])
        flat = finals.flatten(1)
        dist = torch.cdist(flat, flat)
        spread = float(dist.sum() / (copies * (copies - 1)))
        out.append((title, node.payload.x0, finals, spread))
    return out


def draw(table, path: Path, scale: int = 4) -> None:
    import torch
    from PIL import Image, ImageDraw

    h = table[0][1].shape[-1] * scale
    pad, text_w, head, gap = 6, 230, 22, 14
    n = 1 + len(table[0][2])
    width = text_w + n * (h + pad) + pad + gap
    height = head + len(table) * (h + pad) + pad
    canvas = Image.new("L", (width, height), 255)
    ink = ImageDraw.Draw(canvas)
    ink.text((text_w + pad, 4), "ancestor x0-hat", fill=0)
    ink.text((text_w + 2 * pad + h + gap, 4), "its copies, each denoised to the end", fill=0)
    for r, (title, x0, finals, spread) in enumerate(table):
        y = head + r * (h + pad)
        ink.text((pad, y + h // 2 - 12), title, fill=0)
        ink.text((pad, y + h // 2 + 2), f"mean pairwise distance {spread:.2f}", fill=0)
        for c, img in enumerate([x0, *finals]):
            a = ((img[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            tile = Image.fromarray(a.numpy(), mode="L").resize((h, h), Image.NEAREST)
            canvas.paste(tile, (text_w + pad + c * (h + pad) + (gap if c else 0), y))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "flow_ode_vs_sde.png"))
    ap.add_argument("--label", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--at", type=int, default=8, help="the step at which the particle is copied")
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--diffusion", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    table = rows(args.label, args.steps, args.at, args.copies, args.diffusion, args.seed)
    for title, _, _, spread in table:
        print(f"{title:<34} mean pairwise L2 distance between copies: {spread:.4f}")
    draw(table, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
