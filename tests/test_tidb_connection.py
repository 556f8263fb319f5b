"""Offline checks of the TiDB store's connection settings: verified TLS for every
non-local host (TiDB Cloud included) and its explicit opt-out, DATABASE_URL parsing,
password masking, the opt-in HNSW index."""
from __future__ import annotations

import ssl
from pathlib import Path

import pymysql
import pytest

from memory.config import ConfigError
from memory.store.tidb import TiDBStore, connection_settings, mask_url
from tests.tidb_helpers import cfg

CLOUD_HOST = "gateway01.eu-central-1.prod.aws.tidbcloud.com"


# ---- connection settings -----------------------------------------------------------
def test_tidb_cloud_host_gets_verified_tls():
    s = connection_settings(cfg(tidb_host=CLOUD_HOST, tidb_username="abc.root",
                                tidb_password="s3cret!@#", tidb_database="mc"))
    assert s.tls
    assert s.url.drivername == "mysql+pymysql" and s.url.host == CLOUD_HOST
    assert s.url.port == 4000 and s.url.database == "mc" and s.url.password == "s3cret!@#"
    assert Path(s.connect_args["ssl_ca"]).is_file()
    assert s.connect_args["ssl_verify_cert"] is True and s.connect_args["ssl_verify_identity"] is True
    # PyMySQL turns these arguments into a verifying TLS context (no connection made)
    conn = pymysql.connections.Connection(host=CLOUD_HOST, user="x", defer_connect=True,
                                          **s.connect_args)
    assert conn.ctx.check_hostname is True
    assert conn.ctx.verify_mode == ssl.CERT_REQUIRED


def test_local_host_has_no_tls_and_ssl_ca_override(tmp_path):
    s = connection_settings(cfg(tidb_host="127.0.0.1"))
    assert not s.tls and s.connect_args == {}
    assert s.url.username == "root" and s.url.database == "memory_chat"
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = connection_settings(cfg(tidb_host=CLOUD_HOST, tidb_ssl_ca=str(ca)))
    assert s.connect_args["ssl_ca"] == str(ca)
    with pytest.raises(ConfigError, match="TIDB_SSL_CA"):
        connection_settings(cfg(tidb_host=CLOUD_HOST, tidb_ssl_ca=str(tmp_path / "missing.pem")))


def test_database_url_parsing():
    url = (f"mysql://abc.root:p%40ss%3Aword@{CLOUD_HOST}:4000/chat"
           "?ssl_ca=/nonexistent/cert.pem&ssl_verify_cert=true&ssl_verify_identity=true")
    s = connection_settings(cfg(database_url=url, tidb_host="ignored.example"))
    assert s.url.drivername == "mysql+pymysql"
    assert (s.url.username, s.url.password) == ("abc.root", "p@ss:word")
    assert (s.url.host, s.url.port, s.url.database) == (CLOUD_HOST, 4000, "chat")
    assert dict(s.url.query) == {}, "TLS options move to connect_args"
    assert s.tls and Path(s.connect_args["ssl_ca"]).is_file()  # missing CA -> system bundle
    s = connection_settings(cfg(database_url="mysql+pymysql://root@127.0.0.1:4000", tidb_database="x"))
    assert s.url.database == "x" and not s.tls
    s = connection_settings(cfg(database_url="mysql://root@localhost/db?ssl_verify_cert=true"))
    assert s.tls
    for bad in ("postgresql://u:p@h/db", "not a url", "mysql:///db"):
        with pytest.raises(ConfigError, match="DATABASE_URL"):
            connection_settings(cfg(database_url=bad))
    with pytest.raises(ConfigError, match="TIDB_HOST"):
        connection_settings(cfg())


def test_passwords_are_masked():
    secret = "hunter2-very-secret"
    s = connection_settings(cfg(database_url=f"mysql://u:{secret}@{CLOUD_HOST}:4000/db"))
    assert secret not in s.masked and "***" in s.masked and CLOUD_HOST in s.masked
    store = TiDBStore(s)
    assert secret not in repr(store)
    assert secret not in str(store.health())
    assert secret not in mask_url(f"mysql+pymysql://u:{secret}@h:4000/db")
    c = cfg(tidb_host=CLOUD_HOST, tidb_password=secret,
            database_url=f"mysql://u:{secret}@{CLOUD_HOST}/db")
    assert secret not in str(c.masked())


# ---- issue 8: the TiDB fixes, each checked offline --------------------------------
@pytest.mark.parametrize("host, tls", [
    ("127.0.0.1", False), ("localhost", False), ("::1", False),
    ("10.0.0.5", True), ("192.168.1.20", True), ("tidb.internal", True),
    # a TiDB Cloud Dedicated endpoint is not *.tidbcloud.com
    ("tidb.a1b2c3d4.clusters.tidb-cloud.com", True), (CLOUD_HOST, True),
])
def test_tls_for_every_non_local_host(host, tls):
    s = connection_settings(cfg(tidb_host=host))
    assert s.tls is tls
    assert (s.connect_args.get("ssl_verify_identity") is True) is tls


def test_tls_explicit_opt_out_for_a_remote_cluster_without_certificates():
    s = connection_settings(cfg(database_url="mysql://root@10.0.0.5:4000/db?ssl_mode=DISABLED"))
    assert not s.tls and s.connect_args == {} and dict(s.url.query) == {}


def test_hnsw_index_is_opt_in():
    assert connection_settings(cfg(tidb_host="127.0.0.1")).vector_index is False
    assert connection_settings(cfg(tidb_host="127.0.0.1", tidb_vector_index=True)).vector_index
