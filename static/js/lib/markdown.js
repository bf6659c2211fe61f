// Untrusted text (model output) to safe DOM: Markdown with raw HTML off (escaped as text), then
// DOMPurify, then maths (KaTeX, from TeX that crossed the sanitiser as text), code highlighting
// and copy buttons. Links open in a new tab with
// rel="noopener noreferrer"; images are never loaded: each becomes a link the reader may follow.

import { Marked } from "../../vendor/marked.esm.js";
import DOMPurify from "../../vendor/purify.es.mjs";
import hljs from "../../vendor/highlight.min.js";
import { copyText, el } from "./dom.js";
import { mathExtension, renderMath } from "./math.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (ch) => ESCAPES[ch]);

const marked = new Marked(
  {
    gfm: true,
    breaks: false,
    async: false,
    renderer: {
      // Raw HTML in the Markdown source is shown as the text it is.
      html({ text }) {
        return escapeHtml(text);
      },
    },
  },
  mathExtension,
);

const purifier = DOMPurify(window);
purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
  if (node.tagName === "IMG") {
    // Keep the address aside so the element never fetches it, not even before it is attached.
    node.setAttribute("data-src", node.getAttribute("src") || "");
    node.removeAttribute("src");
    node.removeAttribute("srcset");
  }
});

const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "button", "textarea", "select", "option", "iframe", "object", "embed", "svg", "math"],
  FORBID_ATTR: ["style", "id", "name"],
  RETURN_DOM_FRAGMENT: true,
};

function imagesToLinks(root) {
  for (const image of root.querySelectorAll("img")) {
    const source = image.getAttribute("data-src") || "";
    const label = `Image: ${image.getAttribute("alt") || source || "untitled"} (not loaded)`;
    const safe = /^https?:\/\//i.test(source);
    const replacement = safe
      ? el("a", { class: "remote-image", href: source, target: "_blank", rel: "noopener noreferrer", text: label })
      : el("span", { class: "remote-image", text: label });
    image.replaceWith(replacement);
  }
}

function decorateCode(root, { highlight }) {
  for (const code of root.querySelectorAll("pre > code")) {
    const pre = code.parentElement;
    const language = (code.className.match(/language-([\w+#.-]+)/) || [])[1] || "";
    if (highlight && language && hljs.getLanguage(language)) {
      try {
        code.innerHTML = hljs.highlight(code.textContent, { language, ignoreIllegals: true }).value;
        code.classList.add("hljs");
      } catch {
        /* left plain */
      }
    }
    const copy = el("button", { type: "button", class: "copy-code", text: "Copy" });
    copy.addEventListener("click", async () => {
      await copyText(code.textContent);
      copy.textContent = "Copied";
      setTimeout(() => (copy.textContent = "Copy"), 1500);
    });
    const block = el("div", { class: "code-block" });
    // Long lines scroll sideways by default (code keeps its shape); the reader may wrap them.
    const wrap = el("button", { type: "button", class: "wrap-code", "aria-pressed": "false", title: "Wrap long lines", text: "Wrap" });
    wrap.addEventListener("click", () => {
      const wrapped = block.classList.toggle("wrapped");
      wrap.setAttribute("aria-pressed", String(wrapped));
    });
    const head = el("div", { class: "code-head" }, el("span", { text: language || "text" }), el("span", { class: "code-tools" }, wrap, copy));
    pre.replaceWith(block);
    block.append(head, pre);
  }
}

// Markdown source → a sanitised, decorated fragment, not yet in the page.
export function markdownFragment(text, { highlight = true } = {}) {
  const html = marked.parse(text || "");
  const fragment = purifier.sanitize(html, PURIFY_OPTIONS);
  imagesToLinks(fragment);
  renderMath(fragment);
  decorateCode(fragment, { highlight });
  for (const table of fragment.querySelectorAll("table")) {
    const wrap = el("div", { class: "table-wrap" });
    table.replaceWith(wrap);
    wrap.append(table);
  }
  return fragment;
}

// The top-level blocks of a Markdown source (marked's tokens: each has `type` and `raw`, the
// source it was read from; blank lines are tokens of type "space").
export function markdownBlocks(text) {
  return marked.lexer(text || "");
}

export function renderMarkdown(target, text, options = {}) {
  target.replaceChildren(markdownFragment(text, options));
}
