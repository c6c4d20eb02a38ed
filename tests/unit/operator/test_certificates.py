"""certificates: what the operator issues for a worker's https, and when, from nothing but
the public record it keeps (it cannot read the Secret). Certificates are checked with the
cryptography library's own verifier, as a TLS client would."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from mm_operator.certificates import (
    SLOTS,
    TlsRecord,
    dns_names,
    grace,
    issue,
    make_issuance,
    plan,
)

NAMES = dns_names("mm-fraud", "ml")
DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def verify(cert_pem: str, bundle: str, name: str, at: dt.datetime) -> None:
    cas = x509.load_pem_x509_certificates(bundle.encode())
    leaf = x509.load_pem_x509_certificate(cert_pem.encode())
    verifier = PolicyBuilder().store(Store(cas)).time(at).build_server_verifier(x509.DNSName(name))
    verifier.verify(leaf, [])


def test_issued_certificate_verifies_for_every_service_name_and_nothing_else():
    issued = issue(NAMES, T0, T0 + DAY)
    assert NAMES == ("mm-fraud.ml.svc", "mm-fraud.ml.svc.cluster.local", "mm-fraud.ml", "mm-fraud")
    for name in NAMES:
        verify(issued.cert_pem, issued.ca_pem, name, T0 + dt.timedelta(hours=1))
    with pytest.raises(VerificationError):
        verify(issued.cert_pem, issued.ca_pem, "mm-other.ml.svc", T0 + dt.timedelta(hours=1))
    with pytest.raises(VerificationError):
        verify(issued.cert_pem, issued.ca_pem, NAMES[0], T0 + 2 * DAY)  # expired
    other = issue(NAMES, T0, T0 + DAY)
    with pytest.raises(VerificationError):
        verify(issued.cert_pem, other.ca_pem, NAMES[0], T0 + dt.timedelta(hours=1))
    assert "PRIVATE KEY" in issued.key_pem and "PRIVATE KEY" not in issued.ca_pem


def test_a_fresh_issuance_is_valid_at_once_in_slot_a():
    fresh = make_issuance("fresh", None, NAMES, "1d", DAY, T0)
    assert fresh.slot == "a" and fresh.issued.not_before < T0  # backdated for clock skew
    assert fresh.issued.not_after == T0 + DAY
    verify(fresh.issued.cert_pem, fresh.record.bundle, NAMES[0], T0)
    assert fresh.secret_data()["b.crt"] is None and fresh.secret_data()["b.key"] is None
    assert fresh.record.renew_at == T0 + DAY * 2 / 3
    # A short validity is not due at once (the backdating does not count).
    short = make_issuance("fresh", None, NAMES, "1m", dt.timedelta(minutes=1), T0)
    assert plan(short.record, NAMES, "1m", T0 + dt.timedelta(seconds=39)) is None


def test_rotation_writes_the_other_slot_valid_later_and_the_bundle_trusts_both():
    fresh = make_issuance("fresh", None, NAMES, "1d", DAY, T0)
    at = fresh.record.renew_at
    assert plan(fresh.record, NAMES, "1d", at - dt.timedelta(seconds=1)) is None
    assert plan(fresh.record, NAMES, "1d", at) == "rotate"
    rotated = make_issuance("rotate", fresh.record, NAMES, "1d", DAY, at)
    assert rotated.slot == "b" and set(rotated.secret_data()) == {"b.crt", "b.key"}
    assert rotated.issued.not_before == at + grace(DAY)
    assert rotated.issued.not_after == at + grace(DAY) + DAY
    bundle = rotated.record.bundle
    # Meanwhile the worker still serves slot a, which the new bundle still trusts ...
    verify(fresh.issued.cert_pem, bundle, NAMES[0], at + dt.timedelta(minutes=1))
    # ... and once slot b is valid, it verifies against the same bundle.
    verify(rotated.issued.cert_pem, bundle, NAMES[0], rotated.issued.not_before)
    # The next rotation goes back to slot a and drops the oldest CA.
    again = make_issuance("rotate", rotated.record, NAMES, "1d", DAY, rotated.record.renew_at)
    assert again.slot == "a"
    assert fresh.issued.ca_pem not in again.record.bundle
    assert rotated.issued.ca_pem in again.record.bundle


def test_other_names_or_duration_rotate_and_nothing_recorded_starts_fresh():
    record = make_issuance("fresh", None, NAMES, "1d", DAY, T0).record
    assert plan(None, NAMES, "1d", T0) == "fresh"
    assert plan(record, dns_names("mm-fraud", "other"), "1d", T0) == "rotate"
    assert plan(record, NAMES, "90d", T0) == "rotate"


def test_the_record_survives_the_config_map_and_anything_else_is_no_record():
    record = make_issuance("rotate", make_issuance("fresh", None, NAMES, "1d", DAY, T0).record,
                           NAMES, "1d", DAY, T0 + DAY)  # fmt: skip
    cm = {"metadata": {"annotations": record.record.annotations()}, "data": record.record.data()}
    assert TlsRecord.from_config_map(cm) == record.record
    assert cm["data"]["ca.crt"] == record.record.bundle
    assert set(cm["data"]) == {"ca.crt", *(f"ca-{s}.crt" for s in SLOTS)}
    assert TlsRecord.from_config_map(None) is None
    assert TlsRecord.from_config_map({"metadata": {}, "data": {"ca.crt": "x"}}) is None
    broken = {"metadata": {"annotations": {**record.record.annotations(),
                                           "modelmonitor.io/tls-renew-at": "soon"}},
              "data": record.record.data()}  # fmt: skip
    assert TlsRecord.from_config_map(broken) is None


def test_grace_is_short_against_the_validity():
    assert grace(dt.timedelta(days=90)) == dt.timedelta(minutes=10)
    assert grace(dt.timedelta(minutes=2)) == dt.timedelta(seconds=12)
