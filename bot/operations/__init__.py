"""Operations an administrator runs around the service: the official locality list imported into
`content/localities.yaml` (`localities_import`), the database's backups, restores, the nightly
backup job and the lock that marks a running service (`backup`, `nightly`), and the Prometheus
metrics page (`metrics`). It may import bot.kernel, bot.store and bot.audiences; only bot.cli and
bot.app import it.
"""
