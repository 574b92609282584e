"""The change log as hypotheses: scope matching, alignment, effect tests, ranking."""
from .rank import (CandidateCause, EffectEstimate, RankConfig, RankingResult, did_effect,
                   leaf_deviation, rank_changes, scope_mask)

__all__ = ["CandidateCause", "EffectEstimate", "RankConfig", "RankingResult", "did_effect",
           "leaf_deviation", "rank_changes", "scope_mask"]
