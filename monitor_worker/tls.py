"""https for the worker: the certificate it serves, chosen among the configured files and
reloaded when they change, so that a rotated Secret needs no restart.

Several pairs may be configured (the operator writes two slots, see docs/kserve.md,
"Rotation"): of the pairs whose files exist and whose certificate is valid now, the one that
became valid last is served. A certificate issued ahead of time (``notBefore`` in the future)
is therefore served from the moment it becomes valid, by which time every client has had the
chance to trust its CA."""

from __future__ import annotations

import datetime as dt
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mm_api.worker_config import CertificateFiles, TlsConfig

log = logging.getLogger(__name__)


class TlsError(RuntimeError):
    """No configured pair can be served; the message names the files."""


@dataclass(frozen=True)
class Candidate:
    files: CertificateFiles
    not_before: float
    not_after: float
    stamp: tuple  # (mtime, size, inode) of both files: a change means reload


def _stamp(path: Path) -> tuple:
    st = os.stat(path)  # follows the ..data symlinks of a mounted Secret
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _candidate(files: CertificateFiles) -> Candidate | None:
    cert, key = Path(files.cert_file), Path(files.key_file)
    try:
        stamp = (_stamp(cert), _stamp(key))
        from cryptography import x509  # only a worker serving https reads certificates

        leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    except FileNotFoundError:
        return None  # an empty slot
    except (OSError, ValueError) as e:
        log.warning("cannot read certificate %s: %s", cert, e)
        return None
    return Candidate(
        files,
        leaf.not_valid_before_utc.timestamp(),
        leaf.not_valid_after_utc.timestamp(),
        stamp,
    )


def choose(candidates: list[Candidate], now: float) -> Candidate | None:
    """The pair to serve at ``now``: valid now and valid since the latest; if none is valid,
    the one expiring last (clients will refuse it, and say why)."""
    valid = [c for c in candidates if c.not_before <= now < c.not_after]
    if valid:
        return max(valid, key=lambda c: c.not_before)
    return max(candidates, key=lambda c: c.not_after, default=None)


def _load(context: ssl.SSLContext, files: CertificateFiles) -> None:
    context.load_cert_chain(files.cert_file, files.key_file)


class ServingCertificate:
    """The worker's server-side SSL context, and the certificate it holds.

    :meth:`refresh` (every few seconds) reloads the chosen pair into the same context when the
    choice or its files changed; connections made afterwards get it, open ones keep theirs.
    A pair that fails to load (a key that does not match, a half-written file) is checked on
    a scratch context first and leaves the served one as it was."""

    def __init__(self, config: TlsConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.served: Candidate | None = None
        if not self.refresh():
            names = ", ".join(c.cert_file for c in config.certificates)
            raise TlsError(f"tls.certificates: no certificate and key can be read ({names})")

    def refresh(self) -> bool:
        """Reload if needed; whether a certificate is being served."""
        candidates = [c for c in map(_candidate, self.config.certificates) if c is not None]
        best = choose(candidates, self.clock())
        if best is None or best == self.served:
            return self.served is not None
        try:
            _load(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH), best.files)
            _load(self.context, best.files)
        except (OSError, ssl.SSLError) as e:
            log.warning("certificate %s not loaded (%s); still serving the previous one",
                        best.files.cert_file, e)  # fmt: skip
            return self.served is not None
        until = dt.datetime.fromtimestamp(best.not_after, dt.UTC).isoformat(timespec="seconds")
        log.info("serving certificate %s (valid until %s)", best.files.cert_file, until)
        self.served = best
        return True
