"""Protection at rest: envelope encryption, template transform, API keys, card-number guard."""
