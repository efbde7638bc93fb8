"""The broadcast plan's import, entry, deletion and linking over HTTP (issue 18)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from events import plan_edit
from events.models import AuditEntry, PlanItem
from tests.conftest import event_body, unit_id

HEADER = "topic,unit_code,month,theme\n"
GOOD = HEADER + ("优化营商环境政策解读,commerce,3,major-projects\n"
                 "义务教育入学政策,education,5,education\n"
                 "\"老旧小区改造, 居民关心的问题\",housing,9,housing\n")


def post_csv(client: TestClient, data: bytes | str, year: int = 2027,
             content_type: str = "text/csv; charset=utf-8") -> Any:
    body = data.encode("utf-8") if isinstance(data, str) else data
    return client.post(f"/api/plan/import?year={year}", content=body,
                       headers={"Content-Type": content_type})


def plan_of(client: TestClient, year: int = 2027) -> list[dict[str, Any]]:
    response = client.get(f"/api/plan?year={year}")
    assert response.status_code == 200, response.text
    assert response.json()["year"] == year
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def bad_lines(response: Any) -> list[tuple[int, str]]:
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_csv"
    return [(line["line"], line["field"]) for line in response.json()["lines"]]


def test_the_office_imports_a_plan_in_utf8_and_the_public_reads_it(staff: Any,
                                                                   client: TestClient) -> None:
    admin = staff("admin")
    response = post_csv(admin, GOOD)
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": 3}
    items = plan_of(client)
    assert [(i["topic"], i["unit"]["code"], i["month"], i["theme"]) for i in items] == [
        ("优化营商环境政策解读", "commerce", 3, "major-projects"),
        ("义务教育入学政策", "education", 5, "education"),
        ("老旧小区改造, 居民关心的问题", "housing", 9, "housing")]
    assert items[1]["unit"]["name"] == "区教委"
    assert items[1]["event_id"] is None and items[1]["state"] in ("planned", "at_risk",
                                                                   "missed")
    assert plan_of(client, 2028) == []
    this_year = client.get("/api/plan")
    assert this_year.status_code == 200 and isinstance(this_year.json()["year"], int)
    assert client.get("/api/plan?year=abc").status_code == 422


def test_excel_files_import_with_a_bom_or_in_gb18030(staff: Any, client: TestClient) -> None:
    admin = staff("admin")
    assert post_csv(admin, b"\xef\xbb\xbf" + GOOD.encode()).json() == {"imported": 3}
    gb = (HEADER + "空气质量改善行动,environment,4,air-quality\r\n").encode("gb18030")
    assert gb.decode("gb18030") and gb != gb.decode("gb18030").encode("utf-8")
    response = post_csv(admin, gb, content_type="application/vnd.ms-excel")
    assert response.status_code == 200, response.text
    assert "空气质量改善行动" in [i["topic"] for i in plan_of(client)]


def test_every_bad_line_is_named_and_nothing_is_imported(staff: Any, client: TestClient,
                                                         db: Session) -> None:
    admin = staff("admin")
    text = HEADER + ("好的一行,education,5,education\n"
                     "未知单位,no-such-unit,5,education\n"
                     "月份不对,education,13,education\n"
                     "月份不是数字,education,五,\n"
                     "好的一行,culture,6,culture\n"
                     "主题不对,education,6,no-such-theme\n"
                     ",education,6,education\n"
                     "少一列,education,6\n"
                     "表格多出的空列,education,6,,,\n")
    lines = bad_lines(post_csv(admin, text))
    assert lines == [(3, "unit_code"), (4, "month"), (5, "month"), (6, "topic"),
                     (7, "theme"), (8, "topic"), (9, "")]
    messages = post_csv(admin, text).json()["lines"]
    assert "no-such-unit" in messages[0]["message"]
    assert "1 to 12" in messages[1]["message"]
    assert "line 2 of the file" in messages[3]["message"]
    assert plan_of(client) == []
    assert db.exec(select(PlanItem)).all() == []


def test_a_topic_already_in_the_year_is_a_duplicate(staff: Any, client: TestClient) -> None:
    admin = staff("admin")
    assert post_csv(admin, GOOD).status_code == 200
    again = HEADER + "新的议题,education,7,\n 义务教育入学政策 ,education,8,\n"
    assert bad_lines(post_csv(admin, again)) == [(3, "topic")]
    assert "the plan of 2027" in post_csv(admin, again).json()["lines"][0]["message"]
    assert len(plan_of(client)) == 3
    # Another year is another plan.
    assert post_csv(admin, GOOD, year=2028).json() == {"imported": 3}


def test_files_that_are_not_a_plan_are_refused_whole(staff: Any) -> None:
    admin = staff("admin")
    assert bad_lines(post_csv(admin, b"")) == [(0, "file")]
    assert bad_lines(post_csv(admin, HEADER)) == [(2, "")]
    assert bad_lines(post_csv(admin, "title,unit,month\n议题,education,5\n")) == [(1, "header")]
    assert bad_lines(post_csv(admin, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")) == [(0, "file")]
    assert bad_lines(post_csv(admin, b"\xff\xfe\xff\xfe" * 10)) == [(0, "file")]
    refused = post_csv(admin, b"\xff\xfe\xff\xfe")
    assert "UTF-8" in refused.json()["lines"][0]["message"]
    as_json = post_csv(admin, GOOD, content_type="application/json")
    assert bad_lines(as_json) == [(0, "file")]
    many = HEADER + "".join(f"议题{n},education,5,\n" for n in range(501))
    assert bad_lines(post_csv(admin, many)) == [(502, "")]
    huge = HEADER + "".join(f"议题{n:07d},education,5,{'x' * 60}\n" for n in range(12000))
    assert post_csv(admin, huge).status_code == 413
    assert staff("admin").get("/api/plan?year=2027").json()["items"] == []
    assert post_csv(admin, GOOD, year=1999).status_code == 422


def test_only_the_office_imports(staff: Any, client: TestClient) -> None:
    assert post_csv(client, GOOD).status_code == 401
    editor = staff("editor", "education")
    response = post_csv(editor, GOOD)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert plan_of(client) == []


def test_the_office_enters_and_deletes_an_item(staff: Any, client: TestClient,
                                               db: Session) -> None:
    admin = staff("admin")
    body = {"year": 2027, "topic": "养老服务驿站建设", "unit_code": "civil-affairs",
            "month": 10, "theme": "elderly-care"}
    created = admin.post("/api/plan/items", json=body)
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["unit"]["code"] == "civil-affairs" and item["theme_name"]
    assert [s["step"] for s in item["steps"]] == ["material", "script", "recording",
                                                  "announced", "archived"]
    assert admin.post("/api/plan/items", json=body).json()["error"] == "duplicate_topic"
    wrong = admin.post("/api/plan/items", json={**body, "topic": "x", "unit_code": "nope"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "unit_code"
    assert admin.post("/api/plan/items", json={**body, "month": 0}).status_code == 422
    editor = staff("editor", "civil-affairs")
    assert editor.post("/api/plan/items", json={**body, "topic": "y"}).status_code == 403
    assert editor.delete(f"/api/plan/items/{item['id']}").status_code == 403
    assert admin.delete(f"/api/plan/items/{item['id']}").status_code == 204
    assert plan_of(client) == []
    assert admin.delete(f"/api/plan/items/{item['id']}").status_code == 404
    actions = [e.action for e in db.exec(select(AuditEntry).where(
        AuditEntry.entity == "plan_item").order_by(col(AuditEntry.id)))]
    assert actions == ["plan.create", "plan.delete"]


def broadcast(admin: TestClient, db: Session, unit: str = "education", **more: Any) -> int:
    body = event_body(db, unit, kind="broadcast", mode="online", venue="", address="",
                      capacity=0, registration_opens_at=None, registration_closes_at=None,
                      premiere_at="2027-03-10T10:00:00+08:00", **more)
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def test_linking_an_item_to_its_broadcast(staff: Any, client: TestClient,
                                          db: Session) -> None:
    admin = staff("admin")
    assert post_csv(admin, GOOD).status_code == 200
    first, second = plan_of(client)[1]["id"], plan_of(client)[0]["id"]  # education, commerce
    own = broadcast(admin, db)
    editor = staff("editor", "education")
    linked = editor.put(f"/api/plan/items/{first}", json={"event_id": own})
    assert linked.status_code == 200, linked.text
    assert linked.json()["event_id"] == own and linked.json()["state"] != "planned"
    # The public does not see a draft's id; staff do.
    assert plan_of(client)[1]["event_id"] is None
    assert plan_of(admin)[1]["event_id"] == own
    # One session carries one item.
    third = admin.post("/api/plan/items", json={"year": 2027, "topic": "第二个教育议题",
                                                "unit_code": "education", "month": 6}).json()
    taken = admin.put(f"/api/plan/items/{third['id']}", json={"event_id": own})
    assert taken.status_code == 409 and taken.json()["error"] == "already_linked"
    # Another unit's editor may not; nor a session of another unit, nor another kind.
    other = staff("editor", "commerce")
    assert other.put(f"/api/plan/items/{first}", json={"event_id": None}).status_code == 403
    assert staff("host").put(f"/api/plan/items/{first}",
                             json={"event_id": None}).status_code == 403
    commerce = broadcast(admin, db, "commerce")
    refused = editor.put(f"/api/plan/items/{first}", json={"event_id": commerce})
    assert refused.status_code == 422 and refused.json()["error"] == "other_unit"
    meeting = admin.post("/api/events", json=event_body(db, "education")).json()["id"]
    refused = editor.put(f"/api/plan/items/{first}", json={"event_id": meeting})
    assert refused.json()["error"] == "not_broadcast"
    missing = editor.put(f"/api/plan/items/{first}", json={"event_id": 999999})
    assert missing.status_code == 422 and missing.json()["field"] == "event_id"
    assert client.put(f"/api/plan/items/{first}", json={"event_id": None}).status_code == 401
    # A cancelled session carries nothing.
    cancelled = broadcast(admin, db)
    for status in ("pending_review", "published"):
        assert admin.post(f"/api/events/{cancelled}/status",
                          json={"status": status}).status_code == 200
    assert admin.post(f"/api/events/{cancelled}/status",
                      json={"status": "cancelled", "reason": "改期"}).status_code == 200
    refused = editor.put(f"/api/plan/items/{first}", json={"event_id": cancelled})
    assert refused.status_code == 409 and refused.json()["error"] == "event_cancelled"
    # Null unlinks, and the session is free for another item of its unit.
    assert editor.put(f"/api/plan/items/{first}",
                      json={"event_id": None}).json()["event_id"] is None
    assert admin.put(f"/api/plan/items/{second}",
                     json={"event_id": commerce}).json()["event_id"] == commerce
    assert admin.put("/api/plan/items/999999", json={"event_id": None}).status_code == 404
    links = [e.action for e in db.exec(select(AuditEntry).where(
        AuditEntry.action == "plan.link"))]
    assert len(links) == 3
    assert db.exec(select(AuditEntry).where(AuditEntry.action == "plan.import")).first()


def test_a_cohost_broadcast_may_carry_the_item(staff: Any, client: TestClient,
                                               db: Session) -> None:
    admin = staff("admin")
    assert post_csv(admin, GOOD).status_code == 200
    item = plan_of(client)[1]["id"]  # education's
    shared = broadcast(admin, db, "culture", cohost_unit_ids=[unit_id(db, "education")])
    own = broadcast(admin, db)
    other = broadcast(admin, db, "commerce")
    plan_item = db.get(PlanItem, item)
    assert plan_item is not None
    offered = [e.id for e in plan_edit.candidates(db, plan_item)]
    assert shared in offered and own in offered and other not in offered
    linked = admin.put(f"/api/plan/items/{item}", json={"event_id": shared})
    assert linked.status_code == 200, linked.text


def test_the_plan_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/plan", "/api/plan/import", "/api/plan/items",
                 "/api/plan/items/{item_id}", "/api/plan/items/{item_id}/files",
                 "/api/plan/files/{file_id}"):
        assert path in paths, path
    ok = paths["/api/plan"]["get"]["responses"]["200"]["content"]["application/json"]
    assert "PlanPublic" in str(ok)
