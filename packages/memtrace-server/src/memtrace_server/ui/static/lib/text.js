// The engine's text analysis, in the browser: the same tokens, stop-words and Porter stems as
// memtrace_core.text (tokenize, STOP_WORDS, stem, word_variants), so that a search result
// highlights exactly the words its query matched. Pure functions, no DOM.

const TOKEN_RE = /(?:[\p{L}\p{N}]|[\u{10000}-\u{10FFFF}])+/gu;
// a word of the original text (marks kept, so "Café" in decomposed form stays one word)
const WORD_RE = /(?:[\p{L}\p{N}\p{M}]|[\u{10000}-\u{10FFFF}])+/gu;

/** Case-fold and strip diacritics (NFD, drop combining marks), like memtrace_core.text._fold. */
export function fold(text) {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text.toLowerCase();
  return text.normalize("NFD").replace(/\p{M}/gu, "").normalize("NFC").toLowerCase();
}

/** Tokens as FTS5's unicode61 tokenizer (and memtrace_core.text.tokenize) makes them. */
export function tokenize(text) {
  return text ? fold(text).match(TOKEN_RE) || [] : [];
}

export const STOP_WORDS = new Set(
  `a about above after again against all also am an and any are aren as at
  be because been before being below between both but by
  can cannot could couldn
  d did didn do does doesn doing don down during
  each either else ever every
  few for from further
  get gets got
  had hadn has hasn have haven having he her here hers herself him himself his how
  i if in into is isn it its itself
  just
  least let ll
  m many may me might more most much must mustn my myself
  neither no nor not now
  o of off on once only or other ought our ours ourselves out over own
  re
  s same shall shan she should shouldn so some such
  t than that the their theirs them themselves then there these they this those through
  to too
  under until up upon us
  ve very
  was wasn we were weren what whatever when whenever where whereas wherever whether which
  while who whoever whom whose why will with would wouldn
  y yet you your yours yourself yourselves`.split(/\s+/),
);

// Irregular inflections the engine joins to their base word (memtrace_core.text._IRREGULAR_TEXT).
const IRREGULAR = `arise arose arisen | awake awoke awoken | beat beaten | become became | begin began begun
  bend bent | bite bit bitten | bleed bled | blow blew blown | break broke broken | breed bred
  bring brought | build built | burn burnt | buy bought | catch caught | choose chose chosen
  cling clung | come came | creep crept | deal dealt | dig dug | draw drew drawn
  dream dreamt | drink drank drunk | drive drove driven | eat ate eaten | fall fell fallen
  feed fed | feel felt | fight fought | find found | flee fled | fly flew flown
  forbid forbade forbidden | forget forgot forgotten | forgive forgave forgiven
  freeze froze frozen | give gave given | go went gone | grow grew grown | hang hung
  hear heard | hide hid hidden | hold held | keep kept | kneel knelt | know knew known
  lead led | leap leapt | learn learnt | leave left | lend lent | light lit | lose lost
  make made | mean meant | meet met | pay paid | ride rode ridden | ring rang rung | run ran
  say said | see saw seen | seek sought | sell sold | send sent | shake shook shaken
  shine shone | shoot shot | show shown | shrink shrank shrunk | sing sang sung
  sink sank sunk | sit sat | sleep slept | slide slid | speak spoke spoken | spend spent
  spin spun | stand stood | steal stole stolen | stick stuck | sting stung | strike struck
  swear swore sworn | sweep swept | swim swam swum | swing swung | take took taken
  teach taught | tell told | think thought | throw threw thrown | understand understood
  wake woke woken | wear wore worn | weep wept | win won | withdraw withdrew withdrawn
  write wrote written
  child children | person people | man men | woman women | mouse mice | foot feet
  tooth teeth | goose geese`;

const FORMS = new Map();
for (const group of IRREGULAR.split("|")) {
  const words = [...new Set(group.trim().split(/\s+/))];
  for (const word of words) FORMS.set(word, words);
}

// --- the Porter stemmer: the original algorithm as snowball's "porter" stemmer (what the
// engine uses) implements it --------------------------------------------------------------

// each list longest suffix first: a step applies to the longest suffix that ends the word
const byLength = (table) => Object.entries(table).sort((a, b) => b[0].length - a[0].length);
const STEP2 = byLength({
  ational: "ate", tional: "tion", enci: "ence", anci: "ance", izer: "ize", abli: "able",
  alli: "al", entli: "ent", eli: "e", ousli: "ous", ization: "ize", ation: "ate", ator: "ate",
  alism: "al", iveness: "ive", fulness: "ful", ousness: "ous", aliti: "al", iviti: "ive",
  biliti: "ble",
});
const STEP3 = byLength({
  icate: "ic", ative: "", alize: "al", iciti: "ic", ical: "ic", ful: "", ness: "",
});
const STEP4 = [
  "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou",
  "ism", "ate", "iti", "ous", "ive", "ize",
].sort((a, b) => b.length - a.length);

/** Is word[i] a consonant (Porter's definition: y after a consonant is a vowel)? */
function consonant(word, i) {
  const ch = word[i];
  if ("aeiou".includes(ch)) return false;
  if (ch === "y") return i === 0 ? true : !consonant(word, i - 1);
  return true;
}

/** m(): the number of VC sequences in word[0..end). */
function measure(word, end = word.length) {
  let n = 0;
  let i = 0;
  while (i < end && consonant(word, i)) i++;
  while (i < end) {
    while (i < end && !consonant(word, i)) i++;
    if (i >= end) break;
    while (i < end && consonant(word, i)) i++;
    n++;
  }
  return n;
}

function hasVowel(word, end = word.length) {
  for (let i = 0; i < end; i++) if (!consonant(word, i)) return true;
  return false;
}

function doubleConsonant(word) {
  const n = word.length;
  return n >= 2 && word[n - 1] === word[n - 2] && consonant(word, n - 1);
}

/** *o: the stem ends cvc, the second c not w, x or y. */
function cvc(word, end = word.length) {
  if (end < 3) return false;
  if (!consonant(word, end - 1) || consonant(word, end - 2) || !consonant(word, end - 3)) {
    return false;
  }
  return !"wxy".includes(word[end - 1]);
}

function replaceSuffix(word, suffix, replacement, minMeasure) {
  if (!word.endsWith(suffix)) return null;
  const base = word.length - suffix.length;
  return measure(word, base) > minMeasure ? word.slice(0, base) + replacement : word;
}

function porter(w) {
  // step 1a
  if (w.endsWith("sses")) w = w.slice(0, -2);
  else if (w.endsWith("ies")) w = w.slice(0, -2);
  else if (w.endsWith("ss")) {
    /* unchanged */
  } else if (w.endsWith("s")) w = w.slice(0, -1);
  // step 1b
  let extra = false;
  if (w.endsWith("eed")) {
    if (measure(w, w.length - 3) > 0) w = w.slice(0, -1);
  } else if (w.endsWith("ed") && hasVowel(w, w.length - 2)) {
    w = w.slice(0, -2);
    extra = true;
  } else if (w.endsWith("ing") && hasVowel(w, w.length - 3)) {
    w = w.slice(0, -3);
    extra = true;
  }
  if (extra) {
    if (w.endsWith("at") || w.endsWith("bl") || w.endsWith("iz")) w += "e";
    // snowball's list of the doubles undone (the original's "not l, s or z" also undid "cc")
    else if (doubleConsonant(w) && "bdfgmnprt".includes(w[w.length - 1])) w = w.slice(0, -1);
    else if (measure(w) === 1 && cvc(w)) w += "e";
  }
  // step 1c
  if (w.endsWith("y") && hasVowel(w, w.length - 1)) w = w.slice(0, -1) + "i";
  // step 2
  for (const [suffix, replacement] of STEP2) {
    if (w.endsWith(suffix)) {
      w = replaceSuffix(w, suffix, replacement, 0);
      break;
    }
  }
  // step 3
  for (const [suffix, replacement] of STEP3) {
    if (w.endsWith(suffix)) {
      w = replaceSuffix(w, suffix, replacement, 0);
      break;
    }
  }
  // step 4
  for (const suffix of STEP4) {
    if (!w.endsWith(suffix)) continue;
    const base = w.length - suffix.length;
    if (suffix === "ion" && !(base > 0 && "st".includes(w[base - 1]))) break;
    if (measure(w, base) > 1) w = w.slice(0, base);
    break;
  }
  // step 5a
  if (w.endsWith("e")) {
    const base = w.length - 1;
    const m = measure(w, base);
    if (m > 1 || (m === 1 && !cvc(w, base))) w = w.slice(0, base);
  }
  // step 5b
  if (measure(w) > 1 && doubleConsonant(w) && w.endsWith("l")) w = w.slice(0, -1);
  return w;
}

const cache = new Map();

/** The Porter stem of one lower-case token (shorter than 3 or longer than 64: unchanged). */
export function stem(word) {
  if (word.length < 3 || word.length > 64 || /^[0-9]+$/.test(word)) return word;
  let out = cache.get(word);
  if (out === undefined) {
    out = porter(word);
    if (cache.size > 10000) cache.clear();
    cache.set(word, out);
  }
  return out;
}

/** The stems a query matches: its keywords (stop-words dropped) and their irregular forms. */
export function queryStems(query) {
  const stems = new Set();
  for (const token of tokenize(query || "")) {
    if (STOP_WORDS.has(token)) continue;
    for (const form of FORMS.get(token) || [token]) stems.add(stem(form));
  }
  return stems;
}

/**
 * Split ``text`` into runs: [{text, match}] where a match is a word whose stem is in ``stems``
 * (the words of the original text, diacritics and case kept).
 */
export function matchRuns(text, stems) {
  const runs = [];
  if (!stems || stems.size === 0) return [{ text, match: false }];
  let last = 0;
  for (const m of text.matchAll(WORD_RE)) {
    const hit = tokenize(m[0]).some((token) => stems.has(stem(token)));
    if (!hit) continue;
    if (m.index > last) runs.push({ text: text.slice(last, m.index), match: false });
    runs.push({ text: m[0], match: true });
    last = m.index + m[0].length;
  }
  if (last < text.length) runs.push({ text: text.slice(last), match: false });
  return runs;
}
