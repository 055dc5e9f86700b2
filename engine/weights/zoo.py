"""The model zoo: which Moebius fine-tunes exist, what they suit, and where they live.

Pure data; importing this module loads nothing heavy. Storage and downloads are in
`engine.weights.store`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from engine.errors import UnknownModel

HUB = "https://huggingface.co"  # used for the manual-download URLs shown to people
REVISION = "main"
MOEBIUS_REPO = "hustvl/Moebius"
VAE_REPO = "hustvl/PixelHacker"
UNET_FILE = "diffusion_pytorch_model.bin"

UNET_BYTES = 905_000_000  # fp32 .bin: 226,041,531 parameters + buffers + pickle framing
VAE_BYTES = 335_000_000


@dataclass(frozen=True)
class ModelEntry:
    id: str  # also the folder name under the models root
    name: str  # what the GUI shows
    description: str  # one line: which photos it suits
    repo: str
    files: tuple[str, ...]  # paths inside the repo
    size: int  # approximate download size in bytes
    kind: str  # "unet" or "vae"

    def urls(self, endpoint: str = HUB) -> list[str]:
        return [resolve_url(self.repo, f, endpoint) for f in self.files]


def resolve_url(repo: str, path: str, endpoint: str = HUB) -> str:
    """The hub's download address of a file (the same scheme huggingface_hub uses)."""
    return f"{endpoint.rstrip('/')}/{repo}/resolve/{quote(REVISION, safe='')}/{quote(path)}"


def _unet(id: str, name: str, description: str) -> ModelEntry:
    return ModelEntry(
        id, name, description, MOEBIUS_REPO, (f"{id}/{UNET_FILE}",), UNET_BYTES, "unet"
    )


VARIANTS: dict[str, ModelEntry] = {
    e.id: e
    for e in (
        _unet("pretrained", "General", "Any kind of photo; the base model before fine-tuning."),
        _unet(
            "ft_places2",
            "Places (scenes)",
            "Scenes, landscapes, streets and buildings; the best choice for most photos.",
        ),
        _unet(
            "ft_celebahq",
            "Portraits (CelebA-HQ)",
            "Close-up portraits where a face fills most of the frame.",
        ),
        _unet(
            "ft_ffhq",
            "Faces (FFHQ)",
            "Photos of people and faces, including wider head-and-shoulders shots.",
        ),
    )
}

VAE = ModelEntry(
    "vae",
    "Autoencoder (shared)",
    "Turns photos into latents and back; every Moebius variant needs it.",
    VAE_REPO,
    ("vae/config.json", "vae/diffusion_pytorch_model.bin"),
    VAE_BYTES,
    "vae",
)

DEFAULT_VARIANT = "ft_places2"

ALIASES = {
    "general": "pretrained",
    "base": "pretrained",
    "places2": "ft_places2",
    "places": "ft_places2",
    "celebahq": "ft_celebahq",
    "celeba": "ft_celebahq",
    "ffhq": "ft_ffhq",
}


# The short name the command line shows for each variant (--model takes it).
ALIAS_OF = {"pretrained": "general", "ft_places2": "places2", "ft_celebahq": "celebahq",
            "ft_ffhq": "ffhq"}


def resolve(name: str) -> ModelEntry:
    """The entry for a variant id, an alias or "vae" (any case); UnknownModel otherwise."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key == VAE.id:
        return VAE
    if key in VARIANTS:
        return VARIANTS[key]
    choices = ", ".join([*VARIANTS, *ALIASES, VAE.id])
    raise UnknownModel(f"unknown model {name!r}; choose one of: {choices}")


def entries() -> list[ModelEntry]:
    """Every downloadable item: the four variants, then the shared VAE."""
    return [*VARIANTS.values(), VAE]
