"""The investigations library: saved versions, their notebooks, journal and memory.

``notebook`` builds the re-executable notebook of a version (the template,
its parameters, the saved answer, the reproduction check). Saving, journal,
diffs and verification are still in :mod:`workbench.investigation.versions`
(see ``docs/architecture-notes.md``).
"""
