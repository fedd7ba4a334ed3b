"""Quarterly summaries per locality (`quarter.py`, reading through the owner modules of supervision,
broadcasts, knowledge, handoff and audiences) and their texts and messages (`texts.py`).
May import bot.kernel, bot.store, bot.audiences, bot.broadcasts, bot.knowledge, bot.handoff and
bot.supervision; nothing imports it but the CLI and the composition root."""
