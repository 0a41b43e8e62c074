"""Incident categories a supervisor may mark, from the regulation's §29–§31 (the items an exam visit can observe).

Codes are ``article.item``: "29.2" is §29 item (二). §29 items can void results; §30 items (minor) lead to a talk
with the institution's head; §31 items to rectification with the evaluation activity suspended."""

from __future__ import annotations

from typing import Annotated

import msgspec


class IncidentCategory(msgspec.Struct, frozen=True, kw_only=True):
    code: Annotated[str, msgspec.Meta(examples=["29.2"], description="article.item of the regulation")]
    article: Annotated[str, msgspec.Meta(examples=["第二十九条第（二）项"])]
    label_zh: Annotated[str, msgspec.Meta(examples=["考场纪律管理松散，参评人员有舞弊等行为"])]
    label_en: Annotated[str, msgspec.Meta(examples=["lax exam-room discipline; candidates cheating"])]
    consequence: Annotated[str, msgspec.Meta(examples=["results may be declared partly or wholly void"])]


_VOID = "经核查视情况宣布证书或评价成绩部分或全部无效 (results may be declared partly or wholly void)"
_TALK = "情节轻微的，约谈主要负责人 (minor: the institution's head is summoned for a talk)"
_RECTIFY = "限期整改并暂停评价活动 (rectification within a deadline, evaluation suspended)"
_ZH_ITEMS = "一二三四五六七八九十"


def _item(n: int) -> str:
    return _ZH_ITEMS[n - 1] if n <= 10 else "十" + _ZH_ITEMS[n - 11]


def _cat(code: str, label_zh: str, label_en: str) -> IncidentCategory:
    article, item = (int(p) for p in code.split("."))
    article_zh = {29: "第二十九条", 30: "第三十条", 31: "第三十一条"}[article]
    consequence = {29: _VOID, 30: _TALK, 31: _RECTIFY}[article]
    return IncidentCategory(code=code, article=f"{article_zh}第（{_item(item)}）项", label_zh=label_zh,
                            label_en=label_en, consequence=consequence)


CATEGORIES: tuple[IncidentCategory, ...] = (
    _cat("29.1", "资格审核不严，参评人员不符合申报条件", "lax eligibility check: a candidate does not qualify"),
    _cat("29.2", "考场纪律管理松散，参评人员有舞弊等行为", "lax exam-room discipline; candidates cheating"),
    _cat("29.3", "阅卷不规范、评分标准不统一", "marking not to standard; inconsistent scoring"),
    _cat("29.4", "试题发生泄露", "exam questions leaked"),
    _cat("29.5", "其他应当认定证书或评价成绩无效的情形", "other ground to void certificates or results"),
    _cat("30.3", "未执行国家职业技能标准或评价规范", "national skill standard or evaluation norms not followed"),
    _cat("30.4", "未按规定设置考场和配备工作人员", "exam rooms or staff not arranged as required"),
    _cat("30.5", "未按有关规定及时做好参评人员违纪违规处理", "candidate misconduct not handled in time"),
    _cat("30.6", "未按要求命题或拒绝采用无纸化机考", "papers not made as required, or no computer-based exam"),
    _cat("30.7", "未规范执行保密承诺", "confidentiality commitment not kept"),
    _cat("30.8", "未按规范要求安排考评人员与内部质量督导员",
         "evaluators or internal supervisors not arranged as required"),
    _cat("30.11", "未完整保存技能人才评价全过程档案资料（如录像缺失）",
         "evaluation records incomplete (e.g. recording missing)"),
    _cat("30.12", "未按规定增设考点，擅自增设考点开展评价", "evaluation at an unregistered test site"),
    _cat("30.13", "其他违反评价活动规范但情节轻微的行为", "other minor breach of the evaluation rules"),
    _cat("31.2", "未严格按照规定区域组织开展评价", "evaluation held outside the designated area"),
)

BY_CODE: dict[str, IncidentCategory] = {c.code: c for c in CATEGORIES}
