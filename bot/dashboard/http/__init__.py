"""The dashboard's HTTP side (aiohttp): the /admin/ sub-application, its guard, and the pages.
The only part of bot.dashboard that imports aiohttp."""
