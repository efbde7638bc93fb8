"""Demo citizens: registrations for the upcoming sessions whose registration is open."""

from __future__ import annotations

import random

from sqlmodel import Session

from events.models import Event, EventStatus
from events.registration import RegistrationIn, RegistrationRequest, register_many
from events.sessions import registration_state
from server.config import Settings
from server.security import Signer

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["建国", "秀英", "桂兰", "志强", "海燕", "俊杰", "丽娟", "明", "静", "磊", "婷", "伟",
         "晓东", "玉珍", "春梅", "子轩", "雨涵", "国庆", "淑华", "文博"]
QUESTIONS = ["老旧小区加装电梯的补贴什么时候能到位？", "孩子入学需要准备哪些材料？",
             "社区养老驿站能否增加周末助餐？", "胡同里的停车问题有什么规划？", ""]


def add_registrations(db: Session, settings: Settings, events: list[Event],
                      seed: int = 20181) -> list[str]:
    """Registers demo citizens; one session is filled past capacity so its waitlist shows."""
    rng = random.Random(seed)
    signer = Signer(settings.resolved_secret_key())
    open_events = [e for e in events
                   if e.status == EventStatus.published and registration_state(e) == "open"]
    total = 0
    for index, event in enumerate(open_events):
        wanted = (event.capacity + 3) if index == 0 and event.capacity else \
            rng.randint(3, max(4, (event.capacity or 40) * 2 // 3))
        people = [RegistrationRequest(event.id or 0, RegistrationIn(
            name=rng.choice(SURNAMES) + rng.choice(GIVEN), phone=f"139{event.id or 0:03d}{n:05d}",
            question=rng.choice(QUESTIONS), consent=True)) for n in range(wanted)]
        register_many(db, signer, people)
        total += wanted
    return [f"Demo registrations: {total} over {len(open_events)} sessions open for registration."]
