"""Tiny random text-to-image pipelines and CLIP verifiers for tests, built from configs and saved with
``save_pretrained`` in the folder layouts a hub id has (``model_index.json`` + one folder per component).

Tokenizers are CLIP BPE tokenizers over a character vocabulary written here (no merges): every word splits
into letters, which is all a random text encoder needs; FLUX's T5 tokenizer is a unigram model over the same
characters. Nothing is downloaded.
"""
from __future__ import annotations

import string
from pathlib import Path

MAX_LEN = 77  # CLIP's context length; diffusers pipelines pad prompts to the tokenizer's model_max_length


def tokenizer():
    from transformers import CLIPTokenizer
    chars = list(string.ascii_lowercase + string.digits + ".,'-!?")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_LEN)


def text_config(hidden: int = 16, projection: int = 8):
    from transformers import CLIPTextConfig
    return CLIPTextConfig(vocab_size=len(tokenizer()), hidden_size=hidden, intermediate_size=2 * hidden,
                          num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=MAX_LEN,
                          projection_dim=projection, bos_token_id=0, eos_token_id=1, pad_token_id=1)


def vae(latent_channels: int = 4, **kw):
    """An AutoencoderKL with one downsampling: 16x16 images <-> 8x8 latents."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=latent_channels, block_out_channels=(8, 8),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=4, sample_size=16, **kw)


def sd_pipeline(seed: int = 0):
    """SD 1.5 style: UNet2DConditionModel + AutoencoderKL + CLIPTextModel + CLIPTokenizer + DDIM scheduler."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2, norm_num_groups=4)
    scheduler = DDIMScheduler(num_train_timesteps=100, beta_start=0.00085, beta_end=0.012,
                              beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(vae=vae(), text_encoder=CLIPTextModel(text_config()), tokenizer=tokenizer(),
                                   unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def sdxl_pipeline(seed: int = 0):
    """SDXL style: a UNet with text-time added conditions, CLIP + CLIP-with-projection text encoders (their
    hidden states concatenated), and SDXL's Euler scheduler (our loop builds DDIM/DDPM from its config)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=2, norm_num_groups=4, use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=4,
                                projection_class_embeddings_input_dim=4 * 6 + 8)
    scheduler = EulerDiscreteScheduler(num_train_timesteps=100, beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1)
    return StableDiffusionXLPipeline(vae=vae(), text_encoder=CLIPTextModel(text_config()), tokenizer=tokenizer(),
                                     text_encoder_2=CLIPTextModelWithProjection(text_config()),
                                     tokenizer_2=tokenizer(), unet=unet, scheduler=scheduler)


def sd3_pipeline(seed: int = 0):
    """SD3 style (flow matching): SD3Transformer2DModel + AutoencoderKL (with shift) + two CLIP text encoders
    with projection (no T5: SD3 then feeds zeros in its place) + FlowMatchEulerDiscreteScheduler."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(sample_size=8, patch_size=2, in_channels=4, out_channels=4, num_layers=1,
                                        attention_head_dim=8, num_attention_heads=2, joint_attention_dim=32,
                                        caption_projection_dim=16, pooled_projection_dim=16, pos_embed_max_size=16)
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae(shift_factor=0.0609, scaling_factor=1.5305, use_quant_conv=False, use_post_quant_conv=False),
        text_encoder=CLIPTextModelWithProjection(text_config()), tokenizer=tokenizer(),
        text_encoder_2=CLIPTextModelWithProjection(text_config()), tokenizer_2=tokenizer(),
        text_encoder_3=None, tokenizer_3=None)


def t5_tokenizer():
    """A T5 (unigram) tokenizer over single characters, no sentencepiece file needed."""
    from transformers import T5Tokenizer
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(c, -2.0) for c in string.ascii_letters + string.digits + ".,'-!?\""]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def flux_pipeline(seed: int = 0):
    """FLUX style: FluxTransformer2DModel (guidance embedding, packed 2x2 latents) + AutoencoderKL (with shift)
    + CLIPTextModel + T5EncoderModel + FlowMatchEulerDiscreteScheduler with resolution-dependent shift."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel
    torch.manual_seed(seed)
    t5 = t5_tokenizer()
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=16, guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    encoder = T5EncoderModel(T5Config(vocab_size=len(t5), d_model=32, d_ff=64, d_kv=8, num_layers=1, num_heads=2,
                                      relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1))
    return FluxPipeline(transformer=transformer, scheduler=scheduler,
                        vae=vae(shift_factor=0.1159, scaling_factor=0.3611, use_quant_conv=False,
                                use_post_quant_conv=False),
                        text_encoder=CLIPTextModel(text_config()), tokenizer=tokenizer(),
                        text_encoder_2=encoder, tokenizer_2=t5)


def clip_model(seed: int = 0):
    """A tiny CLIPModel (32x32 images, 8x8 patches) with its processor (the character tokenizer)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPVisionConfig
    torch.manual_seed(seed)
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8, projection_dim=8)
    config = CLIPConfig(text_config=text_config().to_dict(), vision_config=vision.to_dict(), projection_dim=8)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer())
    return CLIPModel(config).eval(), processor


VLM_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}{% if c['type'] == 'image' %}"
                "<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}"
                "{% if add_generation_prompt %}assistant: {% endif %}")


def vlm(folder: Path, seed: int = 0) -> Path:
    """A tiny random LLaVA (CLIP vision tower + Llama) with a character tokenizer and a chat template."""
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration, LlavaProcessor)

    from tests.conftest import build_char_tokenizer
    tok = build_char_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_id = tok.convert_tokens_to_ids("<image>")
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                  crop_size={"height": 32, "width": 32}),
                               tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1,  # the CLS token, dropped by "default"
                               chat_template=VLM_TEMPLATE)
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                              image_size=32, patch_size=8)
    text = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024, pad_token_id=0,
                       eos_token_id=1, bos_token_id=1)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(LlavaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                                                      image_token_index=image_id, vision_feature_layer=-1,
                                                      vision_feature_select_strategy="default")).eval()
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = 0, 1
    model.save_pretrained(str(folder))
    processor.save_pretrained(str(folder))
    return folder


def build(root: Path) -> dict[str, Path]:
    """Write the four pipelines, a CLIP folder, an aesthetic folder (random head on that CLIP) and a VLM."""
    import torch
    paths = {"sd": root / "tiny-sd", "sdxl": root / "tiny-sdxl", "sd3": root / "tiny-sd3", "flux": root / "tiny-flux",
             "clip": root / "tiny-clip", "aesthetic": root / "tiny-aesthetic", "vlm": vlm(root / "tiny-vlm")}
    sd_pipeline().save_pretrained(str(paths["sd"]))
    sdxl_pipeline().save_pretrained(str(paths["sdxl"]))
    sd3_pipeline().save_pretrained(str(paths["sd3"]))
    flux_pipeline().save_pretrained(str(paths["flux"]))
    model, processor = clip_model()
    model.save_pretrained(str(paths["clip"]))
    processor.save_pretrained(str(paths["clip"]))
    from backends.image.t2i_verifiers import AestheticHead, save_aesthetic
    torch.manual_seed(3)
    save_aesthetic(paths["aesthetic"], AestheticHead(model.config.projection_dim), clip=str(paths["clip"]))
    return paths
