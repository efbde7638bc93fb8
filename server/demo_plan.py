"""The demo's issue-18 part: themes on the sessions, two series, the year's broadcast plan with
its items in different states, and citizens' questions answered (with outcomes) or still open
past the answer deadline. Called from server.demo once the sessions exist.

The plan's items go through events.plan_edit and events.plan_files as the office would enter
them; themes, series and questions are plain rows (their own modules' rules are for requests).
Where an item stands depends on the day the demo is loaded: the states are events.plan's.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlmodel import Session

from events import hosts, plan_edit, plan_files
from events.lifecycle import change_status, close_event
from events.models import (
    Event,
    EventKind,
    EventMode,
    EventStatus,
    EventTheme,
    Moderation,
    Series,
    StaffUser,
)
from events.sessions import EventCreate, create_event
from events.timeutil import LOCAL_TZ, local, utcnow
from events.units import get_unit_by_code
from server.config import Settings
from streaming.models import Question

# Demo session key -> its themes (events/data/themes.json).
THEMES = {
    "edu-admission-meeting": ("education",),
    "yuetan-alleys-meeting": ("environment",),
    "hr-jobs-meeting": ("employment",),
    "publicity-preschool-broadcast": ("education",),
    "civil-elderly-open-day": ("elderly-care",),
    "environment-air-report": ("air-quality", "environment"),
    "shichahai-report": ("culture",),
    "city-toilets-meeting": ("environment",),
    "health-family-doctor-day": ("health",),
    "housing-elevator-dialogue": ("housing",),
    "culture-center-day": ("culture",),
    "dashilan-open-day": ("culture", "major-projects"),
    "landscaping-forest-meeting": ("environment",),
    "civil-assistance-meeting": ("social-assistance",),
    "publicity-elevator-broadcast": ("housing",),
    "edu-preschool-dialogue": ("education",),
    "health-report": ("health",),
    "housing-lottery-day": ("housing",),
    "environment-station-day": ("air-quality", "environment"),
    "publicity-heating-broadcast": ("air-quality",),
    "xichangan-open-day": ("government-services",),
    "hr-graduates-dialogue": ("employment",),
    "landscaping-park-day": ("environment",),
    "culture-free-access-meeting": ("culture",),
    "services-one-visit-dialogue": ("government-services",),
    "civil-elderly-dialogue": ("elderly-care",),
    "environment-sorting-day": ("environment",),
    "environment-water-day": ("environment", "major-projects"),
}

# Two more open days of the environment bureau, so that its series has three: key, title,
# summary, days from today (negative: held), venue, address.
OPEN_DAYS = (
    ("environment-sorting-day", "区环保局开放日：走进垃圾分类示范小区",
     "走进垃圾分类示范小区，了解桶前值守、厨余垃圾就地处理和再生资源回收体系。", -40,
     "展览路街道垃圾分类示范小区", "北京市西城区展览路"),
    ("environment-water-day", "区环保局开放日：再生水厂与河湖治理",
     "参观再生水厂处理工艺，了解河湖水质监测和黑臭水体治理成效。", 45,
     "西城区再生水厂", "北京市西城区西便门"),
)
SERIES = (
    ("environment", "政府开放日·环境保护系列",
     "区环保局全年开放日：空气质量监测、垃圾分类、再生水与河湖治理，市民可报名走进现场。",
     ("environment-sorting-day", "environment-station-day", "environment-water-day")),
    ("publicity", "政民互动直播间",
     "区委宣传部（区新闻办）按年初直播计划录制、预告并首播的政民互动节目，首播后可随时回看。",
     ("publicity-preschool-broadcast", "publicity-elevator-broadcast",
      "publicity-heating-broadcast", "publicity-winter-sports-broadcast")),
)
# Broadcasts carried out for the plan: key, topic, lead unit (a co-host of the broadcast),
# theme, and whether the unit's material and the press office's script are in.
LINKED = (
    ("publicity-preschool-broadcast", "学前教育资源扩充政策解读", "education", "education", True),
    ("publicity-elevator-broadcast", "老楼加装电梯一问一答", "housing", "housing", False),
    ("publicity-heating-broadcast", "冬季供暖与平房区煤改电", "city-management", "air-quality",
     True),
    ("publicity-winter-sports-broadcast", "冰雪运动进校园进社区", "sports", None, False),
)
# Items without a session yet: topic, lead unit, months from this month, theme.
UNLINKED = (
    ("城市低保与临时救助政策解读", "civil-affairs", -3, "social-assistance"),
    ("高校毕业生就业创业扶持政策", "hr-social-security", 0, "employment"),
    ("大气污染防治与重污染天气应对", "environment", 1, "air-quality"),
    ("家庭医生签约服务怎么用", "health", 2, "health"),
    ("公共文化设施免费开放", "culture", 3, "culture"),
    ("便民商业网点建设提升", "commerce", 5, "government-services"),
)
# Questions to held sessions: key, nickname, question, votes, how it was answered (live,
# written, or "" still open), the answer, outcome, outcome's reason.
QUESTIONS = (
    ("publicity-preschool-broadcast", "西城家长", "新增的学前学位什么时候可以登记？", 32, "live",
     "新增学位在明年秋季学期投入使用，登记时间将提前一个月在门户网站公布。", "", ""),
    ("publicity-preschool-broadcast", "月坛居民", "建议普惠性幼儿园公布每月收费明细。", 27,
     "written",
     "采纳。各普惠性幼儿园将于下学期起在园门口和门户网站按月公示收费明细。", "adopted", ""),
    ("publicity-preschool-broadcast", "新街口妈妈", "建议幼儿园延长托管到晚上七点。", 19, "written",
     "部分采纳：试点幼儿园延长托管至18:30，其余幼儿园视师资情况逐步推开。", "partly_adopted", ""),
    ("publicity-preschool-broadcast", "德胜爸爸", "建议取消幼儿园入园的户籍要求。", 11, "written",
     "感谢建议。", "not_adopted",
     "入园条件依据本市学前教育入园政策确定，区级无权调整户籍要求；随迁子女可按规定申请普惠性学位。"),
    ("housing-elevator-dialogue", "展览路居民", "一层住户不同意加装电梯怎么办？", 45, "live",
     "街道将组织协商，并对一层住户的采光、噪声影响给予补偿。", "", ""),
    ("housing-elevator-dialogue", "老楼住户", "建议加装电梯的补贴直接拨付到小区。", 23, "written",
     "不予采纳。", "not_adopted",
     "补贴按市级规定须在电梯验收合格后拨付给实施主体，以保证资金安全。"),
    ("housing-elevator-dialogue", "金融街居民", "加装电梯后的维保费用由谁承担？", 17, "", "", "",
     ""),
)


def _weekday(day: date, step: int) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=step)
    return day


def _open_day(db: Session, admin: StaffUser, host: StaffUser, unit_id: int, today: date,
              spec: tuple[str, str, str, int, str, str]) -> Event:
    _key, title, summary, days, venue, address = spec
    day = _weekday(today + timedelta(days=days), 1 if days > 0 else -1)
    starts = datetime.combine(day, time(9, 30), tzinfo=LOCAL_TZ)
    event = create_event(db, admin, EventCreate(
        kind=EventKind.open_day, unit_id=unit_id, title=title, summary=summary,
        starts_at=starts, ends_at=starts + timedelta(hours=2, minutes=30),
        mode=EventMode.in_person, venue=venue, address=address, capacity=40,
        registration_opens_at=datetime.combine(day - timedelta(days=21), time(9),
                                               tzinfo=LOCAL_TZ),
        registration_closes_at=datetime.combine(day - timedelta(days=1), time(17),
                                                tzinfo=LOCAL_TZ),
        moderation=Moderation.post))
    assert event.id is not None
    change_status(db, admin, event.id, EventStatus.pending_review)
    change_status(db, admin, event.id, EventStatus.published)
    hosts.assign(db, admin, event, host.id or 0)
    if days < 0:
        close_event(db, admin, event.id, "居民参观桶前值守点和厨余垃圾处理站，提出意见9条，"
                    "区环保局承诺在下次开放日通报办理情况。", 36, "按现场纸质签到表统计")
    return event


def _series(db: Session, admin: StaffUser, sessions: dict[str, Event]) -> None:
    for unit_code, title, summary, keys in SERIES:
        series = Series(title=title, unit_id=get_unit_by_code(db, unit_code).id or 0,
                        summary=summary, created_by=admin.id)
        db.add(series)
        db.flush()
        for key in keys:
            if key in sessions:
                sessions[key].series_id = series.id
                db.add(sessions[key])


def _plan(db: Session, settings: Settings, admin: StaffUser, sessions: dict[str, Event],
          today: date) -> int:
    made = 0
    for key, topic, unit_code, theme, files in LINKED:
        event = sessions.get(key)
        if event is None or event.id is None:
            continue
        played = local(event.premiere_at or event.starts_at).date()
        item = plan_edit.create_item(db, admin, plan_edit.PlanItemCreate(
            year=played.year, topic=topic, unit_code=unit_code, month=played.month, theme=theme))
        assert item.id is not None
        plan_edit.link_event(db, admin, item.id, event.id)
        if files:
            plan_files.store(db, admin, item, "material", "牵头单位材料.txt",
                             f"{topic}：政策要点、常见问题与答复口径。".encode(), settings)
            plan_files.store(db, admin, item, "script", "节目脚本.txt",
                             f"{topic}：开场、嘉宾介绍、政策解读、网友提问。".encode(), settings)
        made += 1
    for topic, unit_code, months, theme in UNLINKED:
        month = min(max(today.month + months, 1), 12)
        plan_edit.create_item(db, admin, plan_edit.PlanItemCreate(
            year=today.year, topic=topic, unit_code=unit_code, month=month, theme=theme))
        made += 1
    return made


def _questions(db: Session, admin: StaffUser, sessions: dict[str, Event]) -> int:
    made = 0
    for key, author, text, votes, how, answer, outcome, reason in QUESTIONS:
        event = sessions.get(key)
        if event is None or event.id is None:
            continue
        ended = event.ends_at
        question = Question(event_id=event.id, author=author, text=text, votes=votes,
                            state="answered" if how else "approved", outcome=outcome,
                            outcome_reason=reason, created_at=event.starts_at - timedelta(days=2),
                            decided_at=event.starts_at - timedelta(days=1), decided_by=admin.id)
        if how == "live":
            question.answered_at = event.starts_at + timedelta(minutes=20)
            question.answered_by = admin.id
            question.answered_at_video_time = 600.0 + 60 * made
        if answer:
            question.answer, question.answer_by = answer, admin.id
            question.answer_at = ended + timedelta(days=3) if how == "written" else ended
        if how == "written":
            question.answered_at, question.answered_by = question.answer_at, admin.id
        db.add(question)
        made += 1
    db.flush()
    return made


def add_plan(db: Session, settings: Settings, staff: dict[str, StaffUser],
             sessions: dict[str, Event]) -> list[str]:
    """Adds the issue-18 rows to the demo's sessions (`sessions` by plan key, extended with the
    environment bureau's two open days); returns lines for the summary."""
    admin, host = staff["admin"], staff["host"]
    today = local(utcnow()).date()
    environment = get_unit_by_code(db, "environment").id or 0
    for spec in OPEN_DAYS:
        sessions[spec[0]] = _open_day(db, admin, host, environment, today, spec)
    for key, codes in THEMES.items():
        if key in sessions and sessions[key].id is not None:
            db.add_all(EventTheme(event_id=sessions[key].id or 0, theme_code=code)
                       for code in codes)
    _series(db, admin, sessions)
    items = _plan(db, settings, admin, sessions, today)
    questions = _questions(db, admin, sessions)
    db.flush()
    return [f"Broadcast plan: {items} items of {today.year}; {len(SERIES)} series; "
            f"{questions} citizens' questions (answered, with outcomes, and one still open)."]
