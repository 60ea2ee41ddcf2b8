"""Promotion: criteria (versioned YAML), the pure decision rules, the label move shared with
the API, and the engine that evaluates every target."""

from conveyor.promote.criteria import Criteria, CriteriaError, Target, load_criteria
from conveyor.promote.decide import Explanation, Verdict
from conveyor.promote.engine import Decision, evaluate, evaluate_after_vote, explain
from conveyor.promote.labels import (
    ANY_INCUMBENT,
    CommitPurged,
    PromotionConflict,
    PromotionError,
    PromotionRefused,
    check_promote_name,
    promote_label,
)

__all__ = [
    "ANY_INCUMBENT",
    "CommitPurged",
    "Criteria",
    "CriteriaError",
    "Decision",
    "Explanation",
    "PromotionConflict",
    "PromotionError",
    "PromotionRefused",
    "Target",
    "Verdict",
    "check_promote_name",
    "evaluate",
    "evaluate_after_vote",
    "explain",
    "load_criteria",
    "promote_label",
]
