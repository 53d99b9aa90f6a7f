"""Rule files: the TOML schema, a loader with line-precise errors, and RuleFilter."""
