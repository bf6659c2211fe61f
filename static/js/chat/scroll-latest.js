// The "Latest" button: shown while the reader is scrolled away from the end of the conversation
// (the stream then stops following, so they can read in peace), it brings them back to the end,
// where the view follows the stream again. It sits just below the scrolling area, outside it:
// inside, the area's live region would announce it each time it shows.

import { el } from "../lib/dom.js";

export class ScrollLatest {
  constructor(scroller, { isNearBottom, scrollToBottom }) {
    this.scroller = scroller;
    this.isNearBottom = isNearBottom;
    this.button = el("button", { type: "button", class: "scroll-latest", id: "scroll-latest", hidden: true, "aria-controls": scroller.id, text: "↓ Latest" });
    this.button.setAttribute("aria-label", "Scroll to the latest message");
    this.button.addEventListener("click", () => {
      scrollToBottom();
      this.update();
      scroller.focus({ preventScroll: true }); // the button hides: keep keyboard focus nearby
    });
    scroller.after(this.button);
    scroller.addEventListener("scroll", () => this.update(), { passive: true });
  }

  // Called on scroll and after every redraw (the end moves away as a reply grows).
  update() {
    const away = this.scroller.scrollHeight > this.scroller.clientHeight && !this.isNearBottom();
    if (this.button.hidden === away) this.button.hidden = !away;
  }
}
