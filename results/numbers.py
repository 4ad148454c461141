"""How the evidence's numbers read, the same on the report page, the console and the evidence file.

A p-value below 1e-4 reads "<1e-4" (the tests' approximations say nothing finer: 1.2e-60 is not more evidence than
1e-5 in any way a reader can use), otherwise two significant digits; score differences and their intervals are
signed points with two decimals, as the leaderboard prints scores.
"""

from __future__ import annotations

P_FLOOR = 1e-4


def p_value(p: float) -> str:
    """'<1e-4' or two significant digits: 0.0055, 0.11, 1."""
    return "<1e-4" if p < P_FLOOR else f"{p:.2g}"


def p_phrase(p: float, name: str = "p") -> str:
    """'p < 1e-4' or 'p = 0.0055' (`name`: 'adjusted p' and the like)."""
    return f"{name} < 1e-4" if p < P_FLOOR else f"{name} = {p:.2g}"


def signed(points: float) -> str:
    """A difference in points: +1.25, -0.50."""
    return f"{points:+.2f}"


def interval(low: float, high: float) -> str:
    """A confidence interval in points: [-1.20, +3.40]."""
    return f"[{signed(low)}, {signed(high)}]"
