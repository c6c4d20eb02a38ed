"""The worker's serving certificates, issued by the operator without ever reading a Secret
(its role cannot). Pure: keys and certificates in, records and plans out; the reconcile
module writes them.

Each issuance makes a fresh CA and one serving certificate signed by it, and throws the CA's
key away at once: it has signed all it ever will, so a CA bundle that still lists it trusts
nothing new. What must be kept between reconciles is therefore public, and lives in the
monitor's CA ConfigMap (``mm-<name>-ca``): the CA of each slot, the bundle clients trust, and
when the next issuance is due.

The Secret (``mm-<name>-tls``) has two slots, ``a`` and ``b``. A rotation writes the slot not
written last, with a certificate valid only from a little later (:func:`grace`); the bundle
lists both CAs from that moment, and the worker switches to the new certificate when it
becomes valid (``monitor_worker.tls``). Clients that read the bundle on every connection, as
KServe's logger does, therefore never see a certificate they cannot verify, provided the
kubelet updates their ConfigMap volume within the grace."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SLOTS = ("a", "b")
CA_KEY = "ca.crt"  # the bundle clients trust, in the CA ConfigMap
#: Backdating of a first certificate, for clocks a little behind the operator's.
CLOCK_SKEW = dt.timedelta(minutes=1)
MAX_GRACE = dt.timedelta(minutes=10)
RENEW_AFTER = 2 / 3  # of the validity, as cert-manager does by default

SLOT_ANNOTATION = "modelmonitor.io/tls-slot"
RENEW_ANNOTATION = "modelmonitor.io/tls-renew-at"
NAMES_ANNOTATION = "modelmonitor.io/tls-dns-names"
DURATION_ANNOTATION = "modelmonitor.io/tls-duration"


def cert_key(slot: str) -> str:
    return f"{slot}.crt"


def key_key(slot: str) -> str:
    return f"{slot}.key"


def ca_slot_key(slot: str) -> str:
    return f"ca-{slot}.crt"


def dns_names(service: str, namespace: str) -> tuple[str, ...]:
    """The names a client may use for the worker's Service."""
    return (
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        f"{service}.{namespace}",
        service,
    )


def grace(duration: dt.timedelta) -> dt.timedelta:
    """How long a rotated certificate waits before it becomes valid: long enough for the
    kubelet to bring the new bundle to every client (it syncs ConfigMap volumes about once a
    minute), short against the validity."""
    return min(MAX_GRACE, duration / 10)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Issued:
    """A CA certificate and the serving certificate and key it signed (PEM)."""

    ca_pem: str
    cert_pem: str
    key_pem: str
    not_before: dt.datetime
    not_after: dt.datetime


CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True,
    crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip
NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def issue(names: tuple[str, ...], not_before: dt.datetime, not_after: dt.datetime) -> Issued:
    """A new CA (P-256, its key discarded on return) and a serving certificate for ``names``,
    both valid from ``not_before`` until ``not_after``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "model-monitor"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{names[0]} CA {_iso(not_before)}"),
        ]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Issued(
        ca.public_bytes(pem).decode(),
        leaf.public_bytes(pem).decode(),
        _pem_key(key),
        not_before,
        not_after,
    )


@dataclass(frozen=True)
class TlsRecord:
    """What the CA ConfigMap records: the slot written last, the CA of each slot, when the
    next issuance is due, and the names and duration the certificates were made for."""

    slot: str
    cas: dict[str, str] = field(default_factory=dict)
    renew_at: dt.datetime = NEVER
    names: tuple[str, ...] = ()
    duration: str = ""

    @property
    def bundle(self) -> str:
        """Every slot's CA, the one written last first."""
        order = [self.slot] + [s for s in SLOTS if s != self.slot]
        return "".join(self.cas[s] for s in order if s in self.cas)

    def data(self) -> dict[str, str]:
        return {CA_KEY: self.bundle, **{ca_slot_key(s): pem for s, pem in self.cas.items()}}

    def annotations(self) -> dict[str, str]:
        return {
            SLOT_ANNOTATION: self.slot,
            RENEW_ANNOTATION: _iso(self.renew_at),
            NAMES_ANNOTATION: ",".join(self.names),
            DURATION_ANNOTATION: self.duration,
        }

    @classmethod
    def from_config_map(cls, cm: dict[str, Any] | None) -> TlsRecord | None:
        """The record a CA ConfigMap holds; None when absent or not one of ours (it is then
        issued afresh)."""
        if cm is None:
            return None
        annotations = (cm.get("metadata") or {}).get("annotations") or {}
        data = cm.get("data") or {}
        slot = annotations.get(SLOT_ANNOTATION)
        if slot not in SLOTS or ca_slot_key(slot) not in data:
            return None
        try:
            renew_at = _parse_iso(annotations.get(RENEW_ANNOTATION, ""))
        except ValueError:
            return None
        return cls(
            slot=slot,
            cas={s: data[ca_slot_key(s)] for s in SLOTS if ca_slot_key(s) in data},
            renew_at=renew_at,
            names=tuple(filter(None, annotations.get(NAMES_ANNOTATION, "").split(","))),
            duration=annotations.get(DURATION_ANNOTATION, ""),
        )


Plan = Literal["fresh", "rotate"]


def plan(
    record: TlsRecord | None, names: tuple[str, ...], duration: str, now: dt.datetime
) -> Plan | None:
    """What to issue now: ``fresh`` (nothing recorded), ``rotate`` (due, or made for other
    names or another duration), or nothing."""
    if record is None:
        return "fresh"
    if record.names != names or record.duration != duration or now >= record.renew_at:
        return "rotate"
    return None


@dataclass(frozen=True)
class Issuance:
    """One issuance to write: the Secret's new slot (``clear`` the other one: a fresh start)
    and the record that describes the result."""

    slot: str
    issued: Issued
    record: TlsRecord
    clear: tuple[str, ...] = ()

    def secret_data(self) -> dict[str, str | None]:
        """Keys of the Secret to set (PEM) or remove (None), for a merge patch."""
        data: dict[str, str | None] = {
            cert_key(self.slot): self.issued.cert_pem,
            key_key(self.slot): self.issued.key_pem,
        }
        for slot in self.clear:
            data[cert_key(slot)] = data[key_key(slot)] = None
        return data


def make_issuance(
    kind: Plan,
    record: TlsRecord | None,
    names: tuple[str, ...],
    duration_text: str,
    duration: dt.timedelta,
    now: dt.datetime,
) -> Issuance:
    """A fresh start (slot ``a``, valid at once, slot ``b`` cleared) or a rotation (the other
    slot, valid after :func:`grace`, both CAs in the bundle). Either is valid for ``duration``
    from when it is served, and due again after two thirds of that."""
    clear: tuple[str, ...]
    if kind == "fresh" or record is None:
        start = now
        issued = issue(names, now - CLOCK_SKEW, start + duration)
        slot, cas, clear = SLOTS[0], {}, SLOTS[1:]
    else:
        start = now + grace(duration)
        issued = issue(names, start, start + duration)
        slot = next(s for s in SLOTS if s != record.slot)
        cas, clear = {record.slot: record.cas[record.slot]}, ()
    cas[slot] = issued.ca_pem
    renew_at = start + duration * RENEW_AFTER
    new = TlsRecord(slot, cas, renew_at.replace(microsecond=0), names, duration_text)
    return Issuance(slot, issued, new, clear)
