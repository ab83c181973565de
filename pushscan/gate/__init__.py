"""The CI gate (``pushscan check``): policies, judging traces, baselines, JUnit XML."""
from .baseline import baseline_diff, baseline_entry
from .check import CaseResult, TraceResult, check, check_trace, expand_traces, judge
from .policy import Policy, PolicyError, coerce, load_policy, policy_from_mapping

__all__ = ["CaseResult", "Policy", "PolicyError", "TraceResult", "baseline_diff", "baseline_entry",
           "check", "check_trace", "coerce", "expand_traces", "judge", "load_policy",
           "policy_from_mapping"]
