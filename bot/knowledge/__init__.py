"""Answers from the curated knowledge base: the search index and its confidence model (`index.py`),
out-of-scope topics (`out_of_scope.py`), the `question_log` table (`question_log.py`), `kb gaps`
(`gaps.py`) and the accuracy evaluation (`evaluation.py`). May import bot.kernel and bot.store."""
