"""The Etsy connector (Open API v3) and its sandbox."""
