"""Old home of the notebook artifact; kept because saved notebooks import from it.

Every version saved before the investigation package was split embeds
``from workbench.investigation.artifact import rerun_investigation`` and
``... import reproduction_check``. The notebook code now lives in
:mod:`workbench.investigation.library.notebook` and the re-run in
:mod:`workbench.investigation.run`; this module only re-exports them (nothing
inside the package imports it). Test: ``tests/investigation/test_saved_notebook.py``.
"""
from __future__ import annotations

from .library.notebook import (MIME_REPRODUCTION, TEMPLATE_ENV, TEMPLATE_NAME,  # noqa: F401
                               ReproductionCheck, answer_markdown, build_notebook,
                               decisions_markdown, inject_parameters, load_template,
                               notebook_text, reproduction_check, saved_digest, template_path)
from .run import rerun_investigation, write_artifact  # noqa: F401
