"""Webhook targets (SSRF): loopback, link-local and private addresses are refused when the URL is
written and when connecting (the name resolved once, the checked address connected to), unless
PLATFORM_ALLOW_PRIVATE_TARGETS (on in the test settings, whose receivers listen on 127.0.0.1)."""

from __future__ import annotations

import socket

import httpcore
import pytest

from event_app.models import Delivery
from platformsite import outbound
from tests.event_app.test_subscriptions import SUBS, Receiver

pytestmark = pytest.mark.django_db(transaction=True)  # deliveries start on commit
PUBLIC = "93.184.216.34"


@pytest.fixture
def guarded(settings):
    settings.PLATFORM_ALLOW_PRIVATE_TARGETS = False
    settings.EVENTS_WEBHOOK_BACKOFF_SECONDS = 0
    settings.EVENTS_WEBHOOK_MAX_ATTEMPTS = 1


@pytest.fixture
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def resolves(monkeypatch):
    """``resolves({"hooks.example.test": ["127.0.0.1"]})``: what the platform's lookups answer;
    returns the list of names looked up."""
    looked_up: list[str] = []

    def install(answers: dict[str, list[str]]) -> list[str]:
        def getaddrinfo(host, port, *args, **kwargs):
            looked_up.append(host)
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]
            ]

        monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)
        return looked_up

    return install


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
    ],
)
def test_refused_address__loopback_link_local_private_reserved(address):
    assert outbound.refused_address(address) is not None


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111"])
def test_refused_address__global_addresses_pass(address):
    assert outbound.refused_address(address) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://localhost/hook",
        "http://api.localhost./hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/hook",
        "http://[::ffff:7f00:1]/hook",
        "http://2130706433/hook",  # legacy IPv4 spellings resolvers take: 127.0.0.1
        "http://0x7f000001/hook",
        "http://127.1/hook",
    ],
)
def test_subscription__private_target_url__400(operator, guarded, url):
    response = operator.post(SUBS, {"name": "h", "url": url}, format="json")

    assert response.status_code == 400, response.content
    assert "private" in str(response.json()["error"]["details"]["url"])


def test_subscription__private_target_allowed_by_the_setting__201(operator, settings):
    settings.PLATFORM_ALLOW_PRIVATE_TARGETS = True

    response = operator.post(SUBS, {"name": "h", "url": "http://127.0.0.1:9/hook"}, format="json")

    assert response.status_code == 201


def test_subscription_update__to_a_private_target__400_and_unchanged(operator, guarded):
    created = operator.post(SUBS, {"name": "h", "url": f"http://{PUBLIC}/hook"}, format="json")
    assert created.status_code == 201

    response = operator.patch(SUBS + "h/", {"url": "http://10.0.0.1/hook"}, format="json")

    assert response.status_code == 400
    assert operator.get(SUBS + "h/").json()["url"] == f"http://{PUBLIC}/hook"


def test_delivery__a_name_resolving_to_loopback__refused_at_connect_nothing_sent(
    operator, publisher, guarded, hook, resolves
):
    # given: a name that passes when written and resolves to the receiver's loopback address
    resolves({"hooks.example.test": ["127.0.0.1"]})
    url = hook.url.replace("127.0.0.1", "hooks.example.test")
    assert (
        operator.post(SUBS, {"name": "h", "types": ["order.*"], "url": url}, format="json").status_code == 201
    )

    # when
    publisher.post("/api/v1/events/", {"type": "order.created", "source": "/shop"}, format="json")

    # then
    delivery = Delivery.objects.get()
    assert delivery.status == "dead"
    assert "target refused" in delivery.last_error and "loopback" in delivery.last_error
    assert hook.requests == []


def test_delivery__any_private_answer_among_public_ones__refused(publisher, operator, guarded, resolves):
    resolves({"hooks.example.test": [PUBLIC, "10.0.0.7"]})
    url = "http://hooks.example.test/hook"
    assert (
        operator.post(SUBS, {"name": "h", "types": ["order.*"], "url": url}, format="json").status_code == 201
    )

    publisher.post("/api/v1/events/", {"type": "order.created", "source": "/shop"}, format="json")

    assert "10.0.0.7 is a private" in Delivery.objects.get().last_error


def test_connect__resolved_once__the_checked_address_connected_to(monkeypatch, guarded, resolves):
    # given: a name whose next answers would be loopback (DNS rebinding)
    looked_up = resolves({"rebind.example.test": [PUBLIC]})
    connected: list[str] = []

    def connect_tcp(self, host, port, *args, **kwargs):
        connected.append(host)
        raise httpcore.ConnectError("not in this test")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)

    # when
    with outbound.client(timeout=1) as client, pytest.raises(Exception, match="not in this test"):
        client.post("http://rebind.example.test:8080/hook", content=b"{}")

    # then: one lookup, and the socket is opened on the address checked, never on the name again
    assert looked_up == ["rebind.example.test"]
    assert connected == [PUBLIC]


def test_connect__allowed__connects_as_asked(hook, settings):
    settings.PLATFORM_ALLOW_PRIVATE_TARGETS = True

    with outbound.client(timeout=5) as client:
        response = client.post(hook.url, content=b"{}")

    assert response.status_code == 204
    assert len(hook.requests) == 1


def test_connect__guarded__loopback_refused_before_any_byte(hook, guarded):
    with outbound.client(timeout=5) as client, pytest.raises(Exception, match="target refused"):
        client.post(hook.url, content=b"{}")

    assert hook.requests == []


@pytest.mark.parametrize("host", ["localhost", "127.1", "2130706433", "0x7f000001"])
def test_connect__loopback_spelled_otherwise__refused_by_what_it_resolves_to(hook, guarded, host):
    # given: spellings an address parser may not take but the resolver does (real lookups)
    url = hook.url.replace("127.0.0.1", host)

    with outbound.client(timeout=5) as client, pytest.raises(Exception, match="target refused"):
        client.post(url, content=b"{}")

    assert hook.requests == []
