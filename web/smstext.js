// smstext.js - SMS encoding and segment count of a text, by exactly the
// rules of core/smstext.c (smstext_analyze), so the reply box and the
// alert composer say what the daemon will store and send.
//
//  - GSM-7 when every character is in the GSM 03.38 basic table (1
//    septet) or its extension table (2 septets: ESC + code); otherwise the
//    whole text is UCS-2, counted in UTF-16 code units (a character past
//    U+FFFF counts 2).
//  - One part holds 160 septets / 70 units; a longer text goes in parts
//    of 153 septets / 67 units, and a character is never split across
//    parts: an escape pair or a surrogate pair that does not fit moves
//    whole to the next part.
//  - The empty text is 1 segment.
//
// segmentInfo(text) -> {encoding: "gsm7" | "ucs2", segments, units, chars}
// (encoding as the API writes it; units are septets or UTF-16 units,
// chars are code points). A lone surrogate (which UTF-8, and so the
// daemon, cannot carry) counts as one UCS-2 unit.

export const GSM7_SINGLE = 160;
export const GSM7_PART = 153;
export const UCS2_SINGLE = 70;
export const UCS2_PART = 67;

// printable ASCII is basic, except the backtick; these are extension
const GSM_EXT_ASCII = "^{}\\[~]|";

// GSM 03.38 outside ASCII (smstext_gsm_table); the euro sign is extension
const GSM_NON_ASCII = new Map([
  [0x00a1, 1], [0x00a3, 1], [0x00a4, 1], [0x00a5, 1], [0x00a7, 1],
  [0x00bf, 1], [0x00c4, 1], [0x00c5, 1], [0x00c6, 1], [0x00c7, 1],
  [0x00c9, 1], [0x00d1, 1], [0x00d6, 1], [0x00d8, 1], [0x00dc, 1],
  [0x00df, 1], [0x00e0, 1], [0x00e4, 1], [0x00e5, 1], [0x00e6, 1],
  [0x00e8, 1], [0x00e9, 1], [0x00ec, 1], [0x00f1, 1], [0x00f2, 1],
  [0x00f6, 1], [0x00f8, 1], [0x00f9, 1], [0x00fc, 1], [0x0393, 1],
  [0x0394, 1], [0x0398, 1], [0x039b, 1], [0x039e, 1], [0x03a0, 1],
  [0x03a3, 1], [0x03a6, 1], [0x03a8, 1], [0x03a9, 1], [0x20ac, 2],
]);

// Septets code point cp costs in GSM-7: 1, 2, or 0 if it is not GSM.
export function gsmSeptets(cp) {
  if (cp === 0x0a || cp === 0x0d) return 1;
  if (cp === 0x0c) return 2;
  if (cp < 0x80) {
    if (cp < 0x20 || cp === 0x7f || cp === 0x60) return 0;
    return GSM_EXT_ASCII.includes(String.fromCharCode(cp)) ? 2 : 1;
  }
  return GSM_NON_ASCII.get(cp) || 0;
}

// Parts filled so far for one encoding (smstext_pack_add).
function pack() {
  return { total: 0, parts: 1, used: 0 };
}

function packAdd(pk, cost, part) {
  if (pk.used + cost > part) {
    pk.parts++;
    pk.used = 0;
  }
  pk.used += cost;
  pk.total += cost;
}

function packSegments(pk, single) {
  return pk.total <= single ? 1 : pk.parts;
}

export function segmentInfo(text) {
  const gsm = pack();
  const ucs = pack();
  let isGsm = true;
  let chars = 0;
  for (const ch of String(text)) {
    const cp = ch.codePointAt(0);
    chars++;
    const septets = isGsm ? gsmSeptets(cp) : 0;
    if (septets > 0) packAdd(gsm, septets, GSM7_PART);
    else isGsm = false;
    packAdd(ucs, cp > 0xffff ? 2 : 1, UCS2_PART);
  }
  if (isGsm) {
    return { encoding: "gsm7", segments: packSegments(gsm, GSM7_SINGLE),
      units: gsm.total, chars };
  }
  return { encoding: "ucs2", segments: packSegments(ucs, UCS2_SINGLE),
    units: ucs.total, chars };
}

// The counter's text: "1 segment · GSM-7 · 42 characters".
export function segmentText(text) {
  const i = segmentInfo(text);
  const enc = i.encoding === "gsm7" ? "GSM-7" : "UCS-2";
  return i.segments + (i.segments === 1 ? " segment" : " segments") +
    " · " + enc + " · " + i.chars +
    (i.chars === 1 ? " character" : " characters");
}

// What is left in the last part, for the counter's title.
export function segmentRoom(text) {
  const i = segmentInfo(text);
  const single = i.encoding === "gsm7" ? GSM7_SINGLE : UCS2_SINGLE;
  const part = i.encoding === "gsm7" ? GSM7_PART : UCS2_PART;
  if (i.units <= single) return single - i.units;
  return i.segments * part - i.units;
}
