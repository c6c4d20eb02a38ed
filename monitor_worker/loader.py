"""From the config to a running :class:`MonitorService`, and again when the reference
changes.

The profile is built in two spawned children (:mod:`monitor_worker.child`), one after the
other: the first reads the reference with pyarrow and hands back the profile (numpy arrays
and plain objects) and what its models are fitted on; the second fits the outlier and
estimation models with scikit-learn (:mod:`monitor_worker.profile_fits`). So pyarrow and
scikit-learn are never resident in one process, and the serving process imports neither.

A reference is checked for new contents every ``data.reference.reloadInterval``: a file
(a mounted ConfigMap, which the kubelet replaces behind a symlink, or a file on a PVC) by its
identity, size and time; a URL by a conditional GET with its ETag. New contents give a new
profile and a fresh window (figures restart; totals and the labels still awaited carry over);
a new reference that cannot be used leaves the old one serving and says why."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from mm_api.worker_config import WorkerConfig

from .child import ChildDied, in_child
from .profile import Profile
from .profile_fits import ProfileFits
from .reference_files import ReferenceDataError, ReferenceFile, locate
from .service import MonitorService
from .store import open_store

log = logging.getLogger(__name__)


@dataclass
class ReferenceState:
    """What /v1/status and the metrics say about the reference in use."""

    version: str | None = None
    loaded_at: float | None = None
    rows: int | None = None
    sampled_rows: int | None = None
    reloads: int = 0
    reload_failures: int = 0
    last_error: str | None = None


def _profile_of(
    config: WorkerConfig, file: ReferenceFile | None
) -> tuple[Profile, ProfileFits, int, int]:
    """Runs in the first child: (the profile without the models scikit-learn fits, what they
    are fitted on, rows of the file, rows sampled). Exceptions come back as ReferenceDataError
    or ValueError with their message (some of ours do not pickle)."""
    from .profile import profile_and_fits
    from .reference import read_file, release_memory

    try:
        reference = None
        if file is not None:
            assert config.data.reference is not None
            reference = read_file(file, config.data.reference.sample_rows)
        profile, fits = profile_and_fits(config, reference)
    except ReferenceDataError as e:
        raise ReferenceDataError(str(e)) from None
    except ValueError as e:
        raise ValueError(str(e)) from None
    if profile.rich is not None:
        profile.rich.embeddings = None  # a model and a thread: the parent loads its own
    rows = 0 if reference is None else (reference.total_rows or reference.n_rows)
    sampled = 0 if reference is None else reference.n_rows
    del reference  # the sample's rows, not held beside the pickled profile (~35 MB at 200k)
    release_memory()
    return profile, fits, rows, sampled


def _fitted(fits: ProfileFits) -> tuple[Any, Any]:
    """Runs in the second child, which never imports pyarrow: the fitted models. Exceptions
    come back as ValueError with their message (scikit-learn's may not pickle)."""
    try:
        return fits.run()
    except ValueError as e:
        raise ValueError(str(e)) from None


class Loader:
    """Builds the service: ``loader()`` the first time (retried by the server until it
    works), :meth:`reload` when the reference has new contents. ``spawn``: build the profile
    in a child process (False: in this one, as ``monitor-worker --check`` does)."""

    def __init__(self, config: WorkerConfig, spawn: bool = True) -> None:
        self.config = config
        self.spawn = spawn
        self.reference = ReferenceState()
        self._profile: Profile | None = None

    def __call__(self) -> MonitorService:
        if self._profile is None:
            file = self._locate()
            profile, rows, sampled = self._build(file)
            self._profile = profile
            self._loaded(file, rows, sampled)
        return self._service(self._profile)

    def reload(self) -> MonitorService | None:
        """A service on the reference's new contents, or None when they have not changed.
        Raises ReferenceDataError or ValueError when the new contents cannot be used."""
        source = self.config.data.reference
        if source is None or self._profile is None:
            return None
        try:
            file = locate(source)
            if file.version == self.reference.version:
                return None
            log.info("reference %s changed (%s): profiling it again", file.where, file.version)
            profile, rows, sampled = self._build(file)
        except (ReferenceDataError, ValueError) as e:
            self.reference.reload_failures += 1
            self.reference.last_error = str(e)
            raise
        # The service first: a store that does not answer (StoreUnavailable) leaves nothing
        # recorded, so the next check tries this version again.
        service = self._service(profile)
        self._profile = profile
        self._loaded(file, rows, sampled)
        self.reference.reloads += 1
        return service

    def _locate(self) -> ReferenceFile | None:
        source = self.config.data.reference
        return None if source is None else locate(source)

    def _build(self, file: ReferenceFile | None) -> tuple[Profile, int, int]:
        start = time.monotonic()
        try:
            if self.spawn:
                profile, fits, rows, sampled = in_child(_profile_of, self.config, file)
            else:
                profile, fits, rows, sampled = _profile_of(self.config, file)
            if fits:  # the reading child has ended: scikit-learn's child starts without it
                fits.apply(profile, in_child(_fitted, fits) if self.spawn else _fitted(fits))
        except ChildDied as e:
            raise ReferenceDataError(f"profiling the reference failed: {e}") from None
        if profile.rich is not None and profile.rich.embedded:
            from .rich.profile import load_text_embeddings

            profile.rich.embeddings = load_text_embeddings(
                self.config, self.config.drift.embedding.sample_size
            )
        log.info("profile ready in %.2fs", time.monotonic() - start)
        return profile, rows, sampled

    def _loaded(self, file: ReferenceFile | None, rows: int, sampled: int) -> None:
        self.reference.rows, self.reference.sampled_rows = rows, sampled
        self.reference.version = None if file is None else file.version
        self.reference.loaded_at = time.time()
        self.reference.last_error = None

    def _service(self, profile: Profile) -> MonitorService:
        store = open_store(self.config, profile) if self.config.store is not None else None
        service = MonitorService(self.config, profile, store=store)
        service.reference = self.reference
        return service
