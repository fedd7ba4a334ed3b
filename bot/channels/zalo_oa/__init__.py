"""The Zalo Official Account over aiohttp: OAuth v4 tokens (single-use refresh tokens kept in the
database before use), the signed webhook, consultation / template messages under the OA's rules."""
