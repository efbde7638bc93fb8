"""Text messages through Alibaba Cloud SMS (dysmsapi 2017-05-25, its official SDK).

A text is a template the provider approved beforehand, filled with parameters: each topic of
the outbox (events.notify) names its template code in KAIFANG_SMS_TEMPLATES and carries its
parameters in `sms_params`. The provider answers HTTP 200 with `Code` "OK" and a `BizId`, or
another code (e.g. `isv.BUSINESS_LIMIT_CONTROL`, a number's hourly limit): a DeliveryError that
names the code, never the number, and the message is retried. The SDK's own errors quote the
request URL, which holds the number: only their code or their type is kept.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from events.delivery import DeliveryError
from events.models import OutboxMessage
from server.config import Settings

log = logging.getLogger("kaifang.sms")


class _WithoutNumbers(logging.Filter):
    """The SDK puts the number in the request's URL, which urllib3 logs at DEBUG: not here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "PhoneNumbers=" not in record.getMessage()


logging.getLogger("urllib3.connectionpool").addFilter(_WithoutNumbers())

# The provider refuses a template variable longer than this.
MAX_PARAM_CHARS = 35
CONNECT_TIMEOUT_MS = 5_000
READ_TIMEOUT_MS = 10_000


def template_params(message: OutboxMessage) -> dict[str, str]:
    try:
        params = json.loads(message.sms_params or "{}")
    except ValueError:
        params = {}
    if not isinstance(params, dict):
        return {}
    return {str(name): str(value)[:MAX_PARAM_CHARS] for name, value in params.items()}


class AliyunSmsGateway:
    """Channel "sms" when KAIFANG_SMS_ACCESS_KEY_ID, _SECRET, _SIGN_NAME and _TEMPLATES are set."""

    def __init__(self, settings: Settings) -> None:
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.models import Config

        endpoint = settings.sms_endpoint.strip()
        protocol = None
        if "://" in endpoint:  # http://127.0.0.1:8080: a local or private gateway
            parts = urlsplit(endpoint)
            protocol, endpoint = parts.scheme, parts.netloc
        config = Config(access_key_id=settings.sms_access_key_id,
                        access_key_secret=settings.sms_access_key_secret,
                        endpoint=endpoint or None, protocol=protocol,
                        connect_timeout=CONNECT_TIMEOUT_MS, read_timeout=READ_TIMEOUT_MS)
        self.client = Client(config)
        self.sign_name = settings.sms_sign_name
        self.templates = settings.sms_template_codes

    def send_text(self, phone: str, message: OutboxMessage) -> None:
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest

        template = self.templates.get(message.topic)
        if not template:
            raise DeliveryError(f"no SMS template for {message.topic} in KAIFANG_SMS_TEMPLATES")
        request = SendSmsRequest(
            phone_numbers=phone, sign_name=self.sign_name, template_code=template,
            template_param=json.dumps(template_params(message), ensure_ascii=False))
        try:
            response = self.client.send_sms(request)
        except Exception as exc:  # the SDK's text quotes the URL, and so the number
            code = getattr(exc, "code", None)
            raise DeliveryError(f"the SMS gateway refused the text ({code})" if code else
                                f"the SMS gateway could not be reached "
                                f"({type(exc).__name__})") from None
        body = response.body
        code = getattr(body, "code", None) if body is not None else None
        if code != "OK":
            raise DeliveryError(f"the SMS gateway answered {code or 'nothing'}")
        log.info("message %s (%s) accepted by the SMS gateway as %s", message.id,
                 message.topic, getattr(body, "biz_id", ""))
