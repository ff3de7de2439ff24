"""The science: expectation checks of dropout, gradient checks, Monte-Carlo vs weight
scaling, and the statistics over seeds."""
