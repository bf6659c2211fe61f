// A reply's Markdown while it streams, drawn incrementally: the blocks already finished keep
// their DOM (so a selection in them survives, and their maths and highlighting are done once);
// only the last block, the one still being written, is drawn again. Its trailing partial
// construct is held back until it is whole, so it does not flash as raw text first: a code span
// whose closing backtick has not come, a line starting with `|` before its table exists, a
// formula not yet closed. `final` draws everything (the reply ended).
//
// The blocks are marked's top-level tokens: every token before the last non-blank one is
// finished, since the text only grows at its end (a token whose source changed anyway, as when
// a reply is replaced, is drawn again with everything after it).

import { markdownBlocks, markdownFragment } from "./markdown.js";
import { inlineDollarMaths } from "./math.js";

// target → {blocks: [{raw, nodes}], tail: {raw, nodes}}
const drawn = new WeakMap();

function nodesOf(raw) {
  if (!raw.trim()) return [];
  return [...markdownFragment(raw).childNodes];
}

// Where a run of backticks opens a code span that no run of the same length closes, or -1.
function unclosedCodeSpan(text) {
  let open = null;
  for (const run of text.matchAll(/`+/g)) {
    if (!open) open = run;
    else if (run[0].length === open[0].length) open = null;
  }
  return open ? open.index : -1;
}

// Where a displayed formula opens (`$$` or `\[`) without its close yet, or -1.
function unclosedDisplayMaths(text) {
  const dollars = [...text.matchAll(/\$\$/g)];
  if (dollars.length % 2) return dollars[dollars.length - 1].index;
  const open = text.lastIndexOf("\\[");
  return open >= 0 && text.indexOf("\\]", open) < 0 ? open : -1;
}

// Where inline maths opens (`\(`, or a `$` whose text so far reads as TeX) without its close
// yet, or -1. The last `$` that no formula closes counts only before TeX-looking text: a `$`
// before plain words is a price ("$5 and $10"), and holding it back would hide the rest of the
// paragraph for as long as it streams.
function unclosedInlineMaths(text) {
  const open = text.lastIndexOf("\\(");
  if (open >= 0 && text.indexOf("\\)", open) < 0) return open;
  const closed = text.replace(inlineDollarMaths(), (whole) => " ".repeat(whole.length));
  const dollars = [...closed.matchAll(/(?<![\\$])\$(?![\s$])/g)];
  if (!dollars.length) return -1;
  const last = dollars[dollars.length - 1].index;
  const after = closed.slice(last + 1);
  return !after.includes("\n") && /[\\^_{}=]/.test(after) ? last : -1;
}

// Where the trailing lines starting with `|` begin, for a block that is not a table yet (they
// may be a table's header row waiting for its delimiter row); in a table, its unfinished last
// row. -1 when there are none.
function pendingTableRows(text, isTable) {
  if (isTable) {
    const lastLine = text.lastIndexOf("\n") + 1;
    return !text.endsWith("\n") && text.slice(lastLine).trimStart().startsWith("|") ? lastLine : -1;
  }
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  let start = text.length;
  let offset = text.length - (text.endsWith("\n") ? 1 : 0);
  for (let index = lines.length - 1; index >= 0 && lines[index].trimStart().startsWith("|"); index--) {
    offset -= lines[index].length;
    start = offset;
    offset -= 1; // the newline before it
  }
  return start < text.length ? start : -1;
}

// The part of the unfinished block that is drawn now.
export function settledPart(token) {
  const text = token.raw;
  if (token.type === "code") return text; // a fence still open is drawn as code to its end
  const cuts = [unclosedCodeSpan(text), unclosedDisplayMaths(text), unclosedInlineMaths(text), pendingTableRows(text, token.type === "table")];
  const found = cuts.filter((at) => at >= 0);
  return found.length ? text.slice(0, Math.min(...found)) : text;
}

function lastContentIndex(tokens) {
  for (let index = tokens.length - 1; index >= 0; index--) if (tokens[index].type !== "space") return index;
  return -1;
}

export function renderStreaming(target, text, { final = false } = {}) {
  const tokens = markdownBlocks(text);
  const cut = final ? tokens.length : lastContentIndex(tokens);
  const finished = tokens.slice(0, Math.max(cut, 0)).filter((token) => token.type !== "space");
  const tail = final || cut < 0 ? "" : settledPart(tokens[cut]);

  let state = drawn.get(target);
  const intact = state && [...state.blocks, state.tail].every((block) => block.nodes.every((node) => node.parentNode === target));
  if (!intact) {
    target.replaceChildren();
    state = { blocks: [], tail: { raw: "", nodes: [] } };
    drawn.set(target, state);
  }

  // Keep the finished blocks drawn before, as long as their source is the same.
  let same = 0;
  while (same < state.blocks.length && same < finished.length && state.blocks[same].raw === finished[same].raw) same++;
  for (const block of state.blocks.slice(same)) block.nodes.forEach((node) => node.remove());
  state.blocks.length = same;
  if (state.tail.raw !== tail || same < finished.length) {
    state.tail.nodes.forEach((node) => node.remove());
    state.tail = { raw: "", nodes: [] };
  }
  for (const token of finished.slice(same)) {
    const nodes = nodesOf(token.raw);
    target.append(...nodes);
    state.blocks.push({ raw: token.raw, nodes });
  }
  if (!state.tail.nodes.length && tail.trim()) {
    state.tail = { raw: tail, nodes: nodesOf(tail) };
    target.append(...state.tail.nodes);
  }
}
