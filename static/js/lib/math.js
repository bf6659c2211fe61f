// Maths in model output: `$…$` and `\(…\)` inline, `$$…$$` and `\[…\]` displayed.
//
// A marked extension lifts the TeX out before Markdown can touch it (`_` and `*` are TeX, not
// emphasis) and writes it as escaped text inside <span class="math"> / <div class="math">, so it
// crosses the sanitiser as plain text. `renderMath` then builds each formula's DOM with KaTeX
// (trust off: no \href, \url or \html*; bounded sizes and macro expansion). KaTeX's HTML is never
// parsed from a string, and it sets its positions through element.style (CSSOM), which the
// Content-Security-Policy allows where a style="" attribute would be refused.

import katex from "../../vendor/katex/katex.mjs";
// Copying a selection that holds a formula puts the formula's TeX ($…$) in the plain text.
import "../../vendor/katex/copy-tex.mjs";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (ch) => ESCAPES[ch]);

// A `$` opens inline maths only before a non-space and closes only after one, and not before a
// digit, so prices ("$5 and $10") stay text (Pandoc's rule). Shared with the stream's drawing,
// which holds back a formula still open (lib/stream-markdown.js).
const DOLLAR = String.raw`\$(?![\s$])((?:\\[\s\S]|[^\\$\n])+?)(?<![\s\\])\$(?!\d)`;
export const inlineDollarMaths = () => new RegExp(DOLLAR, "g");
const INLINE = [
  { pattern: /^\$\$(?!\$)((?:\\[\s\S]|[^\\$])+?)\$\$/, display: true },
  { pattern: /^\\\[([\s\S]+?)\\\]/, display: true },
  { pattern: /^\\\(([\s\S]+?)\\\)/, display: false },
  { pattern: new RegExp(`^${DOLLAR}`), display: false },
];
const BLOCK = [/^ {0,3}\$\$([\s\S]+?)\$\$[ \t]*(?:\n+|$)/, /^ {0,3}\\\[([\s\S]+?)\\\][ \t]*(?:\n+|$)/];

const inlineMath = {
  name: "inlineMath",
  level: "inline",
  start(src) {
    const at = src.search(/\$|\\[([]/);
    return at < 0 ? undefined : at;
  },
  tokenizer(src) {
    for (const { pattern, display } of INLINE) {
      const match = pattern.exec(src);
      if (match && match[1].trim()) return { type: "inlineMath", raw: match[0], text: match[1].trim(), display };
    }
    return undefined;
  },
  renderer({ text, display }) {
    return `<span class="math" data-display="${display}">${escapeHtml(text)}</span>`;
  },
};

const blockMath = {
  name: "blockMath",
  level: "block",
  start(src) {
    const at = src.search(/^ {0,3}(?:\$\$|\\\[)/m);
    return at < 0 ? undefined : at;
  },
  tokenizer(src) {
    for (const pattern of BLOCK) {
      const match = pattern.exec(src);
      if (match && match[1].trim()) return { type: "blockMath", raw: match[0], text: match[1].trim() };
    }
    return undefined;
  },
  renderer({ text }) {
    return `<div class="math" data-display="true">${escapeHtml(text)}</div>\n`;
  },
};

export const mathExtension = { extensions: [blockMath, inlineMath] };

const OPTIONS = { throwOnError: true, trust: false, strict: "ignore", maxSize: 50, maxExpand: 500, output: "htmlAndMathml" };

// The hidden MathML copy (for screen readers) may carry a style attribute (\boldsymbol's
// fallback, \fcolorbox): drop it before the tree becomes DOM, or the CSP refuses it with a
// console error. The visible HTML copy keeps its styles, set through CSSOM.
function dropStyleAttributes(node) {
  if (node?.attributes && "style" in node.attributes) delete node.attributes.style;
  for (const child of node?.children || []) dropStyleAttributes(child);
}

// Each `.math` element's text is TeX: replace it with the formula, or, when the TeX does not
// parse, show it as code with KaTeX's reason as its title.
export function renderMath(root) {
  for (const node of root.querySelectorAll(".math:not(.math-rendered)")) {
    const tex = node.textContent;
    const displayMode = node.dataset.display === "true";
    try {
      const tree = katex.__renderToDomTree(tex, { ...OPTIONS, displayMode });
      dropStyleAttributes(tree);
      node.replaceChildren(tree.toNode());
      node.classList.add("math-rendered");
      node.setAttribute("data-tex", tex); // what the copy button and a selection's source may use
    } catch (error) {
      const code = document.createElement("code");
      code.className = "math-error";
      code.textContent = displayMode ? `$$${tex}$$` : `$${tex}$`;
      code.title = error instanceof katex.ParseError ? error.message : "This formula could not be drawn.";
      node.replaceChildren(code);
    }
  }
}
