"""The admin kit: deletions through the service, and an admin that forgets to say how."""

from __future__ import annotations

import pytest

from platformsite.admin import DeletesThroughService


def test_an_admin_that_deletes_without_saying_how__is_refused_when_defined():
    with pytest.raises(TypeError, match="delete_one"):

        class Forgetful(DeletesThroughService):
            pass


def test_the_change_page_and_the_list_action__each_row_goes_through_delete_one():
    deleted = []

    class Rows(DeletesThroughService):
        def delete_one(self, request, row):
            deleted.append((request, row))

    Rows().delete_model("request", "a")
    Rows().delete_queryset("request", ["b", "c"])
    assert deleted == [("request", "a"), ("request", "b"), ("request", "c")]
