"""Review: people (or the rules, in `auto` mode) decide which side of a pair is better."""
