"""The bottom layer: small helpers any app may import. Not a Django app (no models, no
settings of its own), and it imports no app of Arbor (an import-linter contract keeps it so)."""
