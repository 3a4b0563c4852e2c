"""Analysis of what networks did: paired statistics across seeds (`paired`)."""
