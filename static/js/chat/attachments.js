// Images attached to the next message (for models that take images): picked with the attach
// button, pasted into the prompt or dropped on the composer. Each is uploaded at once
// (POST /api/uploads) and shown as a thumbnail with a remove button; the send frame then names
// the uploads' ids (docs/protocol.md, `attachments`).

import { ApiError, csrfToken } from "../lib/api.js";
import { el } from "../lib/dom.js";

export const MAX_ATTACHMENTS = 4;
const MAX_BYTES = 5 * 1024 * 1024;
const TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];

export function uploadUrl(uploadId) {
  return `/api/uploads/${encodeURIComponent(uploadId)}`;
}

async function upload(file) {
  const body = new FormData();
  body.append("file", file);
  const response = await fetch("/api/uploads", {
    method: "POST",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    body,
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export class Attachments {
  constructor({ box, button, input, prompt, dropZone, onChange, onError }) {
    this.box = box;
    this.button = button;
    this.input = input;
    this.prompt = prompt;
    this.onChange = onChange;
    this.onError = onError;
    this.items = []; // {file, preview (blob: URL), pending (Promise), upload ({id, media_type}) | null}
    this.enabled = false;
    button.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      this.add([...input.files]);
      input.value = "";
    });
    prompt.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])].filter((file) => file.type.startsWith("image/"));
      if (!this.enabled || !files.length) return;
      event.preventDefault();
      this.add(files);
    });
    dropZone.addEventListener("dragover", (event) => {
      if (this.enabled && event.dataTransfer?.types.includes("Files")) event.preventDefault();
    });
    dropZone.addEventListener("drop", (event) => {
      if (!this.enabled || !event.dataTransfer?.files.length) return;
      event.preventDefault();
      this.add([...event.dataTransfer.files]);
    });
  }

  // Shown only while the picked model takes images.
  setEnabled(enabled) {
    this.enabled = enabled;
    this.button.hidden = !enabled;
  }

  get count() {
    return this.items.length;
  }

  add(files) {
    for (const file of files) {
      if (this.items.length >= MAX_ATTACHMENTS) {
        this.onError(`Attach at most ${MAX_ATTACHMENTS} images to a message.`);
        break;
      }
      if (!TYPES.includes(file.type)) {
        this.onError("Attach PNG, JPEG, WebP or GIF images.");
        continue;
      }
      if (file.size > MAX_BYTES) {
        this.onError("An image may be at most 5 MB.");
        continue;
      }
      const item = { file, preview: URL.createObjectURL(file), upload: null };
      item.pending = upload(file).then(
        (answer) => {
          item.upload = answer;
          this.draw();
        },
        (error) => {
          this.remove(item);
          this.onError(error.message || "The image could not be uploaded.");
        },
      );
      this.items.push(item);
    }
    this.draw();
  }

  remove(item) {
    const index = this.items.indexOf(item);
    if (index < 0) return;
    this.items.splice(index, 1);
    URL.revokeObjectURL(item.preview);
    this.draw();
  }

  clear() {
    for (const item of this.items) URL.revokeObjectURL(item.preview);
    this.items = [];
    this.draw();
  }

  // The uploads to send, once every image still attached has finished uploading.
  async ready() {
    await Promise.all(this.items.map((item) => item.pending));
    return this.items.filter((item) => item.upload).map((item) => item.upload);
  }

  draw() {
    this.box.hidden = this.items.length === 0;
    this.prompt.required = this.items.length === 0;
    this.box.replaceChildren(
      ...this.items.map((item, index) =>
        el(
          "figure",
          { class: `attachment${item.upload ? "" : " uploading"}`, "data-uploaded": item.upload ? "true" : "false" },
          el("img", { src: item.preview, alt: `Attached image ${index + 1}` }),
          el("button", {
            type: "button",
            class: "icon-button attachment-remove",
            "aria-label": `Remove image ${index + 1}`,
            title: "Remove",
            text: "✕",
            onclick: () => this.remove(item),
          }),
        ),
      ),
    );
    this.onChange?.();
  }
}
