// The chat list: pinned first, then by last activity, grouped by date; search; infinite scroll
// (keyset pages from GET /api/chats); rename, pin, archive and delete (with undo) per chat.

import { api } from "../lib/api.js";
import { el, toast } from "../lib/dom.js";

const PAGE = 30;
const DAY = 24 * 60 * 60 * 1000;

function groupOf(chat, now = new Date()) {
  if (chat.pinned) return "Pinned";
  const when = new Date(chat.last_activity_at);
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  if (when.getTime() >= startOfToday) return "Today";
  if (when.getTime() >= startOfToday - DAY) return "Yesterday";
  if (when.getTime() >= startOfToday - 7 * DAY) return "Previous 7 days";
  if (when.getTime() >= startOfToday - 30 * DAY) return "Previous 30 days";
  return when.toLocaleDateString(undefined, { month: "long", year: "numeric" });
}

export class Sidebar {
  constructor({ onOpen, onDeleted }) {
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.groups = document.getElementById("chat-groups");
    this.search = document.getElementById("chat-search");
    this.archived = document.getElementById("show-archived");
    this.chats = new Map(); // id → summary, in list order
    this.hidden = new Set(); // deleted, waiting for undo
    this.cursor = null;
    this.loading = false;
    this.done = false;
    this.currentId = null;
    this.generation = 0;
    this.renaming = null; // {id, text, focus} while a title is edited
    this.redrawing = false;
    let debounce;
    this.search.addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => this.reload(), 250);
    });
    this.archived.addEventListener("change", () => this.reload());
    new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.more();
    }, { root: document.getElementById("chat-list") }).observe(document.getElementById("list-sentinel"));
  }

  async reload() {
    this.generation += 1;
    this.chats.clear();
    this.cursor = null;
    this.done = false;
    this.loading = false;
    await this.more();
  }

  async more() {
    if (this.loading || this.done) return;
    this.loading = true;
    const generation = this.generation;
    const params = new URLSearchParams({ limit: String(PAGE), archived: this.archived.checked ? "all" : "false" });
    if (this.search.value.trim()) params.set("q", this.search.value.trim());
    if (this.cursor) params.set("cursor", this.cursor);
    try {
      const page = await api(`/api/chats?${params}`);
      if (generation !== this.generation) return;
      for (const chat of page.chats) this.chats.set(chat.id, chat);
      this.cursor = page.next_cursor;
      this.done = !page.next_cursor;
      this.render();
    } catch {
      /* the next scroll or change tries again */
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  // A chat changed elsewhere (a title, a new message): update or add it at the top.
  upsert(summary) {
    const existing = this.chats.get(summary.id) || {};
    const merged = { ...existing, ...summary };
    if (!existing.id) {
      this.chats = new Map([[summary.id, merged], ...this.chats]);
    } else {
      this.chats.set(summary.id, merged);
    }
    this.render();
  }

  setTitle(id, title) {
    if (this.chats.has(id)) this.upsert({ id, title });
  }

  setCurrent(id) {
    this.currentId = id;
    for (const link of this.groups.querySelectorAll("a.chat-link")) {
      if (link.dataset.id === id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  render() {
    const sorted = [...this.chats.values()]
      .filter((chat) => !this.hidden.has(chat.id))
      .sort((a, b) => Number(b.pinned) - Number(a.pinned) || (b.last_activity_at || "").localeCompare(a.last_activity_at || ""));
    const groups = new Map();
    for (const chat of sorted) {
      const name = groupOf(chat);
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(chat);
    }
    const nodes = [];
    for (const [name, chats] of groups) {
      nodes.push(el("h2", { class: "group-name", text: name }), el("ul", { class: "chats" }, chats.map((chat) => this.item(chat))));
    }
    if (!sorted.length && this.done) nodes.push(el("p", { class: "muted list-empty", text: this.search.value ? "No chats match." : "No chats yet." }));
    // A redraw (a title arriving, another tab's chat) keeps an open menu open.
    const open = [...this.groups.querySelectorAll("details.menu[open]")].map((menu) => menu.dataset.id);
    const typing = document.activeElement?.classList.contains("rename");
    // Chromium blurs a focused input as it is removed; that blur is the redraw's, not the reader's.
    this.redrawing = true;
    try {
      this.groups.replaceChildren(...nodes);
    } finally {
      this.redrawing = false;
    }
    for (const menu of this.groups.querySelectorAll("details.menu")) menu.open = open.includes(menu.dataset.id);
    if (typing) this.groups.querySelector("input.rename")?.focus();
  }

  item(chat) {
    const link = el("a", { class: "chat-link", href: `/?chat=${chat.id}`, "data-id": chat.id, text: chat.title || "New chat" });
    if (chat.id === this.currentId) link.setAttribute("aria-current", "page");
    link.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      this.onOpen(chat.id);
    });
    const action = (label, handler) => el("button", { type: "button", role: "menuitem", text: label, onclick: (event) => {
      event.target.closest("details").open = false;
      handler();
    } });
    if (this.renaming?.id === chat.id) return el("li", { class: "chat-item" }, this.renameInput(chat));
    const menu = el(
      "details",
      { class: "menu chat-menu", "data-id": chat.id },
      el("summary", { "aria-label": `Actions for ${chat.title || "New chat"}`, text: "⋯" }),
      el(
        "div",
        { class: "menu-items", role: "menu" },
        action("Rename", () => this.rename(chat)),
        action(chat.pinned ? "Unpin" : "Pin", () => this.patch(chat, { pinned: !chat.pinned })),
        action(chat.archived ? "Unarchive" : "Archive", () => this.patch(chat, { archived: !chat.archived })),
        action("Delete", () => this.remove(chat)),
      ),
    );
    return el("li", { class: chat.archived ? "chat-item archived" : "chat-item" }, link, menu);
  }

  async patch(chat, changes) {
    const summary = await api(`/api/chats/${chat.id}`, { method: "PATCH", body: changes });
    if (changes.archived && !this.archived.checked) this.chats.delete(chat.id);
    else this.chats.set(chat.id, { ...chat, ...summary });
    this.render();
    return summary;
  }

  // The title being edited is part of the list (kept across redraws).
  rename(chat) {
    this.renaming = { id: chat.id, text: chat.title || "", focus: true };
    this.render();
  }

  renameInput(chat) {
    const input = el("input", { class: "rename", "aria-label": "Chat title", maxlength: 200 });
    // Held here, not read from `this`: an input left behind by a redraw may still fire after the
    // rename ended (this.renaming is null by then).
    const renaming = this.renaming;
    input.value = renaming.text;
    input.addEventListener("input", () => (renaming.text = input.value));
    let finished = false;
    const finish = async (save) => {
      if (finished) return;
      finished = true;
      const title = input.value.trim();
      this.renaming = null;
      if (save && title && title !== chat.title) {
        const summary = await this.patch(chat, { title });
        document.dispatchEvent(new CustomEvent("arbor:title", { detail: { id: chat.id, title: summary.title } }));
      } else {
        this.render();
      }
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") finish(true);
      if (event.key === "Escape") {
        event.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener("blur", () => {
      if (input.isConnected && !this.redrawing) finish(true);
    });
    if (renaming.focus) {
      renaming.focus = false;
      requestAnimationFrame(() => {
        input.focus();
        input.select();
      });
    }
    return input;
  }

  // Hidden at once; deleted on the server when the undo window closes (or the page is left).
  remove(chat) {
    this.hidden.add(chat.id);
    this.render();
    const commit = () => {
      window.removeEventListener("pagehide", commit);
      if (!this.hidden.has(chat.id)) return;
      this.hidden.delete(chat.id);
      this.chats.delete(chat.id);
      api(`/api/chats/${chat.id}`, { method: "DELETE", keepalive: true }).catch(() => null);
    };
    window.addEventListener("pagehide", commit);
    toast(`Deleted “${chat.title || "New chat"}”`, {
      action: "Undo",
      onAction: () => {
        window.removeEventListener("pagehide", commit);
        this.hidden.delete(chat.id);
        this.render();
      },
      onTimeout: commit,
    });
    this.onDeleted(chat.id);
  }
}
