// The chat WebSocket (docs/protocol.md): one per tab, reconnecting with backoff. Requests carry a
// `req` and resolve with their direct answer (ack, switched, pong) or reject with the error frame.
// Requests not yet answered when the connection drops are sent again after reconnecting: every
// one the screen makes is safe to repeat (send carries a client_id; stop and switch are idempotent).

const ANSWERS = new Set(["ack", "switched", "pong", "error"]);

export class ChatSocket {
  constructor({ onFrame, onOpen, onState }) {
    this.onFrame = onFrame;
    this.onOpen = onOpen;
    this.onState = onState || (() => {});
    this.nextReq = 1;
    this.pending = new Map(); // req → {frame, resolve, reject}
    this.queue = [];
    this.attempt = 0;
    this.opened = 0;
    this.socket = null;
    window.addEventListener("online", () => {
      if (!this.socket || this.socket.readyState === WebSocket.CLOSED) this.reconnectSoon(0);
    });
  }

  get url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/chat/`;
  }

  connect() {
    clearTimeout(this.timer);
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.opened += 1;
      this.onState("open");
      for (const { frame } of this.pending.values()) socket.send(JSON.stringify(frame));
      for (const frame of this.queue.splice(0)) socket.send(JSON.stringify(frame));
      this.onOpen(this.opened > 1);
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.req !== undefined && frame.req !== null && ANSWERS.has(frame.type) && this.pending.has(frame.req)) {
        const waiting = this.pending.get(frame.req);
        this.pending.delete(frame.req);
        if (frame.type === "error") waiting.reject(frame);
        else waiting.resolve(frame);
      }
      this.onFrame(frame);
    });
    socket.addEventListener("close", async (event) => {
      if (this.socket !== socket) return;
      this.onState("closed");
      if (event.code === 4401) {
        // No user on this session: a page view makes a guest session, then try again.
        await fetch("/", { credentials: "same-origin" }).catch(() => null);
      }
      this.reconnectSoon();
    });
  }

  reconnectSoon(delay) {
    clearTimeout(this.timer);
    const wait = delay ?? Math.min(10000, 400 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), wait);
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  // A frame with no direct answer to wait for (resume).
  send(frame) {
    if (this.isOpen) this.socket.send(JSON.stringify(frame));
    else this.queue.push(frame);
  }

  request(frame) {
    const req = this.nextReq++;
    const full = { ...frame, req };
    return new Promise((resolve, reject) => {
      this.pending.set(req, { frame: full, resolve, reject });
      if (this.isOpen) this.socket.send(JSON.stringify(full));
    });
  }

  // For tests and the connection banner: drop the connection as a network loss would.
  drop() {
    this.socket?.close(4000, "dropped by the client");
  }
}
