"""Proxy URLs: parsing, labels without credentials, proxy files, masking helpers."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from pooledcrawl.errors import UsageError
from pooledcrawl.proxy.endpoint import (
    Proxy,
    ProxyConfig,
    expand_env,
    expand_proxy_url,
    parse_proxy_url,
    read_proxy_file,
)
from pooledcrawl.proxy.masking import SecretFilter, SecretMasker, masking_logs

SECRET = "Sup3r-s3cret/p@ss"


def test_parse_keeps_credentials_out_of_every_shown_form() -> None:
    proxy = parse_proxy_url(
        f"http://alice:{SECRET.replace('/', '%2F').replace('@', '%40')}@gw:8080", where="t"
    )
    assert (proxy.scheme, proxy.host, proxy.port) == ("http", "gw", 8080)
    assert proxy.username == "alice" and proxy.password == SECRET
    assert proxy.label == "http://gw:8080"
    assert proxy.masked == "http://***:***@gw:8080"
    for shown in (repr(proxy), str(proxy), proxy.label, proxy.masked, f"{proxy}", f"{proxy!r}"):
        assert SECRET not in shown and "alice" not in shown
    # the transport's URL round-trips the credentials, percent-encoded
    again = parse_proxy_url(proxy.url, where="t")
    assert again == proxy
    assert SECRET in proxy.secrets and "alice" in proxy.secrets


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://h", 80),
        ("https://h", 443),
        ("socks5://h", 1080),
        ("socks5h://h:9050", 9050),
        ("SOCKS4://h", 1080),
        ("http://[::1]:3128", 3128),
    ],
)
def test_default_ports_and_schemes(url: str, port: int) -> None:
    proxy = parse_proxy_url(url, where="t")
    assert proxy.port == port
    assert not proxy.has_credentials
    assert proxy.masked == proxy.label


def test_ipv6_label() -> None:
    assert parse_proxy_url("http://[::1]:3128", where="t").label == "http://[::1]:3128"


def test_username_and_password_fill_in_for_urls_without_credentials() -> None:
    proxy = parse_proxy_url("socks5://h:1", where="t", username="u", password=SECRET)
    assert proxy.password == SECRET
    own = parse_proxy_url("socks5://me:mine@h:1", where="t", username="u", password=SECRET)
    assert own.password == "mine"


PLAIN = "Sup3rs3cretpass"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"ftp://u:{PLAIN}@h:1", "not supported"),
        (f"u:{PLAIN}@h:1", "no scheme"),
        (f"http://u:{PLAIN}@:1", "no host"),
        (f"http://u:{PLAIN}@h:port", "invalid port"),
        (f"http://u:{PLAIN}@h:1/path", "host:port only"),
        # unencoded "/" and "@" in the password: a broken URL, and still no leak
        (f"http://u:{SECRET}@h:1", "proxy URL 'http://***@h:1'"),
    ],
)
def test_bad_urls_are_usage_errors_without_the_secret(url: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_proxy_url(url, where="profiles/x.toml: proxy.url")
    text = str(info.value)
    assert message in text
    assert text.startswith("profiles/x.toml: proxy.url: ")
    assert PLAIN not in text and "Sup3r" not in text


def test_config_drops_repeats_and_labels_shared_endpoints_apart() -> None:
    a = Proxy("http", "gw", 1, "user-us", "pw1")
    b = Proxy("http", "gw", 1, "user-de", "pw2")
    config = ProxyConfig("static", (a, b, a), source="t")
    assert [p.label for p in config.proxies] == ["http://gw:1", "http://gw:1#2"]
    assert "pw1" not in repr(config) and "user-de" not in repr(config)
    assert set(config.secrets) >= {"pw1", "pw2"}
    with pytest.raises(UsageError):
        ProxyConfig("sticky", (a,), source="t")  # type: ignore[arg-type]


def test_expand_env() -> None:
    assert expand_env("a${X}b$Y${Z}", {"X": "1"}) == ("a1b$Y", ["Z"])


def test_expand_proxy_url_encodes_credentials_only() -> None:
    env = {"U": "me@corp", "P": SECRET, "H": "gw.example", "URL": "http://h:1"}
    url, missing = expand_proxy_url("http://${U}:${P}@${H}:8080", env)
    assert missing == []
    proxy = parse_proxy_url(url, where="t")
    assert (proxy.username, proxy.password, proxy.host) == ("me@corp", SECRET, "gw.example")
    assert expand_proxy_url("${URL}", env) == ("http://h:1", [])
    assert expand_proxy_url("http://${U}:${NOPE}@h:1", env)[1] == ["NOPE"]


def test_read_proxy_file(tmp_path: Path) -> None:
    path = tmp_path / "proxies.txt"
    path.write_text(
        "# my IPs\n\nhttp://127.0.0.1:1\n  socks5://${PUSER}:${PPASS}@127.0.0.1:2  \n",
        encoding="utf-8",
    )
    listed = read_proxy_file(path, {"PUSER": "u", "PPASS": SECRET})
    assert [p.label for p in listed] == ["http://127.0.0.1:1", "socks5://127.0.0.1:2"]
    assert listed[1].password == SECRET
    with pytest.raises(UsageError, match=r"proxies.txt:4: environment variable PPASS is not set"):
        read_proxy_file(path, {"PUSER": "u"})
    with pytest.raises(UsageError, match="proxy file not found"):
        read_proxy_file(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(UsageError, match="lists no proxy"):
        read_proxy_file(empty)
    bad = tmp_path / "bad.txt"
    bad.write_text(f"http://u:{SECRET}@h:x\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"bad.txt:1: ") as info:
        read_proxy_file(bad)
    assert SECRET not in str(info.value)


def test_masker_masks_every_form_of_the_credentials() -> None:
    proxy = Proxy("http", "h", 1, "alice", SECRET)
    masker = SecretMasker(proxy.secrets)
    import base64

    token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    text = f"url={proxy.url} header=Basic {token} raw={SECRET}"
    masked = masker.mask(text)
    assert SECRET not in masked and token not in masked and "alice" not in masked
    assert "Sup3r" not in masked  # the percent-encoded form too
    assert masker.mask("nothing here") == "nothing here"
    assert not SecretMasker(["ab"])  # too short to scrub safely


def test_log_filter_masks_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.propagate = False
    handler.addFilter(SecretFilter(SecretMasker([SECRET])))
    try:
        logger.warning("connecting with %s", SECRET)
        try:
            raise RuntimeError(f"failed: {SECRET}")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert SECRET not in output
    assert "connecting with ***" in output and "RuntimeError: failed: ***" in output


def test_masking_logs_installs_and_removes_the_filter() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        with masking_logs([SECRET]):
            logging.getLogger("test.masking2").error("x %s", SECRET)
        assert not handler.filters
    finally:
        root.removeHandler(handler)
    assert SECRET not in stream.getvalue()
