// The chat screen: sidebar, conversation, composer, one WebSocket (docs/protocol.md) and the
// JSON API (docs/api.md). Streams are kept per reply with the last seq applied, so a reconnect
// resumes exactly after it and a page load resumes a running reply from the start.

import { api, uuid } from "../lib/api.js";
import { el, copyText, toast } from "../lib/dom.js";
import { ChatSocket } from "../lib/socket.js";
import { ChatTree } from "../lib/tree.js";
import { noteFrame } from "../artifacts/cards.js";
import { ArtifactPanel } from "../artifacts/panel.js";
import { Attachments } from "./attachments.js";
import { Conversation } from "./conversation.js";
import { Sidebar } from "./sidebar.js";

const $ = (id) => document.getElementById(id);
const app = $("app");
const prompt = $("prompt");
const modelSelect = $("model");

const state = {
  chatId: null,
  tree: new ChatTree({ messages: [], selected_root_id: null }),
  models: [],
  streams: new Map(), // reply id → {lastSeq, text, reasoning, tools, documents, done, status, error, saved}
  loadToken: 0,
  pendingTurns: 0,
  localEdits: 0, // bumped by every change this tab makes to the tree before the server has it
};

function stream(messageId) {
  if (!state.streams.has(messageId)) {
    state.streams.set(messageId, { lastSeq: 0, text: "", reasoning: "", tools: new Map(), documents: new Map(), done: false, status: "streaming", error: null });
  }
  return state.streams.get(messageId);
}

// --- Drawing ----------------------------------------------------------------------------------
const conversation = new Conversation({
  streams: state.streams,
  models: () => state.models,
  handlers: {
    onSwitch: switchTo,
    onEdit: edit,
    onRegenerate: regenerate,
    onVote: vote,
    onFork: fork,
    onOpenDocument: (id, options) => artifacts.open(id, options),
  },
});

const artifacts = new ArtifactPanel({
  onToggle: (open) => $("open-documents").setAttribute("aria-expanded", String(open)),
});

const sidebar = new Sidebar({
  onOpen: (id) => {
    closeSidebar();
    openChat(id, { push: true });
  },
  onDeleted: (id) => {
    if (id === state.chatId) newChat({ push: true });
  },
});

function streamingReplies() {
  return state.tree.activeBranch().filter((message) => message.role === "assistant" && message.status === "streaming" && !state.streams.get(message.id)?.done);
}

// `#thread[data-busy]` is "true" while a turn waits for its ack or a reply on screen streams.
function updateComposer() {
  const streaming = streamingReplies().length > 0;
  $("send").hidden = streaming;
  $("stop").hidden = !streaming;
  $("thread").dataset.busy = String(streaming || state.pendingTurns > 0);
}

function draw(options) {
  conversation.render(state.tree, options);
  $("chat-title").textContent = state.tree.chat.title || "New chat";
  document.title = `${state.tree.chat.title || "New chat"} · Arbor`;
  $("chat-actions").hidden = !state.chatId;
  artifacts.setChat(state.chatId);
  if (state.chatId) $("export-chat").href = `/api/chats/${state.chatId}/export?format=markdown`;
  updateComposer();
  sidebar.setCurrent(state.chatId);
  const signup = $("guest-signup");
  if (signup) signup.href = `/accounts/signup/?next=${encodeURIComponent(location.pathname + location.search)}`;
}

function showError(message) {
  $("composer-error").textContent = message || "";
}

// --- Loading chats ----------------------------------------------------------------------------
// A tree read before a reply was saved still has it `streaming`: the copy its `done` brought is newer.
function patchSaved(tree) {
  for (const [id, live] of state.streams) {
    if (live.saved && tree.get(id)?.status === "streaming") tree.patch(live.saved);
  }
}

function resumeStreaming() {
  if (!socket.isOpen) return;
  for (const message of state.tree.byId.values()) {
    if (message.role !== "assistant" || message.status !== "streaming") continue;
    const live = stream(message.id);
    if (!live.done) socket.send({ type: "resume", message_id: message.id, after_seq: live.lastSeq });
  }
}

async function openChat(id, { push = false } = {}) {
  const token = ++state.loadToken;
  let detail;
  try {
    detail = await api(`/api/chats/${id}`);
  } catch (error) {
    if (token !== state.loadToken) return;
    toast(error.status === 404 ? "That chat is not available." : error.message);
    newChat({ push: false, replace: true });
    return;
  }
  if (token !== state.loadToken) return;
  state.chatId = id;
  state.tree = new ChatTree(detail);
  patchSaved(state.tree);
  if (push) history.pushState({ chat: id }, "", `/?chat=${id}`);
  draw({ scroll: true });
  resumeStreaming();
}

// After a change made elsewhere (another tab's turn or switch; the end of a reply whose `done`
// carried no saved copy): the server's tree, redrawn.
async function reloadChat() {
  if (!state.chatId) return;
  const token = state.loadToken; // an openChat started meanwhile wins
  const edits = state.localEdits; // so does a change made here meanwhile: read again after it
  try {
    const detail = await api(`/api/chats/${state.chatId}`);
    if (token !== state.loadToken || detail.id !== state.chatId) return;
    if (edits !== state.localEdits) {
      setTimeout(reloadChat, 250);
      return;
    }
    state.tree = new ChatTree(detail);
    patchSaved(state.tree);
    draw({ scroll: false });
    $("thread").dataset.synced = "true";
    resumeStreaming();
  } catch {
    /* shown as it is until the next change */
  }
}

function newChat({ push = true, replace = false } = {}) {
  state.loadToken += 1;
  state.chatId = null;
  state.tree = new ChatTree({ messages: [], selected_root_id: null });
  if (push) history.pushState({}, "", "/");
  if (replace) history.replaceState({}, "", "/");
  draw();
  prompt.focus();
}

// --- Turns ------------------------------------------------------------------------------------
function addReply(id, parentId, modelId) {
  state.tree.add({ id, parent_id: parentId, role: "assistant", content: [], status: "streaming", model_id: modelId || "", selected_child_id: null, vote: 0 });
  state.tree.select(id);
  stream(id);
}

async function turn(frame, apply) {
  showError("");
  state.pendingTurns += 1;
  updateComposer();
  try {
    const ack = await socket.request(frame);
    state.localEdits += 1;
    apply(ack);
    return true;
  } catch (error) {
    showError(error.message || "That did not work. Try again.");
    return false;
  } finally {
    state.pendingTurns -= 1;
    draw({ scroll: true });
  }
}

async function send(content, uploads = []) {
  const chatId = state.chatId;
  const parentId = chatId ? state.tree.activeLeaf()?.id ?? null : null;
  const model = modelSelect.value || undefined;
  const frame = { type: "send", chat_id: chatId, parent_id: parentId, content, model, client_id: uuid() };
  if (uploads.length) frame.attachments = uploads.map((upload) => upload.id);
  const images = uploads.map((upload) => ({ type: "image", upload_id: upload.id, media_type: upload.media_type }));
  return turn(frame, (ack) => {
    if (!state.chatId || state.chatId !== ack.chat_id) {
      state.chatId = ack.chat_id;
      state.tree = new ChatTree({ id: ack.chat_id, title: "", messages: [], selected_root_id: null });
      history.pushState({ chat: ack.chat_id }, "", `/?chat=${ack.chat_id}`);
      const now = new Date().toISOString();
      sidebar.upsert({ id: ack.chat_id, title: "", pinned: false, archived: false, last_activity_at: now });
    }
    state.tree.add({ id: ack.user_message_id, parent_id: parentId, role: "user", content: [...images, { type: "text", text: content }], status: "complete", selected_child_id: null });
    state.tree.select(ack.user_message_id);
    addReply(ack.assistant_message_id, ack.user_message_id, model);
  });
}

// An edit changes the text; the message's images are kept (the frame names none).
function edit(message, content) {
  const model = modelSelect.value || undefined;
  return turn({ type: "edit", message_id: message.id, content, model }, (ack) => {
    const images = (message.content || []).filter((part) => part.type === "image");
    state.tree.add({ id: ack.user_message_id, parent_id: message.parent_id, role: "user", content: [...images, { type: "text", text: content }], status: "complete", selected_child_id: null });
    state.tree.select(ack.user_message_id);
    addReply(ack.assistant_message_id, ack.user_message_id, model);
  });
}

function regenerate(message, model) {
  return turn({ type: "regenerate", message_id: message.id, model }, (ack) => {
    addReply(ack.assistant_message_id, message.parent_id, model || message.model_id);
  });
}

function switchTo(messageId) {
  state.localEdits += 1;
  state.tree.select(messageId);
  draw({ scroll: false });
  socket
    .request({ type: "switch", message_id: messageId })
    .then(() => (state.localEdits += 1)) // a reload that started before the server had it is stale
    .catch((error) => toast(error.message || "Could not switch."));
  resumeStreaming();
}

function stop() {
  for (const message of streamingReplies()) {
    socket.request({ type: "stop", message_id: message.id }).catch(() => null);
  }
}

async function vote(message, value) {
  try {
    const answer = await api(`/api/messages/${message.id}/vote`, { method: "POST", body: { value } });
    state.localEdits += 1;
    message.vote = answer.vote;
    draw({ scroll: false });
  } catch (error) {
    toast(error.message);
  }
}

async function fork(message) {
  try {
    const summary = await api(`/api/chats/${state.chatId}/fork`, { method: "POST", body: { message_id: message.id } });
    sidebar.upsert(summary);
    await openChat(summary.id, { push: true });
    toast("Forked into a new chat.");
  } catch (error) {
    toast(error.message);
  }
}

// --- Frames -----------------------------------------------------------------------------------
// The reply ended. Its `done` carries the saved message as the chat's tree holds it: patch it
// in, rather than reading the whole chat again (megabytes for a long one) after every reply.
function finish(messageId, live, frame) {
  live.done = true;
  live.status = frame.status;
  live.error = frame.error || null;
  const saved = frame.message?.id === messageId ? frame.message : null;
  live.saved = saved;
  const message = state.tree.get(messageId);
  if (!message) return;
  if (saved) {
    state.tree.patch(saved);
    $("thread").dataset.synced = "true";
    return;
  }
  // A `done` without it (an older server's, or the reply could not be read back): read the chat.
  message.status = frame.status;
  message.error_message = frame.error?.message || "";
  $("thread").dataset.synced = "false";
  setTimeout(reloadChat, 150);
}

function applyStreamFrame(frame) {
  const live = stream(frame.message_id);
  if (live.done) return;
  if (frame.seq === null || frame.seq === undefined) {
    if (frame.type === "delta" && frame.snapshot) {
      live.text = frame.text || "";
      live.reasoning = frame.reasoning || "";
    } else if (frame.type === "done") {
      finish(frame.message_id, live, frame);
    }
  } else {
    if (frame.seq !== live.lastSeq + 1) return; // one we have, or a replaced follower's
    live.lastSeq = frame.seq;
    if (frame.type === "delta") {
      if (frame.text) live.text += frame.text;
      if (frame.reasoning) live.reasoning += frame.reasoning;
    } else if (frame.type === "tool_call") {
      live.tools.set(frame.index, { name: frame.name, arguments: "" });
    } else if (frame.type === "tool_call_delta") {
      const tool = live.tools.get(frame.index) || { name: "", arguments: "" };
      tool.arguments += frame.arguments || "";
      live.tools.set(frame.index, tool);
    } else if (frame.type === "done") {
      finish(frame.message_id, live, frame);
    } else if (frame.type.startsWith("artifact_") || frame.type === "tool_result") {
      noteFrame(live.documents, frame);
      if (state.tree.get(frame.message_id) && frame.document_id) artifacts.streamFrame(frame);
      if (frame.type === "artifact_delta") return; // the panel draws it; the card is unchanged
    }
  }
  if (state.tree.get(frame.message_id)) {
    conversation.refresh(frame.message_id, { now: live.done });
    updateComposer();
  }
}

function onFrame(frame) {
  if (frame.message_id && "seq" in frame) return applyStreamFrame(frame);
  if (frame.type === "generation") {
    if (frame.chat_id === state.chatId) reloadChat();
    else sidebar.reload();
  } else if (frame.type === "switched" && (frame.req === undefined || frame.req === null)) {
    if (frame.chat_id === state.chatId) reloadChat();
  } else if (frame.type === "chat") {
    sidebar.setTitle(frame.chat_id, frame.title);
    if (frame.chat_id === state.chatId) {
      state.tree.chat.title = frame.title;
      $("chat-title").textContent = frame.title || "New chat";
      document.title = `${frame.title || "New chat"} · Arbor`;
    }
  } else if (frame.type === "suggestion" || frame.type === "suggestions_done") {
    artifacts.suggestionFrame(frame);
  } else if (frame.type === "error" && frame.message_id && (frame.req === null || frame.req === undefined)) {
    setTimeout(resumeStreaming, 1000); // stream_unavailable: follow it again
  }
}

let bannerTimer;
const socket = new ChatSocket({
  onFrame,
  onOpen: () => {
    clearTimeout(bannerTimer);
    $("connection").hidden = true;
    resumeStreaming();
  },
  onState: (status) => {
    if (status !== "closed") return;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => {
      $("connection").textContent = "Reconnecting…";
      $("connection").hidden = false;
    }, 1000);
  },
});
window.arbor = { socket, state, artifacts };

// --- Models -----------------------------------------------------------------------------------
function badgesFor(model) {
  const badges = [];
  if (model.byok) badges.push("your key");
  if ((model.input_modalities || []).includes("image")) badges.push("vision");
  if (model.supports_tools) badges.push("tools");
  if (model.supports_reasoning) badges.push("reasoning");
  return badges;
}

function showBadges() {
  const model = state.models.find((item) => item.id === modelSelect.value);
  $("model-badges").replaceChildren(...(model ? badgesFor(model).map((badge) => el("span", { class: "badge", text: badge })) : []));
  attachments.setEnabled(Boolean(model && (model.input_modalities || []).includes("image")));
}

async function loadModels() {
  try {
    const answer = await api("/api/models");
    state.models = answer.models;
    const remembered = localStorage.getItem("arbor:model");
    modelSelect.replaceChildren(...answer.models.map((model) => {
      const badges = badgesFor(model);
      return el("option", { value: model.id, text: badges.length ? `${model.name} (${badges.join(", ")})` : model.name });
    }));
    if (!answer.models.length) modelSelect.append(el("option", { value: "", text: "No model available" }));
    const pick = answer.models.some((model) => model.id === remembered) ? remembered : answer.default;
    if (pick) modelSelect.value = pick;
    showBadges();
  } catch (error) {
    showError(error.message);
  }
}

modelSelect.addEventListener("change", () => {
  localStorage.setItem("arbor:model", modelSelect.value);
  showBadges();
});

// --- Composer ---------------------------------------------------------------------------------
const attachments = new Attachments({
  box: $("attachments"),
  button: $("attach"),
  input: $("attach-input"),
  prompt,
  dropZone: $("composer"),
  onError: showError,
});

function grow() {
  prompt.style.height = "auto";
  prompt.style.height = `${Math.min(prompt.scrollHeight, 240)}px`;
}

async function submit() {
  const content = prompt.value;
  if ((!content.trim() && !attachments.count) || !$("stop").hidden) return;
  const uploads = await attachments.ready(); // the images still uploading, finished
  if (!content.trim() && !uploads.length) return;
  prompt.value = "";
  grow();
  const sent = await send(content, uploads);
  if (sent) {
    attachments.clear();
  } else {
    prompt.value = content;
    grow();
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});
prompt.addEventListener("input", grow);
prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});
$("stop").addEventListener("click", stop);
for (const suggestion of document.querySelectorAll(".suggestion")) {
  suggestion.addEventListener("click", () => {
    prompt.value = suggestion.textContent;
    submit();
  });
}

// --- Chat header: share -----------------------------------------------------------------------
const shareDialog = $("share-dialog");
$("share-chat").addEventListener("click", async () => {
  try {
    const answer = await api(`/api/chats/${state.chatId}/share`, { method: "POST" });
    $("share-url").value = answer.share_url;
    shareDialog.showModal();
    $("share-url").select();
  } catch (error) {
    toast(error.message);
  }
});
$("share-copy").addEventListener("click", async () => {
  await copyText($("share-url").value);
  $("share-copy").textContent = "Copied";
  setTimeout(() => ($("share-copy").textContent = "Copy link"), 1500);
});
$("share-revoke").addEventListener("click", async () => {
  await api(`/api/chats/${state.chatId}/share`, { method: "DELETE" }).catch(() => null);
  shareDialog.close();
  toast("The link no longer works.");
});
$("share-close").addEventListener("click", () => shareDialog.close());
$("open-documents").addEventListener("click", (event) => artifacts.toggle(event.currentTarget));

// --- Sidebar on phones, keyboard --------------------------------------------------------------
function openSidebar() {
  app.classList.add("sidebar-open");
  $("open-sidebar").setAttribute("aria-expanded", "true");
  $("scrim").hidden = false;
  $("chat-search").focus();
}
function closeSidebar() {
  if (!app.classList.contains("sidebar-open")) return;
  app.classList.remove("sidebar-open");
  $("open-sidebar").setAttribute("aria-expanded", "false");
  $("scrim").hidden = true;
}
$("open-sidebar").addEventListener("click", openSidebar);
$("close-sidebar").addEventListener("click", closeSidebar);
$("scrim").addEventListener("click", closeSidebar);
$("new-chat").addEventListener("click", () => {
  closeSidebar();
  newChat();
});
document.addEventListener("arbor:title", (event) => {
  if (event.detail.id === state.chatId) {
    state.tree.chat.title = event.detail.title;
    draw({ scroll: false });
  }
});
document.addEventListener("keydown", (event) => {
  const mod = event.ctrlKey || event.metaKey;
  if (mod && event.shiftKey && event.key.toLowerCase() === "o") {
    event.preventDefault();
    newChat();
  } else if (mod && event.key.toLowerCase() === "k") {
    event.preventDefault();
    if (matchMedia("(max-width: 768px)").matches) openSidebar();
    $("chat-search").focus();
  } else if (event.key === "Escape") {
    if (app.classList.contains("sidebar-open")) closeSidebar();
    else if (!$("stop").hidden && !document.querySelector("dialog[open]")) stop();
  }
});

window.addEventListener("popstate", () => route());

function route() {
  const id = new URLSearchParams(location.search).get("chat");
  if (id) openChat(id);
  else newChat({ push: false });
}

// --- Start ------------------------------------------------------------------------------------
socket.connect();
loadModels();
sidebar.reload();
route();
