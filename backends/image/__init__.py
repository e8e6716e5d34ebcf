"""The image domains: a diffusion or flow model searched one denoising step at a time.

``diffusion`` samples a class-conditional UNet (DDIM, DDPM, ``flow`` for the flow ODE and SDE) with replayable
recipes; ``space`` is the search space over latents both image domains share; ``digits`` is the digits domain
(``tiny-digits``, its classifier ``verifiers`` and rewards); ``t2i`` the text-to-image domain over diffusers
pipelines (``t2i_pipelines``) with CLIP, aesthetic, preference-model and VLM verifiers (``t2i_verifiers``) and
its bundled ``prompts/``; ``loaders`` builds any of them from a catalog entry.
"""
