"""The kit's watch consumer: the channel groups a subscription joins by default."""

from __future__ import annotations

from platformsite.consumers import ServiceWatchConsumer


class _Watch(ServiceWatchConsumer):
    service = "demo"


def test_default_groups__every_service_and_one_service():
    watch = _Watch()
    assert watch.groups_of("*") == ["demo.all"]
    assert watch.groups_of("orders") == ["demo.service.orders"]


def test_default_groups__a_long_name_stays_within_the_channel_layers_limit():
    groups = _Watch().groups_of("a" * 200) + _Watch().groups_of("a" * 199 + "b")
    assert all(len(group) < 100 for group in groups)
    assert groups[0] != groups[1]
