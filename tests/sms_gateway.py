"""A local stand-in for Alibaba Cloud's SMS API: a real HTTP server on 127.0.0.1 that records
what the SDK sends (SendSms's query parameters) and answers as the API does."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from server.config import Settings

TEMPLATES = {"registration_confirmed": "SMS_100", "registration_waitlisted": "SMS_101",
             "promoted": "SMS_102", "reminder": "SMS_103", "event_changed": "SMS_104",
             "event_cancelled": "SMS_105", "recovery_code": "SMS_106"}


class FakeSmsApi:
    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        # number -> the error code the API answers for it (e.g. isv.BUSINESS_LIMIT_CONTROL)
        self.refuse: dict[str, str] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode()
                fields = {**parse_qs(urlsplit(self.path).query), **parse_qs(body)}
                sent = {name: values[0] for name, values in fields.items()}
                api.received.append(sent)
                refused = api.refuse.get(sent.get("PhoneNumbers", ""))
                answer: dict[str, Any] = (
                    {"Code": refused, "Message": "触发小时级流控Permits:5", "RequestId": "R2"}
                    if refused else
                    {"Code": "OK", "Message": "OK", "BizId": f"90061974{len(api.received)}^0",
                     "RequestId": "R1"})
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def texts(self, phone: str) -> list[dict[str, Any]]:
        """What reached the API for `phone`: template code and parameters."""
        return [{"template": sent["TemplateCode"], "params": json.loads(sent["TemplateParam"]),
                 "sign": sent["SignName"]}
                for sent in self.received if sent.get("PhoneNumbers") == phone]


def with_sms(settings: Settings, api: FakeSmsApi) -> Settings:
    return settings.model_copy(update={
        "sms_access_key_id": "LTAI-test", "sms_access_key_secret": "test-secret",
        "sms_sign_name": "西城政务开放", "sms_endpoint": api.url,
        "sms_templates": ",".join(f"{topic}={code}" for topic, code in TEMPLATES.items())})


def sms_env(settings: Settings) -> dict[str, str]:
    """The same configuration as environment variables (for a `kaifang` subprocess)."""
    return {"KAIFANG_SMS_ACCESS_KEY_ID": settings.sms_access_key_id,
            "KAIFANG_SMS_ACCESS_KEY_SECRET": settings.sms_access_key_secret,
            "KAIFANG_SMS_SIGN_NAME": settings.sms_sign_name,
            "KAIFANG_SMS_ENDPOINT": settings.sms_endpoint,
            "KAIFANG_SMS_TEMPLATES": settings.sms_templates}


@pytest.fixture
def sms_api() -> Iterator[FakeSmsApi]:
    api = FakeSmsApi()
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    yield api
    api.server.shutdown()
    api.server.server_close()


def texted_code(sms_api: FakeSmsApi, phone: str) -> str:
    text = sms_api.texts(phone)[-1]
    assert text["template"] == "SMS_106"
    return str(text["params"]["code"])
