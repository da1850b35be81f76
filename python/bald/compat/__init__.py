"""Drop-in replacements for other active-learning packages' functions, computed by bald."""
