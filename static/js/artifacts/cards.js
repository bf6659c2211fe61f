// The cards a reply shows for the documents its tools wrote: from the live frames while it
// streams (artifact_start / artifact_done / tool_result), from the saved tool_result parts after.
// A card is a button that opens the document in the artifacts panel.

import { el } from "../lib/dom.js";
import { kindLabel } from "./views.js";

export const DOCUMENT_TOOLS = new Set(["create_document", "update_document", "request_suggestions"]);

// Update `cards` (document id → card) from one frame of a reply's stream.
export function noteFrame(cards, frame) {
  const id = frame.document_id || frame.data?.document_id;
  if (!id) return;
  if (frame.type === "artifact_start") {
    cards.set(id, {
      documentId: id,
      title: frame.title,
      kind: frame.kind,
      language: frame.language || "",
      version: frame.version,
      operation: frame.operation,
      status: "writing",
    });
  } else if (frame.type === "artifact_done") {
    const card = cards.get(id) || { documentId: id, title: "", kind: "", operation: "create" };
    card.status = frame.status === "complete" ? "saved" : "error";
    if (frame.version) card.version = frame.version;
    card.error = frame.error?.message || "";
    cards.set(id, card);
  } else if (frame.type === "tool_result" && DOCUMENT_TOOLS.has(frame.name) && !frame.error) {
    const data = frame.data || {};
    const card = cards.get(id) || { documentId: id, status: "saved" };
    card.title = data.title || card.title || "";
    card.kind = data.kind || card.kind || "";
    card.language = data.language ?? card.language ?? "";
    card.version = data.version || card.version;
    if (frame.name === "request_suggestions") card.review = true;
    else card.operation = frame.name === "create_document" ? "create" : "update";
    if (card.status !== "error") card.status = "saved";
    cards.set(id, card);
  }
}

// The cards of a saved reply (its tool_result parts; failed calls made no document).
export function cardsOf(message) {
  const cards = new Map();
  for (const part of message.content || []) {
    if (part.type === "tool_result") noteFrame(cards, { ...part, type: "tool_result" });
  }
  return cards;
}

// Document id → title, from every reply of a chat (a review's result names no title: the reply
// that wrote the document does).
export function titlesIn(messages) {
  const titles = new Map();
  for (const message of messages) {
    for (const part of message.content || []) {
      if (part.type === "tool_result" && part.data?.document_id && part.data.title) titles.set(part.data.document_id, part.data.title);
    }
  }
  return titles;
}

function subtitle(card) {
  const kind = card.kind ? kindLabel(card.kind, card.language) : "Document";
  if (card.status === "writing") return `${kind} · writing${card.operation === "update" ? ` version ${card.version}` : ""}…`;
  if (card.status === "error") return `${kind} · not saved: ${card.error || "the writing failed"}`;
  if (card.review && !card.operation) return "Review requested: suggestions appear beside the document";
  return `${kind} · version ${card.version ?? "?"}${card.review ? " · review requested" : ""}`;
}

export function cardView(card, onOpen, titles = new Map()) {
  const title = card.title || titles.get(card.documentId) || "Document";
  const button = el(
    "button",
    {
      type: "button",
      class: `artifact-card ${card.status}`,
      "data-document-id": card.documentId,
      "data-version": card.version ?? "",
      "aria-label": `Open the document ${title}`,
    },
    el("span", { class: `artifact-card-icon kind-${card.kind || "text"}`, "aria-hidden": "true", text: ICONS[card.kind] || "¶" }),
    el("span", { class: "artifact-card-text" }, el("span", { class: "artifact-card-title", text: title }), el("span", { class: "artifact-card-sub", text: subtitle(card) })),
  );
  button.addEventListener("click", () => onOpen(card.documentId, { version: card.status === "saved" && !card.review ? card.version : undefined, opener: button }));
  return button;
}

const ICONS = { text: "¶", code: "</>", sheet: "▦", image: "▣" };
