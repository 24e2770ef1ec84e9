"""Ray Serve zero-shot scoring service: register a new domain, get recommendations."""
