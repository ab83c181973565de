"""The CI gate (``pushscan check``): policies, judging traces and pairs of captures of one
path (``compare``), baselines, JUnit XML."""
from .baseline import baseline_diff, baseline_entry
from .check import CaseResult, TraceResult, check, check_trace, expand_traces, judge
from .compare import check_compare
from .policy import Policy, PolicyError, coerce, load_policy, policy_from_mapping, split_pair

__all__ = ["CaseResult", "Policy", "PolicyError", "TraceResult", "baseline_diff", "baseline_entry",
           "check", "check_compare", "check_trace", "coerce", "expand_traces", "judge", "load_policy",
           "policy_from_mapping", "split_pair"]
