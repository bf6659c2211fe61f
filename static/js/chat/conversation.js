// The active branch of a chat, drawn from its tree: Markdown replies (sanitised), reasoning
// collapsed, tool activity, and per message copy, edit / regenerate, vote, fork and the
// ‹ 2/3 › switcher wherever a message has siblings. Live replies are drawn from their stream,
// in place: a redraw keeps the reply's text element and draws only its changed tail into it
// (lib/stream-markdown.js), so a selection in the finished part survives the stream.

import { copyText, el, icon } from "../lib/dom.js";
import { renderMarkdown } from "../lib/markdown.js";
import { renderStreaming } from "../lib/stream-markdown.js";
import { imagesOf, reasoningOf, textOf, toolCallsOf } from "../lib/tree.js";
import { DOCUMENT_TOOLS, cardView, cardsOf, titlesIn } from "../artifacts/cards.js";
import { uploadUrl } from "./attachments.js";
import { ScrollLatest } from "./scroll-latest.js";

const REFRESH_EVERY_MS = 60;

export class Conversation {
  constructor({ streams, models, handlers }) {
    this.thread = document.getElementById("thread");
    this.scroller = document.getElementById("messages");
    this.empty = document.getElementById("empty");
    this.streams = streams;
    this.models = models; // () → [{id, name}]
    this.handlers = handlers;
    this.tree = null;
    this.scheduled = new Map();
    this.editing = null; // {id, text, focus} while a message is being edited
    this.latest = new ScrollLatest(this.scroller, { isNearBottom: () => this.nearBottom(), scrollToBottom: () => this.scrollToBottom() });
  }

  nearBottom() {
    const { scrollTop, scrollHeight, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < 80;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  render(tree, { scroll = true } = {}) {
    this.tree = tree;
    const branch = tree ? tree.activeBranch() : [];
    this.empty.hidden = branch.length > 0;
    const stick = scroll || this.nearBottom();
    const open = this.openMenus(this.thread);
    this.thread.replaceChildren(...branch.map((message) => this.messageView(message)));
    this.reopenMenus(this.thread, open);
    if (stick) this.scrollToBottom();
    this.latest.update();
  }

  // A redraw (a reply ending, another tab's change) keeps open menus open.
  openMenus(root) {
    return [...root.querySelectorAll("details.menu[open]")].map((menu) => `${menu.closest("article")?.dataset.id}|${menu.className}`);
  }

  reopenMenus(root, keys) {
    for (const menu of root.querySelectorAll("details.menu")) {
      if (keys.includes(`${menu.closest("article")?.dataset.id}|${menu.className}`)) menu.open = true;
    }
  }

  // A live reply changed: redraw its body, at most every REFRESH_EVERY_MS.
  refresh(messageId, { now = false } = {}) {
    if (now) {
      clearTimeout(this.scheduled.get(messageId));
      this.scheduled.delete(messageId);
      return this.redraw(messageId);
    }
    if (this.scheduled.has(messageId)) return;
    this.scheduled.set(
      messageId,
      setTimeout(() => {
        this.scheduled.delete(messageId);
        this.redraw(messageId);
      }, REFRESH_EVERY_MS),
    );
  }

  redraw(messageId) {
    const node = this.thread.querySelector(`article[data-id="${CSS.escape(messageId)}"]`);
    const message = this.tree?.get(messageId);
    if (!node || !message) return;
    const stick = this.nearBottom();
    const open = this.openMenus(node);
    const text = node.querySelector(".message-body > .markdown");
    const view = this.messageView(message, { drawText: !text });
    if (text && view.querySelector(".message-body > .markdown")) {
      this.patchInPlace(node, view, text);
      this.drawText(text, message);
      this.reopenMenus(node, open);
    } else {
      node.replaceWith(view);
      this.reopenMenus(view, open);
    }
    if (stick) this.scrollToBottom();
    this.latest.update();
  }

  // Make the drawn article `node` the new `view` of it, keeping its text element `text` where it
  // is: only the elements around it are swapped (moving `text` itself would end a selection).
  patchInPlace(node, view, text) {
    for (const name of ["class", "aria-busy"]) node.setAttribute(name, view.getAttribute(name));
    const wasOpen = node.querySelector("details.reasoning")?.open;
    const swapAround = (keep, oldParent, newParent, placeholder) => {
      for (const child of [...oldParent.childNodes]) if (child !== keep) child.remove();
      const children = [...newParent.childNodes];
      const at = children.indexOf(placeholder);
      keep.before(...children.slice(0, at));
      keep.after(...children.slice(at + 1));
    };
    const body = text.parentElement;
    const newText = view.querySelector(".message-body > .markdown");
    swapAround(text, body, newText.parentElement, newText);
    swapAround(body, node, view, newText.parentElement);
    const reasoning = node.querySelector("details.reasoning");
    if (reasoning && wasOpen) reasoning.open = true; // the reader opened it while it streamed
  }

  // A reply's text: incrementally while it streams (its unfinished tail held back), whole after.
  drawText(target, message) {
    const stream = message.role === "assistant" ? this.live(message) : null;
    if (stream && !stream.done) renderStreaming(target, stream.text);
    else if (target.classList.contains("streamed")) renderStreaming(target, stream ? stream.text : textOf(message), { final: true });
    else renderMarkdown(target, stream ? stream.text : textOf(message));
    if (stream && !stream.done) target.classList.add("streamed");
  }

  live(message) {
    const stream = this.streams.get(message.id);
    if (!stream) return null;
    return message.status === "streaming" || !(message.content || []).length ? stream : null;
  }

  // `drawText: false` leaves the reply's text element empty (redraw fills the one on screen).
  messageView(message, { drawText = true } = {}) {
    const stream = message.role === "assistant" ? this.live(message) : null;
    const streaming = Boolean(stream && !stream.done) || (message.status === "streaming" && !stream?.done);
    const article = el("article", {
      class: `message ${message.role}${streaming ? " streaming" : ""}`,
      "data-id": message.id,
      "aria-busy": streaming ? "true" : "false",
    });
    article.append(el("h3", { class: "visually-hidden", text: message.role === "user" ? "You said" : "Arbor said" }));
    const body = el("div", { class: "message-body" });
    if (message.role === "user" && this.editing?.id === message.id) {
      article.append(this.editForm(message));
      return article;
    }
    if (message.role === "user") {
      const images = imagesOf(message);
      if (images.length) body.append(this.imagesView(images));
      body.append(el("div", { class: "user-text", text: textOf(message) }));
    } else {
      const reasoning = stream ? stream.reasoning : reasoningOf(message);
      if (reasoning) {
        body.append(el("details", { class: "reasoning" }, el("summary", { text: streaming && !stream?.text ? "Thinking…" : "Reasoning" }), el("div", { class: "reasoning-text", text: reasoning })));
      }
      // Documents the reply's tools wrote: a card each, opening the artifacts panel (the card
      // stands for its tool call, whose raw arguments are then not shown).
      const cards = stream ? stream.documents : cardsOf(message);
      const tools = (stream ? [...stream.tools.values()] : toolCallsOf(message)).filter((tool) => !(cards.size && DOCUMENT_TOOLS.has(tool.name)));
      for (const tool of tools) {
        body.append(el("div", { class: "tool-call" }, el("span", { class: "tool-name", text: `Used ${tool.name || "a tool"}` }), tool.arguments ? el("code", { class: "tool-args", text: tool.arguments.slice(0, 300) }) : null));
      }
      for (const card of cards.values()) body.append(cardView(card, this.handlers.onOpenDocument, titlesIn(this.tree?.byId.values() || [])));
      const markdown = el("div", { class: "markdown" });
      if (drawText) this.drawText(markdown, message);
      body.append(markdown);
      const status = stream?.done ? stream.status : message.status;
      const error = stream?.done ? stream.error?.message : message.error_message;
      if (status === "error") body.append(el("p", { class: "message-error", role: "alert", text: error || "The reply failed." }));
      if (status === "stopped") body.append(el("p", { class: "message-note", text: "Stopped" }));
      // A reply cut at its length limit (the model's max output, or the server's) is complete but
      // not finished: say so, or it reads as a whole answer.
      if (status === "complete" && message.finish_reason === "length") body.append(el("p", { class: "message-note", text: "Cut off at the length limit" }));
    }
    article.append(body, this.toolbar(message, streaming));
    return article;
  }

  // Attached images, from the owner-only URL; each opens full size in a new tab.
  imagesView(images) {
    return el(
      "div",
      { class: "message-images" },
      images.map((part, index) => {
        const url = uploadUrl(part.upload_id);
        return el(
          "a",
          { href: url, target: "_blank", rel: "noopener noreferrer", class: "message-image-link" },
          el("img", { src: url, alt: `Attached image ${index + 1}`, class: "message-image", loading: "lazy" }),
        );
      }),
    );
  }

  toolbar(message, streaming) {
    const bar = el("div", { class: "message-actions" });
    const siblings = this.tree.siblings(message);
    if (siblings.length > 1) {
      const index = siblings.findIndex((item) => item.id === message.id);
      const go = (offset) => this.handlers.onSwitch(siblings[index + offset].id);
      bar.append(
        el(
          "div",
          { class: "branches", role: "group", "aria-label": "Versions" },
          el("button", { type: "button", class: "icon-button branch-prev", "aria-label": "Previous version", disabled: index === 0, onclick: () => go(-1), text: "‹" }),
          el("span", { class: "branch-position", text: `${index + 1}/${siblings.length}` }),
          el("button", { type: "button", class: "icon-button branch-next", "aria-label": "Next version", disabled: index === siblings.length - 1, onclick: () => go(1), text: "›" }),
        ),
      );
    }
    const copy = el("button", { type: "button", class: "ghost action-copy", text: "Copy" });
    copy.addEventListener("click", async () => {
      const stream = this.live(message);
      await copyText(stream ? stream.text : textOf(message));
      copy.textContent = "Copied";
      setTimeout(() => (copy.textContent = "Copy"), 1500);
    });
    bar.append(copy);
    if (message.role === "user") {
      bar.append(el("button", { type: "button", class: "ghost action-edit", text: "Edit", onclick: () => this.startEdit(message) }));
      return bar;
    }
    if (streaming) return bar;
    bar.append(this.regenerateMenu(message));
    for (const [value, label, symbol] of [[1, "Good reply", "thumbs-up"], [-1, "Bad reply", "thumbs-down"]]) {
      bar.append(el("button", {
        type: "button",
        class: `ghost vote ${value > 0 ? "vote-up" : "vote-down"}`,
        "aria-label": label,
        title: label,
        "aria-pressed": message.vote === value ? "true" : "false",
        onclick: () => this.handlers.onVote(message, message.vote === value ? 0 : value),
      }, icon(symbol)));
    }
    bar.append(el("button", { type: "button", class: "ghost action-fork", text: "Fork", title: "Continue from here in a new chat", onclick: () => this.handlers.onFork(message) }));
    if (message.model_id) bar.append(el("span", { class: "muted model-used", text: message.model_id }));
    return bar;
  }

  regenerateMenu(message) {
    const items = el("div", { class: "menu-items", role: "menu" });
    const choose = (modelId) => (event) => {
      event.target.closest("details").open = false;
      this.handlers.onRegenerate(message, modelId);
    };
    items.append(el("button", { type: "button", role: "menuitem", class: "regenerate-same", text: "Same model", onclick: choose(undefined) }));
    for (const model of this.models()) {
      items.append(el("button", { type: "button", role: "menuitem", text: model.name, "data-model": model.id, onclick: choose(model.id) }));
    }
    return el("details", { class: "menu regenerate" }, el("summary", { class: "ghost action-regenerate", text: "Regenerate" }), items);
  }

  // The edit form is part of the view (kept across redraws, e.g. a reply ending meanwhile).
  startEdit(message) {
    this.editing = { id: message.id, text: textOf(message), focus: true };
    this.render(this.tree, { scroll: false });
  }

  editForm(message) {
    const area = el("textarea", { class: "edit-text", "aria-label": "Edit your message", rows: 3 });
    const editing = this.editing; // held: a textarea left behind by a redraw may fire after the edit ended
    area.value = editing.text;
    area.addEventListener("input", () => (editing.text = area.value));
    const close = () => {
      this.editing = null;
      this.render(this.tree, { scroll: false });
    };
    const save = el("button", { type: "submit", class: "edit-save", text: "Send" });
    const cancel = el("button", { type: "button", class: "ghost edit-cancel", text: "Cancel", onclick: close });
    const form = el("form", { class: "edit-form" }, area, el("div", { class: "edit-actions" }, cancel, save));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!area.value.trim()) return;
      const text = area.value;
      close();
      this.handlers.onEdit(message, text);
    });
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
      if (event.key === "Escape") {
        event.stopPropagation();
        close();
      }
    });
    if (this.editing.focus) {
      this.editing.focus = false;
      requestAnimationFrame(() => area.focus());
    }
    return form;
  }
}
