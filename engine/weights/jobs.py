"""Weight downloads and imports as job generators, for the app's background worker.

`WeightStore.download` reports progress through a callback; a worker job yields events.
The transfer therefore runs on a helper thread that feeds a queue, and the job drains it,
so progress, cancel and errors reach the GUI as ordinary JobEvents.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from engine.errors import Cancelled, MoebiusError
from engine.events import CancelToken, Done, Failed, JobEvent, Progress
from engine.weights.store import WeightStore


def download_events(store: WeightStore, variant: str, cancel: CancelToken) -> Iterator[JobEvent]:
    """Progress(stage="downloading", step=MB done, total=MB), then Done(state) or Failed."""
    events: queue.Queue = queue.Queue()

    def progress(done: int, total: int) -> None:
        mb, total_mb = done // 1_000_000, max(total // 1_000_000, 1)
        fraction = done / total if total else 0.0
        events.put(Progress("downloading", mb, total_mb, fraction,
                            f"Downloading… {mb} of {total_mb} MB"))

    def transfer() -> None:
        try:
            events.put(Done(store.download(variant, progress=progress, cancel=cancel)))
        except Cancelled:
            events.put(Failed("Download cancelled; it will resume next time.", cancelled=True))
        except MoebiusError as exc:
            events.put(Failed(str(exc), error=exc))
        except Exception as exc:  # noqa: BLE001 - shown to the user, never kills the worker
            events.put(Failed(f"Unexpected error while downloading: {exc}"))

    thread = threading.Thread(target=transfer, name="moebius-download", daemon=True)
    thread.start()
    while True:
        event = events.get()
        yield event
        if isinstance(event, (Done, Failed)):
            thread.join()
            return


def import_events(store: WeightStore, variant: str, path,
                  cancel: CancelToken) -> Iterator[JobEvent]:
    """Import (copy or hard-link, then verify by loading) on the worker thread.

    `path` is a file, a folder or a list of files. When they turn out to be the shared
    autoencoder's, they are installed as the autoencoder whichever model was asked for
    (the person picked the files they had); Done carries the resulting ModelState."""
    yield Progress("importing", 0, 1, 0.0, "Checking the files…")
    try:
        target = "vae" if store.identify(path) == "vae" else variant
        yield Done(store.import_weights(target, path))
    except MoebiusError as exc:
        yield Failed(str(exc), error=exc)


def verify_events(store: WeightStore, names: list[str],
                  cancel: CancelToken) -> Iterator[JobEvent]:
    """Re-check installed models one by one; Done carries their new ModelStates."""
    states = []
    try:
        for i, name in enumerate(names):
            cancel.raise_if_cancelled()
            entry = store.state(name).entry
            yield Progress("verifying", i, len(names), i / len(names),
                           f"Checking {entry.name}…")
            states.append(store.verify(name))
    except Cancelled:
        yield Failed("Check cancelled.", cancelled=True)
        return
    except MoebiusError as exc:
        yield Failed(str(exc), error=exc)
        return
    yield Done(states)


def remove_events(store: WeightStore, name: str, cancel: CancelToken) -> Iterator[JobEvent]:
    """Delete a model's files (a large folder can take a moment on slow disks)."""
    yield Progress("removing", 0, 1, 0.0, "Removing…")
    try:
        store.remove(name)
    except (MoebiusError, OSError) as exc:
        yield Failed(f"Could not remove it: {exc}", error=exc if isinstance(exc, MoebiusError)
                     else None)
        return
    yield Done(store.state(name))
