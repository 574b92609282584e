"""Where the bundled sample passports are, whatever the working directory.

The notebooks and examples name ``sample_data/demo``; relative to the working
directory that works from the repository's root only. :func:`sample_passport`
resolves it from the installed package: the repository's ``sample_data`` next
to the package (an editable install or a checkout), else the demo generated
once, deterministically (:func:`workbench.synth.generate_demo`), into the
user's cache folder.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["sample_passport"]


def sample_passport(name: str = "demo") -> Path:
    """The directory of a bundled sample passport (``demo``), from any working directory.

    Examples
    --------
    >>> import workbench as wb
    >>> (wb.sample_passport() / "passport.yaml").is_file()
    True
    """
    from ..errors import UsageError

    here = Path(__file__).resolve().parents[2] / "sample_data" / name
    if (here / "passport.yaml").is_file():
        return here
    if name != "demo":
        raise UsageError(f"no sample passport {name!r}; the bundled one is 'demo'")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench" / name
    if not (cache / "passport.yaml").is_file():
        from ..synth import generate_demo

        generate_demo(cache)
    return cache
