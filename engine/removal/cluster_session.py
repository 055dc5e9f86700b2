"""The cluster batch's connection to Ray (engine/removal/cluster.py): joined or started
for the run, and left as it was found; the pipeline's rows; the end-of-run sweep."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from engine.errors import MoebiusError

log = logging.getLogger(__name__)

LOCAL = "local"  # --cluster local: start a Ray instance on this machine for the run
INSTALL_HINT = "pip install 'moebius-studio[cluster]'"


class RaySession:
    """This run's connection to Ray: started or joined, and left as found."""

    def __init__(self, ray, started: bool, env: dict[str, str]):
        self.ray = ray
        self.started = started
        self.env = env
        self._rows = None
        self._quiet: int | None = None

    @classmethod
    def open(cls, address: str) -> RaySession:
        try:
            import ray
        except ImportError:
            raise MoebiusError(f"--cluster needs Ray, which is not installed: "
                               f"{INSTALL_HINT}") from None
        env = {k: os.environ[k] for k in ("MOEBIUS_MODELS_DIR",) if os.environ.get(k)}
        if ray.is_initialized():  # the caller connected already (a notebook, the tests)
            return cls(ray, False, env)
        kwargs: dict = {"include_dashboard": False, "logging_level": logging.WARNING}
        if address == LOCAL:
            # A local instance runs this very code: its workers import it from here.
            root = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
        try:
            ray.init(address=address, **kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray's errors vary by address kind
            raise MoebiusError(f"cannot connect to the Ray cluster at {address}: "
                               f"{exc}") from exc
        return cls(ray, True, env)

    def resources(self) -> dict[str, float]:
        return dict(self.ray.cluster_resources())

    def remote_env(self) -> dict:
        return {"runtime_env": {"env_vars": self.env}} if self.env else {}

    def start(self, ds):
        # Ray Data's own notes (execution plans, timings) only with -v: our bar says it.
        self._quiet = _quiet_ray_data()
        self._rows = iter(ds.iter_rows())
        return self._rows

    def close_work(self) -> None:
        """Stop the pipeline: its tasks are cancelled and its actors killed."""
        rows, self._rows = self._rows, None
        close = getattr(rows, "close", None)
        if close is not None:
            close()
        if self._quiet is not None:
            logging.getLogger("ray.data").setLevel(self._quiet)
            self._quiet = None

    def sweep(self, folders: list[str]) -> None:
        """Each live node removes its own dead processes' temporary files (best effort)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from engine.removal.cluster_stages import sweep_temporaries

        try:
            sweep = self.ray.remote(num_cpus=0)(sweep_temporaries)
            refs = [sweep.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
                        node["NodeID"], soft=False), **self.remote_env()).remote(folders)
                    for node in self.ray.nodes() if node.get("Alive")]
            removed = sum(self.ray.get(refs, timeout=60))
            if removed:
                log.info("removed %d temporary file(s) of dead workers", removed)
        except Exception as exc:  # noqa: BLE001 - the next run removes them too
            log.warning("could not remove the dead workers' temporary files: %s", exc)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _quiet_ray_data() -> int | None:
    """Silence Ray Data's own log unless details were asked for (-v): its notes (plans,
    timings) and its tracebacks for a photo lost after its retries, which the report and
    the command line state in one line. Its failures still raise. Returns the level to
    restore."""
    if logging.getLogger().getEffectiveLevel() <= logging.INFO:
        return None
    ray_data = logging.getLogger("ray.data")
    level = ray_data.level
    ray_data.setLevel(logging.CRITICAL)
    return level
