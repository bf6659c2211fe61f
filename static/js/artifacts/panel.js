// The artifacts panel beside the chat: a document of the open chat, its content streaming in live
// from the artifact frames of a reply (docs/protocol.md, "Artifact frames"), its versions with a
// diff against an earlier one (word-level for text, unified lines for every kind), editing saved
// as a new version, restoring, downloading, and the reviewer's suggestions with accept / reject
// (docs/api.md, "Artifacts"). On a phone it covers the screen. Escape closes it (or leaves the
// editor first).

import { api } from "../lib/api.js";
import { el, toast } from "../lib/dom.js";
import { kindLabel, markSuggestions, renderDiff, renderDocument } from "./views.js";

const REFRESH_EVERY_MS = 60;
const $ = (id) => document.getElementById(id);

export class ArtifactPanel {
  constructor({ onToggle } = {}) {
    this.root = $("artifact-panel");
    this.titleNode = $("artifact-title");
    this.meta = $("artifact-meta");
    this.picker = $("artifact-picker");
    this.toolbar = $("artifact-toolbar");
    this.status = $("artifact-status");
    this.suggestionList = $("artifact-suggestions");
    this.body = $("artifact-body");
    this.onToggle = onToggle || (() => {});
    this.chatId = null;
    this.documents = []; // the chat's documents (summaries), oldest first
    this.reset();
    $("artifact-close").addEventListener("click", () => this.close());
    this.picker.addEventListener("change", () => this.open(this.picker.value, { focus: false }));
    this.root.addEventListener("keydown", (event) => this.onKey(event));
    this.phone = matchMedia("(max-width: 768px)");
    this.phone.addEventListener("change", () => this.coverChat());
  }

  // On a phone the panel covers the chat: what is under it is out of reach of Tab too.
  coverChat() {
    const covered = this.isOpen && this.phone.matches;
    for (const id of ["main", "sidebar"]) document.getElementById(id)?.toggleAttribute("inert", covered);
  }

  reset() {
    this.documentId = null;
    this.doc = null; // GET /api/documents/<id>
    this.viewing = null; // the version number shown
    this.versions = new Map(); // "<document id>:<n>" → version JSON (versions never change)
    this.mode = "view"; // view | diff | edit
    this.diffMode = "words";
    this.diffFrom = null;
    this.draft = null;
    this.draftBase = null; // the latest version when editing began: saving checks it is still the latest
    this.lives = new Map(); // document id → {kind, title, language, version, operation, text, status, error}
    this.suggestions = new Map(); // id → pending suggestion of the shown document
    this.note = null; // {text, error} shown in the status line
    this.opener = null;
    this.loadToken = 0;
    clearTimeout(this.timer);
    this.timer = null;
  }

  get isOpen() {
    return !this.root.hidden;
  }

  // --- The chat -------------------------------------------------------------------------------
  setChat(chatId) {
    if (chatId === this.chatId) return;
    this.chatId = chatId;
    this.close({ restoreFocus: false });
    this.reset();
    this.documents = [];
    this.drawPicker();
    if (chatId) this.loadDocuments();
  }

  async loadDocuments() {
    const chatId = this.chatId;
    if (!chatId) return;
    try {
      const answer = await api(`/api/documents?chat=${encodeURIComponent(chatId)}`);
      if (chatId !== this.chatId) return;
      this.documents = answer.documents;
      this.drawPicker();
    } catch {
      /* the list is a convenience: the cards still open documents */
    }
  }

  drawPicker() {
    const button = $("open-documents");
    if (button) {
      button.hidden = !this.documents.length;
      button.textContent = this.documents.length > 1 ? `Documents (${this.documents.length})` : "Document";
      button.setAttribute("aria-expanded", String(this.isOpen));
    }
    this.picker.hidden = this.documents.length < 2;
    this.picker.replaceChildren(...this.documents.map((doc) => el("option", { value: doc.id, text: doc.title || "Untitled" })));
    if (this.documentId) this.picker.value = this.documentId;
  }

  // The header button: open the most recently changed document, or close.
  toggle(opener) {
    if (this.isOpen) return this.close();
    if (!this.documents.length) return;
    const latest = [...this.documents].sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1))[0];
    this.open(latest.id, { opener });
  }

  // --- Opening and closing ----------------------------------------------------------------------
  async open(documentId, { version, opener, focus = true } = {}) {
    const token = ++this.loadToken;
    if (documentId !== this.documentId) {
      this.documentId = documentId;
      this.doc = null;
      this.suggestions = new Map();
      this.note = null;
    }
    this.mode = "view";
    this.draft = null;
    this.viewing = version || null;
    if (opener) this.opener = opener;
    this.show(focus);
    this.render();
    if (this.lives.get(documentId)?.operation === "create" && this.lives.get(documentId).status !== "saved") return; // not saved yet
    try {
      const [doc, pending] = await Promise.all([
        api(`/api/documents/${documentId}`),
        api(`/api/documents/${documentId}/suggestions?state=pending`),
      ]);
      if (token !== this.loadToken) return;
      this.setDoc(doc);
      if (!this.viewing || this.viewing > doc.latest_version) this.viewing = doc.latest_version;
      for (const suggestion of pending.suggestions) this.suggestions.set(suggestion.id, suggestion);
      await this.ensureVersion(this.viewing);
      if (token !== this.loadToken) return;
      this.render();
    } catch (error) {
      if (token !== this.loadToken) return;
      this.note = { text: error.status === 404 ? "That document is not available." : error.message, error: true };
      this.render();
    }
  }

  show(focus) {
    this.root.hidden = false;
    document.getElementById("app")?.classList.add("panel-open");
    this.coverChat();
    this.drawPicker();
    this.onToggle(true);
    // On a phone the chat under it is out of reach: the keyboard comes to the panel in any case.
    if (focus || this.phone.matches) requestAnimationFrame(() => this.titleNode.focus());
  }

  close({ restoreFocus = true } = {}) {
    if (!this.isOpen) return;
    this.root.hidden = true;
    document.getElementById("app")?.classList.remove("panel-open");
    this.coverChat();
    this.mode = "view";
    this.draft = null;
    this.drawPicker();
    this.onToggle(false);
    if (!restoreFocus) return;
    // The card that opened it (redrawn meanwhile, perhaps), else the composer.
    const id = this.documentId;
    const card = this.opener?.isConnected ? this.opener : [...document.querySelectorAll(".artifact-card")].reverse().find((node) => node.dataset.documentId === id);
    (card || $("prompt"))?.focus();
  }

  onKey(event) {
    if (event.key === "Escape") {
      event.stopPropagation();
      event.preventDefault();
      if (this.mode === "edit") this.leaveEditor();
      else this.close();
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s" && this.mode === "edit") {
      event.preventDefault();
      this.save();
    }
  }

  // --- Documents and versions ---------------------------------------------------------------------
  setDoc(doc) {
    this.doc = doc;
    if (doc.latest) this.versions.set(`${doc.id}:${doc.latest.number}`, doc.latest);
    const known = this.documents.findIndex((item) => item.id === doc.id);
    const summary = { ...doc };
    delete summary.versions;
    delete summary.latest;
    if (known >= 0) this.documents[known] = summary;
    else if (doc.chat_id === this.chatId) this.documents.push(summary);
    this.drawPicker();
  }

  async reloadDoc({ view } = {}) {
    const id = this.documentId;
    const doc = await api(`/api/documents/${id}`);
    if (id !== this.documentId) return;
    this.setDoc(doc);
    this.viewing = view === "latest" || !this.viewing ? doc.latest_version : Math.min(this.viewing, doc.latest_version);
    await this.ensureVersion(this.viewing);
  }

  async ensureVersion(number) {
    const key = `${this.documentId}:${number}`;
    if (!this.versions.has(key)) this.versions.set(key, await api(`/api/documents/${this.documentId}/versions/${number}`));
    return this.versions.get(key);
  }

  version(number = this.viewing) {
    return this.versions.get(`${this.documentId}:${number}`) || null;
  }

  async go(number) {
    if (!this.doc || number < 1 || number > this.doc.latest_version) return;
    this.viewing = number;
    if (this.mode === "edit" || (this.mode === "diff" && number <= 1)) this.mode = "view";
    this.diffFrom = null;
    try {
      await this.ensureVersion(number);
    } catch (error) {
      this.note = { text: error.message, error: true };
    }
    this.render();
  }

  // --- Live writing (frames of a reply in this chat) ---------------------------------------------
  streamFrame(frame) {
    const id = frame.document_id;
    if (frame.type === "artifact_start") {
      this.lives.set(id, {
        kind: frame.kind,
        title: frame.title,
        language: frame.language || "",
        version: frame.version,
        operation: frame.operation,
        text: "",
        status: "writing",
        error: null,
      });
      // Show it, unless the user is in the middle of editing another document.
      if (!(this.isOpen && this.mode === "edit" && this.documentId !== id)) {
        if (this.documentId !== id || !this.isOpen) {
          this.loadToken += 1;
          if (this.documentId !== id) {
            this.doc = null;
            this.suggestions = new Map();
          }
          this.documentId = id;
          this.mode = "view";
          this.note = null;
          this.show(false);
        }
        this.render();
      }
      return;
    }
    const live = this.lives.get(id);
    if (!live) return;
    if (frame.type === "artifact_delta") {
      live.text += frame.text || "";
      if (id === this.documentId) this.scheduleBody();
    } else if (frame.type === "artifact_done") {
      if (frame.status === "complete") {
        live.status = "saved";
        if (typeof frame.content === "string") live.text = frame.content;
        live.version = frame.version;
        live.downloadUrl = frame.download_url || null;
        this.loadDocuments();
        if (id === this.documentId) this.afterWrite(id, frame.version);
      } else {
        live.status = "error";
        live.error = frame.error?.message || "The document could not be written.";
        if (id === this.documentId) this.render();
      }
    }
  }

  async afterWrite(id, version) {
    const token = ++this.loadToken;
    try {
      const doc = await api(`/api/documents/${id}`);
      if (token !== this.loadToken || id !== this.documentId) return;
      this.setDoc(doc);
      this.lives.delete(id);
      if (this.mode !== "edit") {
        this.viewing = version;
        this.mode = "view";
      }
      await this.ensureVersion(version);
      this.note = { text: `Saved as version ${version}.` };
    } catch (error) {
      this.note = { text: error.message, error: true };
    }
    if (token === this.loadToken) this.render();
  }

  scheduleBody() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.renderBody();
    }, REFRESH_EVERY_MS);
  }

  // The live writing shown instead of the saved versions (until it is saved).
  liveShown() {
    const live = this.lives.get(this.documentId);
    if (!live || live.status === "saved") return null;
    if (live.status === "error" && this.doc) return null; // an update failed: the versions stay
    return live;
  }

  // --- Suggestions (pushed by the reviewing worker to every tab) ----------------------------------
  suggestionFrame(frame) {
    if (frame.type === "suggestion") {
      if (frame.document_id === this.documentId && frame.state === "pending") {
        this.suggestions.set(frame.id, frame);
        this.note = { text: "The reviewer is writing suggestions…" };
        this.renderStatus();
        this.renderSuggestions();
        this.markInline();
      }
    } else if (frame.type === "suggestions_done") {
      const mine = frame.document_id === this.documentId && this.isOpen;
      let text = frame.count ? `${frame.count} suggestion${frame.count === 1 ? "" : "s"} to review.` : "The reviewer had no suggestions.";
      if (frame.error) text = frame.error.message;
      if (mine) {
        this.note = { text, error: Boolean(frame.error) };
        this.renderStatus();
      } else if (frame.count || frame.error) {
        const title = this.documents.find((doc) => doc.id === frame.document_id)?.title || "a document";
        toast(frame.error ? `${title}: ${text}` : `Suggestions for ${title}.`, {
          action: frame.error ? undefined : "Show",
          onAction: () => this.open(frame.document_id),
        });
      }
    }
  }

  async resolve(suggestion, action) {
    try {
      const answer = await api(`/api/suggestions/${suggestion.id}/${action}`, { method: "POST" });
      this.suggestions.delete(suggestion.id);
      if (action === "accept") {
        await this.reloadDoc({ view: "latest" });
        this.mode = "view";
        this.note = { text: `Accepted: saved as version ${answer.version.number}.` };
      } else {
        this.note = { text: "Suggestion rejected." };
      }
    } catch (error) {
      this.note = { text: error.message, error: true };
    }
    this.render();
    const next = this.suggestionList.querySelector("button");
    if (next) next.focus();
    else this.titleNode.focus();
  }

  // --- Editing, restoring ----------------------------------------------------------------------
  startEdit() {
    const version = this.version();
    if (!version || this.doc?.kind === "image") return;
    this.mode = "edit";
    this.draft = version.content;
    this.draftBase = this.doc.latest_version;
    this.render();
    requestAnimationFrame(() => this.body.querySelector("textarea")?.focus());
  }

  leaveEditor() {
    this.mode = "view";
    this.draft = null;
    this.render();
    this.toolbar.querySelector(".artifact-edit")?.focus();
  }

  async save() {
    if (this.mode !== "edit" || !this.doc) return;
    const content = this.draft ?? "";
    const button = this.body.querySelector(".artifact-save");
    if (button) button.disabled = true;
    try {
      const version = await api(`/api/documents/${this.documentId}/versions`, {
        method: "POST",
        body: { content, base_version: this.draftBase ?? this.doc.latest_version },
      });
      this.versions.set(`${this.documentId}:${version.number}`, version);
      this.mode = "view";
      this.draft = null;
      await this.reloadDoc({ view: "latest" });
      this.note = { text: `Saved as version ${version.number}.` };
      this.render();
      this.toolbar.querySelector(".artifact-edit")?.focus();
    } catch (error) {
      if (error.code === "conflict") {
        // Saved meanwhile (another tab, the model): the draft stays; saving again builds on it.
        await this.reloadDoc({}).catch(() => null);
        this.draftBase = this.doc.latest_version;
        this.note = { text: `Version ${this.doc.latest_version} was saved meanwhile. Your edit is still here: save again to make it the next version.`, error: true };
      } else {
        this.note = { text: error.fields?.content?.[0] || error.message, error: true };
      }
      this.renderStatus();
      this.renderToolbar();
      if (button) button.disabled = false;
    }
  }

  async restore() {
    const number = this.viewing;
    try {
      const version = await api(`/api/documents/${this.documentId}/versions/${number}/restore`, { method: "POST" });
      this.versions.set(`${this.documentId}:${version.number}`, version);
      await this.reloadDoc({ view: "latest" });
      this.mode = "view";
      this.note = { text: `Version ${number} restored as version ${version.number}.` };
    } catch (error) {
      this.note = { text: error.message, error: true };
    }
    this.render();
    this.titleNode.focus();
  }

  // --- Drawing -------------------------------------------------------------------------------------
  render() {
    const live = this.liveShown();
    const doc = this.doc;
    const title = live?.title || doc?.title || this.documents.find((item) => item.id === this.documentId)?.title || "Document";
    const kind = live?.kind || doc?.kind;
    this.titleNode.textContent = title;
    this.meta.textContent = kind ? kindLabel(kind, live?.language || doc?.language) : "";
    this.root.dataset.documentId = this.documentId || "";
    this.root.dataset.version = live ? "" : String(this.viewing || "");
    this.root.dataset.state = live ? live.status : doc ? "ready" : "loading";
    this.root.dataset.mode = live ? "live" : this.mode;
    if (this.documentId) this.picker.value = this.documentId;
    this.renderToolbar();
    this.renderStatus();
    this.renderSuggestions();
    this.renderBody();
  }

  renderStatus() {
    const live = this.liveShown();
    let text = this.note?.text || "";
    let error = Boolean(this.note?.error);
    if (live?.status === "writing") {
      text = live.operation === "update" ? `Writing version ${live.version}…` : "Writing…";
      error = false;
    } else if (live?.status === "error") {
      text = `Not saved: ${live.error}`;
      error = true;
    } else if (this.lives.get(this.documentId)?.status === "error") {
      text = `The new version was not saved: ${this.lives.get(this.documentId).error}`;
      error = true;
    }
    this.status.textContent = text;
    this.status.classList.toggle("error", error);
  }

  renderToolbar() {
    const doc = this.doc;
    const active = this.toolbar.contains(document.activeElement) ? document.activeElement : null;
    const focused = active ? [...active.classList].find((name) => name.startsWith("artifact-")) : null;
    if (!doc || this.liveShown()) {
      this.toolbar.replaceChildren();
      return;
    }
    const latest = doc.latest_version;
    const summary = doc.versions.find((item) => item.number === this.viewing);
    const button = (label, className, onclick, extra = {}) => el("button", { type: "button", class: `ghost ${className}`, text: label, onclick, ...extra });
    const nav = el(
      "div",
      { class: "artifact-versions", role: "group", "aria-label": "Versions" },
      el("button", { type: "button", class: "icon-button artifact-prev", "aria-label": "Previous version", disabled: this.viewing <= 1, onclick: () => this.go(this.viewing - 1), text: "‹" }),
      el("span", { class: "artifact-version", "aria-live": "polite", text: `Version ${this.viewing} of ${latest}` }),
      el("button", { type: "button", class: "icon-button artifact-next", "aria-label": "Next version", disabled: this.viewing >= latest, onclick: () => this.go(this.viewing + 1), text: "›" }),
    );
    const author = summary ? (summary.restored_from ? `restored from version ${summary.restored_from}` : summary.author === "model" ? "by the model" : "by you") : "";
    const modes = el("div", { class: "artifact-modes", role: "group", "aria-label": "Show" });
    modes.append(button("View", "artifact-view", () => this.setMode("view"), { "aria-pressed": String(this.mode === "view") }));
    if (doc.kind !== "image") {
      modes.append(button("Changes", "artifact-changes", () => this.setMode("diff"), { "aria-pressed": String(this.mode === "diff"), disabled: this.viewing <= 1, title: this.viewing <= 1 ? "The first version has nothing to compare with" : "What changed since an earlier version" }));
      modes.append(button("Edit", "artifact-edit", () => this.startEdit(), { "aria-pressed": String(this.mode === "edit") }));
    }
    const actions = el("div", { class: "artifact-actions" });
    if (this.viewing !== latest) actions.append(button(`Restore version ${this.viewing}`, "artifact-restore", () => this.restore()));
    const version = this.version();
    if (version?.download_url) actions.append(el("a", { class: "ghost button-like artifact-download", href: version.download_url, download: "", text: "Download" }));
    this.toolbar.replaceChildren(nav, el("span", { class: "muted artifact-author", text: author }), modes, actions);
    // A redraw keeps the keyboard where it was (on the same control, or beside it when that one
    // is now disabled or gone).
    if (focused) {
      const again = this.toolbar.querySelector(`.${focused}:not(:disabled)`) || this.toolbar.querySelector("button:not(:disabled)");
      again?.focus();
    }
  }

  setMode(mode) {
    if (mode === "diff" && this.viewing <= 1) return;
    this.mode = mode;
    this.draft = null;
    this.render();
  }

  renderSuggestions() {
    const pending = [...this.suggestions.values()].filter((item) => item.state === "pending");
    const show = pending.length > 0 && !this.liveShown() && this.doc;
    this.suggestionList.hidden = !show;
    if (!show) {
      this.suggestionList.replaceChildren();
      return;
    }
    const items = pending.map((suggestion) =>
      el(
        "li",
        { class: "suggestion-item", "data-id": suggestion.id },
        el("p", { class: "suggestion-change" }, el("del", { class: "diff-del", text: suggestion.original }), el("span", { class: "muted", text: " → " }), el("ins", { class: "diff-ins", text: suggestion.suggested })),
        el("p", { class: "suggestion-why muted", text: suggestion.description }),
        el(
          "div",
          { class: "suggestion-actions" },
          el("button", { type: "button", class: "suggestion-accept", text: "Accept", "aria-label": `Accept: ${suggestion.description}`, onclick: () => this.resolve(suggestion, "accept") }),
          el("button", { type: "button", class: "ghost suggestion-reject", text: "Reject", "aria-label": `Reject: ${suggestion.description}`, onclick: () => this.resolve(suggestion, "reject") }),
        ),
      ),
    );
    this.suggestionList.replaceChildren(
      el("h3", { class: "suggestions-heading", text: `Suggestions (${pending.length})` }),
      el("ol", { class: "suggestion-items" }, items),
    );
  }

  markInline() {
    if (this.mode !== "view" || this.liveShown() || this.viewing !== this.doc?.latest_version) return;
    const view = this.body.querySelector(".artifact-content");
    if (!view) return;
    for (const mark of view.querySelectorAll("mark.suggestion-mark")) mark.replaceWith(...mark.childNodes);
    view.normalize();
    const pending = [...this.suggestions.values()].filter((item) => item.state === "pending");
    markSuggestions(view, pending, (id) => {
      const item = this.suggestionList.querySelector(`[data-id="${CSS.escape(id)}"]`);
      item?.scrollIntoView({ block: "nearest" });
      item?.querySelector("button")?.focus();
    });
  }

  renderBody() {
    const live = this.liveShown();
    if (live) {
      const content = el("div", { class: "artifact-content live" });
      renderDocument(content, { kind: live.kind, language: live.language, content: live.text, downloadUrl: live.downloadUrl });
      const stick = this.body.scrollHeight - this.body.scrollTop - this.body.clientHeight < 60;
      this.body.replaceChildren(content);
      if (stick) this.body.scrollTop = this.body.scrollHeight;
      return;
    }
    if (!this.doc) {
      this.body.replaceChildren(el("p", { class: "muted", text: this.note?.error ? "" : "Loading…" }));
      return;
    }
    if (this.mode === "edit") return this.renderEditor();
    if (this.mode === "diff") return this.renderDiffView();
    const version = this.version();
    if (!version) {
      this.body.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
      return;
    }
    const content = el("div", { class: "artifact-content" });
    renderDocument(content, { kind: this.doc.kind, language: this.doc.language, content: version.content, downloadUrl: version.download_url });
    this.body.replaceChildren(content);
    this.markInline();
  }

  renderEditor() {
    if (this.body.querySelector("textarea.artifact-editor")) return; // keep the editor (and its caret) as it is
    const area = el("textarea", { class: "artifact-editor", "aria-label": `Edit ${this.doc.title}`, spellcheck: this.doc.kind === "text" ? "true" : "false" });
    area.value = this.draft ?? "";
    area.addEventListener("input", () => (this.draft = area.value));
    const form = el(
      "form",
      { class: "artifact-edit-form" },
      area,
      el(
        "div",
        { class: "edit-actions" },
        el("span", { class: "muted hint", text: "Ctrl+S saves · Esc cancels" }),
        el("button", { type: "button", class: "ghost artifact-cancel", text: "Cancel", onclick: () => this.leaveEditor() }),
        el("button", { type: "submit", class: "artifact-save", text: "Save as new version" }),
      ),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save();
    });
    this.body.replaceChildren(form);
  }

  async renderDiffView() {
    const to = this.viewing;
    const from = this.diffFrom && this.diffFrom < to ? this.diffFrom : to - 1;
    const select = el("select", { class: "artifact-diff-from", "aria-label": "Compare with version" });
    for (let number = 1; number < to; number += 1) select.append(el("option", { value: number, text: `version ${number}` }));
    select.value = String(from);
    select.addEventListener("change", () => {
      this.diffFrom = Number(select.value);
      this.renderDiffView().then(() => this.body.querySelector(".artifact-diff-from")?.focus());
    });
    const view = el("div", { class: "artifact-diff", "aria-live": "polite" }, el("p", { class: "muted", text: "Comparing…" }));
    const switcher = el("div", { class: "artifact-diff-modes", role: "group", "aria-label": "Diff style" });
    const head = el("div", { class: "artifact-diff-head" }, el("span", { text: `Version ${to} compared with ` }), select, switcher);
    this.body.replaceChildren(head, view);
    const token = this.loadToken;
    try {
      const diff = await api(`/api/documents/${this.documentId}/diff?from=${from}&to=${to}`);
      if (token !== this.loadToken || this.mode !== "diff" || this.viewing !== to || !view.isConnected) return;
      const mode = diff.words ? this.diffMode : "lines";
      if (diff.words) {
        for (const [value, label] of [["words", "Words"], ["lines", "Lines"]]) {
          switcher.append(el("button", {
            type: "button",
            class: `ghost diff-mode-${value}`,
            "aria-pressed": String(mode === value),
            text: label,
            onclick: () => {
              this.diffMode = value;
              this.renderDiffView().then(() => this.body.querySelector(`.diff-mode-${value}`)?.focus());
            },
          }));
        }
      }
      renderDiff(view, diff, mode);
    } catch (error) {
      if (view.isConnected) view.replaceChildren(el("p", { class: "message-error", text: error.message }));
    }
  }
}
