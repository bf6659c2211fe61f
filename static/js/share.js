// The share page: each reply drawn as the chat draws it (Markdown through the same sanitiser,
// maths, highlighted code, reasoning collapsed, a card per document), from the parts the server
// put beside it as a JSON data block (chat/sharing.py says which). Until this runs, and without
// scripts, the reply's plain text stays on the page.

import { el } from "./lib/dom.js";
import { renderMarkdown } from "./lib/markdown.js";
import { reasoningOf, textOf, toolCallsOf } from "./lib/tree.js";
import { DOCUMENT_TOOLS, cardsOf } from "./artifacts/cards.js";
import { kindLabel } from "./artifacts/views.js";

// A document's card, as in the chat but not a button: the documents stay with the chat's owner.
function documentCard(card) {
  const kind = card.kind ? kindLabel(card.kind, card.language) : "Document";
  return el(
    "div",
    { class: "artifact-card saved shared-card" },
    el("span", { class: `artifact-card-icon kind-${card.kind || "text"}`, "aria-hidden": "true", text: card.kind === "code" ? "</>" : "¶" }),
    el(
      "span",
      { class: "artifact-card-text" },
      el("span", { class: "artifact-card-title", text: card.title || "Document" }),
      el("span", { class: "artifact-card-sub", text: `${kind} · version ${card.version ?? "?"}` }),
    ),
  );
}

function replyView(parts) {
  const message = { content: parts };
  const body = el("div", { class: "shared-body" });
  const reasoning = reasoningOf(message);
  if (reasoning) body.append(el("details", { class: "reasoning" }, el("summary", { text: "Reasoning" }), el("div", { class: "reasoning-text", text: reasoning })));
  const cards = cardsOf(message);
  for (const tool of toolCallsOf(message)) {
    if (cards.size && DOCUMENT_TOOLS.has(tool.name)) continue; // the card stands for the call
    body.append(el("div", { class: "tool-call" }, el("span", { class: "tool-name", text: `Used ${tool.name || "a tool"}` })));
  }
  for (const card of cards.values()) body.append(documentCard(card));
  const markdown = el("div", { class: "markdown" });
  renderMarkdown(markdown, textOf(message));
  body.append(markdown);
  return body;
}

for (const article of document.querySelectorAll(".shared-message[data-role=assistant]")) {
  const data = article.querySelector('script[type="application/json"]');
  const text = article.querySelector(".shared-text");
  if (!data || !text) continue;
  try {
    text.replaceWith(replyView(JSON.parse(data.textContent)));
  } catch (error) {
    console.warn("This reply is shown as plain text:", error); // the plain copy stays
  }
}
