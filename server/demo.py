"""`kaifang demo`: a believable Xicheng district, entered through the domain functions so the
audit log, the review queue and the portal look as they would after a year of real use."""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlmodel import Session, col, select

from events import cohosts, hosts
from events.lifecycle import change_status, close_event
from events.lifecycle import postpone as postpone_event
from events.locking import write_lock
from events.models import Event, EventKind, EventMode, EventStatus, Moderation, Role, StaffUser
from events.sessions import EventCreate, EventUpdate, MaterialIn, create_event, update_event
from events.staff import UserCreate, create_user
from events.timeutil import LOCAL_TZ, utcnow
from events.units import get_unit_by_code
from server.config import Settings
from server.demo_plan import add_plan
from server.demo_recordings import add_recordings
from server.demo_registrations import add_registrations

DEFAULT_PASSWORD = "kaifang-demo"
SEED = 2018  # the year of the work plan; fixed so every demo district is the same
K, M = EventKind, EventMode
S = EventStatus

# username, role, unit code, display name
STAFF = [
    ("admin", Role.admin, None, "区政务公开办"),
    ("host", Role.host, None, "政民互动直播间主持人"),
    ("edu", Role.editor, "education", "区教委信息公开专员"),
    ("civil", Role.editor, "civil-affairs", "区民政局信息公开专员"),
    ("shichahai", Role.editor, "shichahai", "什刹海街道信息公开专员"),
    ("yuetan", Role.editor, "yuetan", "月坛街道信息公开专员"),
]

SITE = "https://www.bjxch.gov.cn/xxgk"
SLOTS = [(9, 0), (9, 30), (10, 0), (14, 0), (14, 30), (15, 0)]
HOURS = {K.open_meeting: 2.0, K.open_day: 2.5, K.public_report: 2.0, K.chief_dialogue: 1.5,
         K.broadcast: 0.75}
SEATS = {K.open_meeting: [10, 15, 20, 30], K.open_day: [30, 40, 50, 80],
         K.public_report: [60, 80, 100, 150], K.chief_dialogue: [50, 80, 100], K.broadcast: [0]}


@dataclass(frozen=True)
class Plan:
    """One demo session. `past` places it in the year so far (0 = January, 1 = last week);
    `ahead` is days from today. `state` is where the story leaves it."""

    key: str
    unit: str
    kind: EventKind
    title: str
    summary: str
    state: str
    past: float | None = None
    ahead: int | None = None
    venue: str = ""
    address: str = ""
    mode: EventMode = M.in_person
    capacity: int | None = None
    cohosts: tuple[str, ...] = ()
    materials: tuple[tuple[str, str], ...] = ()
    minutes: str = ""
    attendees: int | None = None
    reason: str = ""


PLANS = [
    # ---- held this year: closed out with minutes, some archived, one awaiting its close-out
    Plan("edu-admission-meeting", "education", K.open_meeting, "区教委会议开放：义务教育入学政策",
         "邀请家长代表、人大代表和政协委员列席区教委专题会，听取义务教育阶段入学政策的制定过程，"
         "就就近入学范围、随迁子女入学要求和流程提出意见。", "archived", past=0.1,
         venue="区教委三层第一会议室", address="北京市西城区西直门南小街",
         materials=(("义务教育阶段入学政策解读", f"{SITE}/zcjd/ywjy-ruxue.html"),),
         minutes="会议通报了入学政策的主要调整。列席代表提出意见12条，当场答复7条，其余5条于会后"
                 "10个工作日内书面答复，并在门户网站公开。"),
    Plan("yuetan-alleys-meeting", "yuetan", K.open_meeting, "月坛街道会议开放：背街小巷环境整治",
         "街道工委会议向居民开放，议题为背街小巷环境整治方案和“开墙打洞”治理后的便民网点补充。",
         "ended", past=0.14, venue="月坛街道办事处二层会议室", address="北京市西城区月坛北小街2号",
         minutes="会议审议了整治方案，居民代表建议在整治后保留早餐点和修车点，街道采纳并纳入方案。"),
    Plan("hr-jobs-meeting", "hr-social-security", K.open_meeting,
         "区人力社保局会议开放：就业创业扶持政策",
         "列席局务会，了解高校毕业生、就业困难人员就业创业补贴政策的调整和申领流程。", "ended",
         past=0.2, venue="区人力社保局四层会议室", address="北京市西城区西直门南小街",
         minutes="会议研究了补贴申领材料精简事项，取消两项证明材料；列席代表建议增加线上申领渠道。"),
    Plan("publicity-preschool-broadcast", "publicity", K.broadcast,
         "政民互动直播间：学前教育资源扩充解读", "区教委主要负责同志解读新增学前学位、普惠性幼儿园"
         "认定和入园登记安排。节目录制后按预告时间在门户网站首播，首播后可随时回看。", "archived",
         past=0.25, mode=M.online, cohosts=("education",),
         minutes="节目按时首播，收到网友提问46条，主责部门已逐条答复并在门户网站公开。"),
    Plan("civil-elderly-open-day", "civil-affairs", K.open_day, "区民政局开放日：社区养老服务驿站",
         "走进月坛街道社区养老服务驿站，了解助餐、助浴、日间照料等服务内容和运营补贴政策，"
         "现场体验适老化改造样板间。", "ended", past=0.3, venue="月坛街道社区养老服务驿站",
         address="北京市西城区月坛北街", cohosts=("yuetan",),
         minutes="参观驿站助餐点和日间照料室，居民就驿站收费标准、助浴服务预约提出意见，民政局承诺"
                 "一个月内公开各驿站服务价格。"),
    Plan("environment-air-report", "environment", K.public_report,
         "区环保局向公众报告：大气污染防治工作", "报告本年度大气污染防治措施、空气质量变化和下一步"
         "工作安排，现场回答居民提问。", "archived", past=0.35, venue="区政府第二会议室",
         address="北京市西城区二龙路27号",
         materials=(("西城区空气质量月报", f"{SITE}/hjbh/kqzl-yuebao.html"),),
         minutes="报告会通报了PM2.5年均浓度变化，居民关注餐饮油烟和施工扬尘，区环保局公布了"
                 "投诉渠道和办理时限。"),
    Plan("shichahai-report", "shichahai", K.public_report, "什刹海街道向公众报告",
         "街道向辖区居民和驻区单位代表报告背街小巷整治、胡同停车管理和历史文化街区保护工作进展，"
         "现场听取意见。", "ended", past=0.42, venue="什刹海街道办事处多功能厅",
         address="北京市西城区羊房胡同",
         minutes="报告会后收集意见31条，主要涉及胡同停车和游船噪声，已分派责任科室办理。"),
    Plan("city-toilets-meeting", "city-management", K.open_meeting,
         "区城市管理委会议开放：“厕所革命”与垃圾分类", "列席主任办公会，议题为公厕提升改造计划"
         "和生活垃圾分类示范片区建设。", "ended", past=0.46, venue="区城市管理委三层会议室",
         address="北京市西城区三里河路",
         minutes="会议确定了年内改造公厕名单，列席代表建议增加无障碍厕位，已纳入改造标准。"),
    Plan("health-family-doctor-day", "health", K.open_day,
         "区卫生计生委开放日：家庭医生签约服务", "走进德胜社区卫生服务中心，了解家庭医生签约、"
         "慢病管理和分级诊疗转诊流程。", "ended", past=0.5, venue="德胜社区卫生服务中心",
         address="北京市西城区德胜门外大街",
         cohosts=("desheng",),
         minutes="现场为居民演示签约和预约转诊流程，收集意见18条，主要涉及上门服务时间。"),
    Plan("housing-elevator-dialogue", "housing", K.chief_dialogue,
         "市民对话一把手：老楼加挂电梯怎么推进", "区房管局主要负责同志与居民面对面，就老旧小区"
         "加装电梯的意见征询、资金补贴和施工协调回答提问。问题提前征集，答复会后公开。", "ended",
         past=0.55, mode=M.hybrid, venue="区政务服务中心二层报告厅",
         address="北京市西城区三里河东路",
         cohosts=("construction", "social-affairs"),
         materials=(("既有多层住宅加装电梯工作指引", f"{SITE}/zcwj/jzdt-zhiyin.html"),),
         minutes="现场和网上共收到问题64条，当场答复22条，其余问题的书面答复已在门户网站公开。"),
    Plan("culture-center-day", "culture", K.open_day, "区文化委开放日：走进区第一文化馆",
         "参观排练厅、非遗展示区和公共阅读空间，了解公共文化设施免费开放和文化活动预约。", "ended",
         past=0.62, venue="西城区第一文化馆", address="北京市西城区西四北大街", capacity=0,
         minutes="当天接待居民和游客，现场登记文化活动需求，区文化委将据此安排下季度活动。"),
    Plan("dashilan-open-day", "dashilan", K.open_day, "大栅栏街道开放日：历史街区保护更新",
         "走进杨梅竹斜街，了解院落修缮、业态提升和居民共治的做法。", "ended", past=0.7,
         venue="杨梅竹斜街", address="北京市西城区杨梅竹斜街",
         minutes="居民就院落修缮资金和临街商户管理提出意见，街道将在下次会议开放时通报办理情况。"),
    Plan("work-safety-meeting", "work-safety", K.open_meeting,
         "区安全监管局会议开放：人员密集场所安全检查", "列席局务会，了解商场、学校周边等人员密集"
         "场所安全检查的安排和结果公开方式。", "ended", past=0.78, venue="区安全监管局会议室",
         address="北京市西城区二龙路27号",
         minutes="会议部署了年底安全检查，列席代表建议公开检查结果，局里决定按月在门户网站公示。"),
    Plan("commerce-shops-report", "commerce", K.public_report,
         "区商务委向公众报告：便民商业网点建设提升", "报告蔬菜零售、早餐、便利店等基本便民商业网点"
         "的建设情况和“一刻钟社区服务圈”覆盖进展。", "ended", past=0.86,
         venue="区商务委一层报告厅", address="北京市西城区二龙路27号",
         minutes="报告会通报了新增网点情况，居民建议在老旧小区周边补充早餐点，已列入明年计划。"),
    Plan("landscaping-forest-meeting", "landscaping", K.open_meeting,
         "区园林绿化局会议开放：“留白增绿”与城市森林", "列席局务会，议题为拆违腾退地块的绿化方案"
         "和口袋公园建设。", "unclosed", past=0.95, venue="区园林绿化局会议室",
         address="北京市西城区月坛北街"),
    # ---- upcoming and published
    Plan("shichahai-parking-meeting", "shichahai", K.open_meeting,
         "什刹海街道会议开放：胡同停车自治管理", "街道工委会议向居民开放，讨论胡同停车自治"
         "管理公约和错时停车方案，欢迎居民报名列席。", "published", ahead=4,
         venue="什刹海街道办事处三层会议室", address="北京市西城区羊房胡同"),
    Plan("civil-assistance-meeting", "civil-affairs", K.open_meeting,
         "区民政局会议开放：城市低保与临时救助标准", "列席局务会，了解城市低保、特困人员救助供养"
         "和临时救助标准的调整，以及申请审批程序的简化。", "published", ahead=6,
         venue="区民政局二层会议室", address="北京市西城区西直门南小街",
         materials=(("社会救助政策问答", f"{SITE}/shjz/zcwd.html"),)),
    Plan("publicity-elevator-broadcast", "publicity", K.broadcast,
         "政民互动直播间：老楼加挂电梯一问一答", "围绕居民最关心的加装电梯问题，区房管局录制专题"
         "节目，按预告时间首播，首播时可在线提问。", "published", ahead=8, mode=M.online,
         cohosts=("housing",)),
    Plan("edu-preschool-dialogue", "education", K.chief_dialogue,
         "市民对话一把手：学前教育入园与普惠幼儿园", "区教委主要负责同志回答家长关于入园登记、"
         "普惠性幼儿园收费和学位分布的问题。问题请在报名时提交。", "published", ahead=11,
         mode=M.hybrid, venue="区教委一层报告厅", address="北京市西城区西直门南小街"),
    Plan("health-report", "health", K.public_report,
         "区卫生计生委向公众报告：分级诊疗与医联体建设", "报告医联体建设、家庭医生签约服务和"
         "突发公共卫生事件季度发布机制的落实情况。", "published", ahead=13,
         venue="区卫生计生委会议室", address="北京市西城区西直门南小街"),
    Plan("housing-lottery-day", "housing", K.open_day, "区房管局开放日：公租房配租摇号现场",
         "邀请居民代表和媒体现场观摩公共租赁住房配租摇号，了解房源、分配对象和分配程序。",
         "published", ahead=16, venue="区房管局一层大厅",
         address="北京市西城区阜成门外大街", cohosts=("construction",),
         materials=(("公共租赁住房配租公告", f"{SITE}/bzxzf/gzf-peizu.html"),)),
    Plan("yuetan-report", "yuetan", K.public_report, "月坛街道向公众报告全年工作",
         "街道向居民报告全年重点工作和民生实事完成情况，现场和线上同步听取意见。", "published",
         ahead=20, mode=M.hybrid, venue="月坛街道文化活动中心",
         address="北京市西城区月坛北小街", capacity=0),
    Plan("environment-station-day", "environment", K.open_day, "区环保局开放日：空气质量监测站",
         "参观空气质量自动监测站，了解监测数据如何产生、如何发布。名额有限。", "published",
         ahead=24, venue="西城区空气质量监测站", address="北京市西城区官园", capacity=20),
    Plan("publicity-heating-broadcast", "publicity", K.broadcast,
         "政民互动直播间：冬季供暖与煤改电", "区城市管理委解读平房区煤改电运行、供暖保障和"
         "报修渠道。", "published", ahead=30, mode=M.online, cohosts=("city-management",)),
    Plan("xichangan-open-day", "xichangan", K.open_day,
         "西长安街街道开放日：“数字红墙”网格化服务", "走进街道全响应网格化服务管理中心，了解"
         "居民诉求从受理到办结的全过程。", "published", ahead=35,
         venue="西长安街街道网格化服务中心", address="北京市西城区府右街"),
    Plan("hr-graduates-dialogue", "hr-social-security", K.chief_dialogue,
         "市民对话一把手：高校毕业生就业服务", "区人力社保局主要负责同志回答毕业生和家长关于"
         "就业见习、创业担保贷款和社保补贴的问题。", "published", ahead=42, mode=M.hybrid,
         venue="区人力社保局报告厅", address="北京市西城区西直门南小街"),
    Plan("publicity-winter-sports-broadcast", "publicity", K.broadcast,
         "政民互动直播间：冰雪运动进校园、进社区", "区体育局介绍冬季冰雪系列活动、公共冰场开放和"
         "报名方式。", "published", ahead=52, mode=M.online, cohosts=("sports",)),
    Plan("jinrongjie-report", "jinrongjie", K.public_report,
         "金融街街道向公众报告：优化营商环境", "街道向驻区企业和居民报告营商环境优化措施和"
         "实施效果。", "published", ahead=58, venue="金融街街道办事处报告厅",
         address="北京市西城区金融大街"),
    Plan("landscaping-park-day", "landscaping", K.open_day, "区园林绿化局开放日：月坛公园城市森林",
         "在月坛公园了解城市森林建设和古树名木保护，户外活动，不限人数，无需报名也可参加。",
         "published", ahead=66, venue="月坛公园东门", address="北京市西城区月坛北街",
         capacity=0),
    Plan("culture-free-access-meeting", "culture", K.open_meeting,
         "区文化委会议开放：公共文化设施免费开放", "列席委务会，议题为公共文化设施免费开放时段"
         "和数字文化服务。", "published", ahead=74, venue="区文化委会议室",
         address="北京市西城区西四北大街"),
    Plan("tianqiao-report", "tianqiao", K.public_report, "天桥街道向公众报告",
         "街道报告演艺区建设、老旧小区综合整治和社区服务工作情况。", "published", ahead=90,
         venue="天桥街道社区服务中心", address="北京市西城区天桥南大街"),
    Plan("services-one-visit-dialogue", "government-services", K.chief_dialogue,
         "市民对话一把手：政务服务“最多跑一次”", "区政务服务办主要负责同志回答办事群众和企业"
         "关于“一窗受理”和网上办事的问题。", "published", ahead=104, mode=M.hybrid,
         venue="区政务服务中心二层报告厅",
         address="北京市西城区三里河东路", cohosts=("government-office",)),
    Plan("edu-admission-draft-meeting", "education", K.open_meeting,
         "区教委会议开放：义务教育入学政策（征求意见稿）", "列席区教委专题会，对下一学年入学政策"
         "征求意见稿提出意见。", "published", ahead=118, venue="区教委三层第一会议室",
         address="北京市西城区西直门南小街",
         materials=(("入学政策征求意见稿", f"{SITE}/yjzj/ruxue-zqyjg.html"),
                    ("上一年度入学政策解读", f"{SITE}/zcjd/ywjy-ruxue.html"))),
    # ---- cancelled and postponed, with the reason the public sees
    Plan("commerce-market-day", "commerce", K.open_day, "区商务委开放日：走进菜市场标准化改造",
         "参观标准化改造后的社区菜市场，了解价格公示和食品安全追溯。", "cancelled", ahead=18,
         venue="西城区社区菜市场", address="北京市西城区新街口南大街",
         reason="因承办场地设施检修，本次开放日取消，后续安排将另行发布。"),
    Plan("city-report", "city-management", K.public_report,
         "区城市管理委向公众报告：背街小巷精细化管理", "报告背街小巷环境整治、架空线入地和"
         "公厕提升改造进展。", "postponed", ahead=9, venue="区政府第二会议室",
         address="北京市西城区二龙路27号",
         reason="因区人大常委会会议时间调整，报告会顺延两周，已报名的居民无需重新报名。"),
    # ---- the units' work in progress: drafts and the admin's review queue
    Plan("edu-after-school-meeting", "education", K.open_meeting,
         "区教委会议开放：中小学课后服务", "列席专题会，了解中小学课后服务课程、收费和安全管理。",
         "pending_review", ahead=38, venue="区教委三层第一会议室",
         address="北京市西城区西直门南小街"),
    Plan("yuetan-community-day", "yuetan", K.open_day, "月坛街道开放日：“社区之家”示范点",
         "参观“社区之家”示范点，了解驻区单位向居民开放活动场地的做法。", "pending_review",
         ahead=28, venue="月坛街道社区之家", address="北京市西城区月坛北小街"),
    Plan("civil-elderly-dialogue", "civil-affairs", K.chief_dialogue,
         "市民对话一把手：社区养老服务驿站运营", "区民政局主要负责同志回答居民关于养老驿站服务、"
         "收费和补贴的问题。", "pending_review", ahead=64, mode=M.hybrid,
         venue="区民政局报告厅", address="北京市西城区西直门南小街"),
    Plan("edu-parents-day", "education", K.open_day, "区教委开放日：家长学校",
         "走进家长学校，了解家庭教育指导课程。", "draft", ahead=76, venue="西城区家长学校",
         address="北京市西城区西直门南小街"),
    Plan("shichahai-courtyards-meeting", "shichahai", K.open_meeting,
         "什刹海街道会议开放：历史文化街区院落修缮", "街道工委会议向居民开放。", "returned",
         ahead=80, venue="什刹海街道办事处三层会议室", address="北京市西城区羊房胡同",
         reason="请补充会议议题和可列席的居民范围，再提交审核。"),
    Plan("civil-neighbours-report", "civil-affairs", K.public_report,
         "区民政局向公众报告：邻里互助点建设运营", "报告邻里互助点的建设数量、运营方式和"
         "居民评价。", "draft", ahead=100, mode=M.hybrid, venue="区民政局报告厅",
         address="北京市西城区西直门南小街"),
]


def _weekday(day: date, step: int) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=step)
    return day


class Calendar:
    """Turns a plan's place in the year into Beijing-time working hours, relative to today."""

    def __init__(self, now: datetime, rng: random.Random) -> None:
        self.today = now.astimezone(LOCAL_TZ).date()
        self.rng = rng
        self.past_end = self.today - timedelta(days=3)
        self.past_start = date(self.today.year, 1, 6)
        if (self.past_end - self.past_start).days < 90:  # early in the year: the last ten months
            self.past_start = self.past_end - timedelta(days=300)

    def day_of(self, plan: Plan) -> date:
        if plan.past is not None:
            span = (self.past_end - self.past_start).days
            return _weekday(self.past_start + timedelta(days=round(span * plan.past)), -1)
        return _weekday(self.today + timedelta(days=plan.ahead or 1), 1)

    def slot(self, day: date) -> datetime:
        hour, minute = self.rng.choice(SLOTS)
        return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_TZ)


def _fields(plan: Plan, unit_ids: dict[str, int], cal: Calendar) -> EventCreate:
    rng = cal.rng
    starts = cal.slot(cal.day_of(plan))
    ends = starts + timedelta(hours=HOURS[plan.kind])
    capacity = plan.capacity
    if capacity is None:
        capacity = 0 if plan.mode == M.online else rng.choice(SEATS[plan.kind])
    takes_registration = plan.kind != K.broadcast
    day = starts.date()
    return EventCreate(
        kind=plan.kind, unit_id=unit_ids[plan.unit], title=plan.title, summary=plan.summary,
        starts_at=starts, ends_at=ends, mode=plan.mode,
        venue=plan.venue or ("政府门户网站“政民互动直播间”" if plan.mode == M.online else ""),
        address=plan.address, capacity=capacity,
        registration_opens_at=datetime.combine(day - timedelta(days=21), time(9),
                                               tzinfo=LOCAL_TZ) if takes_registration else None,
        registration_closes_at=datetime.combine(day - timedelta(days=1), time(17),
                                                tzinfo=LOCAL_TZ) if takes_registration else None,
        moderation=Moderation.pre if plan.kind in (K.chief_dialogue, K.broadcast)
        else Moderation.post,
        premiere_at=starts if plan.kind == K.broadcast else None,
        cohost_unit_ids=[unit_ids[code] for code in plan.cohosts],
        materials=[MaterialIn(title=title, url=url) for title, url in plan.materials],
    )


def _attendees(plan: Plan, event: Event, rng: random.Random) -> int | None:
    if plan.attendees is not None or plan.mode == M.online:
        return plan.attendees
    if event.capacity == 0:
        return rng.randint(60, 240)
    return max(1, round(event.capacity * rng.uniform(0.6, 0.95)))


def _tell_story(db: Session, plan: Plan, event: Event, unit_editor: StaffUser,
                admin: StaffUser, rng: random.Random) -> None:
    """Walks the session through the lifecycle the way its unit and the office would."""
    assert event.id is not None
    if plan.state == "draft":
        return
    change_status(db, unit_editor, event.id, S.pending_review)
    if plan.state == "pending_review":
        return
    if plan.state == "returned":
        change_status(db, admin, event.id, S.draft, plan.reason)
        return
    change_status(db, admin, event.id, S.published)
    if plan.state == "cancelled":
        change_status(db, unit_editor, event.id, S.cancelled, plan.reason)
    elif plan.state == "postponed":
        later = timedelta(days=14)
        closes = event.registration_closes_at
        postpone_event(db, unit_editor, event.id, event.starts_at + later,
                       event.ends_at + later, plan.reason)
        if closes is not None:  # registration stays open until the day before the new date
            update_event(db, unit_editor, event.id,
                         EventUpdate(registration_closes_at=closes + later))
    elif plan.state in ("ended", "archived"):
        close_event(db, unit_editor, event.id, plan.minutes, _attendees(plan, event, rng),
                    "按现场纸质签到表统计")
        if plan.state == "archived":
            change_status(db, unit_editor, event.id, S.archived)


def _later_parts(db: Session, settings: Settings, staff: dict[str, StaffUser],
                 sessions: dict[str, Event]) -> list[str]:
    """Where later parts of the demo join: registrations for the upcoming sessions, a premiere
    and a generated test recording. Each adds its rows here, by plan key, and returns lines for
    the summary."""
    return [*add_registrations(db, settings, list(sessions.values())),
            *(add_recordings(db, settings, staff, sessions) if settings.demo_recordings
              else []), *add_plan(db, settings, staff, sessions)]


def load_demo(db: Session, settings: Settings) -> str:
    """Fills the district once; the caller has migrated and commits. Returns the summary."""
    if db.exec(select(StaffUser).where(StaffUser.username == "admin")).first():
        return "The demo district is already loaded (user 'admin' exists); nothing to do."
    # One transaction writes the whole district: its one writer from the start (it registers
    # citizens later, under the sessions' locks).
    write_lock(db)
    password = os.environ.get("KAIFANG_DEMO_PASSWORD") or DEFAULT_PASSWORD
    rng = random.Random(SEED)
    cal = Calendar(utcnow(), rng)
    codes = {plan.unit for plan in PLANS} | {c for plan in PLANS for c in plan.cohosts}
    codes |= {code for _, _, code, _ in STAFF if code}
    unit_ids = {code: get_unit_by_code(db, code).id or 0 for code in sorted(codes)}

    staff: dict[str, StaffUser] = {}
    for username, role, unit_code, display_name in STAFF:
        staff[username] = create_user(db, None, UserCreate(
            username=username, password=password, role=role, display_name=display_name,
            unit_id=unit_ids[unit_code] if unit_code else None))
    admin = staff["admin"]
    editors = {user.unit_id: user for user in staff.values() if user.role == Role.editor}

    sessions: dict[str, Event] = {}
    for plan in PLANS:
        unit_editor = editors.get(unit_ids[plan.unit], admin)
        event = create_event(db, unit_editor, _fields(plan, unit_ids, cal))
        for code in plan.cohosts:  # each invited unit agreed (its editor, else the office)
            cohosts.respond(db, editors.get(unit_ids[code], admin), event, unit_ids[code], True)
        _tell_story(db, plan, event, unit_editor, admin, rng)
        if event.published_at is not None and plan.state != "cancelled":
            hosts.assign(db, unit_editor, event, staff["host"].id or 0)
        sessions[plan.key] = event
    extra = _later_parts(db, settings, staff, sessions)
    return _summary(db, password == DEFAULT_PASSWORD, extra)


def _summary(db: Session, default_password: bool, extra: list[str]) -> str:
    events = list(db.exec(select(Event).order_by(col(Event.starts_at))))
    states = Counter(event.status.value for event in events)
    units = {event.unit_id for event in events}
    password = DEFAULT_PASSWORD if default_password else "from KAIFANG_DEMO_PASSWORD"
    lines = [
        f"Demo district loaded: {len(events)} sessions of {len(units)} units "
        f"({', '.join(f'{n} {state}' for state, n in states.most_common())}).",
        f"Staff logins at /console (password: {password}):",
    ]
    for username, role, unit_code, display_name in STAFF:
        where = f"editor of {unit_code}" if unit_code else role.value
        lines.append(f"  {username:<10} {where:<28} {display_name}")
    lines.extend(extra)
    return "\n".join(lines)
