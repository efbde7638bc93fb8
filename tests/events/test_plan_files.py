"""The plan's step files: who may upload, read and delete them; what is accepted; never public."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from events.models import AuditEntry, PlanFile
from server.config import Settings

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def new_item(admin: TestClient) -> int:
    created = admin.post("/api/plan/items", json={"year": 2027, "topic": "垃圾分类政策解读",
                                                  "unit_code": "city-management", "month": 6})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def upload(client: TestClient, item_id: int, step: str, name: str, data: bytes) -> Any:
    return client.post(f"/api/plan/items/{item_id}/files?step={step}",
                       files={"file": (name, data, "application/octet-stream")})


def test_the_lead_unit_uploads_material_and_the_press_office_the_script(
        staff: Any, client: TestClient, db: Session, settings: Settings) -> None:
    admin = staff("admin")
    item = new_item(admin)
    lead = staff("editor", "city-management")
    press = staff("editor", "publicity")
    other = staff("editor", "education")

    material = upload(lead, item, "material", "../../etc/汇报 材料<1>.pdf", PDF)
    assert material.status_code == 201, material.text
    assert material.json()["filename"] == "汇报 材料1.pdf"
    assert material.json()["size_bytes"] == len(PDF)
    assert upload(lead, item, "script", "脚本.docx", docx()).status_code == 403
    script = upload(press, item, "script", "脚本.docx", docx())
    assert script.status_code == 201, script.text
    assert upload(press, item, "material", "材料.pdf", PDF).status_code == 403
    assert upload(other, item, "material", "材料.pdf", PDF).status_code == 403
    assert upload(staff("host"), item, "material", "材料.pdf", PDF).status_code == 403
    assert upload(client, item, "material", "材料.pdf", PDF).status_code == 401

    # The file is kept under the data dir with a name of ours, and downloads as an attachment.
    row = db.exec(select(PlanFile).where(PlanFile.id == material.json()["id"])).one()
    stored = Path(settings.data_dir) / "plan" / str(item) / row.stored_key
    assert stored.read_bytes() == PDF and ".." not in row.stored_key
    got = lead.get(material.json()["url"])
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["content-type"] == "application/pdf"
    assert "no-store" in got.headers["cache-control"]
    assert press.get(material.json()["url"]).status_code == 200
    assert admin.get(script.json()["url"]).status_code == 200
    assert other.get(material.json()["url"]).status_code == 404
    assert client.get(material.json()["url"]).status_code == 401

    # Staff of the item's unit see the files in the item; another unit sees the steps only.
    steps = lead.get(f"/api/plan/items/{item}").json()["steps"]
    assert [f["filename"] for f in steps[0]["files"]] == ["汇报 材料1.pdf"]
    assert [f["filename"] for f in steps[1]["files"]] == ["脚本.docx"]
    assert all(s["files"] == [] for s in other.get(f"/api/plan/items/{item}").json()["steps"])
    assert client.get(f"/api/plan/items/{item}").status_code == 401
    public = client.get("/api/plan?year=2027").text
    assert "汇报" not in public and "files" not in public

    # Deleting: the uploader's unit or the office.
    assert press.delete(material.json()["url"]).status_code == 403
    assert other.delete(material.json()["url"]).status_code == 404
    assert lead.delete(material.json()["url"]).status_code == 204
    assert not stored.exists()
    assert lead.get(material.json()["url"]).status_code == 404
    assert admin.delete(script.json()["url"]).status_code == 204
    actions = [e.action for e in db.exec(select(AuditEntry).where(
        AuditEntry.entity == "plan_item"))]
    assert actions.count("plan.file_upload") == 2 and actions.count("plan.file_delete") == 2


def test_only_documents_of_the_allowed_kinds_and_size(staff: Any) -> None:
    admin = staff("admin")
    item = new_item(admin)
    refused = upload(admin, item, "material", "木马.exe", b"MZ\x90\x00")
    assert refused.status_code == 422 and refused.json()["error"] == "unsupported_type"
    disguised = upload(admin, item, "material", "材料.pdf", b"<html>not a pdf</html>")
    assert disguised.status_code == 422 and disguised.json()["field"] == "file"
    assert upload(admin, item, "material", "材料.docx", b"PK\x03\x04garbage").status_code == 422
    assert upload(admin, item, "material", "空.pdf", b"").json()["error"] == "empty_file"
    assert upload(admin, item, "material", "说明.txt", "说明文字".encode("gb18030")) \
        .status_code == 201
    assert upload(admin, item, "material", "旧.doc",
                  b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100).status_code == 201
    big = upload(admin, item, "material", "大.pdf", b"%PDF-" + b"0" * (20 * 1024 * 1024))
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    wrong_step = admin.post(f"/api/plan/items/{item}/files?step=minutes",
                            files={"file": ("a.pdf", PDF, "application/pdf")})
    assert wrong_step.status_code == 422
    no_file = admin.post(f"/api/plan/items/{item}/files?step=material", data={"x": "1"})
    assert no_file.status_code == 422 and no_file.json()["error"] == "file_required"
    assert upload(admin, 999999, "material", "a.pdf", PDF).status_code == 404


def test_deleting_an_item_deletes_its_files(staff: Any, settings: Settings) -> None:
    admin = staff("admin")
    item = new_item(admin)
    assert upload(admin, item, "material", "材料.pdf", PDF).status_code == 201
    folder = Path(settings.data_dir) / "plan" / str(item)
    assert len(list(folder.iterdir())) == 1
    assert admin.delete(f"/api/plan/items/{item}").status_code == 204
    assert not folder.exists()
