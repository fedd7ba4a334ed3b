"""The staff web dashboard under /admin/ (and later the JSON API under /api/v1/).

`accounts` (one-time sign-in links, sessions, roles, API tokens), `audit` (the log of staff actions)
and `approvals` (four-eyes approval of large broadcasts) own the tables of migration 012 and hold
their only SQL; `auth` decides who may do what (roles, CSRF, the sign-in rate limit); `service`
puts it together with the services it shows (broadcasts, handoff, audiences, supervision) and
plugs `/dangnhap` into the dialogue; `render` draws the Jinja2 templates in `templates/`.
`http/` is the only part that knows aiohttp: the routes, mounted by bot/app/web.py.
Data comes from the owner modules (bot.broadcasts, bot.handoff, bot.audiences, bot.supervision,
bot.knowledge), never by SQL on their tables here. May import bot.kernel, bot.store,
bot.channels.base, bot.conversation and those owners; never bot.app or bot.cli.
"""
