"""Analysis of a run's tidy rows and stored outcomes: every metric's value and paired-bootstrap
interval, leaderboard scores, Shapley values, corruption errors and adversarial sanity checks.
Reads rows and outcomes only, never models or data."""
