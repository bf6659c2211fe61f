"""Source code in one language, downloaded with that language's file extension."""

from __future__ import annotations

import re

from artifacts.kinds.base import Kind, KindError

EXTENSIONS = {
    "python": ".py",
    "javascript": ".js",
    "typescript": ".ts",
    "tsx": ".tsx",
    "jsx": ".jsx",
    "java": ".java",
    "kotlin": ".kt",
    "swift": ".swift",
    "go": ".go",
    "rust": ".rs",
    "c": ".c",
    "cpp": ".cpp",
    "c++": ".cpp",
    "csharp": ".cs",
    "c#": ".cs",
    "ruby": ".rb",
    "php": ".php",
    "scala": ".scala",
    "haskell": ".hs",
    "lua": ".lua",
    "r": ".r",
    "julia": ".jl",
    "dart": ".dart",
    "elixir": ".ex",
    "erlang": ".erl",
    "clojure": ".clj",
    "perl": ".pl",
    "bash": ".sh",
    "shell": ".sh",
    "sh": ".sh",
    "zsh": ".zsh",
    "powershell": ".ps1",
    "sql": ".sql",
    "html": ".html",
    "css": ".css",
    "scss": ".scss",
    "json": ".json",
    "yaml": ".yaml",
    "toml": ".toml",
    "xml": ".xml",
    "markdown": ".md",
    "dockerfile": ".dockerfile",
    "makefile": ".mk",
}
ALIASES = {"py": "python", "js": "javascript", "ts": "typescript", "rs": "rust", "golang": "go", "yml": "yaml"}
_LANGUAGE = re.compile(r"[a-z0-9+#.\-]{1,40}")


class CodeKind(Kind):
    name = "code"
    summary = "code: a source file in one programming language (give `language`)"
    media_type = "text/plain; charset=utf-8"
    extension = ".txt"

    def instructions(self, *, language: str) -> str:
        shown = language or "the language the conversation calls for"
        return (
            f"Write it as one source file in {shown}: only the code, with comments where they help. "
            "No Markdown fences and no prose before or after the code."
        )

    def language_clean(self, language: object) -> str:
        if language is None or language == "":
            return ""
        if not isinstance(language, str):
            raise KindError('`language` is a string such as "python".')
        cleaned = language.strip().lower()
        cleaned = ALIASES.get(cleaned, cleaned)
        if not _LANGUAGE.fullmatch(cleaned):
            raise KindError('`language` is a programming language\'s name, such as "python" or "typescript".')
        return cleaned

    def extension_for(self, language: str) -> str:
        return EXTENSIONS.get(language, self.extension)


HANDLER = CodeKind()
