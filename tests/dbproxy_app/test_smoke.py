def test_smoke(database, writer):
    base = f"/api/v1/db/{database}/orders/records/"
    r = writer.post(base, {"id": "a1", "metadata": {"env": "prod"}, "data": {"total": 5}}, format="json")
    assert r.status_code == 201, r.content
    r = writer.get(base + "a1/")
    assert r.status_code == 200, r.content
    assert r.json()["data"] == {"total": 5}
    r = writer.get(base + "?meta.env=eq.prod", HTTP_PREFER="count=exact")
    assert r.status_code == 200, r.content
    assert [x["id"] for x in r.json()["results"]] == ["a1"], r.json()
    r = writer.patch(base + "a1/", {"data": {"x": 1}}, format="json", HTTP_IF_MATCH='"1"')
    assert r.status_code == 200, r.content
    assert r.json()["data"] == {"total": 5, "x": 1}
    r = writer.get(base + "?data->x=gt.0&order=created.asc")
    assert r.status_code == 200, r.content
    assert len(r.json()["results"]) == 1
    r = writer.put(base + "a1/", {"data": {"x": 1}}, format="json", HTTP_IF_MATCH='"1"')
    assert r.status_code == 409, r.content
    r = writer.delete(base + "a1/")
    assert r.status_code == 204, r.content
