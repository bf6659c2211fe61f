// How a document's content is drawn in the artifacts panel, by kind, and its diffs. Everything
// in a document is untrusted: text documents go through the chat's Markdown path (raw HTML off,
// sanitised); code, sheet cells, diffs and descriptions only ever as text (textContent), the
// highlighter's own escaped output aside.

import hljs from "../../vendor/highlight.min.js";
import { el } from "../lib/dom.js";
import { renderMarkdown } from "../lib/markdown.js";
import { parseCsv } from "../lib/csv.js";

const KIND_NAMES = { text: "Text", code: "Code", sheet: "Sheet", image: "Image" };

export function kindLabel(kind, language) {
  const name = KIND_NAMES[kind] || "Document";
  return kind === "code" && language ? `${name} · ${language}` : name;
}

export function highlightInto(code, text, language) {
  code.textContent = text;
  if (!language || !hljs.getLanguage(language)) return;
  try {
    // The highlighter escapes the source; its output holds only its own <span class="hljs-…">.
    code.innerHTML = hljs.highlight(text, { language, ignoreIllegals: true }).value;
    code.classList.add("hljs");
  } catch {
    code.textContent = text;
  }
}

function codeView(content, language) {
  const code = el("code", { class: language ? `language-${language}` : "" });
  highlightInto(code, content, language);
  return el("pre", { class: "artifact-code" }, code);
}

function sheetView(content) {
  const rows = parseCsv(content);
  if (!rows.length) return el("p", { class: "muted", text: "No rows yet." });
  const [head, ...body] = rows;
  const width = Math.max(...rows.map((row) => row.length));
  const cells = (row, tag, extra = {}) => Array.from({ length: width }, (_, index) => el(tag, { ...extra, text: row[index] ?? "" }));
  const table = el(
    "table",
    { class: "sheet" },
    el("thead", {}, el("tr", {}, cells(head, "th", { scope: "col" }))),
    el("tbody", {}, body.map((row) => el("tr", {}, cells(row, "td")))),
  );
  return el("div", { class: "table-wrap sheet-wrap" }, table);
}

function imageView(content, downloadUrl) {
  if (!downloadUrl) return el("p", { class: "artifact-drawing", text: "Drawing the picture…" });
  // Same origin (the CSP allows no other); the description is the alt text, as text.
  return el(
    "figure",
    { class: "artifact-image" },
    el("img", { src: downloadUrl, alt: content || "The picture" }),
    content ? el("figcaption", { class: "muted", text: content }) : null,
  );
}

export function renderDocument(target, { kind, language, content, downloadUrl }) {
  let view;
  if (kind === "code") view = codeView(content, language);
  else if (kind === "sheet") view = sheetView(content);
  else if (kind === "image") view = imageView(content, downloadUrl);
  else {
    view = el("div", { class: "markdown artifact-text" });
    renderMarkdown(view, content);
  }
  target.replaceChildren(view);
}

// `words`: runs of equal / delete / insert text. `lines`: difflib's unified diff.
export function renderDiff(target, diff, mode) {
  if (mode === "words" && diff.words) {
    const runs = diff.words.map((run) => {
      if (run.op === "insert") return el("ins", { class: "diff-ins", text: run.text });
      if (run.op === "delete") return el("del", { class: "diff-del", text: run.text });
      return el("span", { text: run.text });
    });
    target.replaceChildren(el("div", { class: "diff-words" }, runs));
    return;
  }
  if (!diff.unified) {
    target.replaceChildren(el("p", { class: "muted", text: "These versions are the same." }));
    return;
  }
  const lines = diff.unified.replace(/\n$/, "").split("\n");
  const rows = lines.map((line) => {
    let kind = "same";
    if (line.startsWith("+++") || line.startsWith("---")) kind = "file";
    else if (line.startsWith("@@")) kind = "hunk";
    else if (line.startsWith("+")) kind = "add";
    else if (line.startsWith("-")) kind = "remove";
    return el("div", { class: `diff-line ${kind}`, text: line || " " });
  });
  target.replaceChildren(el("div", { class: "diff-lines", role: "table", "aria-label": "Changed lines" }, rows));
}

// Marks the first place each pending suggestion's `original` appears within one text node of the
// drawn content (best effort: an excerpt split by formatting or highlighting is not marked; the
// list below the toolbar shows every suggestion anyway).
export function markSuggestions(root, suggestions, onPick) {
  for (const suggestion of suggestions) {
    const original = suggestion.original;
    if (!original || original.includes("\n")) continue;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const at = node.data.indexOf(original);
      if (at < 0 || node.parentElement?.closest("mark")) continue;
      const middle = node.splitText(at);
      middle.splitText(original.length);
      const mark = el("mark", { class: "suggestion-mark", title: suggestion.description, "data-suggestion": suggestion.id });
      middle.replaceWith(mark);
      mark.append(middle);
      mark.addEventListener("click", () => onPick(suggestion.id));
      break;
    }
  }
}
