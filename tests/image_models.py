"""Tiny random image models for tests: an 8x8 class-conditional UNet with its scheduler config, and two
random classifiers (search verifier and judge) in the folder layouts the catalog loads."""
from __future__ import annotations

from pathlib import Path

SCHEDULER = dict(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                 clip_sample=True, clip_sample_range=1.0, timestep_spacing="trailing")


def tiny_unet(seed: int = 0):
    import torch
    from diffusers import UNet2DModel
    torch.manual_seed(seed)
    return UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       num_class_embeds=11, norm_num_groups=4)


def tiny_model():
    """An in-memory ``DiffusionModel`` over a random tiny UNet."""
    from backends.image.diffusion import DiffusionModel
    return DiffusionModel.from_parts(tiny_unet(), SCHEDULER, name="tiny-random")


def build(root: Path) -> dict[str, Path]:
    """Write the tiny UNet (diffusers folder), a random SmallCNN verifier and a random JudgeNet judge."""
    import torch
    from diffusers import DDPMScheduler

    from backends.image import verifiers as iv
    unet_dir = root / "tiny-unet"
    tiny_unet().save_pretrained(str(unet_dir / "unet"))
    DDPMScheduler(**SCHEDULER).save_pretrained(str(unet_dir / "scheduler"))
    torch.manual_seed(1)
    iv.save(iv.SmallCNN(size=8), root / "clf", {"architecture": "SmallCNN", "kwargs": {"size": 8}, "size": 8})
    torch.manual_seed(2)
    judge = iv.JudgeNet(size=8).eval()
    iv.save(judge, root / "judge", {"architecture": "JudgeNet", "kwargs": {"size": 8}, "size": 8})
    return {"model": unet_dir, "verifier": root / "clf", "judge": root / "judge"}
