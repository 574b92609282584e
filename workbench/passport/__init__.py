"""Passport v1: load and validate a divergence's data directory (spec: passport.md)."""
from .load import (CHANGE_KINDS, NULL_VALUE, FileProvenance, Passport, load_passport,
                   sha256_file)
from .manifest import Manifest, parse_grain, parse_manifest

__all__ = ["CHANGE_KINDS", "NULL_VALUE", "FileProvenance", "Manifest", "Passport",
           "load_passport", "parse_grain", "parse_manifest", "sha256_file"]
