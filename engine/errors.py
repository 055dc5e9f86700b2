"""Errors the engine reports to people. Each message says what went wrong and what to do."""

from __future__ import annotations


class MoebiusError(Exception):
    """Base class: anything the GUI or CLI should show as a message, not a traceback."""


class CheckpointError(MoebiusError):
    def __init__(self, message: str, missing=(), unexpected=(), misshaped=()):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.misshaped = list(misshaped)


class ImageFileError(MoebiusError):
    """An image could not be read or written."""


class MaskError(MoebiusError):
    """The mask does not fit the image, or is empty."""


class WeightsMissing(MoebiusError):
    """A model's weights are not installed yet."""


class Cancelled(MoebiusError):
    """The job was cancelled by the user; nothing was changed."""


class UnknownModel(MoebiusError):
    """A model name that is not in the zoo (`engine.weights.zoo`)."""


class DownloadError(MoebiusError):
    """Weights could not be downloaded; the message says how to get them by hand."""


class HubUnreachable(DownloadError):
    """No answer from the model server: offline, DNS failure, timeout or server error."""


class HubFileNotFound(DownloadError):
    """The server answered, but the file (or its repository) does not exist there."""


class IntegrityError(DownloadError):
    """A downloaded file's size or checksum differs from what the server announced."""


class DiskFull(MoebiusError):
    """Not enough free disk space to store the weights."""


class SettingsError(MoebiusError):
    """A removal setting is out of range (steps, guidance, seed, ...)."""


class DeviceUnavailable(MoebiusError):
    """The chosen device (cuda, mps) does not exist or cannot be used on this machine."""


class MaskTooLarge(MaskError):
    """A mask covers more than half of its photo: probably the other black/white convention,
    an all-white image, or the photo itself. Such a mask is used only once confirmed."""

    def __init__(self, message: str, share: float):
        super().__init__(message)
        self.share = share
