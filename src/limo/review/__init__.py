"""Human review of curation candidates: `limo review RUN` serves a local page (server.py, static/) whose
decisions go to RUN/review/decisions.jsonl (decisions.py), which the select stage honours on the next curate."""
