"""The Argilla side of prefkit: server launcher, SQL-backed search engine, dataset guidelines (runs in the argilla-server environment)."""
