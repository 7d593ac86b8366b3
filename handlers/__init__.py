"""Channel-neutral conversations: commands and button actions → billing → neutral replies."""
