"""Reading config.json (load), and the `ocirun spec` template (template)."""
