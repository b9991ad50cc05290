"""`prefkit eval`, by concern: `config` (settings and the models compared), `turns` (the next turn of held-out
tasks, scored as the filter scores it), `episodes` (whole episodes in an environment, task success),
`statistics` (bootstrap intervals and paired differences), `report` (JSON, Markdown, chart) and `stage` (the
library function `prefkit eval` and `prefkit run` call)."""
