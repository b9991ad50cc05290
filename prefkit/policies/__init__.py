"""Who writes the next turn of an episode or a held-out task: `spec` reads the policy grammar (the only place it
is read), `base` holds the `Policy` protocol, and `open` builds the policy a spec names (the teacher client,
local generation, or a replay file)."""
