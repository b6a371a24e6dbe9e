"""Rendering results for people: leaderboards (and, later, HTML reports and plots)."""
