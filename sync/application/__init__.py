"""Use cases of the sync engine: handle inbound events, pull orders."""
