from hypothesis import given
from hypothesis import strategies as st

from pushscan.seq import HALF, MASK, diff, unwrap


@given(st.integers(0, 1 << 40), st.integers(-HALF + 1, HALF - 1))
def test_unwrap_recovers_nearby_values(ref, delta):
    value = max(0, ref + delta)
    assert unwrap(value & MASK, ref) == value


@given(st.integers(0, MASK), st.integers(0, 1 << 40))
def test_unwrap_is_congruent_and_close(seq32, ref):
    u = unwrap(seq32, ref)
    assert u & MASK == seq32 and abs(u - ref) <= HALF


def test_diff_across_wrap():
    assert diff(5, MASK - 4) == 10 and diff(MASK - 4, 5) == -10
