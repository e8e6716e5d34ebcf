"""Loading the image domains' models and verifiers from their catalog entries.

The catalog (``backends.catalog``) says what an id is and whether it is available here (``image_entry``,
``t2i_entry``); this module builds the object: the digits' diffusion model, a classifier or built-in reward,
a text-to-image pipeline, a CLIP, aesthetic, preference-model or VLM verifier. Loaded models are kept for the
process.
"""
from __future__ import annotations

import functools

from backends.catalog import guarded_load, image_entry, t2i_entry


def _load(entry_of, build, model_id: str, kind: str):
    """``build(model_id)``, cached, once the catalog (``entry_of``) has said the id is a usable ``kind`` here."""
    entry_of(model_id, kind)
    return guarded_load(model_id, build, model_id)


@functools.lru_cache(maxsize=4)
def _load_image_model(model_id: str):
    from backends.image.diffusion import DiffusionModel
    return DiffusionModel(image_entry(model_id, "policy").source, name=model_id)


@functools.lru_cache(maxsize=8)
def _load_image_verifier(model_id: str):
    from backends.image.verifiers import AttributeReward, ClassifierVerifier
    entry = image_entry(model_id, "verifier")
    if entry.source.startswith("builtin:"):
        return AttributeReward(entry.source.split(":", 1)[1], name=entry.id)
    return ClassifierVerifier(entry.source, name=entry.id)


def load_image_model(model_id: str):
    """The diffusion model of the image domain (a local diffusers folder with unet/ and scheduler/)."""
    return _load(image_entry, _load_image_model, model_id, "policy")


def load_image_verifier(model_id: str):
    """An image verifier or judge: a classifier folder (safetensors + config.json) or a built-in reward."""
    return _load(image_entry, _load_image_verifier, model_id, "verifier")


@functools.lru_cache(maxsize=2)
def _load_t2i_model(model_id: str):
    from backends.image.t2i_pipelines import Pipeline
    return Pipeline(t2i_entry(model_id, "policy").source, name=model_id)


@functools.lru_cache(maxsize=8)
def _load_t2i_verifier(model_id: str):
    from backends.image import t2i_verifiers as tv
    entry = t2i_entry(model_id, "verifier")
    loaders = {"clip": tv.CLIPScore, "aesthetic": tv.AestheticScore, "vlm": tv.VLMJudge,
               "imagereward": tv.ImageRewardScore, "hpsv2": tv.HPSScore}
    return loaders[entry.family](entry.source, name=model_id)


def load_t2i_model(model_id: str):
    """A text-to-image pipeline (hub id or local diffusers folder), ready to be stepped."""
    return _load(t2i_entry, _load_t2i_model, model_id, "policy")


def load_t2i_verifier(model_id: str):
    """A text-to-image verifier: CLIP score, aesthetic, VLM judge, ImageReward or HPS (backends.image.t2i_verifiers)."""
    return _load(t2i_entry, _load_t2i_verifier, model_id, "verifier")
