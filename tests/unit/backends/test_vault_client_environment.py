"""OpenBao clients read the proxy and CA-bundle environment once, when their session is made.

requests with `trust_env` looked them up (and ~/.netrc) at every call, on the path of every tenant pass;
the session now has `trust_env` off and carries what the environment said, so a proxy or a private CA
still works.
"""

from __future__ import annotations

import pytest
from tenancy_operator.backends import vault_login

URL = "http://10.1.2.3:8200"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
                 "ALL_PROXY", "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def test_no_environment_no_proxy_default_verification():
    session = vault_login._session_for(URL)
    assert session.trust_env is False
    assert session.proxies == {} and session.verify is True


def test_the_proxy_for_the_address_is_kept(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    assert vault_login._session_for(URL).proxies.get("http") == "http://proxy.example:3128"


def test_no_proxy_is_respected(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "10.1.2.3")
    assert vault_login._session_for(URL).proxies == {}


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_ca_bundle_from_the_environment_is_used(monkeypatch, tmp_path, variable):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv(variable, str(bundle))
    assert vault_login._session_for("https://bao.example:8200").verify == str(bundle)


def test_each_thread_and_address_keeps_one_session():
    from tenancy_operator.backends.base import Target
    target = Target(name="vault-x", type="vault", host="10.1.2.3", port=8200)
    first, again = vault_login.client(target), vault_login.client(target, token="t")
    assert first.adapter.session is again.adapter.session
