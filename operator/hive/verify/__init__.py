"""Verification of teams before they run: TLA+ models of a team's protocol checked with TLC."""
