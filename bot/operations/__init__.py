"""operations: backups, official localities import, metrics; may import bot.kernel, bot.store, bot.audiences;
imported only by bot.app and bot.cli."""
