"""Reading a setup file: YAML/TOML/JSON -> Setup with line:column for every field
(loader, yamlpos) and the suppression comments it carries (suppress)."""
