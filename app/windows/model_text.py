"""What the model dialogs say, in plain words: states, sizes, what is missing, what to do.

Pure functions over the engine's `ModelState`s and errors, so the wording is tested
without widgets. The engine's own messages are written for the command line (they name
commands); here only their first line, the explanation, is ever shown, and the ways out
are the app's buttons.
"""

from __future__ import annotations

from html import escape

from engine.errors import (
    Cancelled,
    CheckpointError,
    DiskFull,
    DownloadError,
    HubFileNotFound,
    HubUnreachable,
    IntegrityError,
)
from engine.events import Failed
from engine.weights.state import ModelState, Status
from engine.weights.zoo import ModelEntry

STATUS_WORDS = {
    Status.READY: "ready",
    Status.MISSING: "not installed",
    Status.DOWNLOADING: "partly downloaded",
    Status.DAMAGED: "damaged",
}


def megabytes(n: int) -> str:
    return f"{n / 1e6:,.0f} MB" if n >= 1e6 else f"{n / 1e6:.1f} MB"


def thing(entry: ModelEntry) -> str:
    """How a model is named in a sentence."""
    return "the shared autoencoder" if entry.kind == "vae" else f"the {entry.name} network"


def sentence(text: str) -> str:
    """`text` with its first letter capitalised (and no other letter changed)."""
    return text[:1].upper() + text[1:]


def still_to_get(state: ModelState) -> int:
    """Bytes still to download for a model that is not ready (a partial download counts)."""
    if state.status == Status.READY:
        return 0
    return max(state.entry.size - state.partial_bytes, 0)


def state_words(state: ModelState) -> str:
    """A model's state for the manager's State column."""
    words = STATUS_WORDS[state.status]
    if state.status == Status.DOWNLOADING:
        if state.detail == "download in progress":  # this process is downloading it
            words = "downloading…"
        if state.partial_bytes:
            return (f"{words}: {megabytes(state.partial_bytes)} of "
                    f"{megabytes(state.entry.size)}")
        return "downloading…"
    return words


def problem_words(state: ModelState) -> str:
    """Why a model is not ready, without command-line hints ("" when it is ready)."""
    if state.status == Status.READY:
        return ""
    if state.status == Status.MISSING:
        return f"Not on this computer yet ({megabytes(state.entry.size)} to download)."
    if state.status == Status.DOWNLOADING:
        return (f"Partly downloaded: {megabytes(still_to_get(state))} still to get. "
                "Download resumes where it stopped.")
    reason = first_line(state.detail).split("; run:")[0].rstrip(". ")
    return f"Damaged or not checked yet ({reason}). Press Verify, or download it again."


def missing_summary(states: list[ModelState]) -> str:
    """HTML: what a fine-tune still needs before it can run, each with what to get."""
    items = []
    for s in states:
        if s.status == Status.READY:
            continue
        size = megabytes(still_to_get(s))
        extra = " — used by every Moebius model" if s.entry.kind == "vae" else ""
        if s.status == Status.DOWNLOADING and s.partial_bytes:
            how = f"partly downloaded, {size} still to get"
        elif s.status == Status.DAMAGED:
            how = f"damaged, {size} to download again"
        else:
            how = f"{size}"
        items.append(f"<li>{escape(thing(s.entry))} ({how}){extra}</li>")
    return "<ul>" + "".join(items) + "</ul>" if items else ""


def total_to_get(states: list[ModelState]) -> int:
    return sum(still_to_get(s) for s in states)


def manual_download_html(entries: list[ModelEntry]) -> str:
    """Every file's address for downloading by hand, and what to do with the files."""
    parts = []
    for e in entries:
        links = "".join(f'<li><a href="{escape(u)}">{escape(u)}</a></li>' for u in e.urls())
        parts.append(f"<p>{escape(sentence(thing(e)))}:</p><ul>{links}</ul>")
    how = ("<p>Open each address in a web browser (on any computer with internet), then "
           "press <b>Import</b> and choose the downloaded files. The autoencoder's "
           "two files may be chosen together; its weights file alone is enough too.</p>")
    return "".join(parts) + how


def first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else ""


def failure_words(event: Failed, action: str = "download") -> str:
    """A failed download, import or check, explained with what to do next."""
    error, message = event.error, event.message
    if event.cancelled or isinstance(error, Cancelled):
        return ("Download paused. Press Download to continue where it stopped."
                if action == "download" else "Cancelled.")
    if isinstance(error, HubUnreachable):
        return ("Could not download: this computer seems to be offline, or a firewall or "
                "proxy blocks huggingface.co. Connect to the internet and press Download "
                "again (it continues where it stopped), or get the files by hand (below).")
    if isinstance(error, HubFileNotFound):
        return ("The download server no longer has this file where Moebius Studio looks "
                "for it. Get the files by hand (below) if they moved, or try again later.")
    if isinstance(error, IntegrityError):
        return "A file arrived damaged and was deleted. Press Download to try again."
    if isinstance(error, DiskFull):
        sentence = first_line(message).split(". ")[0].rstrip(".")
        return (f"{sentence[:1].upper()}{sentence[1:]}. Free some space, or choose a models "
                "folder on another disk in Edit ▸ Preferences.")
    if isinstance(error, DownloadError):
        return f"Could not download: {first_line(message)}"
    if isinstance(error, CheckpointError):
        return f"These files cannot be used: {first_line(message)}"
    return first_line(message) or "It did not work."
