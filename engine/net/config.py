"""Network configuration, read from the authors' yaml schema (`moebius.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR = Path(__file__).parent / "configs"

# Only this network family exists; refuse anything else rather than build it wrongly.
MODEL_TYPE = "UNet2DLambdaDWConvMixFFNConditionModel_prune_down_mid_up_block_8x8"
DOWN_BLOCK = "DWMixTFDownBlock2D"
UP_BLOCK = "DWMixTFUpBlock2D"


@dataclass(frozen=True)
class MoebiusConfig:
    image_size: int = 512  # the only pixel size the network accepts (square)
    in_channels: int = 9  # noisy latents (4) + mask (1) + masked-image latents (4)
    out_channels: int = 4
    block_out_channels: tuple[int, ...] = (320, 640, 1280)
    heads: int = 8  # the yaml calls this `attention_head_dim`
    cross_attention_dim: int = 768
    encoder_hid_dim: int = 3072
    mix_mlp_ratio: float = 2.5
    num_ids: int = 20  # rows of the ID embedding table: 0..9 conditional, 10..19 unconditional
    latent_factor: int = 8  # VAE downsampling
    layers_per_down_block: int = 2
    layers_per_up_block: int = 3
    self_lambda_size: int = 15  # r of the local self-lambda

    @property
    def sample_size(self) -> int:
        """Latent side length."""
        return self.image_size // self.latent_factor

    @property
    def tokens_per_row(self) -> int:
        """ID tokens per sequence (half the table)."""
        return self.num_ids // 2

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.block_out_channels[0]

    def level_size(self, level: int) -> int:
        """Spatial side of the latent grid at a UNet level (64, 32, 16 for the full model)."""
        return self.sample_size // (2**level)

    @classmethod
    def from_yaml(cls, path: str | Path) -> MoebiusConfig:
        import yaml

        raw = yaml.safe_load(Path(path).read_text())
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict) -> MoebiusConfig:
        model = raw["model"]
        if model.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ValueError(f"unsupported model_type {model.get('model_type')!r}")
        if any(b != DOWN_BLOCK for b in model["down_block_types"]) or any(
            b != UP_BLOCK for b in model["up_block_types"]
        ):
            raise ValueError("only DWMixTF down/up blocks are supported")
        if model.get("mid_block_type") is not None:
            raise ValueError("this network has no mid block")
        lambdas = model.get("use_lambda_cross_attn", True), model.get("use_local_self_attn", True)
        if not all(lambdas):
            raise ValueError("only the lambda-layer variant is supported")
        return cls(
            image_size=int(raw["data"]["image_size"]),
            in_channels=int(model["in_channels"]),
            out_channels=int(model["out_channels"]),
            block_out_channels=tuple(int(c) for c in model["block_out_channels"]),
            heads=int(model["attention_head_dim"]),
            cross_attention_dim=int(model["cross_attention_dim"]),
            encoder_hid_dim=int(model["encoder_hid_dim"]),
            mix_mlp_ratio=float(model.get("mix_mlp_ratio", 2.5)),
            latent_factor=int(raw.get("vae", {}).get("downsample_ratio", 8)),
        )

    @classmethod
    def full(cls) -> MoebiusConfig:
        return cls.from_yaml(CONFIG_DIR / "moebius.yaml")

    @classmethod
    def tiny(cls) -> MoebiusConfig:
        return cls.from_yaml(CONFIG_DIR / "tiny.yaml")
