"""Bank files in the shapes real tools write them, made here by code (never copied from anywhere):

- a Moodle XML course bank as Moodle's exporter writes it: categories with context paths, ``<name>``,
  ``<idnumber>``, HTML question text with ``@@PLUGINFILE@@`` references and the ``<file encoding="base64">``
  elements beside them (a picture in a question, pictures as answers, a sound played by an ``<audio>`` player),
  answer feedback, combined feedback, a description between questions;
- a QTI 2.1 package as TAO exports one (LOM metadata on the resources, ``grid-row`` layout, a tooltip, a prompt
  broken over lines, an image in the body, a sound in an ``object``, inline feedback in a choice);
- a QTI 2.2 package (an image inside a choice);
- a QTI 3.0 package in 1EdTech's style (a shared stimulus, a media interaction with an ``audio`` element, a
  ``video``, a rubric block for scorers, ``xml:lang``);

with PNG images, a WAV sound and MP3/MP4 media (encoded by the real ffmpeg). Every helper returns the bytes
and, where it matters, the digests a test compares against."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import subprocess
import tempfile
import wave
import zipfile
import zlib
from functools import cache
from pathlib import Path
from typing import Any


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A true-colour PNG filled with one colour."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def wav(seconds: float = 0.2, hz: int = 440) -> bytes:
    """A mono 8 kHz 16-bit WAV holding a square wave."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        period = max(8000 // hz, 2)
        w.writeframes(b"".join(struct.pack("<h", 8000 if (i // (period // 2)) % 2 else -8000)
                               for i in range(int(8000 * seconds))))
    return out.getvalue()


@cache
def ffmpeg_media(kind: str) -> bytes:
    """A short MP3 tone ("mp3") or MP4 test picture ("mp4") made by ffmpeg."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"clip.{kind}"
        source = ["-f", "lavfi", "-i", "sine=frequency=660:duration=0.3"] if kind == "mp3" else [
            "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=0.4"]
        codec = ["-c:a", "libmp3lame", "-b:a", "32k"] if kind == "mp3" else [
            "-c:v", "libx264", "-pix_fmt", "yuv420p"]
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *source, *codec, str(out)],
                       check=True, timeout=60)
        return out.read_bytes()


def package(files: dict[str, bytes | str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def xlsx_of(rows: list[dict[str, Any]], header: list[str] | None = None, chinese: bool = False) -> bytes:
    """The xlsx template (bilingual or Chinese headers) with these rows (keys as in COLUMNS)."""
    from openpyxl import Workbook

    from qbank.imports.excel import COLUMNS

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "items"
    ws.append(header or [chinese_name if chinese else f"{chinese_name}/{key}" for key, chinese_name in COLUMNS])
    for row in rows:
        ws.append([row.get(key) for key, _ in COLUMNS])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ------------------------------------------------------------------------------------------------ Moodle
RED_SIGN = png(16, 16, (200, 20, 20))
FLAG_A = png(12, 8, (20, 120, 200))
FLAG_B = png(12, 8, (240, 200, 0))
HUM = wav(0.25, 50)


def moodle_bank() -> bytes:
    """A Moodle course bank: 4 questions in 3 categories, a description, pictures and a sound."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<quiz>
<!-- question: 0  -->
  <question type="category">
    <category>
      <text>$course$/top/Default for 电工基础/安全用电</text>
    </category>
    <info format="moodle_auto_format">
      <text>The default category for questions shared in context '电工基础'.</text>
    </info>
    <idnumber></idnumber>
  </question>

<!-- question: 101  -->
  <question type="multichoice">
    <name>
      <text>安全标志 red sign</text>
    </name>
    <questiontext format="html">
      <text><![CDATA[<p dir="ltr" style="text-align: left;">下图所示的安全标志
    表示什么？<br></p><p><img src="@@PLUGINFILE@@/sign%20red.png" alt="red sign" width="16" height="16"
    class="img-fluid atto_image_button_text-bottom"></p>]]></text>
      <file name="sign red.png" path="/" encoding="base64">{b64(RED_SIGN)}</file>
    </questiontext>
    <generalfeedback format="html">
      <text><![CDATA[<p>红色标志表示<strong>禁止</strong>。</p>]]></text>
    </generalfeedback>
    <defaultgrade>1.0000000</defaultgrade>
    <penalty>0.3333333</penalty>
    <hidden>0</hidden>
    <idnumber>E-101</idnumber>
    <single>true</single>
    <shuffleanswers>true</shuffleanswers>
    <answernumbering>abc</answernumbering>
    <showstandardinstruction>0</showstandardinstruction>
    <correctfeedback format="html">
      <text>你的回答正确。</text>
    </correctfeedback>
    <partiallycorrectfeedback format="html">
      <text>你的回答部分正确。</text>
    </partiallycorrectfeedback>
    <incorrectfeedback format="html">
      <text>你的回答不正确。</text>
    </incorrectfeedback>
    <shownumcorrect/>
    <answer fraction="100" format="html">
      <text><![CDATA[<p dir="ltr">禁止</p>]]></text>
      <feedback format="html">
        <text><![CDATA[<p>对，红色表示禁止。</p>]]></text>
      </feedback>
    </answer>
    <answer fraction="0" format="html">
      <text><![CDATA[<p dir="ltr">警告</p>]]></text>
      <feedback format="html">
        <text></text>
      </feedback>
    </answer>
    <answer fraction="0" format="html">
      <text><![CDATA[<p dir="ltr">指令</p>]]></text>
      <feedback format="html">
        <text></text>
      </feedback>
    </answer>
  </question>

<!-- question: 0  -->
  <question type="category">
    <category>
      <text>$course$/top/Default for 电工基础/安全用电/标志</text>
    </category>
    <info format="html">
      <text></text>
    </info>
    <idnumber></idnumber>
  </question>

<!-- question: 102  -->
  <question type="multichoice">
    <name>
      <text>听声音选设备</text>
    </name>
    <questiontext format="html">
      <text><![CDATA[<p>听录音，判断是哪种设备的运行声音，并选出它的铭牌颜色：</p><p>&nbsp;<audio controls="true">
    <source
    src="@@PLUGINFILE@@/hum.wav">@@PLUGINFILE@@/hum.wav</audio>&nbsp;</p>]]></text>
      <file name="hum.wav" path="/" encoding="base64">{b64(HUM)}</file>
    </questiontext>
    <generalfeedback format="html">
      <text></text>
    </generalfeedback>
    <defaultgrade>1.0000000</defaultgrade>
    <penalty>0.3333333</penalty>
    <hidden>0</hidden>
    <idnumber>E-102</idnumber>
    <single>true</single>
    <shuffleanswers>false</shuffleanswers>
    <answernumbering>ABCD</answernumbering>
    <answer fraction="100" format="html">
      <text><![CDATA[<p><img src="@@PLUGINFILE@@/flag-a.png" alt="蓝色" class="img-fluid"></p>]]></text>
      <file name="flag-a.png" path="/" encoding="base64">{b64(FLAG_A)}</file>
      <feedback format="html">
        <text><![CDATA[<p>变压器</p>]]></text>
      </feedback>
    </answer>
    <answer fraction="0" format="html">
      <text><![CDATA[<p><img src="@@PLUGINFILE@@/flag-b.png" alt="黄色" class="img-fluid"></p>]]></text>
      <file name="flag-b.png" path="/" encoding="base64">{b64(FLAG_B)}</file>
      <feedback format="html">
        <text></text>
      </feedback>
    </answer>
    <tags>
      <tag><text>听力</text></tag>
    </tags>
  </question>

<!-- question: 103  -->
  <question type="description">
    <name>
      <text>第二部分说明</text>
    </name>
    <questiontext format="html">
      <text><![CDATA[<p>以下为电路知识。</p>]]></text>
    </questiontext>
    <generalfeedback format="html"><text></text></generalfeedback>
    <defaultgrade>0.0000000</defaultgrade>
    <penalty>0.0000000</penalty>
    <hidden>0</hidden>
    <idnumber></idnumber>
  </question>

<!-- question: 0  -->
  <question type="category">
    <category>
      <text>$course$/top/Default for 电工基础/电路</text>
    </category>
    <info format="html">
      <text></text>
    </info>
    <idnumber></idnumber>
  </question>

<!-- question: 104  -->
  <question type="truefalse">
    <name>
      <text>串联电流</text>
    </name>
    <questiontext format="moodle_auto_format">
      <text>串联电路中
各处电流相等。</text>
    </questiontext>
    <generalfeedback format="moodle_auto_format">
      <text></text>
    </generalfeedback>
    <defaultgrade>1.0000000</defaultgrade>
    <penalty>1.0000000</penalty>
    <hidden>0</hidden>
    <idnumber>E-104</idnumber>
    <answer fraction="100" format="moodle_auto_format">
      <text>true</text>
      <feedback format="moodle_auto_format">
        <text>正确。</text>
      </feedback>
    </answer>
    <answer fraction="0" format="moodle_auto_format">
      <text>false</text>
      <feedback format="moodle_auto_format">
        <text></text>
      </feedback>
    </answer>
  </question>

<!-- question: 105  -->
  <question type="multichoice">
    <name>
      <text>面积单位</text>
    </name>
    <questiontext format="html">
      <text><![CDATA[<p>下列属于面积或体积单位的是（ ）。</p>]]></text>
    </questiontext>
    <generalfeedback format="html">
      <text></text>
    </generalfeedback>
    <defaultgrade>1.0000000</defaultgrade>
    <penalty>0.3333333</penalty>
    <hidden>0</hidden>
    <idnumber>E-105</idnumber>
    <single>false</single>
    <shuffleanswers>true</shuffleanswers>
    <answernumbering>ABCD</answernumbering>
    <answer fraction="50" format="html">
      <text><![CDATA[m<sup>2</sup>]]></text>
    </answer>
    <answer fraction="50" format="html">
      <text><![CDATA[m<sup>3</sup>]]></text>
    </answer>
    <answer fraction="-100" format="html">
      <text><![CDATA[<em>kg</em>]]></text>
    </answer>
  </question>
</quiz>
""".encode()


MOODLE_POINT_MAP = """kind,key,point
category,$course$/top/Default for 电工基础/安全用电,001
category,$course$/top/Default for 电工基础/安全用电/标志,002
category,Default for 电工基础/电路,003
identifier,E-104,004
""".encode()


def moodle_question(body: str, name: str = "坏题", files: str = "") -> bytes:
    """A one-question Moodle file whose question text is ``body`` (HTML), for refusals."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<quiz>
  <question type="multichoice">
    <name><text>{name}</text></name>
    <questiontext format="html"><text><![CDATA[{body}]]></text>{files}</questiontext>
    <single>true</single>
    <answer fraction="100"><text>甲</text></answer>
    <answer fraction="0"><text>乙</text></answer>
    <tags><tag><text>point:001</text></tag></tags>
  </question>
</quiz>""".encode()


# ------------------------------------------------------------------------------------------------ QTI 2.1 (TAO)
SIGN = png(24, 12, (255, 255, 255))
LOM = "http://ltsc.ieee.org/xsd/LOM"


def _tao_item(identifier: str, title: str, label: str, body: str, correct: str, cardinality: str = "single") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://www.imsglobal.org/xsd/imsqti_v2p1 http://www.imsglobal.org/xsd/qti/qtiv2p1/imsqti_v2p1.xsd"
    identifier="{identifier}" title="{title}" label="{label}" xml:lang="en-US" adaptive="false" timeDependent="false"
    toolName="TAO" toolVersion="3.4.0-sprint130">
  <responseDeclaration identifier="RESPONSE" cardinality="{cardinality}" baseType="identifier">
    <correctResponse>
      {correct}
    </correctResponse>
  </responseDeclaration>
  <outcomeDeclaration identifier="SCORE" cardinality="single" baseType="float" normalMaximum="1"/>
  <outcomeDeclaration identifier="FEEDBACK" cardinality="single" baseType="identifier"/>
  <itemBody>
    {body}
  </itemBody>
  <responseProcessing template="http://www.imsglobal.org/question/qti_v2p1/rptemplates/match_correct"/>
</assessmentItem>"""


def tao_package(*, remote_image: bool = False, missing_sound: bool = False) -> bytes:
    """A TAO-style QTI 2.1 export of three items (a picture, a sound, a rubric for scorers)."""
    sign_body = """<div class="grid-row">
      <div class="col-12">
        <p>Look at the text in the <span data-role="tooltip-target" aria-describedby="tooltip_5f3c">picture</span><span
          data-role="tooltip-content" aria-hidden="true" id="tooltip_5f3c">a QTI prompt</span>.</p>
        <p><img src="%s" alt="Road sign" width="24" height="12"/></p>
      </div>
    </div>
    <div class="grid-row">
      <div class="col-12">
        <choiceInteraction responseIdentifier="RESPONSE" shuffle="false" maxChoices="1" minChoices="0"
            orientation="vertical">
          <prompt>What does it
                  say?</prompt>
          <simpleChoice identifier="choice_1" fixed="false" showHide="show">Go<feedbackInline
            outcomeIdentifier="FEEDBACK" identifier="choice_1" showHide="show"> – no, read again.</feedbackInline>
          </simpleChoice>
          <simpleChoice identifier="choice_2" fixed="false" showHide="show">Stop</simpleChoice>
          <simpleChoice identifier="choice_3" fixed="false" showHide="show">Wait</simpleChoice>
        </choiceInteraction>
      </div>
    </div>""" % ("https://example.org/sign.png" if remote_image else "assets/sign.png")
    sound_body = """<div class="grid-row"><div class="col-12">
      <p>Listen:</p>
      <object type="audio/mpeg" data="assets/hello.mp3" width="300" height="30">hello.mp3</object>
      <choiceInteraction responseIdentifier="RESPONSE" shuffle="true" maxChoices="0" minChoices="1">
        <prompt>Which words
          do you hear?</prompt>
        <simpleChoice identifier="c1">hello</simpleChoice>
        <simpleChoice identifier="c2">world</simpleChoice>
        <simpleChoice identifier="c3">goodbye</simpleChoice>
      </choiceInteraction>
    </div></div>"""
    rubric_body = """<rubricBlock view="scorer"><p>Accept only B.</p></rubricBlock>
    <rubricBlock view="candidate"><p>Read carefully.</p></rubricBlock>
    <p>Which unit measures electric current?</p>
    <choiceInteraction responseIdentifier="RESPONSE" shuffle="false" maxChoices="1">
      <simpleChoice identifier="v">volt</simpleChoice>
      <simpleChoice identifier="a">ampere</simpleChoice>
    </choiceInteraction>"""
    items = {
        "i1501": _tao_item("i1501", "Sign reading", "Q7", sign_body, "<value>choice_2</value>"),
        "i1502": _tao_item("i1502", "Listening", "L-sound", sound_body, "<value>c1</value><value>c2</value>",
                           "multiple"),
        "i1503": _tao_item("i1503", "Units", "003", rubric_body, "<value>a</value>"),
    }
    files: dict[str, bytes | str] = {f"{key}/qti.xml": xml for key, xml in items.items()}
    files["i1501/assets/sign.png"] = SIGN
    if not missing_sound:
        files["i1502/assets/hello.mp3"] = ffmpeg_media("mp3")
    resources = "".join(f"""
    <resource identifier="{key}" type="imsqti_item_xmlv2p1" href="{key}/qti.xml">
      <metadata>
        <imsmd:lom>
          <imsmd:general>
            <imsmd:identifier>{key}</imsmd:identifier>
            <imsmd:title><imsmd:string language="en">{key}</imsmd:string></imsmd:title>
            <imsmd:keyword><imsmd:string language="zh">{"听力" if key == "i1502" else "标志"}</imsmd:string>
            </imsmd:keyword>
          </imsmd:general>
        </imsmd:lom>
      </metadata>
      <file href="{key}/qti.xml"/>
    </resource>""" for key in items)
    files["imsmanifest.xml"] = f"""<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" xmlns:imsmd="{LOM}"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" identifier="MANIFEST-tao5f3c1a2b">
  <metadata>
    <schema>QTIv2.1 Package</schema>
    <schemaversion>1.0.0</schemaversion>
  </metadata>
  <organizations/>
  <resources>{resources}
  </resources>
</manifest>"""
    return package(files)


TAO_POINT_MAP = b"""[
  {"kind": "identifier", "key": "i1501", "point": "001"},
  {"kind": "metadata", "key": "keyword=\xe5\x90\xac\xe5\x8a\x9b", "point": "002"},
  {"kind": "label", "key": "Q9", "point": "005"}
]"""


# ------------------------------------------------------------------------------------------------ QTI 2.2
def qti22_package() -> bytes:
    """One QTI 2.2 item whose choices are pictures; it names no point."""
    item = """<?xml version="1.0" encoding="UTF-8"?>
<assessmentItem xmlns="http://www.imsglobal.org/xsd/imsqti_v2p2" identifier="flags-22" title="Flags"
    adaptive="false" timeDependent="false" xml:lang="zh-CN">
  <responseDeclaration identifier="RESPONSE" cardinality="single" baseType="identifier">
    <correctResponse><value>F2</value></correctResponse>
  </responseDeclaration>
  <itemBody>
    <choiceInteraction responseIdentifier="RESPONSE" shuffle="false" maxChoices="1">
      <prompt>哪一面旗表示<em>注意安全</em>？</prompt>
      <simpleChoice identifier="F1"><img src="img/blue.png" alt="蓝"/></simpleChoice>
      <simpleChoice identifier="F2"><img src="img/yellow.png" alt="黄"/></simpleChoice>
    </choiceInteraction>
  </itemBody>
  <responseProcessing template="http://www.imsglobal.org/question/qti_v2p2/rptemplates/match_correct"/>
</assessmentItem>"""
    return package({
        "imsmanifest.xml": """<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1" identifier="m22">
  <resources>
    <resource identifier="r-flags" type="imsqti_item_xmlv2p2" href="items/flags.xml">
      <file href="items/flags.xml"/><file href="items/img/blue.png"/><file href="items/img/yellow.png"/>
    </resource>
  </resources>
</manifest>""",
        "items/flags.xml": item, "items/img/blue.png": FLAG_A, "items/img/yellow.png": FLAG_B})


# ------------------------------------------------------------------------------------------------ QTI 3.0
def qti3_package(*, video_href: str = "../media/clip.mp4") -> bytes:
    """Two QTI 3.0 items: a multiple choice after a shared stimulus and a media interaction, and a video item."""
    features = """<?xml version="1.0" encoding="UTF-8"?>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="http://www.imsglobal.org/xsd/imsqtiasi_v3p0 https://purl.imsglobal.org/spec/qti/v3p0/schema/xsd/imsqti_asiv3p0_v1p0.xsd"
    identifier="q3-features" title="QTI 3 features" adaptive="false" time-dependent="false" xml:lang="en-US"
    label="006">
  <qti-response-declaration identifier="RESPONSE" cardinality="multiple" base-type="identifier">
    <qti-correct-response>
      <qti-value>A</qti-value>
      <qti-value>C</qti-value>
      <qti-value>D</qti-value>
    </qti-correct-response>
  </qti-response-declaration>
  <qti-response-declaration identifier="PLAYS" cardinality="single" base-type="integer"/>
  <qti-outcome-declaration identifier="SCORE" cardinality="single" base-type="float"/>
  <qti-assessment-stimulus-ref identifier="stim-listen" href="../stimuli/listen.xml" title="Listening"/>
  <qti-item-body>
    <qti-media-interaction response-identifier="PLAYS" autostart="false" max-plays="2">
      <audio controls="controls"><source src="../media/tone.mp3" type="audio/mpeg"/>Your browser cannot play it.</audio>
    </qti-media-interaction>
    <qti-choice-interaction response-identifier="RESPONSE" max-choices="3">
      <qti-prompt>Which of these are features of QTI 3?
         Pick 3 choices.</qti-prompt>
      <qti-simple-choice identifier="A">Shared stimulus</qti-simple-choice>
      <qti-simple-choice identifier="B">Flash<qti-feedback-inline outcome-identifier="FEEDBACK" identifier="B"
        show-hide="show">Not since 2.1.</qti-feedback-inline></qti-simple-choice>
      <qti-simple-choice identifier="C">HTML5 <code>audio</code></qti-simple-choice>
      <qti-simple-choice identifier="D">Catalogs</qti-simple-choice>
    </qti-choice-interaction>
    <qti-rubric-block use="scoring" view="scorer">
      <qti-content-body><p>One point per correct choice.</p></qti-content-body>
    </qti-rubric-block>
  </qti-item-body>
  <qti-response-processing template="https://purl.imsglobal.org/spec/qti/v3p0/rptemplates/match_correct.xml"/>
</qti-assessment-item>"""
    video = f"""<?xml version="1.0" encoding="UTF-8"?>
<qti-assessment-item xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="q3-video"
    title="Test card" adaptive="false" time-dependent="false" xml:lang="en">
  <qti-response-declaration identifier="RESPONSE" cardinality="single" base-type="identifier">
    <qti-correct-response><qti-value>yes</qti-value></qti-correct-response>
  </qti-response-declaration>
  <qti-item-body>
    <p>Watch the clip.</p>
    <video width="64" height="48" controls="controls"><source src="{video_href}" type="video/mp4"/></video>
    <qti-choice-interaction response-identifier="RESPONSE" max-choices="1">
      <qti-prompt>Does the picture move?</qti-prompt>
      <qti-simple-choice identifier="yes">Yes</qti-simple-choice>
      <qti-simple-choice identifier="no">No</qti-simple-choice>
    </qti-choice-interaction>
  </qti-item-body>
  <qti-modal-feedback outcome-identifier="FEEDBACK" identifier="EXPLAIN" show-hide="show">
    <qti-content-body><p>The test card scrolls.</p></qti-content-body>
  </qti-modal-feedback>
</qti-assessment-item>"""
    stimulus = """<?xml version="1.0" encoding="UTF-8"?>
<qti-assessment-stimulus xmlns="http://www.imsglobal.org/xsd/imsqtiasi_v3p0" identifier="stim-listen"
    title="Listening" xml:lang="en-US">
  <qti-stimulus-body>
    <p>Listen to the recording
       before you answer.</p>
  </qti-stimulus-body>
</qti-assessment-stimulus>"""
    manifest = """<?xml version="1.0" encoding="UTF-8"?>
<manifest xmlns="http://www.imsglobal.org/xsd/qti/qtiv3p0/imscp_v1p1" identifier="qti3-features-pkg">
  <metadata><schema>QTI Package</schema><schemaversion>3.0.0</schemaversion></metadata>
  <organizations/>
  <resources>
    <resource identifier="q3-features" type="imsqti_item_xmlv3p0" href="items/features.xml">
      <file href="items/features.xml"/>
      <dependency identifierref="stim-listen"/>
    </resource>
    <resource identifier="stim-listen" type="imsqti_stimulus_xmlv3p0" href="stimuli/listen.xml">
      <file href="stimuli/listen.xml"/>
    </resource>
    <resource identifier="q3-video" type="imsqti_item_xmlv3p0" href="items/video.xml">
      <file href="items/video.xml"/><file href="media/clip.mp4"/>
    </resource>
  </resources>
</manifest>"""
    return package({"imsmanifest.xml": manifest, "items/features.xml": features, "items/video.xml": video,
                    "stimuli/listen.xml": stimulus, "media/tone.mp3": ffmpeg_media("mp3"),
                    "media/clip.mp4": ffmpeg_media("mp4")})
