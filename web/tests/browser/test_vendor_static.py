"""The vendored web libraries as production serves them: `collectstatic` with production's
manifest storage finds every file they name (KaTeX's fonts from its stylesheet, the modules'
source maps), or it stops and the image does not build."""

from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from django.test import override_settings

PRODUCTION_STATIC = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}


def test_production_collectstatic_finds_every_file_the_vendored_libraries_name(tmp_path: Path) -> None:
    storages = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}, "staticfiles": PRODUCTION_STATIC}
    with override_settings(STATIC_ROOT=str(tmp_path), STORAGES=storages):
        call_command("collectstatic", interactive=False, verbosity=0)
    stylesheet = next((tmp_path / "css").glob("app.*.css")).read_text()
    assert "../vendor/katex/katex.min." in stylesheet  # KaTeX's rules, by their hashed name
    katex = next((tmp_path / "vendor" / "katex").glob("katex.min.*.css")).read_text()
    assert "fonts/KaTeX_Main-Regular." in katex
    assert list((tmp_path / "vendor" / "katex" / "fonts").glob("KaTeX_Main-Regular.*.woff2"))
