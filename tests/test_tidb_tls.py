"""TLS verification failures name ``TIDB_SSL_CA`` (issue 25, point 6), checked against a
real TLS handshake on 127.0.0.1: a stand-in server speaks the first packet of the MySQL
protocol (the handshake that offers TLS), then TLS with a self-signed certificate, as a
TiDB Cloud Dedicated cluster does with its private CA. PyMySQL verifies it against the
system bundle (refused, the message names TIDB_SSL_CA) or against ``TIDB_SSL_CA`` set to
that certificate (accepted: the failure that follows is no TLS failure)."""
from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import struct
import threading

import pytest
from pymysql.constants import CLIENT

from memory.store.base import StoreError
from memory.store.tidb import TiDBStore
from tests.tidb_helpers import cfg

x509 = pytest.importorskip("cryptography.x509", reason="cryptography makes the test certificate")


def _self_signed(tmp_path):
    """A self-signed CA certificate for 127.0.0.1/localhost and its key, as PEM files."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test TiDB CA")])
    now = dt.datetime.now(dt.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "ca.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _handshake() -> bytes:
    """A MySQL protocol-10 handshake packet that offers TLS (``CLIENT.SSL``)."""
    caps = (CLIENT.LONG_PASSWORD | CLIENT.PROTOCOL_41 | CLIENT.SECURE_CONNECTION
            | CLIENT.SSL | CLIENT.PLUGIN_AUTH | CLIENT.CONNECT_WITH_DB)
    body = (b"\x0a" + b"8.0.11-TiDB-stand-in\0" + struct.pack("<I", 1) + b"abcdefgh\0"
            + struct.pack("<HBHHB", caps & 0xFFFF, 45, 2, caps >> 16, 21) + b"\0" * 10
            + b"ijklmnopqrst\0" + b"mysql_native_password\0")
    return struct.pack("<I", len(body))[:3] + b"\0" + body


@pytest.fixture
def tls_server(tmp_path):
    """``(port, ca_path)`` of a stand-in server on 127.0.0.1; each connection gets the
    handshake, the client's TLS request is read, TLS starts with the self-signed
    certificate, and the connection is closed after the first packet over TLS."""
    cert, key = _self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    conn.sendall(_handshake())
                    conn.recv(4 + 32)  # the client's SSL request packet
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(4096)  # the login packet, then hang up
                except (OSError, ssl.SSLError):
                    pass  # the client refused the certificate

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    yield listener.getsockname()[1], cert
    stop.set()
    try:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
    except OSError:
        pass
    listener.close()
    worker.join(timeout=10)
    assert not worker.is_alive()


def test_a_certificate_the_bundle_cannot_verify_names_tidb_ssl_ca(tls_server):
    port, _ = tls_server
    url = f"mysql://root@127.0.0.1:{port}/db?ssl_verify_cert=true&ssl_verify_identity=true"
    store = TiDBStore.from_config(cfg(database_url=url))
    ca = store.settings.connect_args["ssl_ca"]  # the system bundle
    with pytest.raises(StoreError) as info:
        store.open("e", 4)
    message = str(info.value)
    assert message.startswith(f"cannot connect to TiDB at 127.0.0.1:{port}")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert f"could not be verified with {ca}" in message
    assert "TIDB_SSL_CA=/path/to/ca.pem" in message and "TiDB Cloud Dedicated" in message


def test_tidb_ssl_ca_is_the_one_pymysql_verifies_with(tls_server):
    port, ca = tls_server
    store = TiDBStore.from_config(cfg(tidb_host="127.0.0.1", tidb_port=port,
                                      tidb_ssl_ca=str(ca)))
    assert store.settings.tls and store.settings.connect_args["ssl_ca"] == str(ca)
    with pytest.raises(StoreError) as info:
        store.open("e", 4)  # TLS is accepted; the stand-in then hangs up
    assert "CERTIFICATE_VERIFY_FAILED" not in str(info.value)
    assert "TIDB_SSL_CA" not in str(info.value)
