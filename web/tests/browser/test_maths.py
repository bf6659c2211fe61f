"""Maths in a real browser (issue 14): TeX between `$…$`, `\\(…\\)`, `$$…$$` is drawn by KaTeX
(served from static/vendor, under the page's Content-Security-Policy: the `console` fixture fails
a test on any refusal) in replies and in a text document; prices stay text, TeX that does not
parse is shown as code, and a poem's line breaks survive in the document's view."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from web.tests.browser.conftest import send, wait_until_idle
from web.tests.browser.reading_fake import reading_fake  # noqa: F401 (autouse fixture)


def test_a_reply_draws_its_maths_and_leaves_prices_and_broken_tex_as_text(page: Any) -> None:
    page.goto("/")
    send(page, "[maths] Show me some maths")
    wait_until_idle(page)
    markdown = page.locator("article.message.assistant .markdown").last

    # Three formulas drawn, one of them displayed on its own line; KaTeX's fonts and rules applied.
    expect(markdown.locator(".katex")).to_have_count(3)
    expect(markdown.locator(".katex-display")).to_have_count(1)
    expect(markdown.locator(".katex-display .mfrac")).to_have_count(1)
    assert (
        markdown.locator(".katex .mathnormal")
        .first.evaluate("node => getComputedStyle(node).fontFamily")
        .startswith("KaTeX")
    )
    # The source is kept for screen readers (KaTeX's MathML copy) and the underscores of
    # `a_1 * b_2` stayed TeX instead of becoming Markdown emphasis.
    annotations = markdown.locator(".katex-mathml annotation").all_text_contents()
    assert "e^{i\\pi} + 1 = 0" in annotations
    assert "a_1 * b_2" in annotations
    expect(markdown.locator("em")).to_have_count(0)
    text = markdown.inner_text()
    assert "$5 and $10 lunches" in text
    assert "$$" not in text and "\\frac{1}{3}" not in text
    expect(markdown.locator("code.math-error")).to_have_text("$\\frac{1}{$")


def test_a_text_document_draws_maths_and_keeps_a_poems_line_breaks(page: Any) -> None:
    page.goto("/")
    send(page, "[docmaths] A poem about orbits")
    wait_until_idle(page)
    body = page.locator("#artifact-body")
    expect(body.locator("h1")).to_have_text("Orbits")
    expect(body.locator(".katex")).to_have_count(1)
    assert "r = a(1 - e^2)" in body.locator(".katex-mathml annotation").all_text_contents()
    # Each line of the stanza on its own line, as written.
    lines = [line.strip() for line in body.locator("p").first.inner_text().split("\n")]
    assert lines[:2] == ["The planet turns,", "the planet goes,"]
    assert lines[-1] == "as Kepler knows."


def test_formulas_whose_mathml_carries_styles_draw_without_a_policy_refusal(page: Any) -> None:
    # KaTeX gives these a style="" attribute in their MathML copy, which the CSP would refuse with
    # a console error (the `console` fixture fails the test on one).
    page.goto("/")
    drawn = page.evaluate(
        """async (source) => {
            const { renderMarkdown } = await import("/static/js/lib/markdown.js");
            const target = document.createElement("div");
            document.body.append(target);
            renderMarkdown(target, source);
            await new Promise((resolve) => setTimeout(resolve, 100)); // let a refusal reach the console
            return target.querySelectorAll(".katex").length;
        }""",
        "$\\boldsymbol{\\alpha}$ and $\\fcolorbox{red}{white}{x}$ and $\\color{red} y$",
    )
    assert drawn == 3


def test_copying_a_selection_with_a_formula_copies_its_tex(page: Any) -> None:
    page.goto("/")
    send(page, "[maths] Show me some maths")
    wait_until_idle(page)
    copied = page.evaluate(
        """() => {
            const paragraph = document.querySelector("article.message.assistant .markdown > p");
            getSelection().selectAllChildren(paragraph);
            const clipboardData = new DataTransfer();
            document.dispatchEvent(new ClipboardEvent("copy", { clipboardData, cancelable: true }));
            return clipboardData.getData("text/plain");
        }"""
    )
    assert copied.startswith("Here: Euler's identity $e^{i\\pi} + 1 = 0$ is free")
