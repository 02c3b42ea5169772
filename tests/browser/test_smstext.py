"""
test_smstext.py - the page's segment counter (web/smstext.js,
segmentInfo(text) -> {encoding, segments, units}, run in chromium in the
page as served at /ui/) agrees with the daemon's C rules
(core/smstext.c) on a table of texts: GSM-7 basic and extension
characters, the 160/161 and 153 boundaries, an escape pair that may not
be split across parts, UCS-2 70/67 boundaries, and emoji (UTF-16
surrogate pairs, never split either). The oracle is the daemon itself:
each text is queued with POST /api/v1/messages (console sender) and
GET /api/v1/messages/{id} answers its encoding and segment count. The
expected values written here are checked against the daemon too, so a
change in either the C or the JS rules shows.
"""

import re

import pytest

from ui import goto, login_token, type_into, wait_js, wait_text, wait_tid

GSM_EXT = set("\f^{}\\[~]|\u20ac")
EMOJI = "\U0001F600"		# outside the BMP: 2 UTF-16 units

# (label, text, encoding, segments); None = taken from the daemon only.
TABLE = [
    ("ascii", "Hello from the union hall", "gsm7", 1),
    ("gsm-basic-accents", "Caf\u00e9 \u00e0 \u00fc\u00f1\u00e9 \u00a3\u00a5 "
     "\u00c5\u00e6\u00df \u0394\u03a6\u03a9 @$_!", "gsm7", 1),
    ("newline-cr", "line one\nline two\r\nthree", "gsm7", 1),
    ("ext-chars", "Use [brackets], {braces}, ~tilde~, a|pipe, ^caret, "
     "\\backslash and \u20ac5", "gsm7", 1),
    ("gsm-160", "a" * 160, "gsm7", 1),
    ("gsm-161", "a" * 161, "gsm7", 2),
    ("gsm-306", "b" * 306, "gsm7", 2),
    ("gsm-307", "b" * 307, "gsm7", 3),
    ("gsm-459", "c" * 459, "gsm7", 3),
    ("gsm-460", "c" * 460, "gsm7", 4),
    ("euro-80", "\u20ac" * 80, "gsm7", 1),		# 160 septets
    ("euro-81", "\u20ac" * 81, "gsm7", 2),		# 162 septets
    ("gsm-159-euro", "a" * 159 + "\u20ac", "gsm7", 2),	# 161 septets
    ("gsm-158-euro", "a" * 158 + "\u20ac", "gsm7", 1),	# 160 septets
    # 306 septets, but the escape pair would straddle the first part's
    # end: it moves whole, and a third part is needed.
    ("escape-not-split", "a" * 152 + "\u20ac" + "a" * 152, "gsm7", 3),
    ("escape-fits", "a" * 151 + "\u20ac" + "a" * 153, "gsm7", 2),
    ("ucs2-short", "\u041f\u0440\u0438\u0432\u0435\u0442", "ucs2", 1),
    ("ucs2-70", "\u0416" * 70, "ucs2", 1),
    ("ucs2-71", "\u0416" * 71, "ucs2", 2),
    ("ucs2-134", "\u0416" * 134, "ucs2", 2),
    ("ucs2-135", "\u0416" * 135, "ucs2", 3),
    ("one-ucs2-char-in-gsm", "a" * 69 + "\u0416", "ucs2", 1),
    ("one-ucs2-char-71", "a" * 70 + "\u0416", "ucs2", 2),
    ("smart-quotes", "\u201cQuoted\u201d \u2014 it\u2019s", "ucs2", 1),
    ("emoji-one", EMOJI, "ucs2", 1),
    ("emoji-35", EMOJI * 35, "ucs2", 1),		# 70 units
    ("emoji-35-plus-a", EMOJI * 35 + "a", "ucs2", 2),	# 71 units
    # 134 units, but the surrogate pair would straddle the first part's
    # end: it moves whole, and a third part is needed.
    ("surrogate-not-split", "a" * 66 + EMOJI + "a" * 66, "ucs2", 3),
    ("surrogate-fits", "a" * 65 + EMOJI + "a" * 67, "ucs2", 2),
    ("emoji-flag-zwj", "\U0001F1FA\U0001F1F8 \U0001F469\u200D\U0001F52C",
     "ucs2", 1),
    ("c-cedilla-lower", "gar\u00e7on", None, None),
    ("greek-lower", "\u03b1\u03b2\u03b3", "ucs2", 1),
    ("tab", "a\tb", None, None),
    ("nbsp", "a\u00a0b", None, None),
]


def units(text, encoding):
    """Septets (GSM-7: extension characters take 2) or UTF-16 units."""
    if encoding == "gsm7":
        return sum(2 if c in GSM_EXT else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def norm_encoding(e):
    """'GSM-7', 'gsm7', 'GSM7' -> 'gsm7'; 'UCS-2', 'ucs2' -> 'ucs2'."""
    return "".join(c for c in str(e).lower() if c.isalnum())


JS_RUN = """
var texts = arguments[0], done = arguments[arguments.length - 1];
function run(f) {
    try {
        done({results: texts.map(function (t) {
            var r = f(t);
            return {encoding: r.encoding, segments: r.segments,
                    units: r.units};
        })});
    } catch (e) { done({error: 'segmentInfo threw: ' + e}); }
}
if (typeof window.segmentInfo === 'function') {
    run(window.segmentInfo);
} else {
    import('/ui/smstext.js').then(function (m) {
        var f = m.segmentInfo || (m.default && m.default.segmentInfo) ||
            m.default;
        if (typeof f !== 'function')
            done({error: 'smstext.js exports no segmentInfo'});
        else
            run(f);
    }, function (e) { done({error: 'import(/ui/smstext.js): ' + e}); });
}
"""


def daemon_oracle(d, text):
    mid = d.send_sms("+15551230001", text)
    m = d.message(mid)
    return {"encoding": m["encoding"], "segments": m["segments"]}


def test_js_segment_counter_agrees_with_daemon(daemon, browser):
    goto(browser, daemon)
    wait_js(browser, "return document.readyState === 'complete';")
    got = browser.driver.execute_async_script(
        JS_RUN, [t for _, t, _, _ in TABLE])
    assert "error" not in got, got
    js = got["results"]
    assert len(js) == len(TABLE)
    wrong = []
    for (label, text, enc, segs), j in zip(TABLE, js):
        o = daemon_oracle(daemon, text)
        if enc is not None:
            # The table is right about the C rules (else fix the table).
            assert (o["encoding"], o["segments"]) == (enc, segs), \
                (label, o)
        je = norm_encoding(j["encoding"])
        if (je, j["segments"]) != (o["encoding"], o["segments"]):
            wrong.append("%s: js %s/%s, daemon %s/%s" % (
                label, j["encoding"], j["segments"], o["encoding"],
                o["segments"]))
        elif j.get("units") is not None and \
                j["units"] != units(text, o["encoding"]):
            wrong.append("%s: js units %s, want %s" % (
                label, j["units"], units(text, o["encoding"])))
    browser.shot("page")
    assert not wrong, "segmentInfo disagrees with core/smstext.c:\n  " + \
        "\n  ".join(wrong)


@pytest.mark.parametrize("text,want", [
    ("a" * 160, ("GSM-7", 1)),
    ("a" * 161, ("GSM-7", 2)),
    ("\u0416" * 71, ("UCS-2", 2)),
    (EMOJI * 35, ("UCS-2", 1)),
], ids=["gsm7-160", "gsm7-161", "ucs2-71", "emoji-35"])
def test_counter_text_in_reply_box(daemon, browser, text, want):
    """The reply-counter shown under the reply box says what segmentInfo
    says, for a few texts typed (or pasted) into a thread's reply box."""
    r = daemon.api("POST", "/webhooks/console/inbound",
                   {"From": "+15551230009", "Body": "hello"})
    assert r.status == 200, r
    r = daemon.api("GET", "/api/v1/conversations?status=all")
    assert r.status == 200 and r.json["conversations"], r
    cid = r.json["conversations"][0]["id"]
    login_token(browser, daemon)
    browser.driver.get(daemon.url() + "/ui/#/conversations/%d" % cid)
    box = wait_tid(browser, "reply-box")
    type_into(box, text)
    enc, segs = want
    pat = r"\b%d segments?\b" % segs
    wait_text(browser, "reply-counter",
              lambda t: enc in t and re.search(pat, t),
              what="reply-counter saying %s and %d segment(s)" % want)
    browser.shot("counter")
