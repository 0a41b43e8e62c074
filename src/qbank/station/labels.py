"""The words of the candidate screen and the proctor console, in Chinese (the default) and English (``?lang=en``).
The pages get them as JSON too, so the scripts say the same things."""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "app": "职业技能等级认定 · 理论机考", "sign_in": "考生登录", "number": "准考证号",
        "id_digits": "身份证号后 {n} 位", "or_desk_code": "或使用座位卡登录码", "desk_code": "座位卡登录码",
        "sign_in_button": "登录", "desk_code_button": "用登录码登录", "signing_in": "正在登录…",
        "font_smaller": "字号减小", "font_larger": "字号增大", "contrast": "高对比度", "language": "English",
        "waiting": "等待监考员开始考试", "waiting_hint": "考试开始后本页面将自动显示试题，请勿关闭浏览器。",
        "paper_sealed": "试卷尚未解封，请稍候。", "remaining": "剩余时间", "question": "第 {no} 题 / 共 {total} 题",
        "true_false": "判断题", "single_choice": "单项选择题", "multiple_choice": "多项选择题",
        "points": "{points} 分", "prev": "上一题", "next": "下一题", "flag": "标记待查", "unflag": "取消标记",
        "submit": "交卷", "palette": "答题卡", "answered": "已答", "flagged": "标记", "unanswered": "未答",
        "current": "当前", "saving": "正在保存…", "saved": "已保存 {at}", "unsaved": "未保存，正在重试…",
        "not_saved": "尚未保存的修改：{n} 处", "confirm_title": "确认交卷",
        "confirm_text": "共 {total} 题，已答 {answered} 题，未答 {unanswered} 题，标记待查 {flagged} 题。"
                        "交卷后不能再修改答案。",
        "confirm": "确认交卷", "cancel": "继续作答", "submitted": "已交卷",
        "submitted_text": "你已于 {at} 交卷，共作答 {answered} 题。请离开座位前举手示意监考员。",
        "time_out_text": "考试时间到，系统已于 {at} 自动交卷，共作答 {answered} 题。",
        "ended_text": "考场已结束，系统已于 {at} 收卷，共作答 {answered} 题。",
        "time_warning": "距考试结束不足 5 分钟", "shortcuts": "键盘：数字键 1–8 选择选项，N 下一题，P 上一题，F 标记",
        "signed_out": "此浏览器已退出登录", "sign_in_again": "重新登录", "another": "这是其他考生的试卷",
        "network": "无法连接考试机，正在重试…", "proctor": "监考员控制台", "proctor_code": "监考员登录码",
        "room": "考场", "window": "考试时段", "release_in": "试卷已解封", "release_waiting": "等待解封密钥",
        "start_room": "开始考试", "end_room": "结束考场并上传", "desk": "座位", "name": "姓名", "status": "状态",
        "progress": "作答", "extra": "延时", "machine": "考试机", "actions": "操作", "absent": "缺考",
        "add_time": "延长时间", "move": "换机", "minutes": "分钟", "reason": "原因", "to_machine": "新考试机",
        "incident": "记录考场问题", "category": "类别", "note": "说明", "save": "保存", "log": "考场日志",
        "chain_ok": "日志哈希链完整", "chain_broken": "日志哈希链被破坏", "bundles": "成绩数据包",
        "acknowledged": "评价中心已确认", "retrying": "正在重试", "new_code": "新登录码（仅可使用一次）：{code}",
        "not_signed_in": "未登录", "answering": "作答中", "submitted_status": "已交卷",
        "disconnected": "连接中断", "time_over": "时间已到", "absent_status": "缺考", "started": "开考于 {at}",
        "ended": "结束于 {at}", "not_started": "未开考", "outage": "考试机停机补时 {s} 秒",
        "confirm_end": "确认结束考场？仍未登录的考生将记为缺考。", "sign_out": "退出",
    },
    "en": {
        "app": "Skill level evaluation · computer-based theory exam", "sign_in": "Candidate sign-in",
        "number": "Admission number", "id_digits": "Last {n} characters of your id number",
        "or_desk_code": "or use the code on your seat card", "desk_code": "Desk code", "sign_in_button": "Sign in",
        "desk_code_button": "Sign in with the code", "signing_in": "Signing in…", "font_smaller": "Smaller text",
        "font_larger": "Larger text", "contrast": "High contrast", "language": "中文",
        "waiting": "Waiting for the proctor to start the exam",
        "waiting_hint": "The questions appear here when the exam starts; keep this window open.",
        "paper_sealed": "The paper is still sealed; please wait.", "remaining": "Time left",
        "question": "Question {no} of {total}", "true_false": "True / false", "single_choice": "Single choice",
        "multiple_choice": "Multiple choice", "points": "{points} points", "prev": "Previous", "next": "Next",
        "flag": "Flag for review", "unflag": "Remove flag", "submit": "Submit", "palette": "Questions",
        "answered": "Answered", "flagged": "Flagged", "unanswered": "Unanswered", "current": "Current",
        "saving": "Saving…", "saved": "Saved {at}", "unsaved": "Not saved yet, retrying…",
        "not_saved": "Changes not yet saved: {n}", "confirm_title": "Submit your paper?",
        "confirm_text": "{total} questions: {answered} answered, {unanswered} unanswered, {flagged} flagged. "
                        "After submitting you cannot change your answers.",
        "confirm": "Submit now", "cancel": "Keep answering", "submitted": "Submitted",
        "submitted_text": "You submitted at {at} with {answered} questions answered. Raise your hand before leaving.",
        "time_out_text": "Time is up: the paper was submitted at {at} with {answered} questions answered.",
        "ended_text": "The room has ended: the paper was collected at {at} with {answered} questions answered.",
        "time_warning": "Less than 5 minutes left",
        "shortcuts": "Keys: 1–8 choose an option, N next, P previous, F flag",
        "signed_out": "This browser was signed out", "sign_in_again": "Sign in again",
        "another": "This is another candidate's paper", "network": "Cannot reach the exam station; retrying…",
        "proctor": "Proctor console", "proctor_code": "Proctor code", "room": "Room", "window": "Window",
        "release_in": "Papers unsealed", "release_waiting": "Waiting for the release share",
        "start_room": "Start the exam", "end_room": "End the room and upload", "desk": "Desk", "name": "Name",
        "status": "Status", "progress": "Answered", "extra": "Extra", "machine": "Machine", "actions": "Actions",
        "absent": "Absent", "add_time": "Add time", "move": "Move", "minutes": "minutes", "reason": "Reason",
        "to_machine": "New machine", "incident": "Record an incident", "category": "Category", "note": "Note",
        "save": "Save", "log": "Room log", "chain_ok": "log hash chain holds", "chain_broken": "log hash chain BROKEN",
        "bundles": "Response bundles", "acknowledged": "acknowledged by the centre", "retrying": "retrying",
        "new_code": "New one-time code: {code}", "not_signed_in": "not signed in", "answering": "answering",
        "submitted_status": "submitted", "disconnected": "disconnected", "time_over": "time over",
        "absent_status": "absent", "started": "started {at}", "ended": "ended {at}", "not_started": "not started",
        "outage": "station outage credited: {s} s",
        "confirm_end": "End the room? Candidates who never signed in are recorded absent.", "sign_out": "Sign out",
    },
}


def lang_of(value: str | None) -> Lang:
    return "en" if value == "en" else "zh"
