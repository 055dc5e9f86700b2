"""Which Moebius fine-tune suits a photo, from the faces in it (no download needed).

The rule compares what the photo shows with what each fine-tune was trained on:

- *Portraits (CelebA-HQ)* learned from CelebA-HQ: one large, aligned face filling most of
  a square crop. Suggested for **one face at least CLOSE_UP wide** (a share of the
  photo's short side): a close-up.
- *Faces (FFHQ)* learned from FFHQ: aligned faces in wider crops (hair, shoulders,
  background). Suggested when **faces dominate** (the largest is at least PORTRAIT wide)
  but the photo is not a single close-up: head-and-shoulders shots, or several people.
- Otherwise (no face, or only small ones: a street, a landscape with people in it) the
  scene fine-tune *Places* stays the right choice.

`suggest(pixels)` returns a `Suggestion` with the variant and a sentence saying why.
`AUTO` is the `--model auto` of the command line: pick per photo with this rule.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from engine.events import CancelToken, Done, JobEvent
from engine.removal.faces import Face, detect_faces
from engine.removal.settings import EngineKind, RemovalSettings
from engine.weights import zoo

log = logging.getLogger(__name__)

AUTO = "auto"
PORTRAIT = 0.15  # largest face / short side from which faces dominate the picture
CLOSE_UP = 0.35  # one face at least this wide: a close-up like CelebA-HQ's crops
SCENE_VARIANTS = ("ft_places2", "pretrained")  # fine-tunes not made for faces
FACE_VARIANTS = ("ft_celebahq", "ft_ffhq")
_CLOSE_UP_VARIANT, _FACES_VARIANT, _SCENE_VARIANT = "ft_celebahq", "ft_ffhq", zoo.DEFAULT_VARIANT


@dataclass(frozen=True)
class Suggestion:
    variant: str  # the fine-tune that suits the photo (a zoo.VARIANTS id)
    reason: str  # one sentence: what was found and why that fine-tune
    faces: tuple[Face, ...] = ()

    @property
    def name(self) -> str:
        return zoo.VARIANTS[self.variant].name

    @property
    def is_portrait(self) -> bool:
        return self.variant in FACE_VARIANTS

    def improves_on(self, current: str) -> bool:
        """True when `current` (an engine choice) is a scene model and faces dominate:
        then the app offers to switch. Quick is a deliberate choice and never second-guessed."""
        return current in SCENE_VARIANTS and self.is_portrait


def choose_variant(faces: list[Face] | tuple[Face, ...]) -> Suggestion:
    """The rule (see the module's docstring) applied to detected faces, largest first."""
    faces = tuple(sorted(faces, key=lambda f: f.size, reverse=True))
    if not faces:
        return Suggestion(_SCENE_VARIANT, "no face found: a scene, so Places fits best.")
    big = [f for f in faces if f.size >= PORTRAIT]
    largest = f"spanning {faces[0].size:.0%} of the picture's short side"
    if not big:
        return Suggestion(_SCENE_VARIANT, f"{_count(faces)}, the largest {largest}: too small "
                          f"to dominate (under {PORTRAIT:.0%}), so Places fits best.", faces)
    if len(big) == 1 and big[0].size >= CLOSE_UP:
        return Suggestion(_CLOSE_UP_VARIANT, f"one face {largest}: a close-up portrait, "
                          "like the single large aligned faces CelebA-HQ was trained on.", faces)
    if len(big) == 1:
        why = f"one face {largest}: a head-and-shoulders shot, like FFHQ's wider face crops."
    else:
        why = f"{len(big)} faces, the largest {largest}: FFHQ was trained on faces in wider crops."
    return Suggestion(_FACES_VARIANT, why, faces)


def suggest(pixels: np.ndarray, cancel: CancelToken | None = None) -> Suggestion:
    """Detect faces in `pixels` ([H, W(, C)], uint8 or uint16) and apply the rule."""
    return choose_variant(detect_faces(pixels, cancel))


def suggest_events(pixels: np.ndarray, cancel: CancelToken, host=None) -> Iterator[JobEvent]:
    """The suggestion as a job for the app's worker: Done(Suggestion)."""
    yield Done(suggest(pixels, cancel))


def resolve_auto(settings: RemovalSettings,
                 pixels: np.ndarray) -> tuple[RemovalSettings, Suggestion | None]:
    """Settings with `variant=AUTO` made concrete for this photo (else unchanged)."""
    if settings.variant != AUTO:
        return settings, None
    if settings.engine is EngineKind.QUICK:  # the variant does not matter: skip detection
        return replace(settings, variant=zoo.DEFAULT_VARIANT), None
    found = suggest(pixels)
    log.info("--model auto: %s (%s)", found.variant, found.reason)
    return replace(settings, variant=found.variant), found


def _count(faces: tuple[Face, ...]) -> str:
    return "one face" if len(faces) == 1 else f"{len(faces)} faces"
