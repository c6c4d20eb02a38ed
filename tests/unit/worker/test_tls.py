"""The worker's https: which configured pair it serves, and that a changed file or a pair
becoming valid is picked up without a restart. Real TLS handshakes (Python's ssl over a
socket pair) with certificates made by the operator's own issuer."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from mm_api.worker_config import CertificateFiles, TlsConfig
from mm_operator.certificates import Issued, dns_names, issue
from monitor_worker.tls import ServingCertificate, TlsError

NAMES = dns_names("mm-fraud", "ml")
HOUR = dt.timedelta(hours=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def certificate(valid_since: dt.timedelta, valid_for: dt.timedelta = 24 * HOUR) -> Issued:
    """A certificate valid since ``valid_since`` ago, for ``valid_for``."""
    start = now() - valid_since
    return issue(NAMES, start, start + valid_for)


def write(directory: Path, slot: str, issued: Issued) -> CertificateFiles:
    (directory / f"{slot}.crt").write_text(issued.cert_pem)
    (directory / f"{slot}.key").write_text(issued.key_pem)
    return files(directory, slot)


def files(directory: Path, slot: str) -> CertificateFiles:
    return CertificateFiles(
        cert_file=str(directory / f"{slot}.crt"), key_file=str(directory / f"{slot}.key")
    )


def slots(directory: Path) -> TlsConfig:
    return TlsConfig(certificates=[files(directory, s) for s in ("a", "b")])


def served_serial(server: ssl.SSLContext, ca_pem: str, hostname: str = NAMES[0]) -> int:
    """Handshake as a client trusting only ``ca_pem`` for ``hostname``; the serial number of
    the certificate the server presented (raises ssl.SSLError if it cannot be verified)."""
    client = ssl.create_default_context(cadata=ca_pem)
    a, b = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server.wrap_socket(b, server_side=True) as s:
                s.recv(1)
        except (ssl.SSLError, OSError) as e:
            errors.append(e)

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client.wrap_socket(a, server_hostname=hostname) as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(b"x")
    finally:
        t.join(5)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def serial(issued: Issued) -> int:
    return x509.load_pem_x509_certificate(issued.cert_pem.encode()).serial_number


def test_serves_the_only_pair_and_clients_verify_it_by_the_service_name(tmp_path):
    first = certificate(HOUR)
    write(tmp_path, "a", first)
    cert = ServingCertificate(slots(tmp_path))  # slot b is empty: no files
    assert served_serial(cert.context, first.ca_pem) == serial(first)
    for name in NAMES:
        served_serial(cert.context, first.ca_pem, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        served_serial(cert.context, first.ca_pem, "mm-other.ml.svc")
    other = certificate(HOUR)
    with pytest.raises(ssl.SSLCertVerificationError):
        served_serial(cert.context, other.ca_pem)  # another CA


def test_a_pair_issued_ahead_is_served_once_valid(tmp_path):
    """The operator's rotation: slot b written with a later notBefore; until then slot a."""
    old = certificate(2 * HOUR)
    new = certificate(dt.timedelta(minutes=1))
    write(tmp_path, "a", old)
    write(tmp_path, "b", new)
    clock = {"t": (new.not_before - dt.timedelta(seconds=5)).timestamp()}
    cert = ServingCertificate(slots(tmp_path), clock=lambda: clock["t"])
    bundle = old.ca_pem + new.ca_pem  # what the operator's CA ConfigMap holds meanwhile
    assert served_serial(cert.context, bundle) == serial(old)
    clock["t"] = now().timestamp()
    assert cert.refresh()
    assert served_serial(cert.context, bundle) == serial(new)
    assert served_serial(cert.context, new.ca_pem) == serial(new)


def test_changed_files_are_reloaded_into_the_same_context(tmp_path):
    first = certificate(HOUR)
    write(tmp_path, "a", first)
    cert = ServingCertificate(slots(tmp_path))
    context = cert.context
    second = certificate(HOUR)
    write(tmp_path, "a", second)  # a Secret updated in place
    cert.refresh()
    assert cert.context is context  # what aiohttp holds
    assert served_serial(context, second.ca_pem) == serial(second)


def test_a_pair_that_does_not_load_leaves_the_served_one(tmp_path):
    good = certificate(HOUR)
    write(tmp_path, "a", good)
    cert = ServingCertificate(slots(tmp_path))
    newer = certificate(dt.timedelta(minutes=1))
    (tmp_path / "b.crt").write_text(newer.cert_pem)
    (tmp_path / "b.key").write_text(certificate(dt.timedelta(0), HOUR).key_pem)  # not its key
    assert cert.refresh()
    assert served_serial(cert.context, good.ca_pem) == serial(good)


def test_expired_and_future_pairs_lose_to_a_valid_one(tmp_path):
    expired = certificate(3 * HOUR, HOUR)
    valid = certificate(HOUR)
    write(tmp_path, "a", valid)
    write(tmp_path, "b", expired)
    cert = ServingCertificate(slots(tmp_path))
    assert served_serial(cert.context, valid.ca_pem) == serial(valid)


def test_no_readable_pair_is_an_error_naming_the_files(tmp_path):
    with pytest.raises(TlsError, match=r"tls.certificates: .*a\.crt"):
        ServingCertificate(slots(tmp_path))
