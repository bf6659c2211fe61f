// A chat's whole message tree, as GET /api/chats/<id> gives it. The active branch is the
// selected root followed down each message's selected child, so switching branches is local.

const ROOT = "root";

export function textOf(message) {
  return (message.content || []).filter((part) => part.type === "text").map((part) => part.text).join("");
}

// A user message's attached images: [{type: "image", upload_id, media_type}, …].
export function imagesOf(message) {
  return (message.content || []).filter((part) => part.type === "image" && part.upload_id);
}

export function reasoningOf(message) {
  return (message.content || []).filter((part) => part.type === "reasoning").map((part) => part.text).join("");
}

export function toolCallsOf(message) {
  return (message.content || []).filter((part) => part.type === "tool_call");
}

export class ChatTree {
  constructor(detail) {
    this.chat = detail;
    this.byId = new Map();
    this.children = new Map();
    for (const message of detail.messages || []) this.add(message);
  }

  add(message) {
    if (this.byId.has(message.id)) return this.byId.get(message.id);
    this.byId.set(message.id, message);
    const key = message.parent_id || ROOT;
    const siblings = this.children.get(key) || [];
    if (message.rank === undefined || message.rank === null) {
      message.rank = siblings.length ? Math.max(...siblings.map((item) => item.rank)) + 1 : 0;
    }
    siblings.push(message);
    siblings.sort((a, b) => a.rank - b.rank);
    this.children.set(key, siblings);
    return message;
  }

  get(id) {
    return this.byId.get(id);
  }

  siblings(message) {
    return this.children.get(message.parent_id || ROOT) || [message];
  }

  activeBranch() {
    const branch = [];
    let id = this.chat.selected_root_id;
    while (id && this.byId.has(id)) {
      const message = this.byId.get(id);
      branch.push(message);
      id = message.selected_child_id;
    }
    return branch;
  }

  activeLeaf() {
    const branch = this.activeBranch();
    return branch.length ? branch[branch.length - 1] : null;
  }

  // Bring a message up to date from the server's copy of it, in the shape this tree holds (a
  // reply's `done` frame carries one): its content, status, usage, error and so on. Which child
  // is selected stays as this tab has it: switches arrive on their own (`switched`).
  patch(saved) {
    const message = this.byId.get(saved.id);
    if (!message) return null;
    const { id, parent_id, selected_child_id, ...fields } = saved;
    const reordered = fields.rank !== undefined && fields.rank !== message.rank;
    Object.assign(message, fields);
    // A rank guessed when the message was added here can lose to another tab's sibling.
    if (reordered) this.siblings(message).sort((a, b) => a.rank - b.rank);
    return message;
  }

  // Make `id` the selected one among its siblings (and so part of the active branch).
  select(id) {
    const message = this.byId.get(id);
    if (!message) return;
    if (message.parent_id) this.byId.get(message.parent_id).selected_child_id = id;
    else this.chat.selected_root_id = id;
  }
}
