"""Ray wrappers around the plain core: orchestration only, no science."""
