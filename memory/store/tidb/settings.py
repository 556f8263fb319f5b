"""TiDB connection settings: ``TIDB_*`` / ``DATABASE_URL`` into a SQLAlchemy URL, PyMySQL TLS arguments and the HNSW opt-in."""
from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from memory.config import Config, ConfigError

TIDB_CLOUD_SUFFIX = ".tidbcloud.com"
DEFAULT_DATABASE = "memory_chat"

_TRUE = {"1", "true", "yes", "on", "required", "verify_ca", "verify_identity"}
_FALSE = {"0", "false", "no", "off", "disabled"}
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect: ``url`` (SQLAlchemy URL, driver ``mysql+pymysql``),
    ``connect_args`` for PyMySQL (TLS options), ``tls`` (bool), ``vector_index`` (bool:
    create the HNSW index, ``TIDB_VECTOR_INDEX=1``), ``require_fulltext`` (bool: a
    cluster without full-text search is an error at ``open``, ``TIDB_REQUIRE_FULLTEXT=1``)
    and ``masked`` (the URL with the password replaced by ``***``, safe to print)."""

    url: URL
    connect_args: dict[str, Any]
    tls: bool
    vector_index: bool = False
    require_fulltext: bool = False

    @property
    def masked(self) -> str:
        """The URL as a string with the password hidden (``***``)."""
        return mask_url(self.url)

    @property
    def database(self) -> str:
        """Database (schema) name the store uses."""
        return self.url.database or DEFAULT_DATABASE


def mask_url(url: URL | str) -> str:
    """Return ``url`` rendered with its password replaced by ``***``.

    Takes a SQLAlchemy URL or a string; a string that is not a URL is returned unchanged.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        return str(url)
    return parsed.render_as_string(hide_password=True)


def is_tidb_cloud_host(host: str | None) -> bool:
    """True for TiDB Cloud Starter/Essential gateways (``*.tidbcloud.com``, private
    endpoints included); used to tell serverless clusters (columnar replicas on demand,
    full-text search) from the others. TLS does not depend on it: TiDB Cloud Dedicated
    endpoints have other host names."""
    return bool(host) and host.lower().rstrip(".").endswith(TIDB_CLOUD_SUFFIX)


def is_local_host(host: str | None) -> bool:
    """True when ``host`` is this machine: ``localhost`` (and ``*.localhost``), a
    loopback address (``127.0.0.0/8``, ``::1``) or empty (a Unix socket). Every other
    host, private LAN addresses included, gets TLS."""
    if not host:
        return True
    name = host.strip().strip("[]").lower().rstrip(".")
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def default_ca_bundle() -> str:
    """Path of the CA bundle to verify the server's certificate: the system bundle
    (OpenSSL's default ``cafile``) when it exists, else certifi's bundle."""
    cafile = ssl.get_default_verify_paths().cafile
    if cafile and os.path.exists(cafile):
        return cafile
    import certifi

    return certifi.where()


def _url_from(config: Config) -> URL:
    """The SQLAlchemy URL of ``config`` (``DATABASE_URL`` wins); ConfigError if none."""
    if config.database_url:
        try:
            url = make_url(config.database_url.strip())
        except sa.exc.ArgumentError:
            raise ConfigError("DATABASE_URL: not a valid URL "
                              "(expected mysql://user:password@host:4000/database)") from None
        backend = url.drivername.split("+", 1)[0].lower()
        if backend not in ("mysql", "tidb"):
            raise ConfigError(f"DATABASE_URL: unsupported scheme {url.drivername!r}; "
                              "use mysql://user:password@host:4000/database")
        if not url.host:
            raise ConfigError("DATABASE_URL: the URL has no host")
        url = url.set(drivername="mysql+pymysql")
        if not url.database:
            url = url.set(database=config.tidb_database or DEFAULT_DATABASE)
        return url
    if config.tidb_host:
        return URL.create("mysql+pymysql", username=config.tidb_username or "root",
                          password=config.tidb_password or None, host=config.tidb_host,
                          port=config.tidb_port,
                          database=config.tidb_database or DEFAULT_DATABASE)
    raise ConfigError("TIDB_HOST: not set (set TIDB_HOST/TIDB_USERNAME/TIDB_PASSWORD "
                      "or DATABASE_URL to use TiDB)")


def connection_settings(config: Config) -> ConnectionSettings:
    """Build the connection settings from ``config``.

    ``DATABASE_URL`` (``mysql://``, ``mysql+pymysql://`` or ``tidb://``) wins over the
    ``TIDB_HOST/PORT/USERNAME/PASSWORD/DATABASE`` fields; a URL without a database gets
    ``TIDB_DATABASE``. TLS with certificate and host-name verification is on for every
    host that is not local (:func:`is_local_host`): Starter and Essential require TLS,
    Dedicated accepts it without forcing it (TiDB Cloud docs, "TLS Connections to TiDB
    Cloud Dedicated") and its hosts are not ``*.tidbcloud.com``, so the host name does
    not decide. Dedicated's certificates come from a private CA: set ``TIDB_SSL_CA`` to
    the CA file of its Connect dialog (:func:`tls_hint`). A local
    host gets TLS only when ``TIDB_SSL_CA`` is set or the URL asks for it
    (``ssl_ca``/``ssl_verify_cert``/``ssl_verify_identity``/``ssl_mode``). The one way to
    turn TLS off for a remote host is ``DATABASE_URL=...?ssl_mode=DISABLED`` (a
    self-managed cluster without certificates). The CA is ``TIDB_SSL_CA`` if set, else
    the URL's ``ssl_ca`` if that file exists, else the system bundle (certifi as
    fallback). ``TIDB_VECTOR_INDEX`` sets ``vector_index``, ``TIDB_REQUIRE_FULLTEXT``
    ``require_fulltext``.

    Raises ConfigError (naming the variable) when neither a host nor a URL is configured,
    the URL is malformed or of another database, or ``TIDB_SSL_CA`` does not exist.
    """
    url = _url_from(config)
    # TLS options from the URL's query string become explicit connect_args (PyMySQL's own
    # keyword names), so booleans are real booleans and the CA path can be checked.
    query = dict(url.query)
    url_ca = query.pop("ssl_ca", None)
    url_tls = {k: query.pop(k) for k in ("ssl_verify_cert", "ssl_verify_identity",
                                          "ssl_check_hostname", "ssl_mode", "ssl")
               if k in query}
    url = url.set(query=query)
    if isinstance(url_ca, tuple):
        url_ca = url_ca[-1]
    values = {str(v[-1] if isinstance(v, tuple) else v).lower() for v in url_tls.values()}
    opted_out = bool(values & _FALSE)
    wants_tls = (not is_local_host(url.host) or bool(config.tidb_ssl_ca) or bool(url_ca)
                 or bool(values & _TRUE)) and not opted_out
    connect_args: dict[str, Any] = {}
    if wants_tls:
        if config.tidb_ssl_ca:
            if not os.path.exists(config.tidb_ssl_ca):
                raise ConfigError(f"TIDB_SSL_CA: file not found: {config.tidb_ssl_ca}")
            ca = config.tidb_ssl_ca
        elif url_ca and os.path.exists(str(url_ca)):
            ca = str(url_ca)
        else:
            ca = default_ca_bundle()
        connect_args = {"ssl_ca": ca, "ssl_verify_cert": True, "ssl_verify_identity": True}
    return ConnectionSettings(url=url, connect_args=connect_args, tls=wants_tls,
                              vector_index=bool(getattr(config, "tidb_vector_index", False)),
                              require_fulltext=bool(getattr(config, "tidb_require_fulltext",
                                                            False)))


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc``, its ``orig`` (SQLAlchemy's DBAPI error) and their causes/contexts."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [getattr(e, "orig", None), e.__cause__, e.__context__]
    return seen


def tls_verification_failed(exc: BaseException) -> bool:
    """True when ``exc`` (a connection error) comes from a server certificate that TLS
    verification refused: an ``ssl.SSLCertVerificationError`` in its chain, or PyMySQL's
    wrapped message (``[SSL: CERTIFICATE_VERIFY_FAILED]``)."""
    return any(isinstance(e, ssl.SSLCertVerificationError)
               or "CERTIFICATE_VERIFY_FAILED" in str(e) for e in _chain(exc))


def tls_hint(settings: ConnectionSettings) -> str:
    """The advice appended to a connection error whose TLS verification failed: which
    CA bundle was used and ``TIDB_SSL_CA``. TiDB Cloud Dedicated signs server
    certificates with a private CA (AWS Private CA; TiDB Cloud docs, "TLS Connections to
    TiDB Cloud Dedicated") that no system bundle holds; Starter/Essential certificates
    come from a public CA and verify with the system bundle."""
    ca = settings.connect_args.get("ssl_ca", "the system CA bundle")
    return (f"TLS: the server's certificate could not be verified with {ca}. For TiDB "
            "Cloud Dedicated download the cluster's CA certificate (Connect dialog, "
            "'CA cert') and set TIDB_SSL_CA=/path/to/ca.pem; for a self-managed cluster "
            "set TIDB_SSL_CA to the CA that signed its certificate")
