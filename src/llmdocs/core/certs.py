"""A private certificate authority for mutual TLS between services (`llmdocs certs`):
ECDSA P-256 keys, short-lived leaf certificates, rotation that keeps old ones valid."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CLOCK_SKEW = dt.timedelta(minutes=5)  # valid a little before issue: clocks drift apart


class CertificateError(Exception):
    """The certificate directory cannot be used as asked (no CA, no such certificate)."""


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Leaf:
    """What a certificate is for: its file name, the identity tokens are bound to (a
    URI SAN), the host names and addresses it serves at, and whether it serves at all
    (an operator's or the CLI's certificate only connects)."""

    name: str
    identity: str
    hosts: tuple[str, ...] = ()
    server: bool = True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_authority(days: int, now: dt.datetime | None = None) -> Authority:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llmdocs"),
                      x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"llmdocs CA {now:%Y-%m-%d %H:%M:%S}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Authority(cert, key)


def _san(leaf: Leaf) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(leaf.identity)]
    for host in dict.fromkeys(leaf.hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue(ca: Authority, leaf: Leaf, days: int, now: dt.datetime | None = None
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate and its new key, valid for `days` from `now`."""
    now = now or _now()
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if leaf.server:
        usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "llmdocs"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, leaf.name)]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=False, crl_sign=False,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(_san(leaf), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return cert, key


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically (a service reloading mid-write reads the old file or the new)."""
    partial = path.with_name(f".{path.name}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(partial, mode)  # the umask may have narrowed or an old file kept its mode
    os.replace(partial, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def write_pair(directory: Path, name: str, cert: x509.Certificate,
               key: ec.EllipticCurvePrivateKey) -> None:
    """`name-key.pem` (0600) first, then `name.pem`: a reader that sees the new
    certificate finds its key already there."""
    _write(directory / f"{name}-key.pem", _key_pem(key), 0o600)
    _write(directory / f"{name}.pem", _cert_pem([cert]), 0o644)


def write_authority(directory: Path, ca: Authority,
                    keep: Sequence[x509.Certificate] = ()) -> None:
    """The CA's key and its certificate, bundled with the `keep` CAs that have not
    expired: what they signed stays trusted until it expires."""
    directory.mkdir(parents=True, exist_ok=True)
    now = _now()
    kept = [cert for cert in keep if cert.not_valid_after_utc > now
            and cert.fingerprint(hashes.SHA256()) != ca.cert.fingerprint(hashes.SHA256())]
    _write(directory / CA_KEY, _key_pem(ca.key), 0o600)
    _write(directory / CA_CERT, _cert_pem([ca.cert, *kept]), 0o644)


def load_authority(directory: Path) -> tuple[Authority, list[x509.Certificate]]:
    """The signing CA (the bundle's first certificate) and every CA of the bundle."""
    try:
        bundle = x509.load_pem_x509_certificates((directory / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise CertificateError(f"no certificate authority in {directory}: {exc} "
                               "(run `llmdocs certs init --dir DIR` first)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{directory / CA_KEY} is not an ECDSA key")
    return Authority(bundle[0], key), bundle


def read_leaf(path: Path) -> tuple[Leaf, int]:
    """What the certificate at `path` is for, and its lifetime in days: how to issue its
    successor."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    identities = san.get_values_for_type(x509.UniformResourceIdentifier)
    hosts = [*san.get_values_for_type(x509.DNSName),
             *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc - CLOCK_SKEW).days
    return Leaf(name=path.name.removesuffix(".pem"), identity=identities[0],
                hosts=tuple(hosts), server=ExtendedKeyUsageOID.SERVER_AUTH in usages
                ), max(days, 1)


def leaf_paths(directory: Path) -> list[Path]:
    """Every leaf certificate of the directory: a `NAME.pem` next to its `NAME-key.pem`."""
    return sorted(path for path in directory.glob("*.pem")
                  if path.name != CA_CERT and not path.name.endswith("-key.pem")
                  and path.with_name(f"{path.stem}-key.pem").exists())


def rotate(directory: Path, new_ca_days: int | None = None) -> list[str]:
    """A new certificate and key for every leaf of the directory, each as it was (names,
    identity, lifetime); with `new_ca_days`, signed by a new CA whose bundle keeps the
    old one, so certificates not yet replaced stay valid until they expire."""
    ca, bundle = load_authority(directory)
    if new_ca_days is not None:
        ca = new_authority(new_ca_days)
        write_authority(directory, ca, keep=bundle)
    rotated = []
    for path in leaf_paths(directory):
        leaf, days = read_leaf(path)
        write_pair(directory, leaf.name, *issue(ca, leaf, days))
        rotated.append(leaf.name)
    return rotated
