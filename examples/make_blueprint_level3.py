"""Writes examples/blueprint-level3.json: a seeded blueprint shaped like a published level-3 table (鉴定要素细目表).

Shape: 6 levels of scopes (鉴定范围) under "基本要求" and "相关知识", about 270 leaf scopes and about 490 appraisal
points (鉴定点, 3-digit codes 001…), X/Y/Z about 80/15/5 %, Chinese names; weights as such tables give them:
non-round (one decimal, e.g. 4.6 %) on the upper levels, some sub-scopes weighted 0 (not examined in theory), and
scopes without a weight of their own (``null``: they share their parent's rest by appraisal points, see
``paperbuild.blueprint``). The JSON has the service's blueprint shape (nested ``scopes`` with ``children`` and
``points``); ``paperbuild.synthetic.blueprint_from_tree`` flattens it for the engine.

    python examples/make_blueprint_level3.py            # writes the file next to this script
    python examples/make_blueprint_level3.py --check    # exit 1 if the file differs from what the seed gives
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

SEED = 12
TARGET_LEAVES = (262, 278)
N_POINTS = 490
OUT = Path(__file__).with_name("blueprint-level3.json")

FUNCTIONS = ["工艺准备", "设备安装与调试", "运行操作", "质量检验", "故障诊断与排除", "维护保养", "技术管理与培训"]
BASICS = ["职业道德", "基础知识"]
OBJECTS = ["电气线路", "控制电路", "传感器", "变频器", "可编程控制器", "测量仪表", "机械传动", "液压系统", "气动元件",
           "电动机", "低压电器", "照明装置", "接地装置", "电子线路", "继电保护", "配电柜", "工装夹具", "图样",
           "安全防护", "工作记录"]
ASPECTS = ["的基本原理", "的结构与分类", "的识读", "的选用", "的安装", "的接线", "的调试", "的检测方法", "的常见故障",
           "的维护要求", "的安全要求", "的技术参数", "的操作规程", "的验收标准"]
ETHICS = ["职业道德基本知识", "职业守则", "爱岗敬业", "诚实守信", "安全文明生产", "环境保护知识", "劳动法相关知识"]


def _branching(level: int, rng: np.random.Generator) -> int:
    """Children of a scope at ``level`` (1 = top); 0 makes it a leaf."""
    if level >= 6:
        return 0
    if level >= 4 and rng.random() < (0.35 if level == 4 else 0.5):
        return 0
    low, high = {1: (2, 2), 2: (3, 5), 3: (2, 4), 4: (2, 3), 5: (1, 3)}[level]
    return int(rng.integers(low, high + 1))


def _name(level: int, path: list[str], rng: np.random.Generator) -> str:
    if level == 1:
        return ["基本要求", "相关知识"][int(path[0]) - 1]
    if level == 2:
        pool = BASICS if path[0] == "01" else FUNCTIONS
        return pool[(int(path[1]) - 1) % len(pool)]
    if path[0] == "01" and path[1] == "01":
        return ETHICS[int(rng.integers(len(ETHICS)))]
    return f"{OBJECTS[int(rng.integers(len(OBJECTS)))]}{ASPECTS[int(rng.integers(len(ASPECTS)))]}"


def _tree(rng: np.random.Generator) -> list[dict[str, Any]]:
    def grow(path: list[str]) -> dict[str, Any]:
        level = len(path)
        node: dict[str, Any] = {"code": ".".join(path), "name": _name(level, path, rng), "weight": None,
                                "children": [], "points": []}
        n = 2 if level == 1 else _branching(level, rng)
        if level == 1 and path[0] == "02":
            n = len(FUNCTIONS)
        if level == 2 and path[0] == "01":
            n = 2 if path[1] == "01" else 4
        node["children"] = [grow([*path, f"{k + 1:02d}"]) for k in range(n)]
        return node

    return [grow(["01"]), grow(["02"])]


def _leaves(scopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for s in scopes:
        out += _leaves(s["children"]) if s["children"] else [s]
    return out


def _points(scopes: list[dict[str, Any]], rng: np.random.Generator) -> None:
    leaves = _leaves(scopes)
    share = rng.gamma(2.0, 1.0, len(leaves))
    extra = np.floor(share / share.sum() * (N_POINTS - len(leaves))).astype(int)
    extra[np.argsort(-share)[: N_POINTS - len(leaves) - int(extra.sum())]] += 1
    imps = np.array(["X"] * 392 + ["Y"] * 74 + ["Z"] * 24)
    rng.shuffle(imps)
    k = 0
    for leaf, e in zip(leaves, extra.tolist(), strict=True):
        for _ in range(1 + e):
            words = f"{OBJECTS[int(rng.integers(len(OBJECTS)))]}{ASPECTS[int(rng.integers(len(ASPECTS)))]}"
            leaf["points"].append({"code": f"{k + 1:03d}", "name": words, "importance": str(imps[k])})
            k += 1


def _held(s: dict[str, Any]) -> int:
    return len(s["points"]) + sum(_held(c) for c in s["children"])


def _split(total: float, kids: list[dict[str, Any]], rng: np.random.Generator) -> list[float]:
    """One-decimal weights for ``kids`` adding up to ``total`` exactly, near their share of appraisal points."""
    raw = np.array([_held(c) for c in kids], dtype=np.float64) * rng.uniform(0.8, 1.2, len(kids))
    tenths = round(total * 10)
    w = np.floor(raw / raw.sum() * tenths).astype(int)
    w[np.argsort(-(raw / raw.sum() * tenths - w))[: tenths - int(w.sum())]] += 1
    return [int(v) / 10 for v in w]


def _weights(scopes: list[dict[str, Any]], rng: np.random.Generator) -> None:
    """Upper levels weighted (one decimal), a few sub-scopes weighted 0, the rest without a weight of its own."""
    scopes[0]["weight"], scopes[1]["weight"] = 22.4, 77.6

    def walk(s: dict[str, Any], level: int, whole: float | None) -> None:
        kids = s["children"]
        if not kids:
            return
        if whole is not None and (level <= 2 or rng.random() < 0.45):
            zero = [c for c in kids if level >= 3 and len(kids) > 2 and rng.random() < 0.12][:1]
            live = [c for c in kids if c not in zero]
            for c, w in zip(live, _split(whole, live, rng), strict=True):
                c["weight"] = w
            for c in zero:
                c["weight"] = 0
        elif level >= 4 and len(kids) > 2 and rng.random() < 0.15:
            kids[-1]["weight"] = 0  # not examined; its siblings share the parent's weight
        for c in kids:
            walk(c, level + 1, c["weight"] if c["weight"] else None)

    for s in scopes:
        walk(s, 1, s["weight"])


def level3_table(seed: int = SEED) -> dict[str, Any]:
    """The blueprint document for ``seed`` (the first tree whose leaf count is in ``TARGET_LEAVES``)."""
    rng = np.random.default_rng(seed)
    while True:
        scopes = _tree(rng)
        if TARGET_LEAVES[0] <= len(_leaves(scopes)) <= TARGET_LEAVES[1]:
            break
    _points(scopes, rng)
    _weights(scopes, rng)
    return {"scopes": scopes}


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = ap.parse_args(argv)
    text = dump(level3_table())
    if args.check:
        return 0 if OUT.read_text(encoding="utf-8") == text else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
