"""Chinese: its rules as tables (rules.toml) and the code that asks them."""
