"""Analysis: statistics over stored runs (bootstrap intervals, paired tests, McNemar, detectable
differences)."""
