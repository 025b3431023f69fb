"""The ICH Q9 scales and the classification rule of pocare.quality.risk, at its boundaries."""

from __future__ import annotations

import itertools

import pytest

from pocare.quality import risk


def test_each_scale_has_words_for_each_level():
    """Q9-RISK: defined scales, 1 to 5, with the words of each level."""
    for scale in risk.SCALES.values():
        assert sorted(scale) == [1, 2, 3, 4, 5]
        assert all(len(words) > 20 for words in scale.values())
    assert "harm the patient" in risk.SEVERITY[5] and "product is lost" in risk.SEVERITY[5]


@pytest.mark.parametrize(("s", "o", "d", "expected"), [
    (5, 1, 1, "critical"),   # severity 5 is critical however unlikely
    (4, 2, 3, "critical"),   # S4, O×D = 6: the critical boundary
    (4, 3, 2, "critical"),
    (4, 5, 1, "major"),      # S4, O×D = 5: just below
    (4, 1, 1, "major"),      # any severity 4 is at least major
    (3, 2, 2, "major"),      # RPN 12: the major boundary
    (3, 1, 3, "minor"),      # RPN 9
    (3, 1, 4, "major"),      # RPN 12
    (2, 2, 3, "major"),      # RPN 12 with severity 2
    (2, 1, 5, "minor"),      # RPN 10
    (1, 5, 5, "minor"),      # severity 1 is always minor, RPN 25
    (1, 1, 1, "minor"),
])
def test_classification_boundaries(s, o, d, expected):
    """Q9-RISK DEV-CLASS: critical / major / minor from severity, occurrence and detectability."""
    assert risk.classify(s, o, d) == expected


def test_the_rule_is_monotone():
    """Q9-RISK: raising any score never lowers the class."""
    rank = {"minor": 0, "major": 1, "critical": 2}
    for s, o, d in itertools.product(range(1, 6), repeat=3):
        here = rank[risk.classify(s, o, d)]
        for bumped in ((s + 1, o, d), (s, o + 1, d), (s, o, d + 1)):
            if max(bumped) <= 5:
                assert rank[risk.classify(*bumped)] >= here, ((s, o, d), bumped)


@pytest.mark.parametrize("bad", [0, 6, -1, "x", None, True, 2.5, "", "7"])
def test_scores_outside_the_scale_are_refused_naming_the_scale(bad):
    """Q9-RISK: a score outside 1–5 is refused, naming the scale."""
    with pytest.raises(risk.ScoreError) as exc:
        risk.classify(3, bad, 2)
    assert exc.value.field == "occurrence" and "1 to 5" in str(exc.value)


def test_scores_may_come_as_text_digits():
    assert risk.score("severity", " 4 ") == 4
    assert risk.Assessment(3, 2, 2).rpn == 12 and risk.Assessment(3, 2, 2).result == "major"
